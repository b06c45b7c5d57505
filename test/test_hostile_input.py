"""Hostile input on every subscribed topic, with real nodes over DDS.

One graph in /robot_0 (world, event sensor, perception, control, attention, fleet agent) is started
once; each test throws garbage at one node's subscriptions and checks that the node (a) is still
alive and still doing its job, (b) counted the garbage on /diagnostics, (c) commanded nothing unsafe.
The control node's cmd_vel is remapped to `control_cmd_vel` so that the world hears only this test's
Twists and everything the controller commands can be checked. Perception's `events` is remapped to
`probe_events`, fed by this test only (valid packets between the hostile ones): on two shared cores the
sensor's 1 kHz stream overruns perception's queue, and hostile packets would be lost unseen.
"""
from __future__ import annotations

import math
import random
import time

import pytest

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from event_camera_msgs.msg import EventPacket
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from snn_autonomy_msgs.msg import AgentState, AttentionCommand, Detection, Perception, SharedDetections

from ros_helpers import ATTENTION, CONTROL, FLEET_AGENT, PERCEPTION, SENSOR, WORLD, NodeProcess, Probe, diag_values
from snn_autonomy.ros import qos

NS = "/robot_0"
NAN, INF = math.nan, math.inf
U32 = (1 << 32) - 1


@pytest.fixture(scope="module")
def graph(open_floor_world):
    from snn_autonomy.sim.config import load_world_config

    cam = load_world_config(open_floor_world).camera
    probe = Probe("hostile_probe")
    n = probe.node
    rec = {k: [] for k in ("ctl_cmd", "gt", "perception", "att", "agent", "diag")}
    stamp = lambda m: (time.monotonic(), m)  # noqa: E731
    n.create_subscription(Twist, f"{NS}/control_cmd_vel", lambda m: rec["ctl_cmd"].append(m), qos.COMMAND)
    n.create_subscription(Odometry, f"{NS}/ground_truth", lambda m: rec["gt"].append(stamp(m)), qos.COMMAND)
    n.create_subscription(Perception, f"{NS}/perception", rec["perception"].append, qos.COMMAND)
    n.create_subscription(AttentionCommand, f"{NS}/attention", rec["att"].append, qos.COMMAND)
    n.create_subscription(AgentState, "/fleet/agent_state", rec["agent"].append, qos.COMMAND)
    n.create_subscription(DiagnosticArray, "/diagnostics", rec["diag"].append, 50)
    pub = {"events": n.create_publisher(EventPacket, f"{NS}/probe_events", qos.SENSOR),
           "cmd_vel": n.create_publisher(Twist, f"{NS}/cmd_vel", qos.COMMAND),
           "odom": n.create_publisher(Odometry, f"{NS}/odom", qos.COMMAND),
           "attention": n.create_publisher(AttentionCommand, f"{NS}/attention", qos.COMMAND),
           "perception": n.create_publisher(Perception, f"{NS}/perception", qos.COMMAND),
           "shared": n.create_publisher(SharedDetections, "/fleet/detections", qos.COMMAND)}
    params = {"world_config": open_floor_world}
    # perception reports every 0.1 s, so that each hostile packet's refusal is seen at once
    procs = {"perception": NodeProcess(PERCEPTION, {"diagnostic_updater.period": 0.1}, namespace=NS,
                                       extra=["-r", "events:=probe_events"]).start(),
             "sensor": NodeProcess(SENSOR, params, namespace=NS).start(),
             "control": NodeProcess(CONTROL, params, namespace=NS, extra=["-r", "cmd_vel:=control_cmd_vel"]).start(),
             "attention": NodeProcess(ATTENTION, params, namespace=NS).start(),
             "fleet_agent": NodeProcess(FLEET_AGENT, params, namespace=NS).start(),
             # a third of real time: six nodes and this probe share two cores
             "world": NodeProcess(WORLD, {**params, "wait_for_subscribers": 1, "real_time_factor": 0.3}).start()}
    g = {"probe": probe, "rec": rec, "pub": pub, "procs": procs, "cam": (cam.width, cam.height),
         "stream": _ValidStream(cam.width, cam.height)}
    try:
        probe.spin_until(lambda: n.count_subscribers(f"{NS}/probe_events") > 0, 60, "perception to subscribe")
        deadline = time.monotonic() + 30
        while len(rec["perception"]) < 3 and time.monotonic() < deadline:
            _valid(g, 5)
        probe.spin_until(lambda: len(rec["perception"]) >= 3 and rec["agent"] and len(rec["gt"]) > 5, 30,
                         "the graph to run (world, sensor, perception, fleet agent)")
    except AssertionError:
        for p in procs.values():
            p.stop()
        probe.close()
        raise AssertionError("\n".join(f"--- {k}\n{p.log()[-2000:]}" for k, p in procs.items()))
    yield g
    codes = {k: p.stop() for k, p in reversed(list(procs.items()))}
    probe.close()
    assert all(c == 0 for c in codes.values()), (codes, "\n".join(f"--- {k}\n{p.log()[-3000:]}"
                                                                 for k, p in procs.items()))


