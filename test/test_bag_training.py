"""Learning from a recording: a bag of the built-in world (events, LiDAR scans, odometry) recorded
over DDS by real nodes, labelled from the LiDAR alone, checked against the simulator's own labels,
and a model fine-tuned on it; and the refusals of bags that cannot be labelled."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry

from ros_helpers import SENSOR, WORLD, NodeProcess, Probe
from snn_autonomy.events.bag import McapBagWriter, packet_to_dict, read_event_packets
from snn_autonomy.events.packet import EVENT_PACKET_TYPE
from snn_autonomy.perception.bag_dataset import ODOM_TYPE, SCAN_TYPE, dataset_from_bag, resolve_topics
from snn_autonomy.perception.errors import ModelFileError, RecordingError
from snn_autonomy.perception.dataset import InputSpec
from snn_autonomy.perception.labels import LabelConfig
from snn_autonomy.perception.rig import RigCamera, load_rig
from snn_autonomy.perception.scan_labels import ContactEstimator, ScanData, camera_sector_ranges
from snn_autonomy.perception.sim_bags import odom_to_dict, scan_to_dict
from snn_autonomy.ros import qos
from snn_autonomy.sim.lidar import LidarScan

ROBOT = "robot_0"
TOPICS = [f"/{ROBOT}/events", f"/{ROBOT}/scan", f"/{ROBOT}/odom", "/world/state"]


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "snn_autonomy.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def world_bag(tmp_path_factory) -> Path:
    """Six simulated seconds of one robot driving arcs, recorded with `snn-autonomy events record`."""
    out = tmp_path_factory.mktemp("bag") / "drive"
    probe = Probe("bag_driver")
    cmd = probe.node.create_publisher(Twist, f"/{ROBOT}/cmd_vel", qos.COMMAND)
    sensor = NodeProcess(SENSOR, namespace=f"/{ROBOT}").start()
    rec = subprocess.Popen([sys.executable, "-m", "snn_autonomy.cli", "events", "record", "--out", str(out),
                            "--topics", *TOPICS, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # the world's clock starts once the sensor and the recorder subscribe to its state
    world = NodeProcess(WORLD, {"robots": 1, "wait_for_subscribers": 2, "real_time_factor": 0.3}).start()
    last = {"t": 0.0}
    probe.node.create_subscription(Odometry, f"/{ROBOT}/odom",
                                   lambda m: last.update(t=m.header.stamp.sec + m.header.stamp.nanosec * 1e-9), qos.COMMAND)
    try:
        twist = Twist()
        deadline = time.monotonic() + 240
        while last["t"] < 6.0 and time.monotonic() < deadline:
            # arcs that turn one way then the other, so that the view sweeps walls and obstacles
            twist.linear.x, twist.angular.z = 0.3, 0.6 * math.copysign(1.0, math.sin(last["t"] * 0.8))
            cmd.publish(twist)
            probe.spin_for(0.05)
        assert last["t"] >= 6.0, "the world's clock did not reach 6 s:\n" + world.log()[-2000:]
    finally:
        world.stop()
        rec.send_signal(2)
        stdout, stderr = rec.communicate(timeout=60)
        sensor.stop()
        probe.close()
    assert rec.returncode == 0, stderr[-3000:]
    counts = json.loads(stdout)["topics"]
    assert all(counts.get(t, 0) > 0 for t in TOPICS), counts
    return out


def test_labels_from_the_lidar_agree_with_the_simulator(world_bag):
    from snn_autonomy.perception.sectors import SectorSpec

    inputs, label, rig = InputSpec(), LabelConfig(), load_rig()
    spec = SectorSpec.for_camera(rig.camera.hfov_deg)      # the built-in rig's 140 deg lens: 14 sectors
    data, report = dataset_from_bag(world_bag, rig, inputs, spec.count, label)
    # one sample per scan (10 Hz over ~6 s) but those whose window precedes the first events
    assert report.scans >= 50 and report.samples >= 40, report
    assert report.samples + sum(report.dropped.values()) == report.scans, report
    assert report.camera == (128, 96) and report.packets_rejected == 0
    assert data.x.shape == (report.samples, inputs.t_max, 2, 48, 64) and data.x.sum() > 0
    assert abs(report.stamp_offset_s) < 0.01         # the world's sensor stamps events on the world's clock
    # the heading over each window, integrated from the odometry's turn rate (the temporal prior
    # turns with it): the arcs turn at 0.6 rad/s, 58 mrad in a 96 ms window
    from snn_autonomy.perception.dataset import META_SPEED_END, META_SPEED_START, META_YAW_END, META_YAW_START

    turn = np.abs(data.meta[:, META_YAW_END] - data.meta[:, META_YAW_START])
    assert np.isfinite(turn).all() and np.median(turn) == pytest.approx(0.6 * 0.096, rel=0.25), turn
    # ... and its forward speed at the window's start and end (the prior holds while it is ~0): 0.3 m/s
    speeds = data.meta[:, [META_SPEED_START, META_SPEED_END]]
    assert np.isfinite(speeds).all() and np.median(speeds) == pytest.approx(0.3, rel=0.1), speeds

    from snn_autonomy.perception.bag_truth import simulator_agreement

    assert data.sector_m.shape[1] == spec.count == 14
    agree = simulator_agreement(world_bag, data, ROBOT, spec, label)
    assert agree["samples"] == report.samples
    # the LiDAR sees from the robot's centre, 1 cm noisy, the camera's rays from its front: the range
    # classes agree but where an edge lies within centimetres of a class boundary or behind an obstacle
    assert agree["class_agreement"] >= 0.85 and agree["within_one_class"] >= 0.95, agree
    assert agree["range_error_median_m"] < 0.05, agree


def test_dataset_and_fine_tune_from_the_bag_on_the_command_line(world_bag, tmp_path):
    p = _cli("dataset", "--bag", world_bag, "--out", tmp_path / "d.npz", "--truth", "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    assert r["samples"] >= 40 and r["topics"]["scan"] == f"/{ROBOT}/scan" and r["truth"]["class_agreement"] > 0.8
    out = tmp_path / "tuned.npz"
    p = _cli("train", "--bag", world_bag, "--init", "models/perception_default.npz", "--epochs", "1",
             "--device", "cpu", "--out", out, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout)
    assert 0.0 <= summary["accuracy_full"] <= 1.0
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["input"]["sensor"] == [128, 96]
    assert manifest["training"]["init"].endswith("perception_default.npz")
    assert [b["bag"] for b in manifest["training"]["bags"]] == [str(world_bag)]
    # and the same eval, on the recording's samples
    p = _cli("eval", "--model", out, "--bag", world_bag, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    assert r["bags"] == [str(world_bag)] and r["samples"] == sum(s["samples"] for s in r["streams"]) >= 40
    assert 0.0 <= r["accuracy_exit"] <= 1.0 and r["mean_steps_exit"] <= 16


# ---------------------------------------------------------------------------------------------- refusals

def test_a_bag_without_a_scan_or_of_two_clocks_is_refused_with_what_to_fix(evt3_bag, tmp_path):
    with pytest.raises(RecordingError, match="no sensor_msgs/msg/LaserScan topic.*--scan-topic"):
        resolve_topics(evt3_bag)
    with pytest.raises(RecordingError, match="no topic '/nope'"):
        resolve_topics(evt3_bag, events="/nope")
    # the real camera's events, with scans and odometry stamped an hour later: two clocks
    bag = tmp_path / "two_clocks"
    with McapBagWriter(bag) as w:
        first = None
        for topic, t_ns, pkt in read_event_packets(evt3_bag):
            w.write(topic, EVENT_PACKET_TYPE, packet_to_dict(pkt), t_ns)
            first = first or pkt.stamp_ns
        for k in range(5):
            t = first + (3600 * 10**9) + k * 10**8
            scan = LidarScan(-math.pi, 2 * math.pi / 360, np.full(360, 2.0, np.float32), 0.15, 12.0, 0.1)
            w.write("/scan", SCAN_TYPE, scan_to_dict(t, "laser", scan), t)
            w.write("/odom", ODOM_TYPE, odom_to_dict(t, "odom", "base_link", 0.0, 0.0, 0.0, 0.3, 0.0), t)
    assert resolve_topics(bag)[0].scan == "/scan"
    with pytest.raises(RecordingError, match="do not overlap.*not synchronised"):
        dataset_from_bag(bag, load_rig(), InputSpec(), 9, LabelConfig())
    p = _cli("dataset", "--bag", bag, "--json")
    assert p.returncode == 2 and "not synchronised" in p.stderr and "Traceback" not in p.stderr, p.stderr
    p = _cli("train", "--bag", bag, "--rig", tmp_path / "missing.yaml", "--json")
    assert p.returncode == 2 and "missing.yaml" in p.stderr and "Traceback" not in p.stderr, p.stderr


# ---------------------------------------------------------------------------------------------- geometry

def test_sector_ranges_follow_the_camera_pose_and_rep117():
    """A wall 1 m ahead of the LiDAR is 0.8 m ahead of a camera 0.2 m forward of it; a camera
    turned 90 degrees left sees the free side; -inf is an obstacle at range_min, NaN nothing."""
    n = 720
    a = -math.pi + 2 * math.pi / n * np.arange(n)
    with np.errstate(divide="ignore"):
        wall = np.where(np.abs(a) < math.pi / 2, 1.0 / np.cos(a), np.inf)     # the line x = 1 m
    scan = ScanData(0, -math.pi, 2 * math.pi / n, wall, 0.15, 12.0)
    r, covered = camera_sector_ranges(scan, RigCamera(90.0, (0.2, 0.0, 0.0)), 9)
    assert covered.all() and r[4] == pytest.approx(0.8, abs=0.01) and np.all(r >= 0.8 - 1e-6)
    assert r[0] == pytest.approx(r[8], abs=0.02)                         # symmetric
    left, covered = camera_sector_ranges(scan, RigCamera(90.0, (0.0, 0.0, 90.0)), 3)
    assert covered.all() and left[0] == math.inf and left[2] == pytest.approx(math.sqrt(2), abs=0.05)
    close = wall.copy()
    close[n // 2] = -np.inf                                               # straight ahead, too near to measure
    r, _ = camera_sector_ranges(ScanData(0, -math.pi, 2 * math.pi / n, close, 0.15, 12.0), RigCamera(), 9)
    assert r[4] == pytest.approx(0.15)
    blind = np.full(n, np.nan)
    _, covered = camera_sector_ranges(ScanData(0, -math.pi, 2 * math.pi / n, blind, 0.15, 12.0), RigCamera(), 9)
    assert not covered.any()


def test_time_to_contact_from_range_rate_and_from_odometry():
    est = ContactEstimator(RigCamera(), 3)
    # the centre sector's obstacle closes at 0.5 m/s while the robot stands (a mover): range rate
    ttc = [est.update(0.1 * k, np.array([np.inf, 2.0 - 0.05 * k, np.inf]), 0.0) for k in range(3)]
    assert ttc[-1][1] == pytest.approx((2.0 - 0.1) / 0.5, rel=0.02) and ttc[-1][0] == math.inf
    # a new obstacle appears in the left sector while the robot drives at 0.4 m/s: its own motion
    ttc = est.update(0.3, np.array([0.6, 1.85, np.inf]), 0.4)
    assert ttc[0] == pytest.approx(0.6 / (0.4 * math.cos(math.radians(30))), rel=0.01)
    # turning on the spot, a falling range is the nearest point sliding along a surface: not closing
    est.reset()
    ttc = [est.update(0.1 * k, np.array([np.inf, 1.0 - 0.05 * k, np.inf]), 0.0, 1.0) for k in range(4)]
    assert np.isinf(ttc[-1]).all()


# ---------------------------------------------------------------------------------------------- other cameras, sqlite3

def _synthetic_bag(path: Path, width: int, height: int, seconds: float = 2.0) -> Path:
    """A DAVIS346-sized camera's random events (1 ms packets), a LiDAR facing a wall 1 m ahead at
    10 Hz and odometry at 50 Hz, one clock: what a robot's own recording holds."""
    from snn_autonomy.events.batch import EventBatch
    from snn_autonomy.events.packet import PacketEncoder

    rng = np.random.default_rng(5)
    enc = PacketEncoder(width, height, "camera")
    n = 720
    a = -math.pi + 2 * math.pi / n * np.arange(n)
    with np.errstate(divide="ignore"):
        wall = np.where(np.abs(a) < math.pi / 2, 1.0 / np.cos(a), np.inf).astype(np.float32)
    t0 = 50 * 10**9
    with McapBagWriter(path) as w:
        for k in range(int(seconds * 1000)):
            t_us = 10_000_000 + 1000 * k           # the camera's own clock, unrelated to the stamps'
            m = 40
            b = EventBatch.from_arrays(rng.integers(0, width, m), rng.integers(0, height, m),
                                       np.sort(rng.integers(t_us, t_us + 1000, m)), rng.integers(0, 2, m), width, height)
            stamp = t0 + k * 10**6 + 10**6
            w.write("/cam/events", EVENT_PACKET_TYPE, packet_to_dict(enc.encode(b, stamp)), stamp)
            if k % 20 == 0:
                w.write("/odom", ODOM_TYPE, odom_to_dict(stamp, "odom", "base_link", 0.0, 0.0, 0.0, 0.2, 0.0), stamp)
            if k % 100 == 0:
                w.write("/scan", SCAN_TYPE, scan_to_dict(stamp, "laser", LidarScan(-math.pi, 2 * math.pi / n, wall,
                                                                                    0.15, 12.0, 0.1)), stamp)
    return path


