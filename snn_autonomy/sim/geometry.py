"""Ray intersection primitives shared by the renderer and the ground-truth range finder."""
from __future__ import annotations

import math

import numpy as np
from numba import njit

NO_HIT = np.inf


@njit(cache=True, nogil=True, inline="always")
def ray_segment(x, y, dx, dy, x0, y0, x1, y1):
    """(distance along the unit ray (dx, dy) from (x, y), position along the segment in [0, 1]);
    distance is inf when the ray misses."""
    ex = x1 - x0
    ey = y1 - y0
    den = dx * ey - dy * ex
    if abs(den) < 1e-12:
        return NO_HIT, 0.0
    wx = x0 - x
    wy = y0 - y
    t = (wx * ey - wy * ex) / den
    s = (wx * dy - wy * dx) / den
    if t > 1e-6 and 0.0 <= s <= 1.0:
        return t, s
    return NO_HIT, 0.0


@njit(cache=True, nogil=True, inline="always")
def ray_circle(x, y, dx, dy, cx, cy, r):
    """Distance along the unit ray to the circle's near side; inf on a miss or from inside."""
    ox = x - cx
    oy = y - cy
    b = ox * dx + oy * dy
    cc = ox * ox + oy * oy - r * r
    disc = b * b - cc
    if disc <= 0.0 or cc <= 0.0:
        return NO_HIT
    t = -b - math.sqrt(disc)
    return t if t > 1e-6 else NO_HIT
