"""`attention` node: action-to-sensing. After every perception decision it decides what the
robot senses next and publishes an AttentionCommand (the policy and the reason for every
constant: snn_autonomy.attention.policy).

Subscribes cmd_vel            geometry_msgs/Twist (the commanded motion)
           perception         snn_autonomy_msgs/Perception
           odom               nav_msgs/Odometry (pose for the fleet's detections; odom origin =
                              start pose in the map frame, as for the control node)
           /fleet/detections  snn_autonomy_msgs/SharedDetections (merged by the coordinator)
Publishes  attention          snn_autonomy_msgs/AttentionCommand -> event_sensor and perception
           /diagnostics
With `enabled` false it publishes nothing: the sensor and perception keep their full budget.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import List, Optional

from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.node import Node
from snn_autonomy_msgs.msg import AttentionCommand, Perception, SharedDetections

from ..attention.policy import AttentionConfig, AttentionInputs, AttentionPolicy, mode_fractions
from ..config import spec
from ..fleet.start_pose import check_start_pose, start_pose_field, start_pose_of
from ..paths import resolve_model
from ..perception.heads import Head, check_field_of_view
from ..perception.model_io import read_manifest
from ..perception.temporal_prior import exit_threshold
from ..sim.config import load_world_config
from . import qos
from .convert import odom_in_map, sector_view_of, stamp_to_ns
from .coordinator_node import DETECTIONS_TOPIC
from .diagnostics import OK, WARN, Status, Updater
from .params import declare_params
from .spin import exit_with, spin_node


@dataclass(frozen=True)
class AttentionNodeConfig:
    enabled: bool = spec(True, help="false = full sensing budget always")
    agent_id: str = spec("", help="robot id ('' = the namespace)")
    model: str = spec("", help="model whose T_max and threshold are the full budget ('' = the shipped model)")
    temporal_prior: bool = spec(True, help="perception runs the model with its temporal prior (its threshold is then "
                                           "the prior's); as the perception node's parameter of that name")
    world_config: str = spec("", help="world YAML: camera geometry and start pose ('' = the shipped world)")
    start_pose: List[float] = start_pose_field()
    republish_s: float = spec(1.0, lo=0.01, hi=3600.0, unit="s",
                              help="an unchanged command is sent again after this long (changes, and the command "
                                   "in force to a subscriber that joins, are sent at once)")

    def validate(self) -> None:
        check_start_pose(self.start_pose)


class AttentionNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("attention", **kwargs)
        cfg, policy = declare_params(self, AttentionNodeConfig), declare_params(self, AttentionConfig)
        world = cfg.world_config or None
        cam = load_world_config(world).camera
        manifest = read_manifest(resolve_model(cfg.model))
        check_field_of_view(Head.of(manifest), cam.hfov_deg)
        self.policy = AttentionPolicy(cam.width, cam.height, cam.hfov_deg, int(manifest["t_max"]),
                                      exit_threshold(manifest, cfg.temporal_prior), policy)
        self.enabled = cfg.enabled
        self.agent_id = cfg.agent_id or self.get_namespace().strip("/") or "robot_0"
        self.origin = start_pose_of(cfg.start_pose, world, self.agent_id)
        self.pose = self.origin
        self.cmd = (0.0, 0.0)
        self.shared: list = []
        self.sent: Counter = Counter()     # decisions by the budget they chose
        self.published = 0
        self.republish_ns = int(cfg.republish_s * 1e9)
        self._last_sent: Optional[tuple] = None
        self._last_sent_ns = 0
        self.last_reason = ""
        self.rejected = {"cmd_vel": 0, "odom": 0, "perception": 0, "detections": 0}   # bad input, dropped
        self._pub = self.create_publisher(AttentionCommand, "attention", qos.COMMAND,
                                          event_callbacks=PublisherEventCallbacks(matched=self._on_matched))
        self.create_subscription(Twist, "cmd_vel", self._on_cmd, qos.COMMAND)
        self.create_subscription(Perception, "perception", self._on_perception, qos.COMMAND)
        self.create_subscription(Odometry, "odom", self._on_odom, qos.COMMAND)
        self.create_subscription(SharedDetections, DETECTIONS_TOPIC, self._on_shared, qos.COMMAND)
        self.diag = Updater(self, hardware_id=f"attention_{self.agent_id}")
        self.diag.add("attention", self._diagnose)

    def _on_matched(self, info) -> None:
        """A subscriber joined (the sensor or perception started after this node, or restarted):
        it missed the command in force, so the next decision sends it again at once instead of
        after `republish_s` (meanwhile that subscriber would work with the full budget)."""
        if info.current_count_change > 0:
            self._last_sent = None

    def _reject(self, what: str, text: str, n: int = 1) -> None:
        self.rejected[what] += n
        self.get_logger().warning(text, throttle_duration_sec=1.0)

    def _on_cmd(self, msg: Twist) -> None:
        if math.isfinite(msg.linear.x) and math.isfinite(msg.angular.z):
            self.cmd = (msg.linear.x, msg.angular.z)
        else:
            self._reject("cmd_vel", "non-finite cmd_vel dropped")

    def _on_odom(self, msg: Odometry) -> None:
        pose = odom_in_map(self.origin, msg)
        if pose is None:
            self._reject("odom", "non-finite odometry dropped")
            return
        self.pose = pose

    def _on_shared(self, msg: SharedDetections) -> None:
        now = self.get_clock().now().nanoseconds
        ok = [d for d in msg.detections if math.isfinite(d.position.x) and math.isfinite(d.position.y)]
        if len(ok) < len(msg.detections):
            n = len(msg.detections) - len(ok)
            self._reject("detections", f"{n} shared detections with non-finite positions dropped", n)
        self.shared = [(d.position.x, d.position.y, (now - stamp_to_ns(d.header.stamp)) * 1e-9, d.source_agent_id)
                       for d in ok]

    def _on_perception(self, msg: Perception) -> None:
        if not self.enabled:
            return
        if msg.label >= len(msg.class_names) or not 0.0 <= msg.confidence <= 1.0:
            self._reject("perception", f"perception label {msg.label} outside {list(msg.class_names)} or "
                                       f"confidence {msg.confidence} outside [0, 1] dropped")
            return
        a = self.policy.decide(AttentionInputs(self.cmd[0], self.cmd[1], int(msg.label), float(msg.confidence),
                                               bool(msg.approaching), pose=self.pose, shared=self.shared,
                                               agent_id=self.agent_id, admitted_ev_s=float(msg.admitted_event_rate),
                                               view=sector_view_of(msg)))
        self.sent[a.mode] += 1
        # Only a change is news to the sensor and perception (each command costs both a callback,
        # and decisions come at up to a few hundred per second). A subscriber that joins gets the
        # command in force with the next decision (`_on_matched`); an unchanged one is also
        # refreshed now and then.
        key = (tuple(a.roi), a.rate_cap_ev_s, a.t_max, a.threshold)
        now_ns = self.get_clock().now().nanoseconds
        if key == self._last_sent and now_ns - self._last_sent_ns < self.republish_ns:
            return
        self._last_sent, self._last_sent_ns = key, now_ns
        m = AttentionCommand()
        m.header.stamp = msg.header.stamp
        m.agent_id = self.agent_id
        m.roi.x_offset, m.roi.y_offset, m.roi.width, m.roi.height = a.roi
        m.event_rate_cap = float(a.rate_cap_ev_s)
        m.subsample = 1
        m.t_max = int(a.t_max)
        m.confidence_threshold = float(a.threshold)
        m.reason = f"{a.mode}: {a.reason}"
        self.last_reason = m.reason
        self.published += 1
        self._pub.publish(m)

    def _diagnose(self, st: Status) -> None:
        st.summary(OK, "on" if self.enabled else "off (full budget)")
        if any(self.rejected.values()):
            st.merge(WARN, "bad input dropped: " + ", ".join(f"{n} {k}" for k, n in self.rejected.items() if n))
        total = sum(self.sent.values())
        st.add_all({"decisions": total, "commands": self.published, **mode_fractions(self.sent, total),
                    "last_reason": self.last_reason, "shared_detections": len(self.shared),
                    **{f"rejected_{k}": n for k, n in self.rejected.items()}})


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(AttentionNode, args))


if __name__ == "__main__":
    main()