def _to_sqlite3(src: Path, dst: Path) -> Path:
    from rosbags.rosbag2 import Reader, Writer

    from snn_autonomy.events.bag import typestore

    with Reader(src) as r, Writer(dst, version=8) as w:
        conns = {c.id: w.add_connection(c.topic, c.msgtype, typestore=typestore()) for c in r.connections}
        for c, t, raw in r.messages():
            w.write(conns[c.id], t, raw)
    return dst


def test_any_camera_size_is_pooled_onto_the_grid_from_mcap_or_sqlite3(tmp_path):
    from snn_autonomy.perception.bag_train import run_bag_training
    from snn_autonomy.perception.runtime import StreamingPerception
    from snn_autonomy.perception.train_config import TrainConfig

    mcap = _synthetic_bag(tmp_path / "davis", 346, 260)
    sqlite = _to_sqlite3(mcap, tmp_path / "davis_db3")
    assert next(sqlite.glob("*.db3"))
    from dataclasses import replace

    rig = load_rig()
    rig = replace(rig, camera=RigCamera(90.0, rig.camera.in_lidar))    # a DAVIS346 behind a 90 deg lens: 9 sectors
    results = [dataset_from_bag(b, rig, InputSpec(), 9, LabelConfig()) for b in (mcap, sqlite)]
    (data, report), (data2, _) = results
    assert report.camera == (346, 260) and report.samples >= 18, report
    assert data.x.shape[1:] == (16, 2, 48, 64) and data.x.sum() > 0
    assert np.array_equal(data.x, data2.x) and np.array_equal(data.sector_m, data2.sector_m)
    # the wall 1 m ahead of the LiDAR is 0.838 m ahead of the camera, 0.162 m in front of it
    assert data.sector_m[:, 4] == pytest.approx(0.838, abs=0.01)
    # offset: the packets' stamps are 40 s of the camera's clock ahead of its events
    assert report.stamp_offset_s == pytest.approx(40.0, abs=0.002)
    tiny = TrainConfig(epochs=1, channels=(4, 8), hidden=16, delay_steps=0, device="cpu", batch_size=8)
    out = tmp_path / "davis.npz"
    run_bag_training(tiny, [sqlite, mcap], out, rig, log=lambda s: None)
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["input"]["sensor"] == [346, 260] and manifest["input"]["grid"] == [64, 48]
    assert [b["camera"] for b in manifest["training"]["bags"]] == [[346, 260], [346, 260]]
    eng = StreamingPerception.from_file(out, "torch")
    from snn_autonomy.events.batch import EventBatch

    assert eng.push(EventBatch.empty(128, 96), 1000) == [] and eng.geometry_refused == 1
    from snn_autonomy.perception.evaluate import evaluate

    with pytest.raises(RecordingError, match="camera is 346x260, the model's 128x96"):
        evaluate(None, bags=[mcap], rig=load_rig())
    with pytest.raises(ModelFileError, match="14 sectors span a 140 deg field of view, the camera's is 90 deg"):
        evaluate(None, bags=[mcap], rig=rig)            # the shipped model's sectors over this rig's view
    assert evaluate(out, bags=[mcap], rig=rig)["samples"] == report.samples
