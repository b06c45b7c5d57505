"""`fleet_agent` node: one robot's membership in the fleet (the logic lives in fleet/agent.py).

Run one per robot in its namespace (`-r __ns:=/robot_0`); the agent id defaults to the namespace.
Subscribes odom               nav_msgs/Odometry in an odom frame whose origin is the robot's start
                              pose, as the built-in world publishes /robot_i/odom
           /fleet/plan        snn_autonomy_msgs/FleetPlan (transient local: the current plan at start)
           perception         snn_autonomy_msgs/Perception: confident obstacle decisions become
                              coarse map-frame sightings for the fleet (fleet.agent.sighting_from_decision)
Publishes  /fleet/agent_state snn_autonomy_msgs/AgentState heartbeats every heartbeat_period_s
           /fleet/detections_in snn_autonomy_msgs/SharedDetections, at most every share_period_s
           assignment         snn_autonomy_msgs/Assignment, this robot's share of the newest plan,
                              transient local; an empty region_id when the plan leaves it out
           /diagnostics
Pose in the heartbeats: start_pose (parameter; [] = the robot's start in the world config)
composed with odometry; without odometry (none published, or use_odom false) it stays the
start pose and, with use_odom, health is WARN. Stopping the process stops the heartbeats: the
coordinator then declares the agent lost after its heartbeat timeout.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

from geometry_msgs.msg import Point, Pose, Quaternion, Twist, Vector3
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.serialization import deserialize_message
from snn_autonomy_msgs.msg import AgentState, Assignment, FleetPlan, Perception, SharedDetections

from ..config import spec
from ..fleet import plan as core
from ..fleet.agent import FleetAgent, sighting_from_decision
from ..fleet.config import AgentConfig
from ..fleet.regions import PatrolRegion
from ..fleet.start_pose import start_pose_of
from ..fleet.state import AgentReport
from . import qos
from .convert import ns_to_stamp, quat_yaw, stamp_to_ns
from ..sim.config import load_world_config
from .coordinator_node import DETECTIONS_IN_TOPIC, PLAN_TOPIC, STATE_TOPIC, sighting_to_msg
from .diagnostics import OK, WARN, Status, Updater
from .params import declare_params
from .spin import exit_with, spin_node


def report_to_msg(r: AgentReport) -> AgentState:
    m = AgentState(agent_id=r.agent_id, heartbeat_seq=r.seq, health=r.health, health_message=r.health_message,
                   energy_budget_j=r.energy_budget_j, energy_used_j=r.energy_used_j,
                   capabilities=list(r.capabilities), assigned_region_id=r.assigned_region_id,
                   footprint_radius_m=r.footprint_radius_m)
    m.header.stamp = ns_to_stamp(int(round(r.stamp_s * 1e9)))
    m.header.frame_id = "map"
    qx, qy, qz, qw = r.orientation
    m.pose = Pose(position=Point(x=r.x, y=r.y, z=0.0), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))
    m.velocity = Twist(linear=Vector3(x=r.linear_mps, y=0.0, z=0.0), angular=Vector3(x=0.0, y=0.0, z=r.angular_rps))
    return m


def plan_from_msg(m: FleetPlan) -> core.Plan:
    assignments = tuple(
        core.Assignment(a.agent_id, PatrolRegion(a.region.region_id,
                                                 tuple((p.x, p.y) for p in a.region.boundary.points),
                                                 tuple((p.x, p.y) for p in a.region.waypoints)),
                        float(a.travel_cost_m))
        for a in m.assignments)
    return core.Plan(plan_id=int(m.plan_id), stamp_s=stamp_to_ns(m.header.stamp) * 1e-9, assignments=assignments,
                     unassigned_region_ids=tuple(m.unassigned_region_ids), lost_agent_ids=tuple(m.lost_agent_ids),
                     reason=m.reason)


@dataclass(frozen=True)
class FleetAgentNodeConfig:
    world_config: str = spec("", help="world YAML giving the start pose when start_pose is [] ('' = the shipped "
                                      "default world)")
    share_period_s: float = spec(0.1, lo=0.0, hi=3600.0, unit="s", help="at most one shared detection per this period")


class FleetAgentNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("fleet_agent", **kwargs)
        node_cfg = declare_params(self, FleetAgentNodeConfig)
        cfg = declare_params(self, AgentConfig)
        agent_id = cfg.agent_id or self.get_namespace().strip("/")
        start = start_pose_of(cfg.start_pose, node_cfg.world_config or None, agent_id)
        self.agent = FleetAgent(agent_id, start, cfg)
        self._state_pub = self.create_publisher(AgentState, STATE_TOPIC, qos.COMMAND)
        self._assignment_pub = self.create_publisher(Assignment, "assignment", qos.LATCHED)
        self.create_subscription(FleetPlan, PLAN_TOPIC, self._on_plan, qos.LATCHED)
        if cfg.use_odom:
            self.create_subscription(Odometry, "odom", self._on_odom, qos.COMMAND)
        self.create_timer(cfg.heartbeat_period_s, self._beat)
        self._share_period = node_cfg.share_period_s
        self._last_share = -1e9
        self.shared = 0
        self._hfov = math.radians(load_world_config(node_cfg.world_config or None).camera.hfov_deg)
        self._det_pub = self.create_publisher(SharedDetections, DETECTIONS_IN_TOPIC, qos.COMMAND)
        # raw: most decisions fall inside the share period and are not even deserialised
        self.create_subscription(Perception, "perception", self._on_perception, qos.COMMAND, raw=True)
        self.diag = Updater(self, hardware_id=f"fleet_agent_{agent_id}")
        self.diag.add("fleet membership", self._diagnose)
        x, y, yaw = start
        self.get_logger().info(f"agent {agent_id}: start pose ({x:.2f}, {y:.2f}, {yaw:.2f}), "
                               f"heartbeat every {cfg.heartbeat_period_s:g} s")
        self._beat()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _beat(self) -> None:
        self._state_pub.publish(report_to_msg(self.agent.heartbeat(self._now())))

    def _on_odom(self, msg: Odometry) -> None:
        p, t = msg.pose.pose, msg.twist.twist
        if not self.agent.on_odom(p.position.x, p.position.y, quat_yaw(p.orientation), t.linear.x, t.angular.z,
                                  self._now()):
            self.get_logger().warning("non-finite odometry dropped", throttle_duration_sec=2.0)

    def _on_perception(self, data: bytes) -> None:
        now = self._now()
        if now - self._last_share < self._share_period:
            return
        msg = deserialize_message(data, Perception)
        if msg.label >= len(msg.class_names):
            return
        s = sighting_from_decision(self.agent.agent_id, self.agent.pose, int(msg.label), msg.class_names[msg.label],
                                   float(msg.confidence), now, self._hfov)
        if s is None:
            return
        out = SharedDetections(detections=[sighting_to_msg(s)])
        out.header.stamp = self.get_clock().now().to_msg()
        out.header.frame_id = "map"
        self._det_pub.publish(out)
        self._last_share = now
        self.shared += 1

    def _on_plan(self, msg: FleetPlan) -> None:
        if not self.agent.on_plan(plan_from_msg(msg)):
            return
        mine = next((a for a in msg.assignments if a.agent_id == self.agent.agent_id), None)
        if mine is None:
            self.get_logger().info(f"plan {msg.plan_id} ({msg.reason}): no region for {self.agent.agent_id}")
            mine = Assignment(agent_id=self.agent.agent_id)
        else:
            self.get_logger().info(f"plan {msg.plan_id} ({msg.reason}): patrol {mine.region.region_id}, "
                                   f"{len(mine.region.waypoints)} waypoints, {mine.travel_cost_m:.1f} m away")
        self._assignment_pub.publish(mine)

    def _diagnose(self, st: Status) -> None:
        a = self.agent
        health, text = a.health(self._now())
        st.summary(OK if health == 0 else WARN, text)
        if a.assignment is None:
            st.merge(WARN, "no region assigned" if a.plans_received else "no plan received")
        x, y, yaw = a.pose
        st.add_all({"agent_id": a.agent_id, "heartbeats": a.seq + 1, "plan_id": a.plan_id,
                    "plans_received": a.plans_received,
                    "region": a.assignment.region.region_id if a.assignment else "",
                    "pose": f"{x:.2f},{y:.2f},{math.degrees(yaw):.0f}deg", "odom_rejected": a.odom_rejected,
                    "detections_shared": self.shared})


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(FleetAgentNode, args))


if __name__ == "__main__":
    main()
