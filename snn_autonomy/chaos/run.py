"""`snn-autonomy chaos`: the fault catalogue against a live fleet of the built-in world.

The fleet is the demo's graph in split mode (world, and per robot event_sensor, perception,
control, attention and fleet_agent, plus the coordinator), so that every fault has a process
of its own to hit; perception, the coordinator and the world are respawned by the launcher,
as a robot's supervisor would. The world runs at a quarter of real time: two robots in split
mode are 13 processes, and at half real time they already keep both cores of a 2-core machine
busy before any fault (measured: 1.98 cores), so latencies would be the scheduler's; at a
quarter they use about 1.2 cores and the budgets mean something. Faults run one after another, and
the fleet must be deciding again before the next one starts. The result says per fault
whether it was survived and what was measured, and over the whole run how many commands
were unsafe (non-finite or beyond the velocity limits; none may be). `stress` adds CPU hogs
(`bench.stress.CpuHog`, one pinned per core) for the whole run: a slower machine;
`realtime=False` runs every node at normal priority (a machine whose kernel refuses real-time
scheduling to the user); `measured_caps=False` leaves perception's cost-derived event-rate cap
off (the fixed caps alone), for comparison.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from ..config import ConfigError
from ..bench.stress import CpuHog
from ..launch_plan import LaunchConfig, build_plan
from . import faults as F
from .live import LiveFleet

HOG_CEILING_S = 1800.0    # a CPU hog stops by itself after this, should the run be killed

FAULTS = ("sensor_stall", "perception_killed", "odometry_lost", "event_burst", "agent_link_cut",
          "coordinator_restart", "sim_clock_jump", "hostile_input", "bad_files")


def _plan(agents: int, out: Path, seed: Optional[int], real_time_factor: float, realtime: bool = True,
          measured_caps: bool = True):
    from ..fleet_demo import world_yaml

    cfg = LaunchConfig(robots=agents, mode="split", world_config=str(world_yaml(out, agents, seed)),
                       world_parameters={"real_time_factor": real_time_factor, "wait_for_subscribers": agents},
                       perception_parameters={} if measured_caps else {"admission": {"enabled": False}})
    if not realtime:
        cfg = replace(cfg, realtime_priority={})
    respawned = {"perception", "coordinator", "world"}
    return [replace(n, respawn=True) if n.name in respawned else n for n in build_plan(cfg)]


def run_chaos(agents: int = 2, faults: Sequence[str] = FAULTS, out_dir: Path = Path("runs/chaos"),
              seed: Optional[int] = None, real_time_factor: float = 0.25, stress: int = 0,
              realtime: bool = True, measured_caps: bool = True,
              log: Callable[[str], None] = print) -> Dict[str, Any]:
    unknown = [x for x in faults if x not in FAULTS]
    if unknown:
        raise ConfigError(f"unknown faults {unknown}; the catalogue: {', '.join(FAULTS)}")
    if agents < 2 and {"agent_link_cut", "coordinator_restart"} & set(faults):
        raise ConfigError("agent_link_cut and coordinator_restart need at least 2 agents")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    robots = [f"robot_{i}" for i in range(agents)]
    fleet = LiveFleet(_plan(agents, out, seed, real_time_factor, realtime, measured_caps), robots, out / "logs",
                      wall_per_sim_s=1.0 / real_time_factor)
    fleet.ignore_linear_z = F.HOSTILE_MARK
    victim, peer = robots[0], robots[-1]
    catalogue: Dict[str, Callable[[], Dict[str, Any]]] = {
        "sensor_stall": lambda: F.sensor_stall(fleet, victim),
        "perception_killed": lambda: F.perception_killed(fleet, victim),
        "odometry_lost": lambda: F.odometry_lost(fleet, victim),
        "event_burst": lambda: F.event_burst(fleet, victim),
        "agent_link_cut": lambda: F.agent_link_cut(fleet, peer),
        "coordinator_restart": lambda: F.coordinator_restart(fleet),
        "sim_clock_jump": lambda: F.sim_clock_jump(fleet),
        "hostile_input": lambda: F.hostile_input(fleet, victim),
        "bad_files": lambda: F.bad_files(fleet, out / "bad_files"),
    }
    results: Dict[str, Any] = {}
    t_start = time.monotonic()
    hog = CpuHog(stress, seconds=HOG_CEILING_S).start()
    if stress:
        log(f"CPU load: {hog.describe()}")
    try:
        up = fleet.start(lambda: all(len(fleet.decisions[r]) > 20 for r in robots)
                         and any(len(m.assignments) == agents for _, m in fleet.plans))
        log(f"fleet of {agents} up in {up:.1f} s; logs in {out / 'logs'}")
        for name in faults:
            if not F.settle(fleet):
                results[name] = {"survived": False, "what_happened": "the fleet was not deciding before the fault"}
                log(f"{name}: not run, the fleet was not deciding")
                continue
            t0 = time.monotonic()
            try:
                results[name] = catalogue[name]()
            except Exception as exc:   # a fault that could not be run is a failure to report, not a crash
                results[name] = {"survived": False, "what_happened": f"{type(exc).__name__}: {exc}"}
            results[name]["seconds"] = round(time.monotonic() - t0, 1)
            log(f"{name}: {'survived' if results[name]['survived'] else 'NOT SURVIVED'} - "
                f"{results[name]['what_happened']}")
    finally:
        unsafe = F.unsafe_commands(fleet)
        summary = fleet.stop()
        hog.stop()
    return {"agents": agents, "faults": results, "unsafe_commands": unsafe,
            "all_survived": bool(results) and all(r["survived"] for r in results.values()) and unsafe == 0,
            "seconds": round(time.monotonic() - t_start, 1), "cpu_load": hog.describe(), "realtime": realtime,
            "measured_caps": measured_caps, "launcher": summary}