class _ValidStream:
    """Valid evt3 packets of random events, 4 ms of sensor time each, stamps and seq continuing."""

    def __init__(self, width, height):
        import numpy as np

        from snn_autonomy.events.packet import PacketEncoder

        self.np, self.rng = np, np.random.default_rng(1)
        self.enc = PacketEncoder(width, height)
        self.w, self.h = width, height
        self.t_us = 1_000_000
        self.stamp_s = 1000.0     # header stamps: like the world's simulation time

    def next(self) -> EventPacket:
        from snn_autonomy.events.batch import EventBatch
        from snn_autonomy.ros.convert import packet_to_msg

        np, r, k = self.np, self.rng, 300
        b = EventBatch.from_arrays(r.integers(0, self.w, k), r.integers(0, self.h, k),
                                   np.sort(r.integers(self.t_us, self.t_us + 4000, k)), r.integers(0, 2, k),
                                   self.w, self.h)
        self.t_us += 4000
        self.stamp_s += 0.004
        return packet_to_msg(self.enc.encode(b, int(round(self.stamp_s * 1e9))))


def _valid(g, count, gap=0.01):
    _send(g, "events", [g["stream"].next() for _ in range(count)], gap=gap)


def _alive(g, *names):
    for name in names:
        p = g["procs"][name]
        assert p.alive(), f"{name} died:\n{p.log()[-4000:]}"


def _diag(g, name_part, after: float = 1.3) -> dict:
    """Newest diagnostics of `name_part` published at least `after` s from now (one Updater period)."""
    rec = g["rec"]
    start = len(rec["diag"])
    g["probe"].spin_until(lambda: diag_values(rec["diag"][start:], name_part), after + 3, f"diagnostics {name_part}")
    g["probe"].spin_for(max(0.0, after - 1.0))
    return diag_values(rec["diag"][start:], name_part)


def _restamp(g, m: EventPacket) -> EventPacket:
    """A hostile packet at the stream's current time, unless it is one of the far-off stamps."""
    if m.header.stamp.sec not in (0, 2_000_000_000):
        m.header.stamp = _packet(1, 1, 0, now=g["stream"].stamp_s).header.stamp
    return m


def _refused(g, m: EventPacket, tries: int = 4) -> bool:
    """Send hostile packet `m` (followed by valid ones) until perception's refusal counter moves.
    Best-effort transport may lose a packet on a busy machine: what is tested is the refusal,
    not delivery, so a packet that left no trace is sent again."""
    for _ in range(tries):
        n0 = int(_diag(g, "robot_0/perception: decisions", after=0.0).get("rejected_packets", 0))
        _send(g, "events", [_restamp(g, m)], gap=0.02)
        _valid(g, 2)
        rec, start = g["rec"], len(g["rec"]["diag"])
        counted = lambda: int(diag_values(rec["diag"][start:], "robot_0/perception: decisions")  # noqa: E731
                              .get("rejected_packets", n0)) > n0
        deadline = time.monotonic() + 1.0
        while not counted() and time.monotonic() < deadline:
            g["probe"].spin_for(0.05)
        if counted():
            return True
    return False


def _send(g, topic, msgs, gap=0.02):
    for m in msgs:
        g["pub"][topic].publish(m)
        g["probe"].spin_for(gap)


