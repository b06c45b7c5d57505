"""The control stage's topics, timer and clock on a node, around a `ControlCore`: the one piece of
ROS glue that both the split `control` node and the fused `robot` node use.

Subscribes odom        nav_msgs/Odometry (odom frame = the robot's start pose; non-finite refused)
           assignment  snn_autonomy_msgs/Assignment (the fleet agent's share of the plan)
           /fleet/agent_state snn_autonomy_msgs/AgentState: the other robots' heartbeats; their
                       bodies are obstacles where their pose and velocity put them (control.teammates)
Publishes  cmd_vel     geometry_msgs/Twist: on every decision, and zero at `tick_hz` while
                       perception is stale, or odometry went silent (watchdog)
           local_map   sensor_msgs/PointCloud2 in `map`: the obstacles the controller's local map
                       holds (control.local_map), after every decision, while anyone listens
Time is the node's ROS clock (simulation time under use_sim_time); a jump of that clock by more
than `clock_jump_threshold_s` stops the robot until a decision arrives on the new time line.
"""
from __future__ import annotations

from typing import Optional

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from sensor_msgs.msg import PointCloud2
from snn_autonomy_msgs.msg import AgentState, Assignment

from ..control.core import ControlCore, ControlTiming, Twist2
from ..perception.sectors import SectorView
from . import qos
from .clock import on_clock_jumps
from .convert import planar_cloud_msg, quat_yaw
from .coordinator_node import STATE_TOPIC, report_from_msg
from .diagnostics import OK, WARN, Status


class ControlPorts:
    def __init__(self, node, core: ControlCore, timing: ControlTiming, agent_id: str) -> None:
        self.node = node
        self.core = core
        self.agent_id = agent_id
        self._pub = node.create_publisher(Twist, "cmd_vel", qos.COMMAND)
        self._map_pub = node.create_publisher(PointCloud2, "local_map", qos.SENSOR)
        node.create_subscription(Odometry, "odom", self._on_odom, qos.COMMAND)
        node.create_subscription(Assignment, "assignment", self._on_assignment, qos.LATCHED)
        node.create_subscription(AgentState, STATE_TOPIC, self._on_agent_state, qos.COMMAND)
        node.create_timer(1.0 / timing.tick_hz, self._tick)
        self._jumps = on_clock_jumps(node, timing.clock_jump_threshold_s, self._on_clock_jump)

    def now_s(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def decide(self, label: int, classes: int, confidence: float, approaching: bool,
               view: Optional[SectorView] = None) -> Optional[Twist2]:
        """A perception decision: the command, published at once (None when the decision is refused)."""
        cmd = self.core.on_decision(self.now_s(), label, classes, confidence, approaching, view)
        if cmd is None:
            why = ((view.problem() if view is not None else "")
                   or f"label {label} outside {classes} classes or confidence {confidence} outside [0, 1]")
            self.node.get_logger().warning(f"perception decision refused: {why}", throttle_duration_sec=1.0)
        self.send(cmd, decided=True)
        return cmd

    def send(self, cmd: Optional[Twist2], decided: bool = False) -> None:
        """Publish a command; after a decision (`decided`) also the local map it was steered by."""
        if cmd is None:
            return
        t = Twist()
        t.linear.x, t.angular.z = float(cmd[0]), float(cmd[1])
        self._pub.publish(t)
        if decided and self._map_pub.get_subscription_count():
            xs, ys = self.core.patrol.local_map.obstacles()
            self._map_pub.publish(planar_cloud_msg(self.node.get_clock().now().to_msg(), "map", xs, ys))

    def _on_odom(self, msg: Odometry) -> None:
        p, t = msg.pose.pose, msg.twist.twist
        if not self.core.on_odom(p.position.x, p.position.y, quat_yaw(p.orientation), t.linear.x, t.angular.z,
                                 self.now_s()):
            self.node.get_logger().warning("non-finite odometry refused", throttle_duration_sec=1.0)

    def _on_agent_state(self, msg: AgentState) -> None:
        if msg.agent_id == self.agent_id:
            return
        why = self.core.on_teammate(report_from_msg(msg), self.now_s())
        if why:
            self.node.get_logger().warning(f"heartbeat of {msg.agent_id!r} refused: {why}", throttle_duration_sec=1.0)

    def _on_assignment(self, msg: Assignment) -> None:
        wps = [(w.x, w.y) for w in msg.region.waypoints]
        self.core.on_assignment(msg.region.region_id, wps)
        self.node.get_logger().info(f"patrolling {msg.region.region_id or 'nothing'} ({len(wps)} waypoints)")

    def _tick(self) -> None:
        self.send(self.core.on_tick(self.now_s()))

    def _on_clock_jump(self, now_s: float, delta_s: float) -> None:
        self.send(self.core.on_clock_jump(now_s, delta_s))
        self.node.get_logger().warning(f"clock jumped {delta_s:+.3f} s to {now_s:.3f} s: stopped until the next "
                                       "decision")

    def diagnose(self, st: Status) -> None:
        s = self.core.status(self.now_s())
        st.summary(OK if s.ok else WARN, s.summary)
        st.add_all(s.values)
