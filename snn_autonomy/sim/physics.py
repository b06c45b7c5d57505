"""One integration step of the built-in world (numba).

Robots: unicycle kinematics with acceleration and velocity limits, integrated
exactly along the arc of one step; on contact with a wall, an obstacle or
another robot the robot is pushed out of the overlap and its forward speed set
to zero (a bumper stop). Moving obstacles: constant velocity, elastic bounces off
walls, static obstacles, robots and each other. A robot's contact is reported whichever of
the two moved into the other.
Units: m, s, rad. Contacts are reported as rows (robot, kind, other index, x, y,
relative speed, the other's vx, vy when the contact began) with kind 0 = wall, 1 = obstacle,
2 = robot (CONTACT_COLUMNS numbers a row).
"""
from __future__ import annotations

import math

from numba import njit

CONTACT_WALL, CONTACT_OBSTACLE, CONTACT_ROBOT = 0, 1, 2
CONTACT_COLUMNS = 8


@njit(cache=True, nogil=True, inline="always")
def _seg_closest(px, py, x0, y0, x1, y1):
    ex = x1 - x0
    ey = y1 - y0
    ll = ex * ex + ey * ey
    s = 0.0 if ll == 0.0 else ((px - x0) * ex + (py - y0) * ey) / ll
    s = min(1.0, max(0.0, s))
    return x0 + s * ex, y0 + s * ey


@njit(cache=True, nogil=True, inline="always")
def _bounce(pos, vel, k, nx, ny, depth):
    """Push obstacle k out along the unit normal (nx, ny) and reflect its approaching velocity."""
    pos[k, 0] += nx * depth
    pos[k, 1] += ny * depth
    vn = vel[k, 0] * nx + vel[k, 1] * ny
    if vn < 0:
        vel[k, 0] -= 2 * vn * nx
        vel[k, 1] -= 2 * vn * ny


@njit(cache=True, nogil=True, inline="always")
def _speed_against(pose, vel, i, obs_vel, k):
    """Speed of robot i relative to obstacle k [m/s]."""
    rvx = vel[i, 0] * math.cos(pose[i, 2]) - obs_vel[k, 0]
    rvy = vel[i, 0] * math.sin(pose[i, 2]) - obs_vel[k, 1]
    return math.sqrt(rvx * rvx + rvy * rvy)


@njit(cache=True, nogil=True, inline="always")
def _report(contacts, n_c, robot, kind, other, x, y, speed, other_vx, other_vy):
    """Write one contact row at n_c while there is room; returns the next free row."""
    if n_c >= contacts.shape[0]:
        return n_c
    contacts[n_c, 0], contacts[n_c, 1], contacts[n_c, 2] = robot, kind, other
    contacts[n_c, 3], contacts[n_c, 4], contacts[n_c, 5] = x, y, speed
    contacts[n_c, 6], contacts[n_c, 7] = other_vx, other_vy
    return n_c + 1


