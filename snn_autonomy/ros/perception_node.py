"""`perception` lifecycle node: EventPackets in, Perception decisions out.

Subscribes events     event_camera_msgs/EventPacket (SensorDataQoS), decoded as one stream
           attention  snn_autonomy_msgs/AttentionCommand: ROI, t_max, confidence threshold
           odom       nav_msgs/Odometry (optional): the heading the temporal prior turns with, and
                      the speed below which it holds (the twist's, or the pose's, whichever is more);
                      odometry silent for `odom_timeout_s` after it came is forgotten: the prior is
                      neither turned nor held until it comes again (`odom_lapses`, WARN)
Publishes  perception snn_autonomy_msgs/Perception, one per decision (early exit or t_max)
           virtual_scan sensor_msgs/LaserScan (sector models): the decision's range per sector as
                      a laser scan in `scan_frame_id` (x forward), one ray per sector, for a
                      Nav2 costmap's obstacle layer; +inf where a sector is free (REP 117)
           /diagnostics
Each `bin_us` of events (the model's time step) is one SNN step; a decision is
published as soon as the class confidence reaches the threshold (dynamic-confidence
early exit) and the network then starts afresh. The header stamp is the stamp of
the newest packet that fed the decision, so latency can be traced to the sensor.
Overload: newest wins. The events subscription keeps the newest 5 packets (sensor-data QoS);
a packet older than `max_packet_age_ms` when its turn comes (the node is behind) is dropped
and counted (`stale_packets`), so queueing cannot add more than that to a decision's
latency (packet ages come from DDS source timestamps: sender and node need one clock, as on
one robot, or synchronised clocks). Once more packets in a row than the queue holds were too
old, the age is the transport's, not a backlog: they are then taken as they come (counted as
`late_packets_taken`, WARN on /diagnostics) rather than all dropped (perception/admission.py). Packets that overflow the queue, or are lost on the
way, show as gaps in `seq` and are counted (`lost_packets`);
a loss longer than one time step drops the decision in progress (`loss_restarts`), because
the missing step was unseen, not empty. Admission (`admission.*`, perception/cost_model.py): every
packet's work is timed and fitted into costs per packet, event and step on this machine; the
event rate those afford within `admission.busy_share` of the time goes out in each Perception
message (`admitted_event_rate`), for attention to cap the sensor with. The back end runs a few synthetic steps at configure,
so first-run costs are not paid on the first real packet.
backend lava runs the network in a Lava worker process in the Python 3.10 environment
(Loihi 2 simulation on the CPU here: about 17 ms per step, far slower than real time;
on Loihi 2 hardware the same worker runs with Lava's hardware run configuration).
Energy (monitor/energy.py): every decision carries its energy estimated from the operations
executed (hardware profile `energy_profile`, config/energy_profiles.yaml) and, where a meter
is available (`energy_meter`: auto | none | rapl | nvml | ina3221), the meter's delta over
the decision's compute; /diagnostics reports both, the ANN-equivalent and the meter.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import List, Optional

from event_camera_msgs.msg import EventPacket
from nav_msgs.msg import Odometry
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from sensor_msgs.msg import LaserScan
from snn_autonomy_msgs.msg import AttentionCommand, Perception

from ..config import ConfigError, spec
from ..control.watchdog import OdometryAge, WatchdogConfig
from ..events.packet import PacketStreamDecoder
from ..events.roi import Roi
from ..monitor.energy import DecisionEnergy, EnergyAccountant, EnergyConfig
from ..perception.admission import PacketAdmission
from ..perception.cost_model import AdmissionConfig, MeasuredAdmission
from ..perception.engine import EngineConfig, open_engine
from ..perception.runtime import Decision, StreamingPerception
from ..perception.temporal_prior import OdometrySpeed
from ..realtime import process_age_s
from ..sensors.warmup import warm_up
from . import qos
from .convert import msg_to_packet, perception_msg, quat_yaw, stamp_to_ns, virtual_scan_msg
from .diagnostics import ERROR, OK, WARN, Status, Updater, report_admission
from .params import declare_params, read_config
from .spin import exit_with, spin_node


QUEUE_DEPTH = qos.SENSOR.depth     # packets the events subscription keeps (newest wins)


@dataclass(frozen=True)
class PerceptionNodeConfig:
    agent_id: str = spec("", help="id in the messages ('' = the namespace)")
    t_max: int = spec(0, lo=0, hi=1024, help="time-step budget (0 = the model's)")
    confidence_threshold: float = spec(0.0, lo=0.0, hi=1.0, help="early-exit threshold (0 = the calibrated one)")
    max_packet_age_ms: float = spec(10.0, lo=0.0, hi=60_000.0, unit="ms",
                                    help="drop a packet older than this when its turn comes (newest wins; 0 = keep all)")
    odom_timeout_s: float = spec(WatchdogConfig().odom_deadline_s, lo=0.01, hi=60.0, unit="s",
                                 help="odometry older than this is forgotten (as control's watchdog stops on it)")
    scan_frame_id: str = spec("camera_link", help="frame of virtual_scan: the camera's body frame, x forward")
    autostart: bool = spec(True, help="configure and activate on start")


def graphs_note(engine: StreamingPerception) -> str:
    """Where an ONNX Runtime stepper's graphs came from (a cache hit starts without torch)."""
    cached = getattr(engine.stepper, "graphs_from_cache", None)
    return "" if cached is None else " (graphs from the cache)" if cached else " (graphs exported, now cached)"


class PerceptionNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("perception", **kwargs)
        # validated at start (a bad value: exit 2), read again at every configure
        cfg = declare_params(self, PerceptionNodeConfig)
        declare_params(self, EngineConfig)
        declare_params(self, EnergyConfig)
        declare_params(self, AdmissionConfig, "admission.")
        self.load: Optional[MeasuredAdmission] = None
        self.startup: dict = {}       # where start-up time went (seconds since the process started)
        self.engine: Optional[StreamingPerception] = None
        self.energy: Optional[EnergyAccountant] = None
        self.decoder = PacketStreamDecoder()
        self._pub = None
        self._scan_pub = None
        self._scan_frame = cfg.scan_frame_id
        self._subs: List = []
        self._offset_us: Optional[int] = None   # packet stamp minus sensor time
        self._decode_ms = 0.0
        self._transport_ms = math.nan
        self._packet_wall_ns = 0      # when the newest packet was published (DDS source timestamp)
        self.packets = 0
        self.admission = PacketAdmission(0.0, QUEUE_DEPTH)
        self._unseen = 0              # packets dropped as stale since the last one stepped
        self.budget_rejections = 0
        self.odom_refused = 0          # non-finite odometry headings or speeds
        self._speed = OdometrySpeed()
        self._odom_age = OdometryAge(cfg.odom_timeout_s)
        self.last_problem = ""
        self.steps_total = 0
        self.diag = Updater(self, hardware_id="perception")
        self.diag.add("decisions", self._diagnose)
        self.diag.add("energy", self._diagnose_energy)
        if cfg.autostart:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        cfg = read_config(self, PerceptionNodeConfig)
        engine = read_config(self, EngineConfig)
        self._odom_age = OdometryAge(cfg.odom_timeout_s)
        t0 = time.perf_counter()
        try:
            self.engine = open_engine(engine)
        except Exception as exc:  # a missing, corrupt or mismatched model, a back end unavailable: say why
            self.get_logger().error(f"cannot load model {engine.model or '(the shipped model)'} on {engine.backend}: "
                                    f"{exc}")
            return TransitionCallbackReturn.FAILURE
        problems = self.engine.set_budget(cfg.t_max or None, cfg.confidence_threshold or None)
        for p in problems:
            self.get_logger().warning(p)
        t1 = time.perf_counter()
        warm_up()                  # the decoders' kernels
        self.engine.warm_up()      # the back end's first runs
        self.startup = {"model_s": round(t1 - t0, 3), "warm_up_s": round(time.perf_counter() - t1, 3),
                        "configured_after_s": round(process_age_s() or math.nan, 3)}
        try:
            self.energy = EnergyAccountant.from_config(read_config(self, EnergyConfig),
                                                       self.engine.manifest.get("dense_macs_per_step"))
        except ConfigError as exc:
            self.get_logger().error(str(exc))
            self.engine = None
            return TransitionCallbackReturn.FAILURE
        why = f" ({self.energy.meter_reason})" if self.energy.meter is None else ""
        self.get_logger().info(f"energy: profile {self.energy.estimator.profile_name}, meter "
                               f"{self.energy.meter_description()}{why}")
        self.admission = PacketAdmission(cfg.max_packet_age_ms, QUEUE_DEPTH)
        self.load = MeasuredAdmission.for_model(read_config(self, AdmissionConfig, "admission."), self.engine.bin_us)
        self.agent_id = cfg.agent_id or self.get_namespace().strip("/") or "robot"
        self._pub = self.create_lifecycle_publisher(Perception, "perception", qos.COMMAND)
        self._scan_frame = cfg.scan_frame_id
        if self.engine.head.sectors is not None:
            self._scan_pub = self.create_lifecycle_publisher(LaserScan, "virtual_scan", qos.SENSOR)
        self.get_logger().info(f"model {engine.model or '(the shipped model)'} on "
                               f"{self.engine.stepper.name}{graphs_note(self.engine)}: T_max {self.engine.t_max}, threshold "
                               f"{self.engine.threshold:.3f}, {self.engine.bin_us} us per step")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._subs = [self.create_subscription(EventPacket, "events", self._on_events, qos.SENSOR),
                      self.create_subscription(AttentionCommand, "attention", self._on_attention, qos.COMMAND),
                      self.create_subscription(Odometry, "odom", self._on_odom, qos.COMMAND)]
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        for pub in (self._pub, self._scan_pub):
            if pub is not None:
                self.destroy_lifecycle_publisher(pub)
        if self.energy is not None:
            self.energy.close()
        self._pub = self._scan_pub = self.engine = self.energy = None
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

    def _on_odom(self, msg: Odometry) -> None:
        if self.engine is None:
            return
        heading = self.engine.set_heading(quat_yaw(msg.pose.pose.orientation))
        p = msg.pose.pose.position
        speed = self._speed.update(stamp_to_ns(msg.header.stamp) * 1e-9, p.x, p.y, msg.twist.twist.linear.x)
        if not (self.engine.set_speed(speed) and heading):
            self.odom_refused += 1
        else:
            self._odom_age.feed(self._now_s())

    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_events(self, msg: EventPacket, info) -> None:
        if self.engine is None:
            return
        t0 = time.perf_counter()
        # DDS source / reception timestamps are wall-clock (system time) nanoseconds
        self._packet_wall_ns = int(info["source_timestamp"])
        self._transport_ms = (int(info["received_timestamp"]) - self._packet_wall_ns) * 1e-6
        pkt = msg_to_packet(msg)
        lost = self.decoder.counters.lost_packets
        batch = self.decoder.decode(pkt)
        lost = self.decoder.counters.lost_packets - lost
        self.packets += 1
        if batch is None:
            self.last_problem = self.decoder.counters.last_problem
            self.get_logger().warning(f"packet dropped: {self.last_problem}", throttle_duration_sec=1.0)
            return
        # newest wins: behind by more than the limit, the packet is dropped (after decoding, which
        # keeps the stream's sequence) and the engine is told at the next one that input is missing
        age_ms = (time.time_ns() - self._packet_wall_ns) * 1e-6
        if not self.admission.admit(age_ms):
            self._unseen += 1 + lost
            self.last_problem = f"packet {pkt.seq} was {age_ms:.1f} ms old when taken: dropped (newest wins)"
            return
        if self.admission.transport_late:
            self.last_problem = (f"packets arrive {age_ms:.1f} ms old (over {self.admission.max_age_ms:g} ms) with "
                                 "the queue drained: transport delay, taken as they come")
            self.get_logger().warning(self.last_problem, throttle_duration_sec=5.0)
        lost, self._unseen = lost + self._unseen, 0
        stamp_us = pkt.stamp_ns // 1000
        if self._offset_us is None and len(batch):
            self._offset_us = stamp_us - batch.t_last
        now_us = stamp_us - (self._offset_us or 0)
        if len(batch):
            now_us = max(now_us, batch.t_last)
        t1 = time.perf_counter()
        self._decode_ms = (t1 - t0) * 1e3
        if self._odom_age.stale(self._now_s()):
            self.engine.forget_odometry()
        self.energy.begin()
        jumps, refused, steps = self.engine.time_jumps, self.engine.geometry_refused, self.engine.steps
        decisions = self.engine.push(batch, now_us, packet_seq=pkt.seq, stamp_ns=pkt.stamp_ns, lost_before=lost)
        self.energy.end()
        if self.load is not None:    # what this packet cost: decode, binning, the steps it completed
            t_done = time.perf_counter()
            self.load.observe(t_done, now_us, t_done - t0, len(batch), self.engine.steps - steps)
        if self.engine.geometry_refused > refused:
            self.last_problem = self.engine.geometry_problem
            self.get_logger().error(self.last_problem, throttle_duration_sec=5.0)
            return
        if self.engine.time_jumps > jumps:   # dropped by the engine, which restarted its time line
            self.last_problem = f"packet {pkt.seq}: sensor time jumped to {now_us} us; stream restarted"
            self.get_logger().warning(self.last_problem, throttle_duration_sec=1.0)
            self._offset_us = None
            return
        for d, energy in zip(decisions, self.energy.assign(decisions)):
            self._publish(d, (time.perf_counter() - t1) * 1e3, energy)

    def _publish(self, d: Decision, snn_ms: float, energy: DecisionEnergy) -> None:
        decision_ms = (time.time_ns() - self._packet_wall_ns) * 1e-6
        stages = [("transport", self._transport_ms), ("decision", decision_ms), ("decode", self._decode_ms),
                  ("snn", snn_ms)]
        if self.load is not None:
            self.load.observe_latency(decision_ms)
        m = perception_msg(d, self.engine, self.agent_id, d.decision_id, stages,
                           energy.estimated_uj, energy.measured_uj)
        self.steps_total += d.steps
        if "first_decision_after_s" not in self.startup:
            self.startup["first_decision_after_s"] = round(process_age_s() or math.nan, 3)
            self.get_logger().info("start-up: first decision {first_decision_after_s} s after the process started "
                                   "(configured after {configured_after_s} s: model {model_s} s, warm-up {warm_up_s} s)"
                                   .format(**self.startup))
        m.admitted_event_rate = float(self.load.admitted_ev_s or 0.0) if self.load is not None else 0.0
        if self._pub is not None:
            self._pub.publish(m)
        if self._scan_pub is not None:
            self._scan_pub.publish(virtual_scan_msg(d, self.engine.head.sectors, m.header.stamp, self._scan_frame))

    def _diagnose(self, st: Status) -> None:
        e = self.engine
        if e is None:
            st.summary(WARN, "not configured (no model loaded)")
            return
        st.summary(OK, "deciding" if e.decisions else "waiting for events")
        if self.budget_rejections:
            st.merge(WARN, self.last_problem)
        stats = self.decoder.stats
        c = self.decoder.counters
        rejected = c.rejected_encoding + c.rejected_big_endian + c.rejected_geometry
        if stats.dropped_events or rejected:
            st.merge(WARN, "; ".join(stats.problems()) or c.last_problem)
        if e.time_jumps:
            st.merge(WARN, f"{e.time_jumps} packets with sensor time jumps dropped")
        if e.geometry_refused:
            st.merge(ERROR, f"{e.geometry_refused} packets: {e.geometry_problem}")
        a = self.admission
        if a.dropped_stale:
            st.merge(WARN, f"{a.dropped_stale} packets dropped as older than {a.max_age_ms:g} ms (behind)")
        if a.taken_late:
            st.merge(WARN, f"{a.taken_late} packets taken late: the transport delays them over {a.max_age_ms:g} ms")
        if e.loss_restarts:
            st.merge(WARN, f"{e.loss_restarts} decisions dropped: packets lost in transport covered a whole step")
        now_s = self._now_s()
        odom_age_s = self._odom_age.age_s(now_s)
        if self._odom_age.stale(now_s):
            st.merge(WARN, f"odometry silent for {odom_age_s:.1f} s: the temporal prior is neither turned nor held")
        if self.load is not None:
            report_admission(st, self.load)
        st.add_all({"head": e.head.kind, "sectors": e.head.groups if e.head.sectors is not None else 0,
                    "decisions": e.decisions, "packets": self.packets, "t_max": e.t_max,
                    "threshold": round(e.threshold, 4),
                    "temporal_prior": e.prior is not None, "decisions_with_prior": e.prior_decisions,
                    "decisions_prior_turned": e.turned_decisions,
                    "decisions_prior_held": e.held_decisions, "odom_refused": self.odom_refused,
                    "odom_lapses": self._odom_age.lapses, "odom_age_ms": round(odom_age_s * 1e3, 1),
                    "mean_steps": round(self.steps_total / max(e.decisions, 1), 2),
                    "lost_packets": self.decoder.counters.lost_packets,
                    "dropped_events": stats.dropped_events, "budget_rejections": self.budget_rejections,
                    "rejected_packets": rejected, "seq_restarts": c.seq_restarts, "first_seq": c.first_seq, "time_jumps": e.time_jumps,
                    "stale_packets": a.dropped_stale, "late_packets_taken": a.taken_late,
                    "loss_restarts": e.loss_restarts, "geometry_refused": e.geometry_refused,
                    **{f"startup_{k}": v for k, v in self.startup.items()}})

    def _diagnose_energy(self, st: Status) -> None:
        if self.energy is None:
            st.summary(WARN, "not configured")
            return
        st.summary(OK, f"measured by {self.energy.meter_description()}" if self.energy.meter is not None
                   else "estimated only: no energy meter")
        st.add_all(self.energy.diagnostics())


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(PerceptionNode, args))


if __name__ == "__main__":
    main()
