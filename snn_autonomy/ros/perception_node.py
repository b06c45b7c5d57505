"""`perception` lifecycle node: EventPackets in, Perception decisions out.

Subscribes events     event_camera_msgs/EventPacket (SensorDataQoS), decoded as one stream
           attention  snn_autonomy_msgs/AttentionCommand: ROI, t_max, confidence threshold
Publishes  perception snn_autonomy_msgs/Perception, one per decision (early exit or t_max)
           /diagnostics
Each `bin_us` of events (the model's time step) is one SNN step; a decision is
published as soon as the class confidence reaches the threshold (dynamic-confidence
early exit) and the network then starts afresh. The header stamp is the stamp of
the newest packet that fed the decision, so latency can be traced to the sensor.
backend lava runs the network in a Lava worker process in the Python 3.10 environment
(Loihi 2 simulation on the CPU here: about 17 ms per step, far slower than real time;
on Loihi 2 hardware the same worker runs with Lava's hardware run configuration).
"""
from __future__ import annotations

import math
import time
from typing import List, Optional

from event_camera_msgs.msg import EventPacket
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from snn_autonomy_msgs.msg import AttentionCommand, Perception, StageLatency

from ..events.packet import PacketStreamDecoder
from ..events.roi import Roi
from ..paths import model_path
from ..perception.runtime import Decision, StreamingPerception
from . import qos
from .convert import msg_to_packet, ns_to_stamp
from .diagnostics import OK, WARN, Status, Updater
from .spin import exit_with, spin_node

DEFAULT_MODEL = "perception_default.npz"


class PerceptionNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("perception", **kwargs)
        d = ParameterDescriptor
        self.declare_parameter("model", "", d(description="model .npz with its manifest ('' = the shipped model)"))
        self.declare_parameter("backend", "torch", d(description="inference back end: torch | onnxruntime | lava"))
        self.declare_parameter("lava_tag", "floating_pt", d(description="lava: floating_pt | fixed_pt (bit-accurate "
                                                                        "Loihi 2)"))
        self.declare_parameter("providers", ["CPUExecutionProvider"],
                               d(description="onnxruntime execution providers, in order of preference"))
        self.declare_parameter("agent_id", "", d(description="id in the messages ('' = the namespace)"))
        self.declare_parameter("t_max", 0, d(description="time-step budget (0 = the model's)"))
        self.declare_parameter("confidence_threshold", 0.0, d(description="early-exit threshold "
                                                                         "(0 = the calibrated one)"))
        self.declare_parameter("torch_threads", 1, d(description="intra-op threads of the torch back end"))
        self.declare_parameter("autostart", True, d(description="configure and activate on start"))
        self.engine: Optional[StreamingPerception] = None
        self.decoder = PacketStreamDecoder()
        self._pub = None
        self._subs: List = []
        self._offset_us: Optional[int] = None   # packet stamp minus sensor time
        self._decode_ms = 0.0
        self._transport_ms = math.nan
        self._packet_wall_ns = 0      # when the newest packet was published (DDS source timestamp)
        self.packets = 0
        self.budget_rejections = 0
        self.last_problem = ""
        self.steps_total = 0
        self.diag = Updater(self, hardware_id="perception")
        self.diag.add("decisions", self._diagnose)
        if self.get_parameter("autostart").value:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        path = self.get_parameter("model").value or str(model_path(DEFAULT_MODEL))
        backend = self.get_parameter("backend").value
        import torch

        torch.set_num_threads(max(1, int(self.get_parameter("torch_threads").value)))
        options = {"onnxruntime": {"providers": list(self.get_parameter("providers").value)},
                   "lava": {"tag": self.get_parameter("lava_tag").value}}.get(backend, {})
        try:
            self.engine = StreamingPerception.from_file(path, backend, **options)
        except Exception as exc:  # a missing, corrupt or mismatched model: refuse to run, say why
            self.get_logger().error(f"cannot load model {path}: {exc}")
            return TransitionCallbackReturn.FAILURE
        problems = self.engine.set_budget(self.get_parameter("t_max").value or None,
                                          self.get_parameter("confidence_threshold").value or None)
        for p in problems:
            self.get_logger().warning(p)
        self.agent_id = self.get_parameter("agent_id").value or self.get_namespace().strip("/") or "robot"
        self._pub = self.create_lifecycle_publisher(Perception, "perception", qos.COMMAND)
        self.get_logger().info(f"model {path}: T_max {self.engine.t_max}, threshold {self.engine.threshold:.3f}, "
                               f"{self.engine.bin_us} us per step")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._subs = [self.create_subscription(EventPacket, "events", self._on_events, qos.SENSOR),
                      self.create_subscription(AttentionCommand, "attention", self._on_attention, qos.COMMAND)]
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        if self._pub is not None:
            self.destroy_lifecycle_publisher(self._pub)
        self._pub = self.engine = None
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ callbacks
    def _on_attention(self, msg: AttentionCommand) -> None:
        if self.engine is None:
            return
        problems = self.engine.set_budget(int(msg.t_max) or None, float(msg.confidence_threshold))
        if problems:
            self.budget_rejections += 1
            self.last_problem = "; ".join(problems)
            self.get_logger().warning(f"attention from {msg.agent_id or '?'}: {self.last_problem}",
                                      throttle_duration_sec=1.0)
        r = msg.roi
        if r.width == 0 and r.height == 0:
            self.engine.set_roi(None)
        else:
            w, h = self.engine.sensor
            roi, _ = Roi(max(0, int(r.x_offset)), max(0, int(r.y_offset)), max(1, int(r.width)),
                         max(1, int(r.height))).clamped(w, h)
            self.engine.set_roi(roi)

    def _on_events(self, msg: EventPacket, info) -> None:
        if self.engine is None:
            return
        t0 = time.perf_counter()
        # DDS source / reception timestamps are wall-clock (system time) nanoseconds
        self._packet_wall_ns = int(info["source_timestamp"])
        self._transport_ms = (int(info["received_timestamp"]) - self._packet_wall_ns) * 1e-6
        pkt = msg_to_packet(msg)
        batch = self.decoder.decode(pkt)
        self.packets += 1
        if batch is None:
            self.last_problem = self.decoder.counters.last_problem
            self.get_logger().warning(f"packet dropped: {self.last_problem}", throttle_duration_sec=1.0)
            return
        stamp_us = pkt.stamp_ns // 1000
        if self._offset_us is None and len(batch):
            self._offset_us = stamp_us - batch.t_last
        now_us = stamp_us - (self._offset_us or 0)
        if len(batch):
            now_us = max(now_us, batch.t_last)
        t1 = time.perf_counter()
        self._decode_ms = (t1 - t0) * 1e3
        for d in self.engine.push(batch, now_us, packet_seq=pkt.seq, stamp_ns=pkt.stamp_ns):
            self._publish(d, (time.perf_counter() - t1) * 1e3)

    def _publish(self, d: Decision, snn_ms: float) -> None:
        e = self.engine
        m = Perception()
        m.header.stamp = ns_to_stamp(d.stamp_ns)
        m.header.frame_id = "camera"
        m.agent_id = self.agent_id
        m.decision_id = e.decisions
        m.first_packet_seq, m.last_packet_seq = max(0, d.first_packet_seq), max(0, d.last_packet_seq)
        m.class_names = list(e.classes)
        m.class_scores = [float(v) for v in d.scores]
        m.label = d.label
        m.confidence = d.confidence
        m.confidence_measure = e.measure
        m.threshold = d.threshold
        m.approaching = d.approaching
        m.time_to_contact_s = math.nan
        m.steps_used, m.t_max, m.early_exit = d.steps, d.t_max, d.early_exit
        m.events_in, m.events_used = d.events_in, d.events_used
        m.synaptic_ops, m.neuron_updates = int(d.synaptic_ops), int(d.neuron_updates)
        m.energy_estimated_uj = math.nan
        m.energy_measured_uj = math.nan
        m.backend = self.engine.stepper.name
        m.stage_latencies = [StageLatency(stage="transport", duration_ms=self._transport_ms),
                             StageLatency(stage="decision",
                                          duration_ms=(time.time_ns() - self._packet_wall_ns) * 1e-6),
                             StageLatency(stage="decode", duration_ms=self._decode_ms),
                             StageLatency(stage="snn", duration_ms=snn_ms)]
        self.steps_total += d.steps
        if self._pub is not None:
            self._pub.publish(m)

    def _diagnose(self, st: Status) -> None:
        e = self.engine
        if e is None:
            st.summary(WARN, "not configured (no model loaded)")
            return
        st.summary(OK, "deciding" if e.decisions else "waiting for events")
        if self.budget_rejections:
            st.merge(WARN, self.last_problem)
        stats = self.decoder.stats
        if stats.dropped_events or self.decoder.counters.rejected_encoding:
            st.merge(WARN, "; ".join(stats.problems()) or self.decoder.counters.last_problem)
        st.add_all({"decisions": e.decisions, "packets": self.packets, "t_max": e.t_max,
                    "threshold": round(e.threshold, 4),
                    "mean_steps": round(self.steps_total / max(e.decisions, 1), 2),
                    "lost_packets": self.decoder.counters.lost_packets,
                    "dropped_events": stats.dropped_events, "budget_rejections": self.budget_rejections})


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(PerceptionNode, args))


if __name__ == "__main__":
    main()