def _counted(g, topic: str, msgs: list, status: str, key: str, want: int, tries: int = 3) -> int:
    """Send `msgs` on `topic` until the counter `key` of diagnostics `status` has grown by `want`;
    how much it grew. A reliable reader keeps the last 10 messages: one of a node descheduled on a
    loaded machine loses some without a trace. What is tested is what the node does with each
    message it takes, not delivery, so a batch that left less than `want` is sent again."""
    rec = g["rec"]
    base = int(_diag(g, status, after=0.0).get(key, 0))
    grown = lambda: int(diag_values(rec["diag"], status).get(key, base)) - base  # noqa: E731
    for _ in range(tries):
        _send(g, topic, msgs, gap=0.02)
        deadline = time.monotonic() + 3.0
        while grown() < want and time.monotonic() < deadline:
            g["probe"].spin_for(0.05)
        if grown() >= want:
            break
    return grown()


def _packet(width, height, seq, data=b"", encoding="evt3", time_base=0, bigendian=False, stamp_s=None, now=None):
    m = EventPacket()
    t = now if stamp_s is None else stamp_s
    m.header.stamp.sec, m.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
    m.width, m.height, m.seq, m.time_base = width, height, seq, time_base
    m.encoding, m.is_bigendian, m.events = encoding, bigendian, bytes(data)
    return m


def _odom(x=0.0, y=0.0, qz=0.0, qw=1.0, v=0.0, w=0.0):
    m = Odometry()
    m.pose.pose.position.x, m.pose.pose.position.y = x, y
    m.pose.pose.orientation.z, m.pose.pose.orientation.w = qz, qw
    m.twist.twist.linear.x, m.twist.twist.angular.z = v, w
    return m


HOSTILE_ODOM = [_odom(x=NAN), _odom(y=INF), _odom(qz=NAN, qw=NAN), _odom(qw=-INF), _odom(v=NAN), _odom(w=INF),
                _odom(x=1e308, y=-1e308)]


def _perception(label=0, names=("clear", "left", "center", "right"), confidence=0.95):
    m = Perception()
    m.header.stamp.sec = int(time.time())
    m.agent_id = "robot_0"
    m.class_names = list(names)
    m.class_scores = [1.0 / max(1, len(names))] * len(names)
    m.label, m.confidence, m.threshold = label, confidence, 0.9
    return m


def _hostile_perceptions(names):
    return [_perception(255, names), _perception(len(names), names), _perception(0, []),
            _perception(0, names, confidence=NAN), _perception(0, names, confidence=INF),
            _perception(1, names, confidence=-5.0)]


def _finite_twist(t: Twist) -> bool:
    return all(math.isfinite(v) for v in (t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z))


# ---------------------------------------------------------------------------------------------- perception

def test_perception_survives_hostile_event_packets(graph):
    g, rec = graph, graph["rec"]
    w, h = g["cam"]
    rng = random.Random(7)
    before = _diag(g, "robot_0/perception: decisions", after=0.0)
    def pk(*a, **kw):      # hostile packets carry the stream's current stamp unless told otherwise
        return _packet(*a, now=g["stream"].stamp_s, **kw)

    fuzz = [pk(w, h, rng.randrange(1 << 20), rng.randbytes(size))            # fuzz at the stream's own geometry
            for size in (0, 1, 3, 5, 7, 64, 1001, 4096, 65537)]
    fuzz += [pk(w, h, 5, rng.randbytes(64), encoding=enc) for enc in ("EVT3 ", "EVT2")]  # read as evt3 / evt2
    fuzz.append(pk(2048, 1, 6, rng.randbytes(128)))                          # odd but valid geometry
    fuzz += [pk(w, h, s, rng.randbytes(32)) for s in ((1 << 64) - 1, 0, (1 << 63), 1)]  # seq backwards
    fuzz += [pk(w, h, 9, rng.randbytes(32), time_base=tb) for tb in ((1 << 64) - 1, 1 << 63, 12345)]
    fuzz += [pk(w, h, 11, rng.randbytes(32), stamp_s=0.0),                 # time far in the past
             pk(w, h, 12, rng.randbytes(32), stamp_s=2e9)]                 # ... and far in the future
    # each of these must be refused and counted: unknown encodings, impossible geometries, big-endian
    refused = [pk(w, h, 5, rng.randbytes(64), encoding=enc) for enc in ("", "evt9", "mono8", "\x00", "evt3" * 2000,
                                                                         "evt2.1")]
    refused += [pk(ww, hh, 6, rng.randbytes(128)) for ww, hh in ((0, 0), (0, h), (w, 0), (4096, 4096), (U32, U32))]
    refused.append(pk(w, h, 10, rng.randbytes(32), bigendian=True))
    for m in fuzz:                                        # each between valid packets of the stream
        _send(g, "events", [_restamp(g, m)], gap=0.02)
        _valid(g, 2)
    not_refused = [(m.encoding[:12], m.width, m.height, m.is_bigendian) for m in refused if not _refused(g, m)]
    assert not not_refused, f"not refused (encoding, width, height, big-endian): {not_refused}"
    big = rng.randbytes(10 * 1024 * 1024)                                     # a 10 MB packet, thrice
    for i in range(3):
        _send(g, "events", [pk(w, h, 13 + i, big)], gap=0.3)
        _valid(g, 2)
    _alive(g, "perception")
    # still deciding on a valid stream
    n0 = len(rec["perception"])
    deadline = time.monotonic() + 20
    while len(rec["perception"]) < n0 + 5 and time.monotonic() < deadline:
        _valid(g, 5)
    assert len(rec["perception"]) >= n0 + 5, "no decisions after the hostile packets"
    for m in rec["perception"][n0:]:
        assert m.label < len(m.class_names) and 0.0 <= m.confidence <= 1.0 and 1 <= m.steps_used <= m.t_max
    after = _diag(g, "robot_0/perception: decisions")
    _alive(g, "perception")
    assert int(after["packets"]) > int(before["packets"])
    assert int(after["rejected_packets"]) - int(before.get("rejected_packets", 0)) >= len(refused), after
    assert int(after["seq_restarts"]) > int(before.get("seq_restarts", 0)), after
    # stamps far in the past and future (and fuzz that decodes to far-off times) restart the time line
    assert int(after["time_jumps"]) - int(before.get("time_jumps", 0)) >= 2, after


