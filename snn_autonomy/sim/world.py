"""The built-in world: arena, robots, moving obstacles, collisions and cameras.

Deterministic for a configuration (including its seed): the same commands give
the same trajectories, frames and events. Time is integer microseconds from 0.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Set, Tuple

import numpy as np

from ..config import ConfigError, to_dict
from .config import WallConfig, WorldConfig, with_robot_count
from .physics import CONTACT_COLUMNS, CONTACT_OBSTACLE, CONTACT_ROBOT, CONTACT_WALL, physics_step
from .render import render_view
from .textures import texture_table

CONTACT_KINDS = {CONTACT_WALL: "wall", CONTACT_OBSTACLE: "obstacle", CONTACT_ROBOT: "robot"}


@dataclass(frozen=True)
class Collision:
    """A new contact of a robot (reported once, when the contact begins)."""

    time_us: int
    robot: int
    kind: str          # "wall", "obstacle" or "robot"
    other: int         # wall, obstacle or robot index
    x: float
    y: float
    relative_speed: float
    other_vx: float = 0.0    # the other's velocity when the contact began [m/s], map frame (0 for a wall)
    other_vy: float = 0.0


ROBOT_STRIDE, OBSTACLE_STRIDE = 5, 4   # numbers per robot and per obstacle in a packed state (WorldState.msg)


def pose_in_start_frame(pose, start) -> Tuple[float, float, float]:
    """(x, y, yaw) of a map-frame pose in the frame of a start pose: a robot's odom frame, which
    begins where the robot began (REP 105)."""
    (x, y, yaw), (x0, y0, yaw0) = pose, start
    c, s = math.cos(-yaw0), math.sin(-yaw0)
    return c * (x - x0) - s * (y - y0), s * (x - x0) + c * (y - y0), yaw - yaw0


def config_sha256(cfg: WorldConfig) -> str:
    """Hash of the resolved configuration without the robot count (equal worlds hash equally,
    whatever the file; robots are placed after the obstacles, so their number changes nothing else)."""
    static = to_dict(with_robot_count(cfg, 0))
    return hashlib.sha256(json.dumps(static, sort_keys=True).encode()).hexdigest()


def wall_faces(wc: WallConfig) -> List[Tuple[Tuple[float, float], Tuple[float, float]]]:
    """The faces of an inner wall: its segment for a wall of no thickness, else the four sides
    of the box `thickness_m` thick around it."""
    (x0, y0), (x1, y1) = wc.start, wc.end
    length = math.hypot(x1 - x0, y1 - y0)
    if wc.thickness_m <= 0.0 or length == 0.0:
        return [((x0, y0), (x1, y1))]
    h = wc.thickness_m / 2
    nx, ny = -(y1 - y0) / length * h, (x1 - x0) / length * h
    a, b, c, d = (x0 + nx, y0 + ny), (x1 + nx, y1 + ny), (x1 - nx, y1 - ny), (x0 - nx, y0 - ny)
    return [(a, b), (b, c), (c, d), (d, a)]


class World:
    def __init__(self, cfg: WorldConfig) -> None:
        self.cfg = cfg
        self.sha256 = config_sha256(cfg)
        rng = np.random.default_rng(cfg.seed)
        self.textures, tex_names = texture_table(cfg.textures)
        self._tex = {name: i for i, name in enumerate(tex_names)}
        w, h = cfg.arena.size_m
        a = cfg.arena
        boundary = [((0.0, 0.0), (w, 0.0)), ((w, 0.0), (w, h)), ((w, h), (0.0, h)), ((0.0, h), (0.0, 0.0))]
        walls = [(s, e, a.wall_height_m, a.wall_texture) for s, e in boundary]
        owner = list(range(len(boundary)))
        for k, wc in enumerate(a.walls):
            faces = wall_faces(wc)
            walls += [(s, e, wc.height_m, wc.texture) for s, e in faces]
            owner += [len(boundary) + k] * len(faces)
        self.walls = np.array([[s[0], s[1], e[0], e[1]] for s, e, _, _ in walls], dtype=np.float64)
        self.wall_owner = np.array(owner, dtype=np.int64)   # the wall (boundary 0-3, then inner) of each face
        self.wall_h = np.array([hh for _, _, hh, _ in walls], dtype=np.float64)
        self.wall_tex = np.array([self._tex[t] for _, _, _, t in walls], dtype=np.int64)

        obstacles: List[Tuple[float, float, float, float, str, bool]] = []  # x, y, r, h, tex, moving
        for o in a.static_obstacles:
            obstacles.append((o.position[0], o.position[1], o.radius_m, o.height_m, o.texture, False))
        placed: List[Tuple[float, float, float]] = [(x, y, r) for x, y, r, *_ in obstacles]
        for _ in range(a.random_static_obstacles):
            r = rng.uniform(*a.random_static_radius_m)
            x, y = self._free_spot(rng, r, placed, margin=0.6)
            placed.append((x, y, r))
            obstacles.append((x, y, r, a.wall_height_m * 0.6, "obstacle", False))
        mo = a.moving_obstacles
        speeds = []
        for k in range(mo.count):
            r = rng.uniform(*mo.radius_m)
            x, y = self._free_spot(rng, r, placed, margin=0.3)
            placed.append((x, y, r))
            obstacles.append((x, y, r, rng.uniform(*mo.height_m), mo.textures[k % len(mo.textures)], True))
            speed, heading = rng.uniform(*mo.speed_mps), rng.uniform(-math.pi, math.pi)
            speeds.append((speed * math.cos(heading), speed * math.sin(heading)))
        self.obs_pos = np.array([[o[0], o[1]] for o in obstacles], dtype=np.float64).reshape(-1, 2)
        self.obs_r = np.array([o[2] for o in obstacles], dtype=np.float64)
        self.obs_h = np.array([o[3] for o in obstacles], dtype=np.float64)
        self.obs_tex = np.array([self._tex[o[4]] for o in obstacles], dtype=np.int64)
        self.obs_moving = np.array([o[5] for o in obstacles], dtype=np.bool_)
        self.obs_vel = np.zeros_like(self.obs_pos)
        self.obs_vel[self.obs_moving] = np.array(speeds, dtype=np.float64).reshape(-1, 2)

        r = cfg.robots
        self.robot_ids = [f"{r.id_prefix}{i}" for i in range(r.count)]
        self.pose = np.zeros((r.count, 3), dtype=np.float64)
        for i in range(r.count):
            if i < len(r.start_poses):
                self.pose[i] = r.start_poses[i]
            else:
                x, y = self._free_spot(rng, r.radius_m, placed, margin=0.5)
                self.pose[i] = (x, y, rng.uniform(-math.pi, math.pi))
            placed.append((self.pose[i, 0], self.pose[i, 1], r.radius_m))
        self.vel = np.zeros((r.count, 2), dtype=np.float64)
        self.cmd = np.zeros((r.count, 2), dtype=np.float64)
        self.limits = np.array([r.max_linear_mps, r.max_angular_rps, r.max_linear_accel, r.max_angular_accel])
        self.collisions = np.zeros(r.count, dtype=np.int64)
        self.distance_m = np.zeros(r.count, dtype=np.float64)
        self.rejected_commands = 0
        self._contacts: Set[Tuple[int, int, int]] = set()
        self._contact_buf = np.zeros((4 * (r.count + 1) * (len(self.walls) + len(obstacles) + r.count),
                                      CONTACT_COLUMNS))
        self.time_us = 0
        self.step_count = 0
        self.dt_us = int(round(cfg.physics_dt_s * 1e6))
        self._robot_tex = self._tex[r.texture]
        self._floor_tex = self._tex[cfg.camera.floor_texture]

    # ------------------------------------------------------------------ set-up
    def _free_spot(self, rng: np.random.Generator, r: float, placed, margin: float) -> Tuple[float, float]:
        w, h = self.cfg.arena.size_m
        for _ in range(10_000):
            x = rng.uniform(r + margin, w - r - margin) if w > 2 * (r + margin) else w / 2
            y = rng.uniform(r + margin, h - r - margin) if h > 2 * (r + margin) else h / 2
            if all((x - px) ** 2 + (y - py) ** 2 >= (r + pr + margin) ** 2 for px, py, pr in placed) \
                    and self._clear_of_walls(x, y, r + margin):
                return x, y
        raise ConfigError("arena too crowded: no free place for another object (fewer obstacles or a larger arena)")

    def _clear_of_walls(self, x: float, y: float, clearance: float) -> bool:
        for x0, y0, x1, y1 in self.walls[4:]:
            ex, ey = x1 - x0, y1 - y0
            ll = ex * ex + ey * ey
            s = 0.0 if ll == 0 else min(1.0, max(0.0, ((x - x0) * ex + (y - y0) * ey) / ll))
            if (x - x0 - s * ex) ** 2 + (y - y0 - s * ey) ** 2 < clearance ** 2:
                return False
        return True

    # ------------------------------------------------------------------ control
    def set_command(self, robot: int, linear: float, angular: float) -> bool:
        """Command robot velocities (m/s, rad/s); clamped to limits. Non-finite values are
        rejected (counted in `rejected_commands`) and the robot is commanded to stop."""
        if not (math.isfinite(linear) and math.isfinite(angular)):
            self.rejected_commands += 1
            self.cmd[robot] = (0.0, 0.0)
            return False
        self.cmd[robot] = (min(max(linear, -self.limits[0]), self.limits[0]),
                           min(max(angular, -self.limits[1]), self.limits[1]))
        return True

    def step(self) -> List[Collision]:
        """Advance one physics step; returns the collisions that began in it."""
        before = self.pose[:, :2].copy()
        n = physics_step(self.cfg.physics_dt_s, self.pose, self.vel, self.cmd, self.cfg.robots.radius_m,
                         self.limits, self.walls, self.obs_pos, self.obs_vel, self.obs_r, self.obs_moving,
                         self._contact_buf)
        self.time_us += self.dt_us
        self.step_count += 1
        self.distance_m += np.hypot(*(self.pose[:, :2] - before).T)
        current = set()
        new: List[Collision] = []
        for row in self._contact_buf[:n]:
            kind, other = int(row[1]), int(row[2])
            # a thick wall's faces are one wall: a robot held off a corner by one face in one step
            # and by the other in the next is still in the same contact
            key = (int(row[0]), kind, int(self.wall_owner[other]) if kind == CONTACT_WALL else other)
            if key in current:       # reported twice this step: robot and obstacle, or two faces of a wall
                continue
            current.add(key)
            if key not in self._contacts:
                self.collisions[key[0]] += 1
                new.append(Collision(self.time_us, key[0], CONTACT_KINDS[key[1]], key[2],
                                     *(float(v) for v in row[3:CONTACT_COLUMNS])))
        self._contacts = current
        return new

    # ------------------------------------------------------------------ sensing
    def cylinders(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All cylinders a camera sees: obstacles then robots, as (m, 3) x, y, r; heights; textures."""
        r = self.cfg.robots
        cyl = np.concatenate([np.column_stack([self.obs_pos, self.obs_r]),
                              np.column_stack([self.pose[:, :2], np.full(len(self.pose), r.radius_m)])])
        heights = np.concatenate([self.obs_h, np.full(len(self.pose), r.height_m)])
        tex = np.concatenate([self.obs_tex, np.full(len(self.pose), self._robot_tex, dtype=np.int64)])
        return cyl, heights, tex

    def camera_pose(self, robot: int) -> Tuple[float, float, float]:
        """Camera position (at the front of the robot body) and heading."""
        x, y, yaw = self.pose[robot]
        fwd = self.cfg.robots.radius_m * 0.9
        return x + fwd * math.cos(yaw), y + fwd * math.sin(yaw), yaw

    def render(self, robot: int, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The robot's camera image, (height, width) float32 linear intensity in (0, 1]."""
        c = self.cfg.camera
        if out is None:
            out = np.empty((c.height, c.width), dtype=np.float32)
        cyl, heights, tex = self.cylinders()
        x, y, yaw = self.camera_pose(robot)
        render_view(x, y, yaw, c.width, c.height, math.radians(c.hfov_deg),
                    math.radians(c.vfov_deg) if c.projection == "cylindrical" else 0.0, c.mount_height_m, c.max_range_m,
                    c.sky_intensity, self._floor_tex, self.walls, self.wall_h, self.wall_tex, cyl, heights, tex,
                    len(self.obs_pos) + robot, self.textures, out)
        return out

    # ------------------------------------------------------------------ state exchange
    def dynamic_state(self) -> Dict[str, np.ndarray]:
        """What changes over time (what WorldState messages carry)."""
        return {"time_us": np.int64(self.time_us), "pose": self.pose.copy(), "vel": self.vel.copy(),
                "obs_pos": self.obs_pos.copy(), "obs_vel": self.obs_vel.copy(),
                "collisions": self.collisions.copy()}

    def packed_state(self) -> Tuple[np.ndarray, np.ndarray]:
        """(robot_states, obstacle_states) as snn_autonomy_msgs/WorldState packs them (set_packed_state)."""
        return (np.concatenate([self.pose, self.vel], axis=1).ravel(),
                np.concatenate([self.obs_pos, self.obs_vel], axis=1).ravel())

    def set_packed_state(self, time_us: int, config_sha256: str, robot_states, obstacle_states) -> None:
        """Adopt a state packed as snn_autonomy_msgs/WorldState carries it (rows of x, y, yaw, v, w
        per robot and x, y, vx, vy per obstacle, flat). Raises ValueError when it is not this world's."""
        if config_sha256 != self.sha256:
            raise ValueError(f"world state is of configuration {config_sha256[:12]}, this world is "
                             f"{self.sha256[:12]}: both must use the same world file")
        n_robots, n_obs = len(self.pose), len(self.obs_pos)
        if len(robot_states) != n_robots * ROBOT_STRIDE or len(obstacle_states) != n_obs * OBSTACLE_STRIDE:
            raise ValueError(f"world state has {len(robot_states)} robot and {len(obstacle_states)} obstacle "
                             f"numbers, this world needs {n_robots} x {ROBOT_STRIDE} and {n_obs} x {OBSTACLE_STRIDE}")
        robots = np.frombuffer(robot_states, dtype=np.float64).reshape(n_robots, ROBOT_STRIDE)
        obs = np.frombuffer(obstacle_states, dtype=np.float64).reshape(n_obs, OBSTACLE_STRIDE)
        if not (np.isfinite(robots).all() and np.isfinite(obs).all()):
            raise ValueError("world state holds non-finite numbers")
        self.set_dynamic_state(time_us, robots[:, :3], obs[:, :2], robots[:, 3:], obs[:, 2:])

    def set_dynamic_state(self, time_us: int, pose: np.ndarray, obs_pos: np.ndarray,
                          vel: Optional[np.ndarray] = None, obs_vel: Optional[np.ndarray] = None) -> None:
        """Adopt another instance's state (a sensor rendering from the world node's state)."""
        if pose.shape != self.pose.shape or obs_pos.shape != self.obs_pos.shape:
            raise ValueError(f"state shape mismatch: {pose.shape}/{obs_pos.shape} vs "
                             f"{self.pose.shape}/{self.obs_pos.shape}; is it the same world?")
        self.time_us = int(time_us)
        self.pose[:] = pose
        self.obs_pos[:] = obs_pos
        if vel is not None:
            self.vel[:] = vel
        if obs_vel is not None:
            self.obs_vel[:] = obs_vel
