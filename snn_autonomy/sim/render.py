"""Ray-cast rendering of a robot's forward camera in the 2-D arena (numba).

The world is walls (vertical rectangles standing on segments) and vertical
cylinders (obstacles and other robots) on a textured floor under a uniform sky.
For each image column one ray is cast; every wall and cylinder it meets is
sorted by distance, and each pixel row takes the nearest surface whose height
span covers it, the floor if the ray meets the floor first, else the sky.

Camera: optical axis along the robot heading, horizontal FOV `hfov`, mounted
`mount_h` metres above the floor. Image column 0 is the left edge (rays to the
robot's left, +yaw side), row 0 the top. Two projections:
- pinhole (`vfov` 0): square pixels, a column's angle atan(u / f);
- cylindrical (`vfov` > 0): columns evenly spaced in angle over `hfov`, rows evenly
  spaced in elevation over `vfov`, what a wide-angle lens gives once rectified onto a
  cylinder. Each column is then a vertical plane through the lens, and a surface at
  horizontal distance t along it is seen at elevation atan((h - mount_h) / t).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .geometry import ray_circle, ray_segment
from .textures import texture_value

MAX_HITS = 64


@njit(cache=True, nogil=True)
def render_view(x, y, yaw, width, height, hfov, vfov, mount_h, max_range, sky, floor_tex,
                walls, wall_h, wall_tex, cyl, cyl_h, cyl_tex, cyl_skip, textures, out):
    """Render into `out` (height, width) float32 linear intensities.

    vfov: 0 for a pinhole camera, else the cylindrical projection's vertical field of view.
    walls: (n, 4) x0, y0, x1, y1; cyl: (m, 3) cx, cy, r; cyl_skip: index of the
    cylinder that is the camera's own robot (-1 for none).
    """
    cylindrical = vfov > 0.0
    f = (width / 2.0) / math.tan(hfov / 2.0)
    hit_t = np.empty(MAX_HITS)
    hit_h = np.empty(MAX_HITS)
    hit_u = np.empty(MAX_HITS)
    hit_k = np.empty(MAX_HITS, dtype=np.int64)
    tan_els = np.empty(height)          # each row's elevation, the same in every column
    for r_ in range(height):
        v = (height / 2.0) - (r_ + 0.5)
        tan_els[r_] = math.tan(v * vfov / height) if cylindrical else v / f
    for c in range(width):
        u = (width / 2.0) - (c + 0.5)                      # + to the left
        rel = u * hfov / width if cylindrical else math.atan(u / f)
        ang = yaw + rel
        dx = math.cos(ang)
        dy = math.sin(ang)
        # a pinhole row is a plane at depth z = t cos(rel) along the optical axis; a cylinder's
        # column is its own vertical plane (depth = the distance along the ray)
        cos_rel = 1.0 if cylindrical else math.cos(rel)
        n = 0
        for i in range(walls.shape[0]):
            t, s = ray_segment(x, y, dx, dy, walls[i, 0], walls[i, 1], walls[i, 2], walls[i, 3])
            if t < max_range and n < MAX_HITS:
                hit_t[n] = t
                hit_h[n] = wall_h[i]
                hit_u[n] = s * math.hypot(walls[i, 2] - walls[i, 0], walls[i, 3] - walls[i, 1])
                hit_k[n] = wall_tex[i]
                n += 1
        for i in range(cyl.shape[0]):
            if i == cyl_skip:
                continue
            t = ray_circle(x, y, dx, dy, cyl[i, 0], cyl[i, 1], cyl[i, 2])
            if t < max_range and n < MAX_HITS:
                hit_t[n] = t
                hit_h[n] = cyl_h[i]
                hit_u[n] = math.atan2(y + t * dy - cyl[i, 1], x + t * dx - cyl[i, 0]) * cyl[i, 2]
                hit_k[n] = cyl_tex[i]
                n += 1
        # insertion sort of the hits by distance
        for i in range(1, n):
            j = i
            while j > 0 and hit_t[j - 1] > hit_t[j]:
                hit_t[j - 1], hit_t[j] = hit_t[j], hit_t[j - 1]
                hit_h[j - 1], hit_h[j] = hit_h[j], hit_h[j - 1]
                hit_u[j - 1], hit_u[j] = hit_u[j], hit_u[j - 1]
                hit_k[j - 1], hit_k[j] = hit_k[j], hit_k[j - 1]
                j -= 1
        for r_ in range(height):
            tan_el = tan_els[r_]
            value = sky
            floor_z = mount_h / (-tan_el) if tan_el < 0.0 else 1e30
            done = False
            for i in range(n):
                z = hit_t[i] * cos_rel
                if floor_z < z:
                    break
                h = mount_h + z * tan_el
                if 0.0 <= h <= hit_h[i]:
                    value = texture_value(textures, hit_k[i], hit_u[i], h)
                    done = True
                    break
            if not done and tan_el < 0.0 and floor_z * 1.0 < max_range:
                dist = floor_z / cos_rel
                value = texture_value(textures, floor_tex, x + dist * dx, y + dist * dy)
            out[r_, c] = value
    return out
