"""rosbag2 bags of EventPackets: read (sqlite3 or MCAP storage) and write (MCAP).

Reading uses `rosbags` (no ROS installation needed); writing uses the MCAP
library with its ROS 2 support and adds the rosbag2 `metadata.yaml`, so the
result opens in `ros2 bag`, Foxglove and `rosbags` alike. Message definitions
come from one typestore that knows the stock ROS 2 types, EventPacket and
whatever else a caller registers; a recording whose own definition of a type differs
from that one (made before a message gained a field) is read with its own.
"""
from __future__ import annotations

import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import yaml

from .errors import EventFormatError
from .packet import EVENT_PACKET_MSG, EVENT_PACKET_TYPE, EventPacketData

_TYPESTORE = None


def typestore():
    """The shared rosbags typestore (ROS 2 Kilted types + EventPacket)."""
    global _TYPESTORE
    if _TYPESTORE is None:
        from rosbags.typesys import Stores, get_typestore, get_types_from_msg

        store = get_typestore(Stores.ROS2_KILTED)
        store.register(get_types_from_msg(EVENT_PACKET_MSG, EVENT_PACKET_TYPE))
        _TYPESTORE = store
    return _TYPESTORE


def register_msg(type_name: str, msg_text: str) -> None:
    """Make another message type known to readers and writers ("pkg/msg/Name")."""
    from rosbags.typesys import get_types_from_msg

    typestore().register(get_types_from_msg(msg_text, type_name))


def _interface_share_dirs(package: str) -> List[Path]:
    dirs = []
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory(package)))
    except (ImportError, LookupError, OSError):   # OSError: no AMENT_PREFIX_PATH (a plain venv)
        pass
    dirs.append(Path(sys.prefix) / "share" / package)  # interfaces built into a virtual environment
    return dirs


def ensure_type(type_name: str) -> None:
    """Know `type_name` ("pkg/msg/Name"), registering its package's .msg files from the
    installed share directory when the stock types do not include it."""
    store = typestore()
    if type_name in store.fielddefs:
        return
    from rosbags.typesys import get_types_from_msg

    package = type_name.split("/")[0]
    for share in _interface_share_dirs(package):
        files = sorted((share / "msg").glob("*.msg"))
        if files:
            types = {}
            for f in files:
                types.update(get_types_from_msg(f.read_text(), f"{package}/msg/{f.stem}"))
            store.register(types)
            break
    if type_name not in store.fielddefs:
        raise EventFormatError(f"no definition of {type_name} found (is its interface package installed?)")


def _connection_store(conn: Any) -> Any:
    """The typestore to deserialise connection `conn` of an open reader with: the shared one,
    unless the recording carries a definition of the connection's type (and of the types it
    uses) that differs from the shared one's, as a recording made before a message gained a
    field does; then a store of the recording's own definitions. CDR has no field names or
    lengths, so reading such a message with today's definition fails or misreads it."""
    from rosbags.interfaces import MessageDefinitionFormat
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = typestore()
    msgdef = getattr(conn, "msgdef", None)
    own: Dict[str, Any] = {}
    if msgdef is not None and msgdef.format == MessageDefinitionFormat.MSG and msgdef.data:
        try:
            own = get_types_from_msg(msgdef.data, conn.msgtype)
        except Exception:      # a definition rosbags cannot parse: read with ours, as before
            own = {}
    if not own:
        ensure_type(conn.msgtype)
        return store
    if _known(conn.msgtype) and all(store.fielddefs.get(name) == fields for name, fields in own.items()):
        return store
    recorded = get_typestore(Stores.EMPTY)
    recorded.register(own)
    return recorded


def _known(type_name: str) -> bool:
    try:
        ensure_type(type_name)
    except EventFormatError:
        return False
    return True


