"""Recording topics over DDS into an MCAP rosbag2 (what `ros2 bag record` does, for
installs without rosbag2). Messages are stored as received (serialised CDR), so
recording costs no deserialisation; the file opens in Foxglove, `ros2 bag` and `rosbags`.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message

from ..events.bag import McapBagWriter

# Best effort subscribes to both reliable and best-effort publishers.
RECORD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.BEST_EFFORT,
                        durability=DurabilityPolicy.VOLATILE)


def get_message(type_name: str):
    """The message class of "pkg/msg/Name"."""
    import importlib

    pkg, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


class TopicRecorder:
    """Subscribes (raw) to topics on `node` and writes them to `out_dir` until `close()`.

    Topics may be given before they exist: `discover()` subscribes to those that have
    appeared (and, with `all_of_types`, to every topic of those types). `listeners` get the
    messages of their topic, deserialised, after they are written: one subscription serves
    both (a second reader of the same topic would cost every publisher another delivery)."""

    def __init__(self, node: Node, out_dir: Path, topics: Iterable[str] = (),
                 all_of_types: Iterable[str] = (),
                 listeners: Optional[Dict[str, Callable[[Any], None]]] = None) -> None:
        self.node = node
        self.wanted = set(topics)
        self.types = set(all_of_types)
        self.listeners = dict(listeners or {})
        self.writer = McapBagWriter(Path(out_dir), qos_sensor_data_topics=[]).__enter__()
        self.subs: Dict[str, object] = {}
        self.counts: Dict[str, int] = {}
        self._lock = threading.Lock()
        self._closed = False

    def discover(self) -> List[str]:
        new = []
        for name, types in self.node.get_topic_names_and_types():
            if name in self.subs or not types:
                continue
            # only once a publisher exists: its QoS decides how to subscribe (a latched topic seen
            # first through its subscribers must not be subscribed volatile)
            if (name in self.wanted or types[0] in self.types) and self.node.count_publishers(name) > 0:
                self._subscribe(name, types[0])
                new.append(name)
        return new

    def _subscribe(self, topic: str, msgtype: str) -> None:
        cls = get_message(msgtype)
        self.counts[topic] = 0
        listener = self.listeners.get(topic)

        def on_msg(data: bytes, topic=topic, msgtype=msgtype) -> None:
            with self._lock:
                if self._closed:
                    return
                self.writer.write_raw(topic, msgtype, data, time.time_ns())
                self.counts[topic] += 1
            if listener is not None:
                listener(deserialize_message(data, cls))

        self.subs[topic] = self.node.create_subscription(cls, topic, on_msg, self._qos_for(topic), raw=True)

    def _qos_for(self, topic: str) -> QoSProfile:
        """Best effort in general; reliable and transient local where a publisher latches (a
        plan, an assignment), so that what was published before the recorder joined is kept."""
        infos = self.node.get_publishers_info_by_topic(topic)
        if infos and any(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos):
            return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.TRANSIENT_LOCAL)
        return RECORD_QOS

    def close(self) -> Dict[str, int]:
        with self._lock:
            if not self._closed:
                self._closed = True
                for s in self.subs.values():
                    self.node.destroy_subscription(s)
                self.writer.__exit__(None, None, None)
        return dict(self.counts)


def record(out_dir: Path, topics: Iterable[str] = (), all_of_types: Iterable[str] = (),
           duration_s: Optional[float] = None) -> Dict[str, int]:
    """Record until `duration_s` passes or Ctrl-C (SIGINT or SIGTERM); returns messages per topic.
    The signal only asks the loop to stop, so that it never lands in the middle of writing a
    message to the file."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from .spin import ShutdownSignals

    signals = ShutdownSignals()
    rclpy.init()
    node = rclpy.create_node("snn_autonomy_recorder")
    rec = TopicRecorder(node, out_dir, topics, all_of_types)
    t_end = None if duration_s is None else time.monotonic() + duration_s
    next_discover = 0.0
    signals.spinning = True
    try:
        while signals.received is None and rclpy.ok() and (t_end is None or time.monotonic() < t_end):
            if time.monotonic() >= next_discover:
                rec.discover()
                next_discover = time.monotonic() + 0.5
            rclpy.spin_once(node, timeout_sec=0.05)
    except ExternalShutdownException:     # rclpy's own signal handler shut the context down first
        pass
    except Exception:
        # the same, between the loop's look at the context and the executor's wait ("context is
        # not valid"); what was received is still written below
        if not signals.explain(rclpy.ok()):
            raise
    finally:
        counts = rec.close()
        node.destroy_node()
        rclpy.try_shutdown()
        signals.ignore_further()
    return counts
