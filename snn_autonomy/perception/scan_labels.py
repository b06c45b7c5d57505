"""Labels from a 2D LiDAR: the nearest range in each sector of the event camera's field of view,
and time to contact from the range rate and odometry (what `perception.labels` and
`perception.sectors` define from the simulator's geometry, here from a robot's own sensors).

Each beam of a `sensor_msgs/LaserScan` becomes a point in the LiDAR's frame and then in the
camera's (`rig.RigCamera.in_lidar`); a point inside the camera's horizontal field of view falls
into one of its sectors, left to right, and a sector's range is its nearest point's distance from
the camera. Beams follow REP 117: +inf (nothing within range_max) vouches for free space up to
range_max along the beam, -inf (nearer than range_min) for an obstacle at range_min, NaN for
nothing. A sector that no valid beam reaches cannot be labelled (`covered` False).

Time to contact: a sector's closing speed is the negative slope of its range over the last few
scans, unless its nearest point jumped between them (another object became the nearest, or it
was free), in which case the robot's own forward speed projected on the sector's direction
stands in (a static world). TTC = range / closing speed where it closes faster than 5 cm/s.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Deque, Optional, Tuple

import numpy as np

from .rig import RigCamera
from .sectors import sector_angles

MIN_CLOSING_MPS = 0.05      # slower closing is no contact (and below the range noise's slope)
RATE_SCANS = 3              # scans in a range-rate fit (0.2 s at 10 Hz: 1 cm noise -> ~7 cm/s)
JUMP_M = 0.25               # a sector's range moving more than this between scans is another object


@dataclass(frozen=True)
class ScanData:
    """A LaserScan's numbers (from a message or the built-in world's `sim.lidar.LidarScan`)."""

    stamp_ns: int
    angle_min: float
    angle_increment: float
    ranges: np.ndarray
    range_min: float
    range_max: float

    @classmethod
    def from_msg(cls, msg, stamp_ns: int) -> "ScanData":
        return cls(int(stamp_ns), float(msg.angle_min), float(msg.angle_increment),
                   np.asarray(msg.ranges, dtype=np.float64), float(msg.range_min), float(msg.range_max))


def camera_sector_ranges(scan: ScanData, camera: RigCamera, count: int) -> Tuple[np.ndarray, np.ndarray]:
    """(range per sector [m], covered per sector), `count` sectors of the camera's field of view
    left to right; a range is +inf where every beam into the sector was free out to range_max
    and beyond the camera's view of it."""
    r = np.asarray(scan.ranges, dtype=np.float64)
    a = scan.angle_min + scan.angle_increment * np.arange(len(r))
    valid = ~np.isnan(r)
    free = np.isposinf(r)
    r = np.where(free, scan.range_max, np.where(np.isneginf(r), scan.range_min, r))
    # beams below range_min or above range_max that are not +-inf are invalid readings (REP 117)
    valid &= free | np.isneginf(np.asarray(scan.ranges)) | ((r >= scan.range_min) & (r <= scan.range_max))
    px, py = r * np.cos(a), r * np.sin(a)
    cx, cy, cyaw = camera.pose
    c, s = math.cos(cyaw), math.sin(cyaw)
    qx, qy = c * (px - cx) + s * (py - cy), -s * (px - cx) + c * (py - cy)   # into the camera's frame
    phi = np.arctan2(qy, qx)
    half = math.radians(camera.hfov_deg) / 2
    inside = valid & (qx > 0) & (np.abs(phi) < half)
    k = np.clip(((half - phi[inside]) / (2 * half / count)).astype(np.int64), 0, count - 1)
    d = np.hypot(qx[inside], qy[inside])
    hit = ~free[inside]
    ranges = np.full(count, np.inf)
    np.minimum.at(ranges, k[hit], d[hit])
    covered = np.zeros(count, dtype=bool)
    covered[k] = True
    return ranges, covered


class ContactEstimator:
    """Time to contact per sector from consecutive scans' sector ranges and the robot's speed."""

    def __init__(self, camera: RigCamera, count: int) -> None:
        self.angles = sector_angles(count, math.radians(camera.hfov_deg))
        self._history: Deque[Tuple[float, np.ndarray]] = deque(maxlen=RATE_SCANS)

    def reset(self) -> None:
        self._history.clear()

    def update(self, t_s: float, ranges: np.ndarray, forward_mps: float) -> np.ndarray:
        """TTC [s] per sector (+inf: not closing) after the scan at `t_s` with sector `ranges`."""
        if self._history and t_s <= self._history[-1][0]:
            self.reset()                       # time went back: a new recording or a restart
        self._history.append((t_s, np.asarray(ranges, dtype=np.float64)))
        closing = np.maximum(forward_mps, 0.0) * np.cos(self.angles)     # static world: ego-motion alone
        if len(self._history) >= 2:
            t = np.array([h[0] for h in self._history])
            rs = np.stack([h[1] for h in self._history])                    # (K, S)
            with np.errstate(invalid="ignore"):     # free sectors (inf) are not steady, whatever their slope
                steady = np.isfinite(rs).all(0) & (np.abs(np.diff(rs, axis=0)) < JUMP_M).all(0)
                tc = t - t.mean()
                slope = (tc[:, None] * (rs - rs.mean(0))).sum(0) / max(float((tc ** 2).sum()), 1e-12)
            closing = np.where(steady, -slope, closing)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where((closing > MIN_CLOSING_MPS) & np.isfinite(ranges), ranges / closing, np.inf)


def forward_speed(odom_msg) -> Optional[float]:
    """The robot's forward speed [m/s] from a nav_msgs/Odometry (twist in the child frame, REP 105)."""
    v = float(odom_msg.twist.twist.linear.x)
    return v if math.isfinite(v) else None