def stamp_ns(stamp: Any) -> int:
    """A builtin_interfaces/Time (an rclpy message's or a recording's) in nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def packet_from_msg(msg: Any) -> EventPacketData:
    return EventPacketData(
        stamp_ns=stamp_ns(msg.header.stamp),
        frame_id=str(msg.header.frame_id), width=int(msg.width), height=int(msg.height),
        seq=int(msg.seq), time_base=int(msg.time_base), encoding=str(msg.encoding),
        is_bigendian=bool(msg.is_bigendian), events=msg.events.tobytes())


@dataclass
class BagTopic:
    name: str
    msgtype: str
    count: int


STORAGE_BY_SUFFIX = {".mcap": "mcap", ".db3": "sqlite3"}


@contextmanager
def _open_reader(path: Path):
    """An open rosbags Reader of the bag at `path`. Metadata that `ros2 bag` reads but rosbags
    refuses (an empty `storage_identifier`, no file list: older writers) is completed from the
    data files' extensions, in a temporary copy of metadata.yaml beside links to the files.
    Any failure to open is an EventFormatError."""
    from rosbags.rosbag2 import Reader, ReaderError

    path = Path(path)
    meta_file = path / "metadata.yaml"
    if not meta_file.exists():
        raise EventFormatError(f"{path} is not a rosbag2 directory (no metadata.yaml)")
    with tempfile.TemporaryDirectory(prefix="snn-bag-") as tmp:
        fixed = _completed_metadata(path, meta_file, Path(tmp))
        reader = Reader(fixed or path)
        try:
            reader.open()
        except (ReaderError, OSError) as exc:
            raise EventFormatError(f"cannot open bag {path}: {exc}") from exc
        try:
            yield reader
        finally:
            reader.close()


def _completed_metadata(path: Path, meta_file: Path, tmp: Path) -> Optional[Path]:
    """A directory in `tmp` with metadata.yaml completed (storage and files inferred from the data
    files' extensions) and links to the data files, or None when the bag needs nothing."""
    try:
        doc = yaml.safe_load(meta_file.read_text())
        info = doc["rosbag2_bagfile_information"]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        why = " ".join(str(exc).split())      # YAML errors span lines; a refusal is one
        raise EventFormatError(f"cannot open bag {path}: unreadable metadata.yaml ({why})") from exc
    listed = [Path(p).name for p in info.get("relative_file_paths") or []]
    files = [n for n in listed if (path / n).exists()] or sorted(
        f.name for f in path.iterdir() if f.suffix in STORAGE_BY_SUFFIX)
    storage = info.get("storage_identifier") or ""
    if storage in STORAGE_BY_SUFFIX.values() and files == listed:
        return None
    kinds = {STORAGE_BY_SUFFIX.get(Path(n).suffix) for n in files}
    if not files or len(kinds) != 1 or None in kinds:
        raise EventFormatError(f"cannot open bag {path}: storage {storage!r} and no .mcap or .db3 file to tell it by "
                               f"(files: {', '.join(files) or 'none'})")
    info["storage_identifier"] = kinds.pop()
    info["relative_file_paths"] = files
    info.pop("files", None)              # per-file details are optional; stale ones would mislead
    for n in files:
        (tmp / n).symlink_to((path / n).resolve())
    (tmp / "metadata.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp


def bag_topics(path: Path) -> List[BagTopic]:
    with _open_reader(path) as reader:
        return [BagTopic(c.topic, c.msgtype, c.msgcount) for c in reader.connections]


def read_event_packets(path: Path, topic: Optional[str] = None) -> Iterator[Tuple[str, int, EventPacketData]]:
    """Yield (topic, receive time ns, packet) for every EventPacket in the bag, in time order.

    With `topic`, only that topic; it must exist and carry EventPackets, else
    EventFormatError names what the bag has instead.
    """
    with _open_reader(path) as reader:
        conns = [c for c in reader.connections if c.msgtype == EVENT_PACKET_TYPE]
        if topic is not None:
            match = [c for c in reader.connections if c.topic == topic]
            if not match:
                raise EventFormatError(
                    f"topic {topic!r} not in bag; it has: "
                    + ", ".join(f"{c.topic} [{c.msgtype}]" for c in reader.connections))
            if match[0].msgtype != EVENT_PACKET_TYPE:
                raise EventFormatError(f"topic {topic!r} carries {match[0].msgtype}, not {EVENT_PACKET_TYPE}")
            conns = match
        if not conns:
            raise EventFormatError(
                f"no {EVENT_PACKET_TYPE} topic in bag; it has: "
                + ", ".join(f"{c.topic} [{c.msgtype}]" for c in reader.connections))
        for conn, t_ns, msg in _deserialised(reader, conns):
            yield conn.topic, t_ns, packet_from_msg(msg)


def _deserialised(reader: Any, conns: List[Any]) -> Iterator[Tuple[Any, int, Any]]:
    """(connection, receive time ns, message) of `conns` in time order, each read with its
    connection's definitions (`_connection_store`); a message that does not deserialise is an
    EventFormatError naming it."""
    from rosbags.serde import SerdeError

    stores = {c.id: _connection_store(c) for c in conns}
    for conn, t_ns, raw in reader.messages(connections=conns):
        try:
            msg = stores[conn.id].deserialize_cdr(raw, conn.msgtype)
        except (SerdeError, ValueError, IndexError, AssertionError) as exc:
            raise EventFormatError(f"corrupt {conn.msgtype} message at {t_ns} ns on {conn.topic}: {exc}") from exc
        yield conn, int(t_ns), msg


def packet_to_dict(pkt: EventPacketData) -> Dict[str, Any]:
    """The message as the MCAP ROS 2 serializer takes it."""
    return {
        "header": {"stamp": {"sec": pkt.stamp_ns // 1_000_000_000, "nanosec": pkt.stamp_ns % 1_000_000_000},
                   "frame_id": pkt.frame_id},
        "height": pkt.height, "width": pkt.width, "seq": pkt.seq, "time_base": pkt.time_base,
        "encoding": pkt.encoding, "is_bigendian": pkt.is_bigendian, "events": bytes(pkt.events),
    }


class McapBagWriter:
    """Writes a rosbag2 directory with MCAP storage: <dir>/<name>_0.mcap + metadata.yaml.

    Usage:
        with McapBagWriter(out_dir) as bag:
            bag.write(topic, "event_camera_msgs/msg/EventPacket", packet_to_dict(p), t_ns)
    Messages are dicts (or objects with the message's attributes).
    """

    def __init__(self, path: Path, qos_sensor_data_topics: Iterable[str] = ()) -> None:
        self.path = Path(path)
        if self.path.exists() and any(self.path.iterdir()):
            raise EventFormatError(f"{self.path} exists and is not empty; refusing to overwrite a recording")
        self.path.mkdir(parents=True, exist_ok=True)
        self.file = self.path / f"{self.path.name}_0.mcap"
        self._fh = None
        self._writer = None
        self._schemas: Dict[str, Any] = {}
        self._topics: Dict[str, Dict[str, Any]] = {}
        self._t_first: Optional[int] = None
        self._t_last: Optional[int] = None
        self._best_effort = set(qos_sensor_data_topics)

    def __enter__(self) -> "McapBagWriter":
        from mcap_ros2.writer import Writer

        self._fh = open(self.file, "wb")
        self._writer = Writer(self._fh)
        return self

    def write(self, topic: str, msgtype: str, message: Any, t_ns: Optional[int] = None) -> None:
        if self._writer is None:
            raise RuntimeError("McapBagWriter used outside a with-block")
        t_ns = int(time.time_ns() if t_ns is None else t_ns)
        entry = self._entry(topic, msgtype)
        self._writer.write_message(topic, self._schemas[msgtype], message, log_time=t_ns, publish_time=t_ns,
                                   sequence=entry["count"])
        self._count(entry, t_ns)

    def write_raw(self, topic: str, msgtype: str, cdr: bytes, t_ns: int) -> None:
        """Write an already serialised (CDR) message, as a subscription with raw=True receives it."""
        if self._writer is None:
            raise RuntimeError("McapBagWriter used outside a with-block")
        entry = self._entry(topic, msgtype)
        self._writer._writer.add_message(channel_id=entry["channel"], log_time=int(t_ns), data=bytes(cdr),
                                         publish_time=int(t_ns), sequence=entry["count"])
        self._count(entry, int(t_ns))

    def define(self, msgtype: str, msgdef: str) -> None:
        """Record `msgtype` with the definition `msgdef` (ROS 2 .msg text, dependencies after
        '=' lines and 'MSG: ' headers, as recordings store it) instead of the installed one: for
        raw messages copied from a recording made with another version of the type. Before its
        first message only."""
        if self._writer is None:
            raise RuntimeError("McapBagWriter used outside a with-block")
        if msgtype in self._schemas:
            raise EventFormatError(f"{msgtype} is already recorded with another definition")
        self._schemas[msgtype] = self._writer.register_msgdef(msgtype, msgdef)

    def _entry(self, topic: str, msgtype: str) -> Dict[str, Any]:
        schema = self._schemas.get(msgtype)
        if schema is None:
            ensure_type(msgtype)
            text, _ = typestore().generate_msgdef(msgtype, ros_version=2)
            schema = self._schemas[msgtype] = self._writer.register_msgdef(msgtype, text)
        entry = self._topics.get(topic)
        if entry is None:
            entry = self._topics[topic] = {"type": msgtype, "count": 0,
                                           "channel": self._register_channel(topic, schema)}
        elif entry["type"] != msgtype:
            raise EventFormatError(f"topic {topic} already carries {entry['type']}, not {msgtype}")
        return entry

    def _count(self, entry: Dict[str, Any], t_ns: int) -> None:
        entry["count"] += 1
        self._t_first = t_ns if self._t_first is None else min(self._t_first, t_ns)
        self._t_last = t_ns if self._t_last is None else max(self._t_last, t_ns)

    def _register_channel(self, topic: str, schema: Any) -> int:
        # rosbag2 keeps each topic's QoS in the channel metadata as well as in
        # metadata.yaml (readers match the two); the ROS 2 writer registers channels
        # without metadata, so register it first through the underlying MCAP writer.
        qos = yaml.safe_dump(self._qos(topic))
        cid = self._writer._writer.register_channel(
            topic=topic, message_encoding="cdr", schema_id=schema.id,
            metadata={"offered_qos_profiles": qos})
        self._writer._channel_ids[topic] = cid
        return cid

    def _qos(self, topic: str) -> list:
        reliability = "best_effort" if topic in self._best_effort else "reliable"
        return [{"history": "keep_last", "depth": 10, "reliability": reliability, "durability": "volatile",
                 "deadline": {"sec": 0, "nsec": 0}, "lifespan": {"sec": 0, "nsec": 0},
                 "liveliness": "automatic", "liveliness_lease_duration": {"sec": 0, "nsec": 0},
                 "avoid_ros_namespace_conventions": False}]

    def __exit__(self, *exc) -> None:
        self._writer.finish()
        self._fh.close()
        self._writer = None
        t0 = self._t_first or 0
        count = sum(t["count"] for t in self._topics.values())
        meta = {"rosbag2_bagfile_information": {
            "version": 8,
            "storage_identifier": "mcap",
            "duration": {"nanoseconds": (self._t_last or 0) - t0},
            "starting_time": {"nanoseconds_since_epoch": t0},
            "message_count": count,
            "topics_with_message_count": [
                {"topic_metadata": {"name": name, "type": t["type"], "serialization_format": "cdr",
                                    "offered_qos_profiles": yaml.safe_dump(self._qos(name)),
                                    "type_description_hash": ""},
                 "message_count": t["count"]}
                for name, t in self._topics.items()],
            "compression_format": "",
            "compression_mode": "",
            "relative_file_paths": [self.file.name],
            "files": [{"path": self.file.name, "starting_time": {"nanoseconds_since_epoch": t0},
                       "duration": {"nanoseconds": (self._t_last or 0) - t0}, "message_count": count}],
            "custom_data": {"writer": "snn_autonomy"},
            "ros_distro": "kilted",
        }}
        (self.path / "metadata.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))


def read_messages(path: Path, topics: Optional[Iterable[str]] = None) -> Iterator[Tuple[str, int, str, Any]]:
    """Yield (topic, receive time ns, type name, message) of any known type, in time order."""
    with _open_reader(path) as reader:
        wanted = set(topics) if topics is not None else None
        conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
        for conn, t_ns, msg in _deserialised(reader, conns):
            yield conn.topic, t_ns, conn.msgtype, msg
