"""Control and attention nodes over real DDS, in the built-in world.

The probe plays perception here, so the decisions are exactly what each check needs;
the last test runs the whole split-mode chain with the real perception node."""
from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from event_camera_msgs.msg import EventPacket
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from snn_autonomy_msgs.msg import AttentionCommand, Collision, DecisionTrace, Perception

from ros_helpers import PERCEPTION, PROBE_QOS, SENSOR, WORLD, NodeProcess, Probe, diag_values
from snn_autonomy.events.packet import PacketStreamDecoder
from snn_autonomy.perception.labels import CENTER, CLASSES, CLEAR, LEFT
from snn_autonomy.ros import qos
from snn_autonomy.ros.convert import msg_to_packet

CONTROL = "snn_autonomy.ros.control_node"
ATTENTION = "snn_autonomy.ros.attention_node"


@pytest.fixture(scope="module")
def world_yaml(tmp_path_factory):
    import yaml

    from snn_autonomy.paths import config_path

    # the default world with robot 0 at (1, 4) heading +x: 2 m of open floor ahead
    doc = yaml.safe_load(config_path("world_default.yaml").read_text())
    doc["world"]["robots"].update(count=1, start_poses=[[1.0, 4.0, 0.0]])
    path = tmp_path_factory.mktemp("world") / "world.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def _perception(label: int, confidence: float = 0.99, approaching: bool = False) -> Perception:
    m = Perception()
    m.agent_id = "robot_0"
    m.class_names = list(CLASSES)
    m.label, m.confidence, m.approaching = label, confidence, approaching
    return m


@pytest.fixture(scope="module")
def loop(world_yaml):
    probe = Probe("control_probe")
    n = probe.node
    rec = {"cmd": [], "odom": [], "att": [], "packets": [], "diag": [], "collisions": []}
    n.create_subscription(Twist, "/robot_0/cmd_vel", lambda m: rec["cmd"].append((time.monotonic(), m)),
                          qos.COMMAND)
    n.create_subscription(Odometry, "/robot_0/ground_truth", rec["odom"].append, qos.COMMAND)
    n.create_subscription(AttentionCommand, "/robot_0/attention", rec["att"].append, qos.COMMAND)
    n.create_subscription(EventPacket, "/robot_0/events", rec["packets"].append, PROBE_QOS)
    n.create_subscription(DiagnosticArray, "/diagnostics", rec["diag"].append, 50)
    n.create_subscription(Collision, "/robot_0/collisions", rec["collisions"].append, qos.COMMAND)
    rec["perception"] = n.create_publisher(Perception, "/robot_0/perception", qos.COMMAND)
    params = {"world_config": world_yaml}
    procs = [NodeProcess(SENSOR, params, namespace="/robot_0").start(),
             NodeProcess(CONTROL, params, namespace="/robot_0").start(),
             NodeProcess(ATTENTION, params, namespace="/robot_0").start()]
    probe.spin_until(lambda: n.count_subscribers("/robot_0/perception") >= 2
                     and n.count_publishers("/robot_0/events") > 0, 60, "control, attention and sensor")
    procs.append(NodeProcess(WORLD, {"world_config": world_yaml, "wait_for_subscribers": 1}).start())
    probe.spin_until(lambda: len(rec["odom"]) > 5, 30, "the world to run")
    rec["probe"], rec["procs"] = probe, procs
    yield rec
    codes = [p.stop() for p in reversed(procs)]
    probe.close()
    assert codes == [0] * len(procs), "\n".join(p.log()[-3000:] for p in procs)


def _decide(loop, label, seconds, **kw):
    for _ in range(int(seconds / 0.02)):
        loop["perception"].publish(_perception(label, **kw))
        loop["probe"].spin_for(0.02)


def test_watchdog_stops_the_robot_when_perception_goes_stale(loop):
    probe = loop["probe"]
    _decide(loop, CLEAR, 1.5)
    speed = loop["odom"][-1].twist.twist.linear.x
    assert speed > 0.2, f"the robot should be cruising on clear decisions, odometry says {speed}"
    loop["cmd"].clear()
    t_last = time.monotonic()
    probe.spin_for(0.6)                    # perception falls silent
    zeros = [t for t, m in loop["cmd"] if m.linear.x == 0.0 and m.angular.z == 0.0]
    assert zeros, "no stop command after perception went stale"
    # deadline 100 ms + one 20 ms watchdog tick + DDS and scheduling on two busy cores
    assert zeros[0] - t_last < 0.3, f"stop came {zeros[0] - t_last:.3f} s after the last decision"
    assert abs(loop["odom"][-1].twist.twist.linear.x) < 1e-6, "the robot is still moving"
    assert not loop["collisions"], "a collision while perception was stale"
    probe.spin_for(1.2)                     # /diagnostics says why
    st = [s for m in loop["diag"] for s in m.status if s.name.endswith("control: control")]
    assert st and "no perception" in st[-1].message
    assert int(diag_values(loop["diag"], "control: control")["stops_stale"]) >= 1
    lat = [s for m in loop["diag"] for s in m.status if s.name.endswith("control: latency")]
    assert lat and lat[-1].level == DiagnosticStatus.STALE    # no decisions: latency is stale, not OK


def test_imminent_collision_halts_forward_motion(loop):
    _decide(loop, CLEAR, 1.0)
    loop["cmd"].clear()
    _decide(loop, CENTER, 0.3, approaching=True)
    assert loop["cmd"] and all(m.linear.x == 0.0 for _, m in loop["cmd"][1:])
    loop["probe"].spin_for(1.1)
    assert int(diag_values(loop["diag"], "control: control")["stops_imminent"]) >= 1


