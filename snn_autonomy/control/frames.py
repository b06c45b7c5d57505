"""Planar poses in REP-105 frames: (x, y, yaw) in metres and radians."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Optional, Tuple, Union

if TYPE_CHECKING:
    import numpy as np

Pose2 = Tuple[float, float, float]


def wrap(a: Union[float, "np.ndarray"]) -> Union[float, "np.ndarray"]:
    """An angle, or an array of them, in [-pi, pi) [rad]."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def compose(origin: Pose2, local: Pose2) -> Pose2:
    """`local` (x, y, yaw in a frame whose origin sits at `origin` in the map) in the map frame."""
    x0, y0, yaw0 = origin
    x, y, yaw = local
    c, s = math.cos(yaw0), math.sin(yaw0)
    return (x0 + c * x - s * y, y0 + s * x + c * y, math.atan2(math.sin(yaw0 + yaw), math.cos(yaw0 + yaw)))


def finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def odom_to_map(origin: Pose2, x: float, y: float, yaw: float, *rates: float) -> Optional[Pose2]:
    """An odometry pose (odom frame whose origin sits at `origin` in the map, as the built-in
    world and most bases publish it) in the map frame; None when it, or one of its `rates`
    (the twist), is not finite: such odometry is refused, never averaged into a pose."""
    if not finite(x, y, yaw, *rates):
        return None
    return compose(origin, (x, y, yaw))
