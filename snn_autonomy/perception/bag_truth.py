"""How far LiDAR labels of a built-in-world recording agree with the simulator's own.

A bag of the built-in world that also holds `/world/state` (the world node's ground truth)
lets `dataset --bag ... --truth` put each sample's LiDAR labels beside the labels
`perception.dataset` would have given the same instant: per sector the nearest range
from the camera along its ground-truth rays (`sectors.sector_scan`), graded into the model's
range classes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np

from ..events.bag import read_messages, stamp_ns
from ..sim.config import WorldConfig, load_world_config, with_robot_count
from ..sim.ground_truth import range_scan
from ..sim.world import World
from .dataset import Dataset
from .errors import RecordingError
from .labels import LabelConfig, label_from_scan, sector_minima
from .sectors import SectorSpec, sector_scan

STATE_TOPIC = "/world/state"
MAX_STATE_SKEW_US = 1_000       # the world publishes its state every 1 ms step


def simulator_agreement(path: Path, data: Dataset, robot_id: str, spec: SectorSpec, label: LabelConfig,
                        world: Optional[WorldConfig] = None) -> Dict[str, float]:
    """Agreement of `data`'s labels (from the bag at `path`) with the simulator's at the same stamps."""
    cfg = world or load_world_config()
    world_, robot = None, -1
    times = data.meta[:, 2].astype(np.int64)            # sample stamps, us
    order = np.argsort(times)
    truth = np.full(data.sector_m.shape, np.nan)
    approaching = np.zeros(len(data), dtype=bool)
    k, found = 0, 0
    for _, _, _, msg in read_messages(path, [STATE_TOPIC]):
        t_us = stamp_ns(msg.header.stamp) // 1000
        while k < len(order) and times[order[k]] < t_us - MAX_STATE_SKEW_US:
            k += 1                                       # no state near this sample (lost in recording)
        if k == len(order):
            break
        if abs(times[order[k]] - t_us) > MAX_STATE_SKEW_US:
            continue
        if world_ is None:    # as many robots as the recorded world had
            world_ = World(with_robot_count(cfg, len(msg.robot_ids)))
            if robot_id not in world_.robot_ids:
                raise RecordingError(f"{path}: {robot_id!r} is not a robot of the recorded world "
                                     f"({', '.join(msg.robot_ids)})")
            robot = world_.robot_ids.index(robot_id)
        try:
            world_.set_packed_state(t_us, msg.config_sha256, msg.robot_states, msg.obstacle_states)
        except ValueError as exc:
            raise RecordingError(f"{path}: {exc}") from exc
        sector_m = sector_minima(sector_scan(world_, robot, spec.count), spec.count)
        closing = label_from_scan(range_scan(world_, robot, n_rays=label.rays), label).approaching
        while k < len(order) and abs(times[order[k]] - t_us) <= MAX_STATE_SKEW_US:
            truth[order[k]] = sector_m
            approaching[order[k]] = closing
            found += 1
            k += 1
    if found == 0:
        raise RecordingError(f"{path}: no {STATE_TOPIC} message within {MAX_STATE_SKEW_US} us of a sample "
                         f"(record {STATE_TOPIC} of the built-in world to check labels against it)")
    have = ~np.isnan(truth).any(1)
    lidar, sim = spec.grade(data.sector_m[have]), spec.grade(truth[have])
    both = np.isfinite(data.sector_m[have]) & np.isfinite(truth[have])
    err = np.abs(data.sector_m[have][both] - truth[have][both])
    return {"samples": int(have.sum()), "sectors": int(lidar.size),
            "class_agreement": float((lidar == sim).mean()),
            "within_one_class": float((np.abs(lidar - sim) <= 1).mean()),
            "range_error_median_m": float(np.median(err)) if err.size else float("nan"),
            "range_error_p95_m": float(np.quantile(err, 0.95)) if err.size else float("nan"),
            "approaching_agreement": float((data.approaching[have].astype(bool) == approaching[have]).mean())}
