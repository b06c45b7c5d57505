"""Ground truth a robot's camera could know: ranges across its field of view,
what each ray hits, and how fast that thing closes in (for labels and for
scripted drivers). Distances are from the camera, in metres, on the floor plane.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .geometry import NO_HIT, ray_circle, ray_segment
from .scan import HIT_NONE, HIT_OBSTACLE, HIT_ROBOT, HIT_WALL, RangeScan
from .world import World

__all__ = ["HIT_NONE", "HIT_WALL", "HIT_OBSTACLE", "HIT_ROBOT", "RangeScan", "range_scan", "cast_rays"]


@njit(cache=True, nogil=True)
def _scan(x, y, yaw, rel_angles, max_range, walls, cyl, n_obs, skip, dist, kind, index):
    for j in range(rel_angles.shape[0]):
        a = yaw + rel_angles[j]
        dx = math.cos(a)
        dy = math.sin(a)
        best = NO_HIT
        bk = -1
        bi = -1
        for i in range(walls.shape[0]):
            t, _ = ray_segment(x, y, dx, dy, walls[i, 0], walls[i, 1], walls[i, 2], walls[i, 3])
            if t < best:
                best, bk, bi = t, 0, i
        for i in range(cyl.shape[0]):
            if i == skip:
                continue
            t = ray_circle(x, y, dx, dy, cyl[i, 0], cyl[i, 1], cyl[i, 2])
            if t < best:
                if i < n_obs:
                    best, bk, bi = t, 1, i
                else:
                    best, bk, bi = t, 2, i - n_obs
        if best > max_range:
            best, bk, bi = max_range, -1, -1
        dist[j] = best
        kind[j] = bk
        index[j] = bi


def cast_rays(world: World, robot: int, x: float, y: float, yaw: float, rel_angles: np.ndarray,
              max_range: float, min_height: float = 0.0):
    """(distance, kind, index) of rays from (x, y) at yaw + rel_angles, past `robot`'s own body.
    With `min_height`, obstacles and robots no taller than that are transparent (a scanning
    plane above them); a ray meeting nothing reads `max_range` with kind HIT_NONE."""
    cyl, heights, _ = world.cylinders()
    n_obs = len(world.obs_pos)
    skip = n_obs + robot
    if min_height > 0:
        cyl = np.where((heights > min_height)[:, None], cyl, np.array([0.0, 0.0, 0.0]))  # radius 0: never hit
    n = len(rel_angles)
    dist = np.empty(n)
    kind = np.empty(n, dtype=np.int64)
    index = np.empty(n, dtype=np.int64)
    _scan(x, y, yaw, np.asarray(rel_angles, dtype=np.float64), max_range, world.walls, np.ascontiguousarray(cyl),
          n_obs, skip, dist, kind, index)
    return dist, kind, index


def range_scan(world: World, robot: int, n_rays: int = 33, hfov_deg: float | None = None,
               max_range: float | None = None) -> RangeScan:
    cam = world.cfg.camera
    half = math.radians(hfov_deg if hfov_deg is not None else cam.hfov_deg) / 2
    rel = np.linspace(half, -half, n_rays)
    x, y, yaw = world.camera_pose(robot)
    dist, kind, index = cast_rays(world, robot, x, y, yaw, rel, max_range or cam.max_range_m)
    dirs = np.stack([np.cos(yaw + rel), np.sin(yaw + rel)], axis=1)
    v_self = world.vel[robot, 0] * np.array([math.cos(yaw), math.sin(yaw)])
    v_other = np.zeros((n_rays, 2))
    obs = kind == HIT_OBSTACLE
    v_other[obs] = world.obs_vel[index[obs]]
    rob = kind == HIT_ROBOT
    if rob.any():
        th = world.pose[index[rob], 2]
        v_other[rob] = world.vel[index[rob], :1] * np.stack([np.cos(th), np.sin(th)], axis=1)
    closing = np.einsum("ij,ij->i", v_self[None, :] - v_other, dirs)
    return RangeScan(rel, dist, kind, index, closing)
