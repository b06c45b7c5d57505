"""`event_sensor` lifecycle node: an event camera on ROS 2.

Publishes  events        event_camera_msgs/EventPacket, encoding evt3, SensorDataQoS, one packet per
                         `event_message_time_threshold` seconds of sensor time, `seq` counting packets
           /diagnostics  event rates, drops per reason, rejected commands
Subscribes attention     snn_autonomy_msgs/AttentionCommand (ROI, event-rate cap, subsampling)
           /world/state  (source "world") the built-in world, rendered from this robot's camera
           <image_topic> (source "image") sensor_msgs/Image, e.g. a Gazebo camera via ros_gz_bridge
Sources: world | image | bag (EventPacket rosbag2) | raw (Prophesee RAW) | camera (live, OpenEB or
dv-processing). The ROI / event-rate-controller / subsampling knobs are parameters too, named as in
metavision_driver (`roi`, `erc_mode`, `erc_rate`); they can be changed at run time.
Header stamps: the end of the packet's time window, in the source's time (simulation time for the
world, the Image stamps for image emulation, the recording shifted to now for replays).
"""
from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import List, Literal, Optional

from event_camera_msgs.msg import EventPacket
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from sensor_msgs.msg import Image
from snn_autonomy_msgs.msg import AttentionCommand, WorldState

from ..config import ConfigError, from_dict, spec
from ..events.batch import EventBatch
from ..events.packet import PacketEncoder, PacketStreamDecoder
from ..sensors.controls import EventFilter
from ..sensors.dvs import DvsConfig
from ..sensors.image import ImageEventSource
from ..sensors.packetizer import Packetizer
from ..sensors.warmup import warm_up
from ..sensors.world_follower import WorldFollower
from . import qos
from .convert import apply_world_state, packet_to_msg, stamp_to_ns
from .diagnostics import ERROR, OK, WARN, Status, Updater
from .params import declare_params, read_config
from .spin import exit_with, spin_node

Source = Literal["world", "image", "bag", "raw", "camera"]
# the emulator's noise rates change while streaming (as a real camera's biases do); the other
# dvs.* parameters shape the pixel array and take effect at the next configure
LIVE_DVS = ("dvs.leak_rate_hz", "dvs.shot_noise_rate_hz")


@dataclass(frozen=True)
class EventSensorConfig:
    source: Source = spec("world", help="world (the built-in world), image (emulated from an Image topic), bag "
                                        "(EventPacket rosbag2), raw (Prophesee RAW file) or camera (live)")
    frame_id: str = spec("camera", help="frame of the packets' header")
    event_message_time_threshold: float = spec(1e-3, lo=1e-5, hi=1.0, unit="s", help="packet period")
    roi: List[int] = spec(default_factory=lambda: [0, 0, 0, 0], lo=0, unit="px",
                          help="x, y, width, height; zeros = the full sensor")
    erc_mode: Literal["na", "enabled", "disabled"] = spec("na", help="event-rate controller")
    erc_rate: int = spec(0, lo=0, unit="events/s", help="event-rate cap when erc_mode is enabled")
    subsample: int = spec(1, lo=1, hi=64, help="keep pixels with x % n == y % n == 0")
    robot_id: str = spec("", help="robot whose camera to render (source world; '' = the node's namespace)")
    world_config: str = spec("", help="world YAML of the world node ('' = the shipped default world)")
    world_state_depth: int = spec(qos.STATE_DEPTH, lo=1, hi=100000,
                                  help="world states queued while rendering falls behind (source world; "
                                       "the world node's state_depth must be as deep)")
    image_topic: str = spec("image_raw", help="Image topic (source image)")
    image_reliable: bool = spec(False, help="subscribe images reliably (the camera must publish reliably); "
                                            "default: sensor-data QoS")
    bag: str = spec("", help="rosbag2 directory of EventPackets (source bag)")
    bag_topic: str = spec("", help="EventPacket topic in the bag ('' = the only one)")
    raw_file: str = spec("", help="event file: Prophesee RAW (EVT2, EVT3) or iniVation AEDAT4 (source raw)")
    replay_realtime: bool = spec(True, help="replay at the recorded pace")
    replay_loop: bool = spec(False, help="start the recording again at its end")
    wait_for_subscribers: int = spec(0, lo=0, hi=1000, help="replays: hold until `events` has this many subscribers")
    replay_delay_s: float = spec(0.0, lo=0.0, hi=3600.0, unit="s",
                                 help="replays: wait this long before the first packet (after the subscribers)")
    camera_backend: Literal["", "metavision", "dv_processing"] = spec(
        "", help="live camera library ('' = the first one installed)")
    serial: str = spec("", help="camera serial ('' = the first camera)")
    autostart: bool = spec(True, help="configure and activate on start")

    def validate(self) -> None:
        if len(self.roi) != 4:
            raise ConfigError(f"roi: expected [x, y, width, height], got {self.roi!r}")