def test_perception_refuses_a_camera_the_model_was_not_trained_on(graph):
    """A well-formed stream of a DAVIS346-sized camera: refused and counted, an ERROR on
    /diagnostics that says how to get a model for it; the right camera's stream decides on."""
    g, rec = graph, graph["rec"]
    other = _ValidStream(346, 260)
    other.t_us, other.stamp_s = g["stream"].t_us, g["stream"].stamp_s
    refused = 0
    deadline = time.monotonic() + 30
    while refused == 0 and time.monotonic() < deadline:
        _send(g, "events", [other.next() for _ in range(3)], gap=0.02)
        start = len(rec["diag"])
        g["probe"].spin_for(0.3)
        refused = int(diag_values(rec["diag"][start:], "robot_0/perception: decisions").get("geometry_refused", 0))
    assert refused > 0, "a 346x260 stream was not refused"
    status = [s for m in rec["diag"][-50:] for s in m.status if s.name.endswith("perception: decisions")][-1]
    assert status.level == DiagnosticStatus.ERROR and "346x260" in status.message and "train --bag" in status.message
    n0 = len(rec["perception"])
    deadline = time.monotonic() + 20
    while len(rec["perception"]) < n0 + 3 and time.monotonic() < deadline:
        _valid(g, 5)
    assert len(rec["perception"]) >= n0 + 3, "no decisions on the model's own camera after the refusal"


