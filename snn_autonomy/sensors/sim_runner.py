"""Headless run of the built-in world with every robot's event camera on
(`snn-autonomy sim`): how fast the world and its sensors run on this machine."""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional

from ..sim.config import WorldConfig, with_robot_count
from ..sim.wander import WanderDriver
from ..sim.world import World
from ..events.packet import PacketEncoder
from .dvs import DvsConfig
from .world_camera import WorldCamera

CONTROL_PERIOD_US = 20_000  # scripted drivers decide at 50 Hz


def run_headless(cfg: WorldConfig, agents: int, duration_s: float, dvs: Optional[DvsConfig] = None,
                 on_events: Optional[Callable[[int, int, Any], None]] = None,
                 progress: Optional[Callable[[float], None]] = None) -> Dict[str, Any]:
    """Simulate `duration_s` seconds of world time as fast as possible.

    on_events(robot, t_us, batch) receives every camera's events per frame.
    Returns real_time_factor (simulated / wall seconds), events_per_s (all agents,
    per simulated second), events_per_s_per_agent, and counts.
    """
    cfg = with_robot_count(cfg, agents)
    world = World(cfg)
    cams = [WorldCamera(world, i, dvs) for i in range(agents)]
    # every frame's events are encoded as the EVT3 packet a sensor node would publish
    encoders = [PacketEncoder(cfg.camera.width, cfg.camera.height) for _ in range(agents)]
    packet_bytes = 0
    drivers = [WanderDriver(world, i, seed=cfg.seed) for i in range(agents)]
    for cam in cams:  # first frame sets the pixel references (and compiles the kernels)
        cam.capture()
    steps = int(round(duration_s * 1e6 / world.dt_us))
    n_events = [0] * agents
    collisions = 0
    t0 = time.perf_counter()
    next_control = 0
    for s in range(steps):
        if world.time_us >= next_control:
            for i, d in enumerate(drivers):
                world.set_command(i, *d.command())
            next_control = world.time_us + CONTROL_PERIOD_US
        collisions += len(world.step())
        for i, cam in enumerate(cams):
            if cam.frame_due():
                batch = cam.capture()
                n_events[i] += len(batch)
                packet_bytes += encoders[i].encode(batch, world.time_us * 1000).nbytes
                if on_events is not None:
                    on_events(i, world.time_us, batch)
        if progress is not None and s % 500 == 0:
            progress(s / steps)
    wall = time.perf_counter() - t0
    sim_s = steps * world.dt_us / 1e6
    total = sum(n_events)
    return {
        "agents": agents,
        "duration_s": sim_s,
        "wall_s": round(wall, 3),
        "real_time_factor": round(sim_s / wall, 3) if wall > 0 else None,
        "events": total,
        "events_per_s": round(total / sim_s, 1),
        "events_per_s_per_agent": round(total / sim_s / max(agents, 1), 1),
        "camera": f"{cfg.camera.width}x{cfg.camera.height} @ {cfg.camera.frame_rate_hz:g} Hz",
        "evt3_bytes_per_event": round(packet_bytes / max(total, 1), 2),
        "collisions": collisions,
        "distance_m": round(float(world.distance_m.sum()), 2),
    }
