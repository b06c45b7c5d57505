"""A robot's sensor rig as labelling needs it: where the event camera sits relative to the 2D
LiDAR, what it sees, and how far apart stamps may be (the YAML of `snn-autonomy dataset --bag`).

    rig:
      camera:
        hfov_deg: 90.0                 # horizontal field of view of the event camera
        in_lidar: [0.162, 0.0, 0.0]    # camera x [m], y [m], yaw [deg] in the LiDAR's frame
      sync:
        max_odom_skew_s: 0.1           # odometry must lie this close to a scan
        max_event_gap_s: 0.05          # a longer silence of the event stream inside a window drops it
        packet_stamp: last_event       # which event an EventPacket's header stamp is the time of

Frames follow REP 103 (x forward, y left, yaw counter-clockwise). `in_lidar` is what
`ros2 run tf2_ros tf2_echo <lidar frame> <camera frame>` prints, reduced to the floor plane;
for an optical frame (z forward) use the camera's body frame instead. The built-in world's
rig is `config/rig_builtin.yaml`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Tuple, Union

from ..config import load, spec
from ..paths import config_path

BUILTIN_RIG = "rig_builtin.yaml"


@dataclass(frozen=True)
class RigCamera:
    hfov_deg: float = spec(90.0, lo=10.0, hi=170.0, unit="deg", help="horizontal field of view")
    in_lidar: Tuple[float, float, float] = spec((0.0, 0.0, 0.0), lo=-1000.0, hi=1000.0,
                                                help="camera x [m], y [m], yaw [deg] in the LiDAR's frame")

    @property
    def pose(self) -> Tuple[float, float, float]:
        """(x, y, yaw [rad]) of the camera in the LiDAR's frame."""
        x, y, yaw_deg = self.in_lidar
        return float(x), float(y), math.radians(float(yaw_deg))


@dataclass(frozen=True)
class RigSync:
    max_odom_skew_s: float = spec(0.1, lo=0.001, hi=10.0, unit="s", help="odometry must lie this close to a scan")
    max_event_gap_s: float = spec(0.05, lo=0.001, hi=10.0, unit="s",
                                  help="a longer silence of the event stream inside a window drops the sample")
    packet_stamp: Literal["last_event", "first_event"] = spec(
        "last_event", help="which event of an EventPacket its header stamp is the time of")


@dataclass(frozen=True)
class RigConfig:
    camera: RigCamera = field(default_factory=RigCamera)
    sync: RigSync = field(default_factory=RigSync)


def load_rig(path: Optional[Union[str, Path]] = None) -> RigConfig:
    """The rig in `path` (YAML with a top-level `rig:` section), or the built-in world's."""
    return load(path or config_path(BUILTIN_RIG), RigConfig, section="rig")