def test_perception_and_sensor_refuse_hostile_attention(graph):
    g, rec = graph, graph["rec"]
    p0 = _diag(g, "robot_0/perception: decisions", after=0.0)
    s0 = _diag(g, "robot_0/event_sensor: event stream", after=0.0)
    cmds = []
    for kw in (dict(threshold=NAN), dict(threshold=INF), dict(threshold=-1.0), dict(threshold=2.0),
               dict(t_max=65535), dict(t_max=65535, threshold=NAN),
               dict(roi=(U32, U32, U32, U32)), dict(roi=(U32, 0, 10, 10)), dict(roi=(0, 0, U32, 1)),
               dict(cap=INF), dict(cap=NAN), dict(cap=-1.0), dict(cap=-INF), dict(subsample=0), dict(subsample=255)):
        m = AttentionCommand()
        m.agent_id = "hostile"
        m.roi.x_offset, m.roi.y_offset, m.roi.width, m.roi.height = kw.get("roi", (0, 0, 0, 0))
        m.event_rate_cap = kw.get("cap", 0.0)
        m.subsample = kw.get("subsample", 1)
        m.t_max = kw.get("t_max", 0)
        m.confidence_threshold = kw.get("threshold", NAN)
        cmds.append(m)
    for m in cmds:
        _send(g, "attention", [m], gap=0.0)
        _valid(g, 3)
    _alive(g, "perception", "sensor")
    n0 = len(rec["perception"])
    deadline = time.monotonic() + 20
    while len(rec["perception"]) < n0 + 5 and time.monotonic() < deadline:
        _valid(g, 5)
    assert len(rec["perception"]) >= n0 + 5, "no decisions after hostile attention"
    for m in rec["perception"][n0:]:
        assert 0.0 < m.threshold <= 1.0 and 1 <= m.t_max <= 160, (m.threshold, m.t_max)
    p1 = _diag(g, "robot_0/perception: decisions")
    s1 = _diag(g, "robot_0/event_sensor: event stream", after=0.0)
    _alive(g, "perception", "sensor")
    # threshold inf / -1 / 2 and t_max 65535 (twice) are refused by perception
    assert int(p1["budget_rejections"]) - int(p0["budget_rejections"]) >= 5, p1
    assert 0.0 < float(p1["threshold"]) <= 1.0 and int(p1["t_max"]) <= 160
    # rate caps inf / NaN / -1 / -inf and subsampling 255 refused (subsample 0 = unchanged); huge ROIs clamped
    assert int(s1["commands_rejected"]) - int(s0["commands_rejected"]) >= 5, s1
    assert int(s1["commands_clamped"]) - int(s0["commands_clamped"]) >= 2, s1
    assert math.isfinite(float(s1["rate_cap_ev_s"])) and 1 <= int(s1["subsample"]) <= 64
    assert int(s1["packets"]) > int(s0["packets"]), "the sensor stopped streaming"


# ---------------------------------------------------------------------------------------------- world

def test_world_rejects_nonfinite_and_clamps_huge_cmd_vel(graph):
    g, rec = graph, graph["rec"]
    d0 = _diag(g, "world: simulation", after=0.0)
    bad = []
    for lin, ang in ((NAN, 0.0), (0.0, NAN), (INF, 0.0), (-INF, 0.0), (0.0, INF), (NAN, NAN)):
        t = Twist()
        t.linear.x, t.angular.z = lin, ang
        bad.append(t)
    # drive, then NaN every 50 ms: the robot must come to a stop, never run on
    go = Twist()
    go.linear.x = 0.3
    _send(g, "cmd_vel", [go] * 20, gap=0.05)
    k0 = len(rec["gt"])
    _send(g, "cmd_vel", bad * 5, gap=0.05)
    after_nan = [m for _, m in rec["gt"][k0:]]
    assert after_nan and abs(after_nan[-1].twist.twist.linear.x) < 0.02, after_nan[-1].twist.twist
    # 1e9 m/s forward and 1e9 rad/s: clamped to the robot's limits
    huge = Twist()
    huge.linear.x, huge.angular.z = 1e9, -1e9
    k1 = len(rec["gt"])
    _send(g, "cmd_vel", [huge] * 20, gap=0.05)
    _send(g, "cmd_vel", [Twist()] * 10, gap=0.05)
    for _, m in rec["gt"]:
        p, t = m.pose.pose.position, m.twist.twist
        assert math.isfinite(p.x) and math.isfinite(p.y) and math.isfinite(t.linear.x) and math.isfinite(t.angular.z)
        assert abs(t.linear.x) <= 0.6 + 1e-6 and abs(t.angular.z) <= 2.0 + 1e-6, t
    assert any(abs(m.twist.twist.linear.x) > 0.05 for _, m in rec["gt"][k1:]), "the world ignored a valid command"
    d1 = _diag(g, "world: simulation")
    _alive(g, "world")
    assert int(d1["rejected_cmd_vel"]) - int(d0["rejected_cmd_vel"]) >= len(bad) * 5, d1
    assert int(d1["steps"]) > int(d0["steps"])


# ---------------------------------------------------------------------------------------------- control