@njit(cache=True, nogil=True)
def physics_step(dt, pose, vel, cmd, r_rad, limits, walls, obs_pos, obs_vel, obs_r, obs_moving,
                 contacts):
    """Advance robots and obstacles by dt; fill `contacts` and return how many rows.

    pose (n, 3) x, y, yaw; vel (n, 2) v, w; cmd (n, 2) commanded v, w;
    limits = (v_max, w_max, a_lin, a_ang); walls (k, 4); obstacles pos/vel (m, 2),
    radius (m,), moving (m,) bool.
    """
    v_max, w_max, a_lin, a_ang = limits[0], limits[1], limits[2], limits[3]
    n_c = 0
    n = pose.shape[0]
    m = obs_pos.shape[0]
    for i in range(n):
        v = vel[i, 0] + min(max(cmd[i, 0] - vel[i, 0], -a_lin * dt), a_lin * dt)
        w = vel[i, 1] + min(max(cmd[i, 1] - vel[i, 1], -a_ang * dt), a_ang * dt)
        v = min(max(v, -v_max), v_max)
        w = min(max(w, -w_max), w_max)
        x, y, th = pose[i, 0], pose[i, 1], pose[i, 2]
        if abs(w) > 1e-9:
            x += v / w * (math.sin(th + w * dt) - math.sin(th))
            y -= v / w * (math.cos(th + w * dt) - math.cos(th))
        else:
            x += v * math.cos(th) * dt
            y += v * math.sin(th) * dt
        th = math.atan2(math.sin(th + w * dt), math.cos(th + w * dt))
        pose[i, 0], pose[i, 1], pose[i, 2] = x, y, th
        vel[i, 0], vel[i, 1] = v, w
    # robots against walls, obstacles and each other
    for i in range(n):
        for k in range(walls.shape[0]):
            cx, cy = _seg_closest(pose[i, 0], pose[i, 1], walls[k, 0], walls[k, 1], walls[k, 2], walls[k, 3])
            dx = pose[i, 0] - cx
            dy = pose[i, 1] - cy
            d = math.sqrt(dx * dx + dy * dy)
            if d < r_rad:
                nx, ny = (dx / d, dy / d) if d > 1e-12 else (1.0, 0.0)
                pose[i, 0] += nx * (r_rad - d)
                pose[i, 1] += ny * (r_rad - d)
                n_c = _report(contacts, n_c, i, CONTACT_WALL, k, cx, cy, abs(vel[i, 0]), 0.0, 0.0)
                vel[i, 0] = 0.0
        for k in range(m):
            dx = pose[i, 0] - obs_pos[k, 0]
            dy = pose[i, 1] - obs_pos[k, 1]
            d = math.sqrt(dx * dx + dy * dy)
            rr = r_rad + obs_r[k]
            if d < rr:
                nx, ny = (dx / d, dy / d) if d > 1e-12 else (1.0, 0.0)
                pose[i, 0] += nx * (rr - d)
                pose[i, 1] += ny * (rr - d)
                n_c = _report(contacts, n_c, i, CONTACT_OBSTACLE, k, obs_pos[k, 0] + nx * obs_r[k],
                              obs_pos[k, 1] + ny * obs_r[k], _speed_against(pose, vel, i, obs_vel, k),
                              obs_vel[k, 0], obs_vel[k, 1])
                vel[i, 0] = 0.0
        for j in range(i + 1, n):
            dx = pose[i, 0] - pose[j, 0]
            dy = pose[i, 1] - pose[j, 1]
            d = math.sqrt(dx * dx + dy * dy)
            if d < 2 * r_rad:
                nx, ny = (dx / d, dy / d) if d > 1e-12 else (1.0, 0.0)
                push = (2 * r_rad - d) / 2
                pose[i, 0] += nx * push
                pose[i, 1] += ny * push
                pose[j, 0] -= nx * push
                pose[j, 1] -= ny * push
                rel = abs(vel[i, 0]) + abs(vel[j, 0])
                for a, b in ((i, j), (j, i)):
                    n_c = _report(contacts, n_c, a, CONTACT_ROBOT, b, (pose[i, 0] + pose[j, 0]) / 2,
                                  (pose[i, 1] + pose[j, 1]) / 2, rel, vel[b, 0] * math.cos(pose[b, 2]),
                                  vel[b, 0] * math.sin(pose[b, 2]))
                vel[i, 0] = 0.0
                vel[j, 0] = 0.0
    # moving obstacles
    for k in range(m):
        if not obs_moving[k]:
            continue
        obs_pos[k, 0] += obs_vel[k, 0] * dt
        obs_pos[k, 1] += obs_vel[k, 1] * dt
        for q in range(walls.shape[0]):
            cx, cy = _seg_closest(obs_pos[k, 0], obs_pos[k, 1], walls[q, 0], walls[q, 1], walls[q, 2], walls[q, 3])
            dx = obs_pos[k, 0] - cx
            dy = obs_pos[k, 1] - cy
            d = math.sqrt(dx * dx + dy * dy)
            if d < obs_r[k] and d > 1e-12:
                _bounce(obs_pos, obs_vel, k, dx / d, dy / d, obs_r[k] - d)
        for q in range(m):
            if q == k:
                continue
            dx = obs_pos[k, 0] - obs_pos[q, 0]
            dy = obs_pos[k, 1] - obs_pos[q, 1]
            d = math.sqrt(dx * dx + dy * dy)
            rr = obs_r[k] + obs_r[q]
            if d < rr and d > 1e-12:
                nx, ny = dx / d, dy / d
                if obs_moving[q]:
                    # equal masses: exchange the normal components of velocity
                    rvn = (obs_vel[k, 0] - obs_vel[q, 0]) * nx + (obs_vel[k, 1] - obs_vel[q, 1]) * ny
                    if rvn < 0:
                        obs_vel[k, 0] -= rvn * nx
                        obs_vel[k, 1] -= rvn * ny
                        obs_vel[q, 0] += rvn * nx
                        obs_vel[q, 1] += rvn * ny
                    obs_pos[k, 0] += nx * (rr - d) / 2
                    obs_pos[k, 1] += ny * (rr - d) / 2
                    obs_pos[q, 0] -= nx * (rr - d) / 2
                    obs_pos[q, 1] -= ny * (rr - d) / 2
                else:
                    _bounce(obs_pos, obs_vel, k, nx, ny, rr - d)
        for i in range(n):
            dx = obs_pos[k, 0] - pose[i, 0]
            dy = obs_pos[k, 1] - pose[i, 1]
            d = math.sqrt(dx * dx + dy * dy)
            rr = obs_r[k] + r_rad
            if d < rr and d > 1e-12:
                # the obstacle ran into the robot: a contact of this step, reported before the
                # bounce reflects its velocity (reported only when the robot next moved into it,
                # the obstacle would seem to recede and the robot to have closed the gap)
                n_c = _report(contacts, n_c, i, CONTACT_OBSTACLE, k, obs_pos[k, 0] - dx / d * obs_r[k],
                              obs_pos[k, 1] - dy / d * obs_r[k], _speed_against(pose, vel, i, obs_vel, k),
                              obs_vel[k, 0], obs_vel[k, 1])
                vel[i, 0] = 0.0       # the bumper stop, as for a contact the robot made
                _bounce(obs_pos, obs_vel, k, dx / d, dy / d, rr - d)
    return n_c
