"""Configuration of the fleet coordinator and of a fleet agent (validated by the one config loader).

The allow-list has no silent "allow everything" default: it lists the built-in world's three
robots, `'*'` must be written out to admit any id, and an empty list is an error. The allow-list
filters honest mistakes (a robot of another fleet on the same DDS domain, a typo'd id); it is not
authentication — anyone on the domain can claim any id; use SROS2 (DDS security) for that.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from ..config import ConfigError, spec
from .start_pose import check_start_pose, start_pose_field

DEFAULT_ALLOWED = ["robot_0", "robot_1", "robot_2"]


@dataclass(frozen=True)
class FleetConfig:
    """The coordinator. Liveness: an agent whose last heartbeat is older than `heartbeat_timeout_s`
    is lost; with agents beating every 0.2 s the default 1.0 s tolerates four lost heartbeats and
    still re-plans well inside the 2 s budget (loss is checked every `tick_period_s`)."""

    allowed_agents: List[str] = field(default_factory=lambda: list(DEFAULT_ALLOWED), metadata={
        "help": "agent ids allowed in the fleet (fnmatch patterns; '*' admits any id; empty is an error)"})
    heartbeat_timeout_s: float = spec(1.0, lo=0.05, hi=60.0, help="an agent silent this long is lost", unit="s")
    tick_period_s: float = spec(0.05, lo=0.005, hi=1.0, help="liveness check and planning period", unit="s")
    join_settle_s: float = spec(0.25, lo=0.0, hi=10.0,
                                help="after a join, wait this long for more joins before planning", unit="s")
    replan_period_s: float = spec(10.0, lo=0.0, hi=3600.0,
                                  help="re-optimise this often; published only if it changes (0 = never)",
                                  unit="s")
    region_count: int = spec(0, lo=0, hi=256, help="patrol regions (0 = one per available agent)")
    waypoint_inset_m: float = spec(0.5, lo=0.0, hi=100.0, help="patrol loop inset from the region's edges",
                                   unit="m")
    keep_bonus_m: float = spec(0.5, lo=0.0, hi=1000.0,
                               help="cost bonus for the region an agent already works on (hysteresis)", unit="m")
    required_capabilities: List[str] = field(default_factory=list, metadata={
        "help": "capabilities an agent needs to be assigned a region"})
    min_energy_budget_j: float = spec(0.0, lo=0.0, help="agents with less energy budget left are not assigned "
                                                         "(an unknown budget is accepted)", unit="J")
    arena_margin_m: float = spec(1.0, lo=0.0, hi=1000.0, help="poses farther outside the arena are rejected",
                                 unit="m")
    max_agents: int = spec(64, lo=1, hi=4096, help="agents tracked at once; more are rejected")
    detection_horizon_s: float = spec(1.0, lo=0.01, hi=600.0, help="detections older than this are dropped",
                                      unit="s")
    future_tolerance_s: float = spec(0.5, lo=0.0, hi=60.0,
                                     help="detections stamped further ahead (clock skew) are rejected", unit="s")
    merge_radius_m: float = spec(0.5, lo=0.0, hi=100.0,
                                 help="detections of one label closer than this are one object", unit="m")
    max_detections: int = spec(2000, lo=1, hi=1_000_000, help="detections kept for merging; the oldest go first")
    detections_period_s: float = spec(0.1, lo=0.01, hi=10.0, help="merged detections publishing period", unit="s")
    # per-agent token buckets: a flooding (or babbling) agent cannot starve the others or the planner
    heartbeat_rate_limit_hz: float = spec(20.0, lo=0.1, hi=10000.0,
                                          help="heartbeats accepted per agent per second (4x the nominal 5 Hz); "
                                               "excess rejected as rate_limited", unit="Hz")
    heartbeat_burst: int = spec(8, lo=1, hi=100000, help="heartbeats an agent may send at once above the rate")
    detection_rate_limit_hz: float = spec(200.0, lo=0.1, hi=1_000_000.0,
                                          help="detections accepted per agent per second; excess dropped as "
                                               "rate_limited", unit="Hz")
    detection_burst: int = spec(400, lo=1, hi=1_000_000, help="detections an agent may send at once above the rate")

    def validate(self) -> None:
        if not self.allowed_agents:
            raise ConfigError("allowed_agents: empty, so no agent could ever join; list the agent ids "
                              "(or write '*' to admit any id)")
        if any(not a.strip() for a in self.allowed_agents):
            raise ConfigError(f"allowed_agents: {self.allowed_agents!r} contains an empty id")
        if self.heartbeat_timeout_s <= self.tick_period_s:
            raise ConfigError(f"heartbeat_timeout_s: {self.heartbeat_timeout_s} must exceed tick_period_s "
                              f"({self.tick_period_s})")


@dataclass(frozen=True)
class AgentConfig:
    """One fleet agent (a robot). Its pose is `start_pose` composed with odometry: the odom frame
    starts where the robot started (as the built-in world's `odom` does). Without odometry (none
    received, or `use_odom` false) the pose stays `start_pose`."""

    agent_id: str = spec("", help="id in the fleet ('' = the node's namespace)")
    heartbeat_period_s: float = spec(0.2, lo=0.01, hi=10.0, help="AgentState heartbeat period", unit="s")
    start_pose: List[float] = start_pose_field()
    use_odom: bool = spec(True, help="subscribe to `odom` (nav_msgs/Odometry) for the pose")
    odom_timeout_s: float = spec(1.0, lo=0.01, hi=60.0, help="health is WARN when odometry is older", unit="s")
    capabilities: List[str] = field(default_factory=lambda: ["event_camera"], metadata={
        "help": "what this agent can do, e.g. event_camera, snn_onnxruntime"})
    energy_budget_j: float = spec(-1.0, lo=-1.0, help="energy the agent may still spend (-1 = unknown)", unit="J")
    footprint_radius_m: float = spec(0.18, lo=0.01, hi=10.0, unit="m",
                                     help="the robot's radius (a circle around its body; the built-in robots' "
                                          "0.18 m), in the heartbeats for the other robots to steer around")

    def validate(self) -> None:
        check_start_pose(self.start_pose)