def test_control_never_commands_unsafe_twist(graph):
    g, rec = graph, graph["rec"]
    names = list(rec["perception"][-1].class_names)
    status = "robot_0/control: control"
    # every non-finite odometry refused (x 1e308 composes into a finite pose)
    assert _counted(g, "odom", HOSTILE_ODOM * 3, status, "odom_rejected", (len(HOSTILE_ODOM) - 1) * 3) \
        >= (len(HOSTILE_ODOM) - 1) * 3
    # label 255 / label == len(names) / empty names / NaN, inf, negative confidence: all refused
    assert _counted(g, "perception", _hostile_perceptions(names) * 3, status, "bad_decisions", 6 * 3) >= 6 * 3
    # normal input is still answered: a clear decision from this probe gives a finite, bounded command
    k = len(rec["ctl_cmd"])
    assert _counted(g, "perception", [_perception(0, names)] * 10, status, "decisions", 10) >= 10
    g["probe"].spin_until(lambda: len(rec["ctl_cmd"]) > k, 5, "control to answer a valid decision")
    _alive(g, "control")
    c1 = _diag(g, status)
    _alive(g, "control")
    assert rec["ctl_cmd"], "control never published"
    for t in rec["ctl_cmd"]:
        assert _finite_twist(t), t
        assert -1e-9 <= t.linear.x <= 0.5 + 1e-9 and abs(t.angular.z) <= 1.8 + 1e-9, t
    assert math.isfinite(float(c1["linear"])) and math.isfinite(float(c1["angular"]))


# ---------------------------------------------------------------------------------------------- attention

def test_attention_refuses_hostile_odom_perception_twist_and_detections(graph):
    g, rec = graph, graph["rec"]
    names = list(rec["perception"][-1].class_names)
    status = "robot_0/attention: attention"
    tw = []
    for lin, ang in ((NAN, 0.0), (INF, -INF), (1e9, 1e9)):
        t = Twist()
        t.linear.x, t.angular.z = lin, ang
        tw.append(t)
    assert _counted(g, "cmd_vel", tw + [Twist()], status, "rejected_cmd_vel", 2) >= 2
    assert _counted(g, "odom", HOSTILE_ODOM, status, "rejected_odom", len(HOSTILE_ODOM) - 1) >= len(HOSTILE_ODOM) - 1
    assert _counted(g, "perception", _hostile_perceptions(names), status, "rejected_perception", 6) >= 6
    many = SharedDetections()
    many.header.frame_id = "map"
    for i in range(5000):
        d = Detection(source_agent_id=f"a{i % 7}", label=2, confidence=0.9)
        d.header.stamp.sec = int(time.time())
        d.position.x, d.position.y = (NAN, 1.0) if i % 3 == 0 else ((INF, -INF) if i % 3 == 1 else (2.0, 4.0))
        many.detections.append(d)
    # NaN / inf positions are counted and dropped
    assert _counted(g, "shared", [many], status, "rejected_detections", 5000 - 5000 // 3) >= 5000 - 5000 // 3
    # normal input is still answered (a command goes out when the budget changes)
    assert _counted(g, "perception", [_perception(0, names)] * 5, status, "decisions", 5) >= 5
    a1 = _diag(g, status)
    _alive(g, "attention")
    for m in rec["att"]:
        if m.agent_id == "hostile":      # this test's own commands on the same topic
            continue
        assert 0.0 < m.confidence_threshold <= 1.0 and 1 <= m.t_max <= 160, m
        assert math.isfinite(m.event_rate_cap) and m.event_rate_cap >= 0.0, m
    # the finite third of the 5000 detections is kept
    assert int(a1["shared_detections"]) == 5000 // 3, a1


# ---------------------------------------------------------------------------------------------- fleet agent

def test_fleet_agent_drops_nonfinite_odom(graph):
    g, rec = graph, graph["rec"]
    status = "robot_0/fleet_agent: fleet membership"
    # x 1e308 composes into a finite but absurd pose; every other sample is non-finite and dropped
    assert _counted(g, "odom", HOSTILE_ODOM * 2, status, "odom_rejected", (len(HOSTILE_ODOM) - 1) * 2) \
        >= (len(HOSTILE_ODOM) - 1) * 2
    k = len(rec["agent"])
    g["probe"].spin_until(lambda: len(rec["agent"]) > k + 1, 5, "heartbeats after hostile odometry")
    f1 = _diag(g, status)
    _alive(g, "fleet_agent")
    for m in rec["agent"]:
        p = m.pose.position
        assert math.isfinite(p.x) and math.isfinite(p.y), p
    assert "nan" not in f1["pose"] and "inf" not in f1["pose"], f1
