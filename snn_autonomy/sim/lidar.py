"""The built-in world's 2D laser scanner (`LidarConfig`): what a robot's LiDAR would report.

Ranges follow sensor_msgs/LaserScan and REP 117: beams run counter-clockwise from
`angle_min` (REP 103), a beam that meets nothing within range_max reads +inf, one that meets
something nearer than range_min reads -inf. The scan is ground truth plus Gaussian range noise;
it is what `snn-autonomy dataset --bag` labels the event stream with, so the simulator's own
labels (`perception.labels`) can check those labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import LidarConfig
from .ground_truth import HIT_NONE, cast_rays
from .world import World


@dataclass(frozen=True)
class LidarScan:
    angle_min: float          # rad, in the scanner's frame (x forward, y left)
    angle_increment: float    # rad, counter-clockwise
    ranges: np.ndarray        # (rays,) float32 metres, +-inf as REP 117
    range_min: float
    range_max: float
    scan_time: float          # s between scans

    def angles(self) -> np.ndarray:
        return self.angle_min + self.angle_increment * np.arange(len(self.ranges))


def lidar_angles(cfg: LidarConfig) -> np.ndarray:
    """Beam angles [rad] relative to the heading, counter-clockwise; a full circle does not
    repeat its first beam."""
    fov = math.radians(cfg.fov_deg)
    full = cfg.fov_deg >= 360.0
    step = fov / cfg.rays if full else fov / max(cfg.rays - 1, 1)
    return -fov / 2 + step * np.arange(cfg.rays)


def lidar_pose(world: World, robot: int, cfg: LidarConfig) -> tuple:
    """The scanner's position and heading in the map frame."""
    x, y, yaw = world.pose[robot]
    mx, my = cfg.mount_xy_m
    c, s = math.cos(yaw), math.sin(yaw)
    return x + c * mx - s * my, y + s * mx + c * my, yaw


def lidar_scan(world: World, robot: int, rng: np.random.Generator, cfg: LidarConfig | None = None) -> LidarScan:
    """One scan of `robot`'s scanner at the world's present state."""
    cfg = cfg or world.cfg.lidar
    rel = lidar_angles(cfg)
    x, y, yaw = lidar_pose(world, robot, cfg)
    # a beam is cast a little beyond range_max so that noise can carry a return across it
    dist, kind, _ = cast_rays(world, robot, x, y, yaw, rel, cfg.range_max_m * 1.05, min_height=cfg.mount_height_m)
    hit = kind != HIT_NONE
    r = dist + rng.normal(0.0, cfg.noise_std_m, len(dist)) if cfg.noise_std_m > 0 else dist.copy()
    r = np.where(~hit | (r > cfg.range_max_m), np.inf, r)
    r = np.where(hit & (r < cfg.range_min_m), -np.inf, r)
    step = float(rel[1] - rel[0]) if len(rel) > 1 else 0.0
    return LidarScan(float(rel[0]), step, r.astype(np.float32), cfg.range_min_m, cfg.range_max_m, 1.0 / cfg.rate_hz)