class EventSensorNode(LifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("event_sensor", **kwargs)
        self.params = declare_params(self, EventSensorConfig)
        declare_params(self, DvsConfig, "dvs.")
        self._pub = None
        self._filter: Optional[EventFilter] = None
        self._requested: Optional[tuple] = None
        self._controls_by = "parameters"      # who set the ROI / rate cap / subsampling in force
        self._encoder: Optional[PacketEncoder] = None
        self._packetizer: Optional[Packetizer] = None
        self.images: Optional[ImageEventSource] = None      # source image, once configured
        self._subs: List = []
        self._worker: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.packets = 0
        self.last_stamp_ns = 0      # of the newest packet: the source's time (simulation time for the world)
        # the newest packet's stamp when the ROI in force took effect: packets stamped more than a
        # packet period later are cut by it, and packets up to the next change's are
        self.roi_since_ns = 0
        self.events_out = 0
        self.source_problems = 0
        self.last_problem = ""
        self.diag = Updater(self, hardware_id="event_sensor")
        self.diag.add("event stream", self._diagnose)
        self.add_on_set_parameters_callback(self._on_params)
        if self.params.autostart:
            if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
                self.trigger_activate()

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        self.params = p = read_config(self, EventSensorConfig)
        self.source = p.source
        self.period_us = max(1, int(round(p.event_message_time_threshold * 1e6)))
        try:
            self.dvs = read_config(self, DvsConfig, "dvs.")
            self._open_source()
        except Exception as exc:  # a missing file, package or camera: fail the transition, say why
            self.get_logger().error(f"cannot open source {self.source!r}: {exc}")
            return TransitionCallbackReturn.FAILURE
        if self.source != "world":
            warm_up()  # (the world source warmed up with its renderer)
        self._pub = self.create_lifecycle_publisher(EventPacket, "events", qos.SENSOR)
        self._apply_controls(p.roi, p.erc_mode, p.erc_rate, p.subsample)
        self.get_logger().info(f"configured: source {self.source}, {self.width}x{self.height}, "
                               f"packets every {self.period_us} us")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._subs.append(self.create_subscription(AttentionCommand, "attention", self._on_attention, qos.COMMAND))
        if self.source == "world":
            self._subs.append(self.create_subscription(WorldState, "/world/state", self._on_world_state,
                                                       qos.state(self.params.world_state_depth)))
        elif self.source == "image":
            image_qos = qos.COMMAND if self.params.image_reliable else qos.SENSOR
            self._subs.append(self.create_subscription(Image, self.params.image_topic,
                                                       self._on_image, image_qos))
        else:
            self._stop.clear()
            self._worker = threading.Thread(target=self._replay_loop, name="event-source", daemon=True)
            self._worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=2.0)
            self._worker = None
        for s in self._subs:
            self.destroy_subscription(s)
        self._subs = []
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        if self._pub is not None:
            self.destroy_lifecycle_publisher(self._pub)
        self._pub = self._filter = self._encoder = self._packetizer = self.images = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._stop.set()
        return TransitionCallbackReturn.SUCCESS

    # ------------------------------------------------------------------ sources
    def _open_source(self) -> None:
        p = self.params
        self.follower: Optional[WorldFollower] = None
        self.images = None
        if self.source == "world":
            from ..sim.config import load_world_config

            robot_id = p.robot_id or self.get_namespace().strip("/")
            self.follower = WorldFollower(load_world_config(p.world_config or None), robot_id, self.dvs)
            self.width, self.height = self.follower.size
        elif self.source == "image":
            self.images = ImageEventSource(self.dvs)
            self.width, self.height = 0, 0  # known at the first image
        elif self.source == "bag":
            from ..events.bag import read_event_packets

            first = next(iter(read_event_packets(p.bag, p.bag_topic or None)))[2]
            self.width, self.height = first.width, first.height
        elif self.source == "raw":
            from ..sensors.raw_source import RawReplaySource

            self.raw = RawReplaySource(p.raw_file, self.period_us, realtime=p.replay_realtime)
            self.width, self.height = self.raw.width, self.raw.height
        else:
            from ..sensors.driver import LiveCameraSource

            self.live = LiveCameraSource(p.camera_backend or None, self.period_us, p.serial)
            self.width = self.height = 0
        if self.width:
            self._make_stream(self.width, self.height)

    def _make_stream(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._filter = EventFilter(width, height)
        if self._requested is not None:
            self._filter.set_controls(*self._requested)
        self._encoder = PacketEncoder(width, height, frame_id=self.params.frame_id)
        self._packetizer = Packetizer(width, height, self.period_us)

    # ------------------------------------------------------------------ controls
    def _apply_controls(self, roi, erc_mode, erc_rate, subsample, who: str = "parameters") -> List[str]:
        """Set ROI / rate cap / subsampling; kept and re-applied if the sensor size changes."""
        cap = float(erc_rate) if erc_mode == "enabled" else 0.0
        self._requested = (list(roi), cap, int(subsample) if subsample else None)
        self._controls_by = who
        if self._filter is None:
            return []
        before = self._filter.controls.roi
        warnings = self._filter.set_controls(*self._requested)
        if self._filter.controls.roi != before:
            self.roi_since_ns = self.last_stamp_ns
        for w in warnings:
            self.get_logger().warning(f"{who}: {w}", throttle_duration_sec=1.0)
        return warnings

    def _on_params(self, params) -> SetParametersResult:
        names = {p.name: p.value for p in params}
        if self._filter is not None and any(n.startswith("dvs.") for n in names):
            result = self._set_noise(names)
            if not result.successful:
                return result
        knobs = {"roi", "erc_mode", "erc_rate", "subsample"}
        if not knobs & set(names) or self._filter is None:
            return SetParametersResult(successful=True)
        cur = lambda n: names.get(n, self.get_parameter(n).value)  # noqa: E731
        with self._lock:
            before = self._filter.counters.commands_rejected
            warnings = self._apply_controls(cur("roi"), cur("erc_mode"), cur("erc_rate"), cur("subsample"))
            rejected = self._filter.counters.commands_rejected > before
        return SetParametersResult(successful=not rejected, reason="; ".join(warnings))

    def _set_noise(self, names: dict) -> SetParametersResult:
        """Live change of the emulated pixels' noise rates (validated as at configure)."""
        fixed = sorted(n for n in names if n.startswith("dvs.") and n not in LIVE_DVS)
        if fixed:
            return SetParametersResult(successful=False, reason=f"{', '.join(fixed)} take effect at configure "
                                                                "(deactivate, clean up, configure again)")
        if self.source not in ("world", "image"):
            return SetParametersResult(successful=False, reason=f"source {self.source} is a real sensor: "
                                                                "no emulated noise to change")
        try:
            cfg = from_dict({**asdict(self.dvs), **{n[len("dvs."):]: v for n, v in names.items() if n in LIVE_DVS}},
                            DvsConfig, "dvs")
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.dvs = cfg
        if self.follower is not None:       # also what a rebuilt camera starts from
            self.follower.dvs = cfg
            self.follower.camera.emulator.set_noise(cfg.leak_rate_hz, cfg.shot_noise_rate_hz)
        else:
            self.images.dvs = cfg
            if self.images.emulator is not None:
                self.images.emulator.set_noise(cfg.leak_rate_hz, cfg.shot_noise_rate_hz)
        self.get_logger().info(f"noise now: leak {cfg.leak_rate_hz} Hz, shot noise {cfg.shot_noise_rate_hz} Hz "
                               "per pixel")
        return SetParametersResult(successful=True)

    def _on_attention(self, msg: AttentionCommand) -> None:
        roi = [msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height]
        with self._lock:
            self._apply_controls(roi, "enabled", float(msg.event_rate_cap), msg.subsample,
                                 who=f"attention from {msg.agent_id or '?'} ({msg.reason})")

    # ------------------------------------------------------------------ data paths
    def _emit(self, batch: EventBatch, now_us: int, stamp_offset_ns: int = 0) -> None:
        """Filter, cut into packets of the configured period, publish."""
        with self._lock:
            filtered = self._filter.apply(batch)
            for end_us, part in self._packetizer.push(filtered, now_us):
                self._publish(part, end_us * 1000 + stamp_offset_ns)

    def _publish(self, batch: EventBatch, stamp_ns: int) -> None:
        """Encode one packet and publish it (caller holds the lock)."""
        pkt = self._encoder.encode(batch, stamp_ns=stamp_ns)
        self.last_stamp_ns = stamp_ns
        if self._pub is not None:
            self._pub.publish(packet_to_msg(pkt))
        self.packets += 1
        self.events_out += len(batch)

    def _problem(self, text: str) -> None:
        self.source_problems += 1
        self.last_problem = text
        self.get_logger().warning(text, throttle_duration_sec=2.0)

    def _on_world_state(self, msg: WorldState) -> None:
        try:
            batch = self.follower.on_state(len(msg.robot_ids), msg.step, lambda w: apply_world_state(msg, w))
        except ValueError as exc:
            self._problem(f"world state rejected: {exc}")
            return
        if batch is not None:
            self._emit(batch, self.follower.world.time_us)

    def _on_image(self, msg: Image) -> None:
        stamp_us = stamp_to_ns(msg.header.stamp) // 1000
        batch = self.images.feed(msg.encoding, msg.width, msg.height, msg.step, msg.data, stamp_us,
                                 bool(msg.is_bigendian))
        c = self.images.counters
        if batch is None:
            self._problem(f"image rejected: {c.last_problem}")
            return
        if (self.width, self.height) != (msg.width, msg.height):
            if self.width:
                self._problem(c.last_problem)
            self._make_stream(msg.width, msg.height)
        self._emit(batch, stamp_us)

    def _replay_loop(self) -> None:
        p = self.params
        wanted = p.wait_for_subscribers
        while wanted and not self._stop.is_set() and self._pub.get_subscription_count() < wanted:
            time.sleep(0.01)
        # matched on our side; the subscriber's side may need a moment more before it accepts data
        self._stop.wait(p.replay_delay_s)
        try:
            while not self._stop.is_set():
                offset = self.get_clock().now().nanoseconds
                if self.source == "bag":
                    self._replay_bag(p.bag, p.bag_topic or None, p.replay_realtime)
                elif self.source == "raw":
                    first = None
                    for end_us, batch in self.raw:
                        if self._stop.is_set():
                            return
                        first = end_us if first is None else first
                        self._emit(batch, end_us, offset - first * 1000)
                else:
                    for end_us, batch in self.live:
                        if self._stop.is_set():
                            return
                        if (batch.width, batch.height) != (self.width, self.height):
                            self._make_stream(batch.width, batch.height)
                        self._emit(batch, end_us, offset)
                if not p.replay_loop:
                    break
        except Exception as exc:
            self._problem(f"source stopped: {type(exc).__name__}: {exc}")

    def _replay_bag(self, bag: str, topic: Optional[str], realtime: bool) -> None:
        from ..sensors.bag_source import BagReplaySource

        decoder = PacketStreamDecoder()
        shift = None
        for _, pkt in BagReplaySource(bag, topic, realtime=realtime):
            if self._stop.is_set():
                return
            batch = decoder.decode(pkt)
            if batch is None:
                self._problem(f"bag packet rejected: {decoder.counters.last_problem}")
                continue
            if shift is None:
                shift = self.get_clock().now().nanoseconds - pkt.stamp_ns
            with self._lock:  # a bag's packets keep their own boundaries and stamps (shifted to now)
                self._publish(self._filter.apply(batch), pkt.stamp_ns + shift)

    # ------------------------------------------------------------------ health
    def _diagnose(self, st: Status) -> None:
        if self._filter is None:
            if self.images is not None:       # source image: its size comes with the first image
                st.summary(WARN, f"no image taken yet on {self.params.image_topic}")
                self._diagnose_images(st)
            else:
                st.summary(WARN, f"not active (source {self.params.source})")
            return
        c = self._filter.counters
        st.summary(OK, "streaming" if self.packets else "no packets yet")
        if self.source_problems:
            st.merge(WARN, self.last_problem)
        if c.commands_rejected or c.commands_clamped:
            st.merge(WARN, c.last_warning)
        ctl = self._filter.controls
        with self._lock:        # one instant: the ROI, when it took effect, the newest packet
            roi, roi_since_ns, stamp_ns = ctl.roi, self.roi_since_ns, self.last_stamp_ns
        st.add_all({
            "source": self.source, "sensor": f"{self.width}x{self.height}", "packets": self.packets,
            "stamp_s": f"{stamp_ns * 1e-9:.6f}",
            "events_in": c.events_in, "events_out": self.events_out,
            "events_pending": self._packetizer.pending_events if self._packetizer is not None else 0,
            "dropped_time_reset": self._packetizer.dropped_on_restart if self._packetizer is not None else 0, "dropped_roi": c.dropped_roi,
            "dropped_subsample": c.dropped_subsample, "dropped_rate_cap": c.dropped_rate_cap,
            "roi": "full" if roi is None else f"{roi.x_offset},{roi.y_offset},{roi.width},{roi.height}",
            "roi_since_s": f"{roi_since_ns * 1e-9:.6f}",
            "rate_cap_ev_s": ctl.rate_cap_ev_s, "subsample": ctl.subsample, "controls_by": self._controls_by,
            "commands": c.commands, "commands_clamped": c.commands_clamped,
            "commands_rejected": c.commands_rejected, "source_problems": self.source_problems,
        })
        if self.source == "world" and self.follower is not None:
            missed = self.follower.missed_states
            st.add("missed_world_states", missed)
            st.add("world_time_resets", self.follower.time_resets)
            st.add("first_world_step", "" if self.follower.first_step is None else self.follower.first_step)
            if missed:
                st.merge(WARN, f"{missed} world states missed (frames skipped)")
        if self.source == "image":
            self._diagnose_images(st)

    def _diagnose_images(self, st: Status) -> None:
        ic = self.images.counters
        st.add_all({"images": ic.frames, "images_rejected": ic.rejected, "image_size_changes": ic.size_changes})
        if ic.rejected and not ic.frames:
            st.merge(ERROR, f"every image rejected: {ic.last_problem}")


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(EventSensorNode, args))


if __name__ == "__main__":
    main()
