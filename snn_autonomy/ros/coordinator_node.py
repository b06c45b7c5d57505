"""`coordinator` node: the fleet coordinator on ROS 2 (the logic lives in fleet/coordinator.py).

Subscribes /fleet/agent_state    snn_autonomy_msgs/AgentState heartbeats of the agents
           /fleet/detections_in  snn_autonomy_msgs/SharedDetections, what each agent saw
Publishes  /fleet/plan           snn_autonomy_msgs/FleetPlan, reliable and transient local, so an
                                 agent or tool that starts late gets the current plan at once
           /fleet/detections     SharedDetections merged across agents, every detections_period_s
           /diagnostics          members, plan, every rejection reason counted, loss-to-plan times
Parameters: those of snn_autonomy.fleet.config.FleetConfig (allowed_agents: explicit ids or
patterns; the default admits robot_0..robot_2 of the built-in world), and world_config for the
arena size. Runs on any host of the fleet's DDS domain; run one coordinator per domain.
Liveness and staleness use the node's clock (simulation time when use_sim_time is set). A jump of
that clock by more than `clock_jump_threshold_s` either way (simulator reset or fast-forwarded)
rebases liveness and rate limits on the new time line (Coordinator.on_clock_jump): no re-plan of the
whole fleet, no rejections; counted on /diagnostics as clock_jumps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

from geometry_msgs.msg import Point, Point32
from rclpy.node import Node
from snn_autonomy_msgs.msg import AgentState, Assignment, Detection, FleetPlan, Region, SharedDetections

from ..config import spec
from ..fleet.config import FleetConfig
from ..fleet.coordinator import Coordinator
from ..fleet.detections import Sighting
from ..fleet.plan import Plan
from ..fleet.regions import PatrolRegion
from ..fleet.state import AgentReport
from ..sim.config import load_world_config
from . import qos
from .clock import on_clock_jumps
from .convert import ns_to_stamp, stamp_to_ns
from .diagnostics import OK, WARN, Status, Updater
from .params import declare_params
from .spin import exit_with, spin_node


PLAN_TOPIC = "/fleet/plan"
STATE_TOPIC = "/fleet/agent_state"
DETECTIONS_IN_TOPIC = "/fleet/detections_in"
DETECTIONS_TOPIC = "/fleet/detections"


# ---------------------------------------------------------------- parameters

# ---------------------------------------------------------------- conversions

def _finite_or_nan(*values: float) -> float:
    return values[0] if all(math.isfinite(v) for v in values) else math.nan


def report_from_msg(m: AgentState) -> AgentReport:
    p, q, v = m.pose.position, m.pose.orientation, m.velocity
    return AgentReport(
        agent_id=m.agent_id, seq=int(m.heartbeat_seq), x=_finite_or_nan(p.x, p.z), y=_finite_or_nan(p.y, p.z),
        orientation=(q.x, q.y, q.z, q.w),
        linear_mps=_finite_or_nan(v.linear.x, v.linear.y, v.linear.z),
        angular_rps=_finite_or_nan(v.angular.z, v.angular.x, v.angular.y), health=int(m.health),
        health_message=m.health_message, energy_budget_j=float(m.energy_budget_j),
        energy_used_j=float(m.energy_used_j), capabilities=tuple(m.capabilities),
        assigned_region_id=m.assigned_region_id, stamp_s=stamp_to_ns(m.header.stamp) * 1e-9,
        footprint_radius_m=float(m.footprint_radius_m))


def sighting_from_msg(d: Detection) -> Sighting:
    return Sighting(source_agent_id=d.source_agent_id, label=int(d.label), label_name=d.label_name,
                    confidence=float(d.confidence), x=d.position.x, y=d.position.y, vx=d.velocity.x,
                    vy=d.velocity.y, radius_m=float(d.radius_m), stamp_s=stamp_to_ns(d.header.stamp) * 1e-9)


def sighting_to_msg(s: Sighting) -> Detection:
    d = Detection()
    d.header.stamp = ns_to_stamp(int(round(s.stamp_s * 1e9)))
    d.header.frame_id = "map"
    d.source_agent_id, d.label, d.label_name, d.confidence = s.source_agent_id, s.label, s.label_name, s.confidence
    d.position.x, d.position.y = s.x, s.y
    d.velocity.x, d.velocity.y = s.vx, s.vy
    d.radius_m = s.radius_m
    return d


def region_to_msg(r: PatrolRegion) -> Region:
    m = Region(region_id=r.region_id)
    m.boundary.points = [Point32(x=float(x), y=float(y), z=0.0) for x, y in r.boundary]
    m.waypoints = [Point(x=float(x), y=float(y), z=0.0) for x, y in r.waypoints]
    return m


def plan_to_msg(plan: Plan) -> FleetPlan:
    m = FleetPlan(plan_id=plan.plan_id, reason=plan.reason)
    m.header.stamp = ns_to_stamp(int(round(plan.stamp_s * 1e9)))
    m.header.frame_id = "map"
    m.assignments = [Assignment(agent_id=a.agent_id, region=region_to_msg(a.region), travel_cost_m=a.travel_cost_m)
                     for a in plan.assignments]
    m.unassigned_region_ids = list(plan.unassigned_region_ids)
    m.lost_agent_ids = list(plan.lost_agent_ids)
    return m


def describe(plan: Plan) -> str:
    parts = [f"{a.agent_id}->{a.region.region_id} ({a.travel_cost_m:.1f} m)" for a in plan.assignments]
    text = f"plan {plan.plan_id} ({plan.reason}): {', '.join(parts) or 'no assignments'}"
    if plan.lost_agent_ids:
        text += f"; lost {', '.join(plan.lost_agent_ids)}"
    if plan.unassigned_region_ids:
        text += f"; unassigned {', '.join(plan.unassigned_region_ids)}"
    return text


# ---------------------------------------------------------------- node

@dataclass(frozen=True)
class CoordinatorNodeConfig:
    world_config: str = spec("", help="world YAML whose arena is partitioned ('' = the shipped default world)")
    clock_jump_threshold_s: float = spec(0.5, lo=0.001, hi=86400.0, unit="s",
                                         help="a clock jump larger than this either way rebases liveness on the "
                                              "new time line")


class CoordinatorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("coordinator", **kwargs)
        import scipy.optimize  # noqa: F401  (the planner's solver: loaded at start, not at the first plan)
        node_cfg = declare_params(self, CoordinatorNodeConfig)
        cfg = declare_params(self, FleetConfig)
        arena = load_world_config(node_cfg.world_config or None).arena.size_m
        self.core = Coordinator(cfg, arena)
        self._plan_pub = self.create_publisher(FleetPlan, PLAN_TOPIC, qos.LATCHED)
        self._det_pub = self.create_publisher(SharedDetections, DETECTIONS_TOPIC, qos.COMMAND)
        self.create_subscription(AgentState, STATE_TOPIC, self._on_state, qos.COMMAND)
        self.create_subscription(SharedDetections, DETECTIONS_IN_TOPIC, self._on_detections, qos.COMMAND)
        self.create_timer(cfg.tick_period_s, self._tick)
        self.create_timer(cfg.detections_period_s, self._publish_detections)
        self._last_published_count = 0
        self.last_clock_jump_s = 0.0
        self._jumps = on_clock_jumps(self, node_cfg.clock_jump_threshold_s,
                                     self._on_clock_jump)
        self.diag = Updater(self, hardware_id="fleet_coordinator")
        self.diag.add("fleet", self._diagnose)
        self.get_logger().info(
            f"coordinator: arena {arena[0]:g} x {arena[1]:g} m, allowed agents {', '.join(cfg.allowed_agents)}, "
            f"heartbeat timeout {cfg.heartbeat_timeout_s:g} s")

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_clock_jump(self, now_s: float, delta_s: float) -> None:
        self.last_clock_jump_s = delta_s
        self.core.on_clock_jump(now_s)
        self.get_logger().warning(f"clock jumped {delta_s:+.3f} s to {now_s:.3f} s: liveness rebased "
                                  f"({len(self.core.members)} agents kept)")

    def _on_state(self, msg: AgentState) -> None:
        now = self._now()
        fresh = msg.agent_id not in self.core.members
        why = self.core.on_agent_state(report_from_msg(msg), now)
        if why is not None:
            self.get_logger().warning(f"heartbeat from {msg.agent_id!r} rejected: {why}", throttle_duration_sec=2.0)
        elif fresh:
            self.get_logger().info(f"{msg.agent_id} joined the fleet")

    def _on_detections(self, msg: SharedDetections) -> None:
        now = self._now()
        for d in msg.detections:
            why = self.core.on_sighting(sighting_from_msg(d), now)
            if why is not None and why != "stale":
                self.get_logger().warning(f"detection from {d.source_agent_id!r} dropped: {why}",
                                          throttle_duration_sec=2.0)

    def _tick(self) -> None:
        plan = self.core.tick(self._now())
        if plan is None:
            return
        self._plan_pub.publish(plan_to_msg(plan))
        loss = self.core.last_loss
        if plan.lost_agent_ids and loss is not None:
            self.get_logger().warning(f"lost {', '.join(plan.lost_agent_ids)} (silent {loss.silence_s:.2f} s)")
        self.get_logger().info(describe(plan))

    def _publish_detections(self) -> None:
        merged = self.core.merged_detections(self._now())
        if not merged and not self._last_published_count:
            return
        msg = SharedDetections(detections=[sighting_to_msg(s) for s in merged])
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "map"
        self._det_pub.publish(msg)
        self._last_published_count = len(merged)

    def _diagnose(self, st: Status) -> None:
        s = self.core.stats()
        plan: Optional[Plan] = self.core.plan
        if self.core.members:
            st.summary(OK, f"{len(self.core.members)} agents, plan {plan.plan_id if plan else 'due'}")
        else:
            st.summary(WARN, "no agent is heartbeating")
        if plan is not None and plan.unassigned_region_ids:
            st.merge(WARN, f"{len(plan.unassigned_region_ids)} regions unassigned")
        if s["rejected_total"]:
            reasons = [k[9:] for k, v in s.items() if k.startswith("rejected_") and k != "rejected_total" and v]
            st.merge(WARN, f"{s['rejected_total']} heartbeats rejected ({', '.join(reasons)})")
        if s["detections_dropped_total"] - s["detections_dropped_stale"]:
            st.merge(WARN, "detections dropped (see counters)")
        st.add_all(s)
        st.add("last_clock_jump_s", round(self.last_clock_jump_s, 3))


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(CoordinatorNode, args))


if __name__ == "__main__":
    main()