def test_attention_takes_effect_on_the_sensor(loop):
    """Calm after confident clear decisions on a straight run: the small budget; turning: the
    ROI drops the side the robot turns away from, and the sensor's events obey it."""
    _decide(loop, CLEAR, 1.0, confidence=0.99)
    calm = [a for a in loop["att"] if a.reason.startswith("calm")]
    assert calm and calm[-1].t_max == 4 and abs(calm[-1].confidence_threshold - 0.85) < 1e-6
    # the controller turns away from a left obstacle (w < 0): attention drops the left edge
    loop["att"].clear()
    _decide(loop, LEFT, 0.6, confidence=0.99)
    turning = [a for a in loop["att"] if "ROI drops" in a.reason]
    assert turning, [a.reason for a in loop["att"]][-3:]
    roi = turning[-1].roi
    assert roi.x_offset > 0 and roi.x_offset + roi.width == 128
    loop["packets"].clear()
    _decide(loop, LEFT, 0.6, confidence=0.99)
    dec = PacketStreamDecoder()
    xs = np.concatenate([dec.decode(msg_to_packet(m)).x for m in loop["packets"]])
    assert len(xs) > 100 and xs.min() >= roi.x_offset


def test_split_mode_chain_drives_on_its_own_perception(world_yaml):
    """world -> event_sensor -> perception -> control (+ attention) as separate nodes over DDS."""
    probe = Probe("split_probe")
    n = probe.node
    got, cmds, traces = [], [], []
    n.create_subscription(Perception, "/robot_0/perception", got.append, qos.COMMAND)
    n.create_subscription(DecisionTrace, "/robot_0/decision_trace", traces.append, qos.COMMAND)
    n.create_subscription(Twist, "/robot_0/cmd_vel", cmds.append, qos.COMMAND)
    params = {"world_config": world_yaml}
    procs = [NodeProcess(PERCEPTION, {"backend": "onnxruntime"}, namespace="/robot_0").start(),
             NodeProcess(SENSOR, params, namespace="/robot_0").start(),
             NodeProcess(CONTROL, params, namespace="/robot_0").start(),
             NodeProcess(ATTENTION, params, namespace="/robot_0").start()]
    try:
        probe.spin_until(lambda: n.count_publishers("/robot_0/perception") > 0
                         and n.count_publishers("/robot_0/events") > 0
                         and n.count_subscribers("/robot_0/perception") >= 3, 90, "the chain")
        # half real time: five processes and this probe share two cores
        procs.append(NodeProcess(WORLD, {"world_config": world_yaml, "wait_for_subscribers": 1,
                                         "real_time_factor": 0.5}).start())
        probe.spin_until(lambda: len(got) > 100, 90, "100 decisions")
        assert any(c.linear.x > 0.05 for c in cmds), "the controller never drove on its own perception"
        assert {d.t_max for d in got[20:]} <= {4, 8}, "attention budgets did not reach perception"
        # every decision's trace: stages from the sensor's packet to the controller's cmd_vel
        assert len(traces) > 50
        t = traces[-1]
        stages = {s.stage: s.duration_ms for s in t.stage_latencies}
        assert {"transport", "decode", "snn", "decision", "control"} <= set(stages)
        assert 0 < stages["snn"] < stages["decision"] < t.e2e_latency_ms < 1000
        assert abs(t.e2e_latency_ms - stages["decision"] - stages["control"]) < 1e-3
        e2e = np.array([x.e2e_latency_ms for x in traces])
        print(f"split mode under test load: e2e p50 {np.percentile(e2e, 50):.2f} ms, p99 {np.percentile(e2e, 99):.2f} ms")
    finally:
        codes = [p.stop() for p in reversed(procs)]
        probe.close()
    assert codes == [0] * len(procs), "\n".join(p.log()[-3000:] for p in procs)


def test_fused_robot_node_drives_on_its_own_perception(world_yaml):
    """Fused mode as a node: the robot's camera, perception, control and attention in one process."""
    probe = Probe("fused_probe")
    n = probe.node
    got, cmds, traces = [], [], []
    n.create_subscription(Perception, "/robot_0/perception", got.append, qos.COMMAND)
    n.create_subscription(Twist, "/robot_0/cmd_vel", cmds.append, qos.COMMAND)
    n.create_subscription(DecisionTrace, "/robot_0/decision_trace", traces.append, qos.COMMAND)
    procs = [NodeProcess("snn_autonomy.ros.robot_node", {"world_config": world_yaml}, namespace="/robot_0").start()]
    try:
        probe.spin_until(lambda: n.count_publishers("/robot_0/cmd_vel") > 0
                         and n.count_subscribers("/world/state") > 0, 90, "the robot node")
        procs.append(NodeProcess(WORLD, {"world_config": world_yaml, "wait_for_subscribers": 1,
                                         "real_time_factor": 0.5}).start())
        probe.spin_until(lambda: len(traces) > 100, 90, "100 decisions")
        assert any(c.linear.x > 0.05 for c in cmds), "the fused loop never drove"
        assert got and got[-1].agent_id == "robot_0" and got[-1].synaptic_ops > 0
        assert got[-1].energy_estimated_uj > 0 and traces[-1].energy_estimated_uj > 0
        assert {d.t_max for d in got[10:]} <= {4, 8}, "attention budgets are not applied in the fused loop"
        e2e = np.array([t.e2e_latency_ms for t in traces])
        assert np.all(e2e > 0)
        print(f"fused node under test load: e2e p50 {np.percentile(e2e, 50):.2f} ms, "
              f"p99 {np.percentile(e2e, 99):.2f} ms")
    finally:
        codes = [p.stop() for p in reversed(procs)]
        probe.close()
    assert codes == [0] * len(procs), "\n".join(p.log()[-3000:] for p in procs)
