"""`snn-autonomy bench emulator`: DVS emulator throughput (events per wall second, one core).

Frames come from the built-in world seen by a robot panning at 2 rad/s while
driving at 0.6 m/s (textured walls and floor sweep across the view), rendered
at 1 kHz, at the default 128x96 and at VGA 640x480. Only emulator time counts.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Dict

from ..sensors.dvs import DvsEmulator
from ..sim.config import load_world_config
from ..sim.world import World

BUDGET_MEV_S = 10.0


def _frames(width: int, height: int, n: int):
    cfg = load_world_config()
    cfg = replace(cfg, camera=replace(cfg.camera, width=width, height=height))
    world = World(cfg)
    world.vel[0] = (0.6, 2.0)
    world.set_command(0, 0.6, 2.0)
    frames = []
    for _ in range(n):
        world.step()
        frames.append(world.render(0).copy())
    return frames


def run_emulator_bench(frames_small: int = 1000, frames_vga: int = 120) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for name, (w, h, n) in {"128x96": (128, 96, frames_small), "640x480": (640, 480, frames_vga)}.items():
        frames = _frames(w, h, n)
        em = DvsEmulator(w, h)
        em.feed(frames[0], 0)
        em.feed(frames[1], 1000)  # compiles the kernels
        events = 0
        t0 = time.perf_counter()
        for i, f in enumerate(frames[2:], start=2):
            events += len(em.feed(f, i * 1000))
        secs = time.perf_counter() - t0
        out[name] = {"mev_s": round(events / secs / 1e6, 2), "events_per_frame": round(events / (n - 2), 1),
                     "us_per_frame": round(secs / (n - 2) * 1e6, 1)}
    out["emulator_mev_s"] = min(v["mev_s"] for v in out.values() if isinstance(v, dict))
    out["budget"] = {"emulator_mev_s_min": BUDGET_MEV_S, "met": out["emulator_mev_s"] >= BUDGET_MEV_S}
    return out
