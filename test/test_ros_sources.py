"""event_sensor with other sources over real DDS: Image emulation, bag replay, recording."""
from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from event_camera_msgs.msg import EventPacket
from geometry_msgs.msg import Twist
from sensor_msgs.msg import Image

from ros_helpers import PROBE_QOS, SENSOR, WORLD, NodeProcess, Probe, diag_values
from snn_autonomy.events.packet import PacketStreamDecoder
from snn_autonomy.ros import qos
from snn_autonomy.ros.convert import msg_to_packet, ns_to_stamp
from snn_autonomy.sensors.image import ImageEventSource
from snn_autonomy.sensors.packetizer import Packetizer
from snn_autonomy.sim.config import load_world_config, with_robot_count
from snn_autonomy.sim.world import World



def test_image_topic_emulation_node():
    """source=image: a camera stream (as ros_gz_bridge delivers it) becomes events."""
    probe = Probe("image_probe")
    n = probe.node
    packets, diag = [], []
    n.create_subscription(EventPacket, "/cam/events", packets.append, PROBE_QOS)
    n.create_subscription(DiagnosticArray, "/diagnostics", diag.append, 10)
    pub = n.create_publisher(Image, "/cam/image_raw", qos.COMMAND)
    world = World(with_robot_count(load_world_config(), 1))
    frames = []
    for _ in range(120):
        world.set_command(0, 0.5, 1.5)
        world.step()
        frames.append((world.time_us, (world.render(0) * 255).astype(np.uint8)))
    with NodeProcess(SENSOR, {"source": "image", "frame_id": "cam", "image_reliable": True},
                     namespace="/cam"):
        probe.spin_until(lambda: pub.get_subscription_count() > 0 and n.count_publishers("/cam/events") > 0, 60,
                         "event_sensor to subscribe and publish")
        # This writer sees the sensor's reader before the sensor may take images (its reader can
        # match this writer later, and the node spins only once it has started): an image it
        # refuses, sent until /diagnostics counts one, shows both, and leaves its emulator untouched.
        bad = Image(encoding="yuv422", width=128, height=96, step=256, data=bytes(256 * 96))
        sent_bad, deadline = 0, time.monotonic() + 30.0
        while int(diag_values(diag, "event_sensor").get("images_rejected", 0)) < 1 and time.monotonic() < deadline:
            pub.publish(bad)
            sent_bad += 1
            probe.spin_for(0.2)
        # before any image is taken, the status says why: every image so far was refused
        refused = [st for m in diag for st in m.status if "event_sensor" in st.name
                   and any(kv.key == "images_rejected" for kv in st.values)][-1]
        assert refused.level == DiagnosticStatus.ERROR and "every image rejected" in refused.message, refused
        assert "yuv422" in refused.message
        for t_us, img in frames:
            msg = Image(encoding="mono8", width=128, height=96, step=128, data=img.tobytes())
            msg.header.stamp = ns_to_stamp(t_us * 1000)
            pub.publish(msg)
            probe.spin_for(0.01)
        last_end = (frames[-1][0] // 1000) * 1000
        probe.spin_until(lambda: packets and packets[-1].header.stamp.nanosec >= last_end * 1000 % 10**9, 20,
                         "the last packet")
        probe.spin_until(lambda: diag_values(diag, "event_sensor").get("images") == str(len(frames)), 10,
                         "diagnostics to count every image")
        assert 1 <= int(diag_values(diag, "event_sensor")["images_rejected"]) <= sent_bad
    src = ImageEventSource()
    pk = Packetizer(128, 96, 1000)
    expected = {}
    for t_us, img in frames:
        batch = src.feed("mono8", 128, 96, 128, img.tobytes(), t_us)
        for end_us, b in pk.push(batch, t_us):
            expected[end_us] = b
    dec = PacketStreamDecoder()
    got = {p.header.stamp.sec * 10**6 + p.header.stamp.nanosec // 1000: dec.decode(msg_to_packet(p)) for p in packets}
    assert len(got) > 100 and sum(len(b) for b in got.values()) > 1000
    for end_us, b in got.items():
        np.testing.assert_array_equal(b.events, expected[end_us].events)
    assert packets[0].header.frame_id == "cam" and packets[0].encoding == "evt3"
    probe.close()


def test_bag_replay_node(evt3_bag):
    probe = Probe("bag_probe")
    packets = []
    probe.node.create_subscription(EventPacket, "/replay/events", packets.append, PROBE_QOS)
    with NodeProcess(SENSOR, {"source": "bag", "bag": str(evt3_bag), "replay_realtime": True,
                              "wait_for_subscribers": 1, "replay_delay_s": 1.0}, namespace="/replay") as node:
        try:
            probe.spin_until(lambda: len(packets) >= 105, 60, "all 105 replayed packets")
        except AssertionError:
            raise AssertionError(f"{len(packets)} packets, seqs {[m.seq for m in packets]}; node log:\n{node.log()[-3000:]}")
    dec = PacketStreamDecoder()
    batches = [dec.decode(msg_to_packet(m)) for m in packets]
    assert sum(len(b) for b in batches) == 82469
    assert sum(len(b.triggers) for b in batches) == 2
    assert [m.seq for m in packets] == list(range(105))
    probe.close()


def test_missing_source_fails_configure_with_a_clear_message(tmp_path):
    with NodeProcess(SENSOR, {"source": "raw", "raw_file": str(tmp_path / "none.raw")}) as node:
        deadline = time.monotonic() + 30
        while "cannot open source" not in node.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "cannot open source 'raw'" in node.log()
        assert node.alive()  # the node stays up, unconfigured, for a lifecycle manager to retry


def test_events_record_cli_writes_a_readable_mcap(tmp_path, evt3_bag):
    import json
    import subprocess
    import sys

    from snn_autonomy.events.bag import bag_topics, read_event_packets

    out = tmp_path / "rec"
    rec = subprocess.Popen([sys.executable, "-m", "snn_autonomy.cli", "events", "record", "--out", str(out),
                            "--duration", "8", "--json"], stdout=subprocess.PIPE, text=True)
    with NodeProcess(SENSOR, {"source": "bag", "bag": str(evt3_bag), "wait_for_subscribers": 1, "replay_delay_s": 1.0},
                     namespace="/replay"):
        summary = json.loads(rec.communicate(timeout=60)[0])
    assert rec.returncode == 0
    assert summary["topics"] == {"/replay/events": 105}
    assert [(t.name, t.count) for t in bag_topics(out)] == [("/replay/events", 105)]
    dec = PacketStreamDecoder()
    assert sum(len(dec.decode(p)) for _, _, p in read_event_packets(out)) == 82469


def test_events_record_cli_stopped_by_ctrl_c_writes_every_message_it_counted(tmp_path, evt3_bag):
    """Ctrl-C while packets stream in: exit 0 and a readable file that holds each message the summary counts."""
    import json
    import signal
    import subprocess
    import sys

    from snn_autonomy.events.bag import bag_topics, read_event_packets

    out = tmp_path / "rec"
    # the replay starts once both the recorder and this probe subscribe; the probe's packets say
    # the stream is flowing to the recorder too (a fixed sleep was too short on a loaded machine)
    probe = Probe("record_probe")
    seen: list = []
    probe.node.create_subscription(EventPacket, "/replay/events", seen.append, PROBE_QOS)
    rec = subprocess.Popen([sys.executable, "-m", "snn_autonomy.cli", "events", "record", "--out", str(out),
                            "--topics", "/replay/events", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        with NodeProcess(SENSOR, {"source": "bag", "bag": str(evt3_bag), "wait_for_subscribers": 2,
                                  "replay_delay_s": 1.0, "replay_loop": True}, namespace="/replay"):
            probe.spin_until(lambda: len(seen) >= 50, 120, "the replay to stream to the recorder and the probe")
            rec.send_signal(signal.SIGINT)
            summary = json.loads(rec.communicate(timeout=60)[0])
    finally:
        if rec.poll() is None:
            rec.kill()
        probe.close()
    assert rec.returncode == 0
    counted = summary["topics"]["/replay/events"]
    assert counted > 0, summary
    assert [(t.name, t.count) for t in bag_topics(out)] == [("/replay/events", counted)]
    assert len(list(read_event_packets(out))) == counted


def test_world_node_reports_a_collision_and_rejects_nan_commands(tmp_path):
    from snn_autonomy_msgs.msg import Collision

    world_yaml = tmp_path / "wall.yaml"
    world_yaml.write_text("world:\n  arena: {size_m: [4.0, 3.0], moving_obstacles: {count: 0}}\n"
                          "  robots: {count: 1, start_poses: [[3.2, 1.5, 0.0]]}\n")
    probe = Probe("collision_probe")
    n = probe.node
    hits, diag = [], []
    n.create_subscription(Collision, "/robot_0/collisions", hits.append, qos.COMMAND)
    n.create_subscription(DiagnosticArray, "/diagnostics", diag.append, 10)
    cmd = n.create_publisher(Twist, "/robot_0/cmd_vel", qos.COMMAND)
    with NodeProcess(WORLD, {"world_config": str(world_yaml)}) as node:
        probe.spin_until(lambda: cmd.get_subscription_count() > 0, 60, "world to come up")
        bad = Twist()
        bad.linear.x = float("nan")
        cmd.publish(bad)
        fwd = Twist()
        fwd.linear.x = 0.6
        deadline_hits = lambda: bool(hits)  # noqa: E731
        for _ in range(100):
            cmd.publish(fwd)
            probe.spin_for(0.05)
            if deadline_hits():
                break
        assert hits and hits[0].other_kind == Collision.WALL and hits[0].robot_id == "robot_0", node.log()[-2000:]
        # the NaN sent first, then again until it shows: each one is refused and counted
        rejected = lambda: int(diag_values(diag, "world").get("rejected_cmd_vel", 0))  # noqa: E731
        deadline = time.monotonic() + 60
        while rejected() < 1 and time.monotonic() < deadline:
            cmd.publish(bad)
            probe.spin_for(0.2)
        assert rejected() >= 1, "no NaN command was counted in 60 s"
    probe.close()


def test_an_aedat4_file_replays_to_decisions(tmp_path):
    """An iniVation AEDAT4 recording: `events info` reads it (not taken for RAW), and the event
    sensor replays it (source raw) to a perception node that decides on it."""
    import json
    import subprocess
    import sys

    from snn_autonomy.events.aedat4 import write_aedat4
    from snn_autonomy.events.batch import EventBatch

    rng = np.random.default_rng(6)
    n = 120_000                                           # one second of a busy 128x96 scene
    t = np.sort(rng.integers(1_700_000_000_000_000, 1_700_000_001_000_000, n))
    path = tmp_path / "dvxplorer.aedat4"
    write_aedat4(path, EventBatch.from_arrays(rng.integers(0, 128, n), rng.integers(0, 96, n), t,
                                              rng.integers(0, 2, n), 128, 96), camera="DVXplorer_test")
    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "events", "info", str(path), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert (info["kind"], info["events"], info["width"], info["height"]) == ("aedat4", n, 128, 96)
    assert (info["t_first_us"], info["t_last_us"]) == (int(t[0]), int(t[-1]))
    for name, blob in (("garbage", b"#!AER-DAT4.0\r\nnot a file table"), ("cut", path.read_bytes()[:3000])):
        bad = tmp_path / f"{name}.aedat4"
        bad.write_bytes(blob)
        p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "events", "info", str(bad), "--json"],
                           capture_output=True, text=True, timeout=120)
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1 and "AEDAT4" in lines[0] and len(lines[0]) < 400, p.stderr
    _replay_decides({"source": "raw", "raw_file": str(path)}, "/dvx")


def _replay_decides(source: dict, ns: str) -> None:
    """The event sensor replays `source` to a perception node, which decides on it."""
    from snn_autonomy_msgs.msg import Perception

    from ros_helpers import PERCEPTION

    probe = Probe("replay_probe")
    got = []
    probe.node.create_subscription(Perception, f"{ns}/perception", got.append, qos.COMMAND)
    perception = NodeProcess(PERCEPTION, namespace=ns).start()
    # looped: perception may still be warming up when the first pass ends on a loaded machine
    sensor = NodeProcess(SENSOR, {**source, "replay_realtime": True, "replay_loop": True, "wait_for_subscribers": 1,
                                  "replay_delay_s": 1.0}, namespace=ns).start()
    try:
        probe.spin_until(lambda: len(got) >= 3, 90, f"decisions on the replay of {source}")
    except AssertionError:
        raise AssertionError(f"{len(got)} decisions\n{sensor.log()[-2000:]}\n{perception.log()[-2000:]}")
    finally:
        codes = [sensor.stop(), perception.stop()]
        probe.close()
    assert codes == [0, 0]


def test_a_bag_with_older_metadata_replays_to_decisions(tmp_path):
    """A bag whose metadata.yaml names no storage and no files (older writers): the event sensor
    replays it by its file's extension, and perception decides on it."""
    import yaml

    from snn_autonomy.events.bag import McapBagWriter, packet_to_dict
    from snn_autonomy.events.batch import EventBatch
    from snn_autonomy.events.packet import EVENT_PACKET_TYPE, PacketEncoder

    rng = np.random.default_rng(9)
    enc = PacketEncoder(128, 96)
    bag = tmp_path / "old"
    with McapBagWriter(bag) as w:
        for k in range(1000):                             # 2 s of 2 ms packets
            t = 1_000_000 + 2000 * k
            b = EventBatch.from_arrays(rng.integers(0, 128, 300), rng.integers(0, 96, 300),
                                       np.sort(rng.integers(t, t + 2000, 300)), rng.integers(0, 2, 300), 128, 96)
            w.write("/cam/events", EVENT_PACKET_TYPE, packet_to_dict(enc.encode(b, (t + 2000) * 1000)), (t + 2000) * 1000)
    meta = bag / "metadata.yaml"
    doc = yaml.safe_load(meta.read_text())
    doc["rosbag2_bagfile_information"].update(storage_identifier="", files=[], relative_file_paths=[])
    meta.write_text(yaml.safe_dump(doc))
    _replay_decides({"source": "bag", "bag": str(bag)}, "/old")
