"""Recordings of the built-in world as a robot would make them: rosbag2 (MCAP) bags with each
robot's EventPackets (EVT3, one per camera frame), LaserScans and wheel odometry, written straight
from the simulation (no DDS, faster than real time) along the same wandering drives, layouts and
seeds as the simulator-labelled dataset (`dataset.drive_seed`).

They hold no label and no ground truth unless asked (`with_state`: /world/state every
`state_period_ms`, for `bag_truth`), so a model trained on them (`snn-autonomy train --bag`)
learns from LiDAR labels alone: the benchmark of training on recordings, measured against the
simulator-labelled model on the same test split.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np
import yaml

from ..config import to_dict
from ..events.bag import McapBagWriter, packet_to_dict
from ..events.packet import EVENT_PACKET_TYPE, PacketEncoder
from ..sim.lidar import lidar_scan
from ..sim.world import World, pose_in_start_frame
from .bag_dataset import ODOM_TYPE, SCAN_TYPE
from .dataset import DatasetSpec, drive_seed

ODOM_PERIOD_US = 20_000          # wheel odometry at 50 Hz, as the world node publishes it
STATE_TYPE = "snn_autonomy_msgs/msg/WorldState"
WORLD_FILE = "world.yaml"      # the recorded layout, beside the bag's metadata.yaml


def _header(t_ns: int, frame_id: str) -> dict:
    return {"stamp": {"sec": t_ns // 1_000_000_000, "nanosec": t_ns % 1_000_000_000}, "frame_id": frame_id}


def scan_to_dict(t_ns: int, frame_id: str, scan) -> dict:
    """sensor_msgs/LaserScan of a `sim.lidar.LidarScan`, as the MCAP writer takes it."""
    n = len(scan.ranges)
    return {"header": _header(t_ns, frame_id), "angle_min": scan.angle_min,
            "angle_max": scan.angle_min + scan.angle_increment * (n - 1), "angle_increment": scan.angle_increment,
            "time_increment": 0.0, "scan_time": scan.scan_time, "range_min": scan.range_min,
            "range_max": scan.range_max, "ranges": [float(r) for r in scan.ranges], "intensities": []}


def odom_to_dict(t_ns: int, frame_id: str, child: str, x: float, y: float, yaw: float, v: float, w: float) -> dict:
    """nav_msgs/Odometry (pose in `frame_id`, twist in `child`), as the MCAP writer takes it."""
    zero3 = {"x": 0.0, "y": 0.0, "z": 0.0}
    return {"header": _header(t_ns, frame_id), "child_frame_id": child,
            "pose": {"pose": {"position": {"x": x, "y": y, "z": 0.0},
                              "orientation": {"x": 0.0, "y": 0.0, "z": math.sin(yaw / 2), "w": math.cos(yaw / 2)}},
                     "covariance": [0.0] * 36},
            "twist": {"twist": {"linear": {**zero3, "x": v}, "angular": {**zero3, "z": w}}, "covariance": [0.0] * 36}}


def _state_to_dict(t_ns: int, world: World) -> dict:
    robots, obstacles = world.packed_state()
    return {"header": _header(t_ns, "map"), "step": int(world.step_count), "config_sha256": world.sha256,
            "robot_ids": list(world.robot_ids), "robot_states": robots.tolist(), "obstacle_states": obstacles.tolist(),
            "robot_collisions": [int(c) for c in world.collisions]}


def write_world_bag(out: Path, ds: DatasetSpec, seed: int, with_state: bool = False, state_period_ms: float = 100.0,
                    progress: Optional[Callable[[float], None]] = None) -> Dict[str, int]:
    """Record seed `seed` of `ds` (its world, robots and duration) into a new bag at `out`;
    returns the messages written per topic."""
    if with_state:
        from ..events.bag import ensure_type

        ensure_type(STATE_TYPE)
    counts: Dict[str, int] = {}
    encoders, start, rng, world = None, None, np.random.default_rng(seed * 7919 + 17), None
    next_scan = next_odom = next_state = 0
    with McapBagWriter(Path(out), qos_sensor_data_topics=[]) as bag:
        def put(topic: str, msgtype: str, message: dict, t_ns: int) -> None:
            bag.write(topic, msgtype, message, t_ns)
            counts[topic] = counts.get(topic, 0) + 1

        for world, batches in drive_seed(ds, seed):
            t_us = world.time_us
            t_ns = t_us * 1000
            ids = world.robot_ids
            if encoders is None:
                cam = world.cfg.camera
                encoders = [PacketEncoder(cam.width, cam.height, f"{rid}/camera") for rid in ids]
                start = world.pose.copy()
            for i, b in enumerate(batches):
                if b is not None:     # one packet per camera frame, stamped at its end (as event_sensor does)
                    put(f"/{ids[i]}/events", EVENT_PACKET_TYPE, packet_to_dict(encoders[i].encode(b, t_ns)), t_ns)
            if t_us >= next_scan:
                for i, rid in enumerate(ids):
                    put(f"/{rid}/scan", SCAN_TYPE, scan_to_dict(t_ns, f"{rid}/laser", lidar_scan(world, i, rng)), t_ns)
                next_scan = t_us + int(1e6 / world.cfg.lidar.rate_hz)
            if t_us >= next_odom:
                for i, rid in enumerate(ids):
                    put(f"/{rid}/odom", ODOM_TYPE, odom_to_dict(
                        t_ns, f"{rid}/odom", f"{rid}/base_link", *pose_in_start_frame(world.pose[i], start[i]),
                        float(world.vel[i, 0]), float(world.vel[i, 1])), t_ns)
                next_odom = t_us + ODOM_PERIOD_US
            if with_state and t_us >= next_state:
                put("/world/state", STATE_TYPE, _state_to_dict(t_ns, world), t_ns)
                next_state = t_us + int(state_period_ms * 1000)
            if progress and world.step_count % 1000 == 0:
                progress(t_us * 1e-6 / ds.duration_s)
    # the layout beside the recording (rosbag2 reads only the files metadata.yaml lists), so that
    # `dataset --bag ... --truth` can rebuild the world the state messages describe
    if world is not None:
        (Path(out) / WORLD_FILE).write_text(yaml.safe_dump({"world": to_dict(world.cfg)}, sort_keys=False))
    return counts
