"""A rolling local map of what perception saw near the robot: obstacles marked where decisions saw
them, cleared where a later decision sees free, forgotten after a while (the marking and
clearing of a costmap's obstacle layer, for sector ranges instead of laser rays).

Each decision marks, for each sector whose range is near enough to matter, a point at that range
on the sector's bearing, in the map frame (odometry). It clears every mark inside one of its
sectors' wedges nearer than that sector's free range: a sector's range class says that nothing
in its wedge is nearer than the class's lower edge, so what the camera vouches is free now is
free, whatever was remembered there (a mover that has gone, an earlier decision's nearer class).
A mark is an obstacle until it is cleared or older than `memory_s`.

Marks beside and behind the lens, which no sector covers, keep what was last seen of them until
they expire: the end of a wall the robot is passing stays where the camera last saw it, though
it is now beside the lens. A list of recent ranges could not tell which remembered points the
camera has seen free since; the map can, so it may be trusted wherever the lens cannot see.

The map keeps one mark per `resolution_m` cell (the newest) and rolls with the robot: marks
farther than `radius_m` from it are forgotten.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

from .frames import wrap


class LocalMap:
    def __init__(self, memory_s: float = 1.5, radius_m: float = 1.6, resolution_m: float = 0.05) -> None:
        self.memory_s = float(memory_s)
        self.radius_m = float(radius_m)
        self.res = float(resolution_m)
        self._xy = np.empty((0, 2))      # marks, map frame
        self._t = np.empty(0)            # when each was marked
        self._now = -math.inf

    def reset(self) -> None:
        self._xy, self._t, self._now = np.empty((0, 2)), np.empty(0), -math.inf

    def __len__(self) -> int:
        return len(self._t)

    def update(self, robot_xy: Tuple[float, float], camera: Tuple[float, float, float], bearings: Sequence[float],
               width: float, free_m: Sequence[float], mark_m: Sequence[float], now_s: float) -> None:
        """One decision. `camera`: (x, y, yaw) of the lens in the map frame; `bearings`: sector
        centres relative to its heading, each `width` wide; `free_m`: the range each sector is
        free to from the lens; `mark_m`: where to mark each sector's nearest obstacle from the
        lens (nan: no mark). A clock that went back (a replayed bag, a reset simulation) starts
        the map afresh."""
        if now_s < self._now:
            self.reset()
        self._now = float(now_s)
        cx, cy, yaw = camera
        bearings = np.asarray(bearings, dtype=float)
        free = np.asarray(free_m, dtype=float)
        xy, t = self._xy, self._t
        if len(t):
            keep = (now_s - t <= self.memory_s) & (np.hypot(xy[:, 0] - robot_xy[0], xy[:, 1] - robot_xy[1]) <= self.radius_m)
            dx, dy = xy[:, 0] - cx, xy[:, 1] - cy
            phi = (np.arctan2(dy, dx) - yaw)[:, None] - bearings[None, :]
            inside = np.abs(wrap(phi)) <= width / 2      # (marks, sectors)
            seen_free = (inside & (np.hypot(dx, dy)[:, None] < free[None, :])).any(axis=1)
            xy, t = xy[keep & ~seen_free], t[keep & ~seen_free]
        marks = np.asarray(mark_m, dtype=float)
        near = np.isfinite(marks)
        if near.any():
            a = yaw + bearings[near]
            new = np.stack([cx + marks[near] * np.cos(a), cy + marks[near] * np.sin(a)], axis=1)
            xy, t = np.concatenate([xy, new]), np.concatenate([t, np.full(len(new), float(now_s))])
            # one mark per cell, the newest: np.unique keeps the first of each, so look from the end
            cells = np.floor(xy[::-1] / self.res).astype(np.int64)
            _, first = np.unique(cells, axis=0, return_index=True)
            pick = len(t) - 1 - np.sort(first)[::-1]
            xy, t = xy[pick], t[pick]
        self._xy, self._t = xy, t

    def obstacles(self, now_s: Optional[float] = None) -> Tuple[np.ndarray, np.ndarray]:
        """Map-frame points of the marks that are obstacles at `now_s` (default: the last update)."""
        now = self._now if now_s is None else now_s
        live = now - self._t <= self.memory_s
        return self._xy[live, 0], self._xy[live, 1]
