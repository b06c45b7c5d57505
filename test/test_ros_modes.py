"""The two ways of running a robot's loop, as ROS 2 nodes in the built-in world: split (event_sensor,
perception, control and attention nodes over DDS) and fused (one robot node)."""
from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Twist
from snn_autonomy_msgs.msg import DecisionTrace, Perception

from ros_helpers import ATTENTION, CONTROL, PERCEPTION, ROBOT, SENSOR, WORLD, NodeProcess, Probe
from snn_autonomy.attention.policy import AttentionConfig
from snn_autonomy.ros import qos

# the step budgets attention chooses from (calm, open path, spin, alert); never the model's full 16
BUDGETS = set(AttentionConfig().step_caps().values())


def test_split_mode_chain_drives_on_its_own_perception(open_floor_world):
    """world -> event_sensor -> perception -> control (+ attention) as separate nodes over DDS."""
    probe = Probe("split_probe")
    n = probe.node
    got, cmds, traces = [], [], []
    n.create_subscription(Perception, "/robot_0/perception", got.append, qos.COMMAND)
    n.create_subscription(DecisionTrace, "/robot_0/decision_trace", traces.append, qos.COMMAND)
    n.create_subscription(Twist, "/robot_0/cmd_vel", cmds.append, qos.COMMAND)
    params = {"world_config": open_floor_world}
    procs = [NodeProcess(PERCEPTION, {"backend": "onnxruntime"}, namespace="/robot_0").start(),
             NodeProcess(SENSOR, params, namespace="/robot_0").start(),
             NodeProcess(CONTROL, params, namespace="/robot_0").start(),
             NodeProcess(ATTENTION, params, namespace="/robot_0").start()]
    try:
        probe.spin_until(lambda: n.count_publishers("/robot_0/perception") > 0
                         and n.count_publishers("/robot_0/events") > 0
                         and n.count_subscribers("/robot_0/perception") >= 3, 90, "the chain")
        # half real time: five processes and this probe share two cores
        procs.append(NodeProcess(WORLD, {"world_config": open_floor_world, "wait_for_subscribers": 1,
                                         "real_time_factor": 0.5}).start())
        # Attention's budgets take effect once its node and perception's have discovered each other,
        # which under load took up to 3.3 s after attention started (a missed first announcement
        # waits for the next periodic one); until then perception works with the model's full T_max.
        probe.spin_until(lambda: len(got) > 100 and any(d.t_max != 16 for d in got), 90,
                         "100 decisions, some with attention's budget")
        assert any(c.linear.x > 0.05 for c in cmds), "the controller never drove on its own perception"
        # each decision its own id, in order (one packet can complete several decisions)
        ids = [d.decision_id for d in got]
        assert all(b > a for a, b in zip(ids, ids[1:])), f"decision ids repeat or go back: {ids[:60]}"
        first = next(i for i, d in enumerate(got) if d.t_max != 16)
        assert {d.t_max for d in got[first:]} <= BUDGETS, "perception fell back to the full budget"
        print(f"attention's first budget at decision {first}")
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


def test_fused_robot_node_drives_on_its_own_perception(open_floor_world):
    """Fused mode as a node: the robot's camera, perception, control and attention in one process."""
    probe = Probe("fused_probe")
    n = probe.node
    got, cmds, traces = [], [], []
    n.create_subscription(Perception, "/robot_0/perception", got.append, qos.COMMAND)
    n.create_subscription(Twist, "/robot_0/cmd_vel", cmds.append, qos.COMMAND)
    n.create_subscription(DecisionTrace, "/robot_0/decision_trace", traces.append, qos.COMMAND)
    procs = [NodeProcess(ROBOT, {"world_config": open_floor_world}, namespace="/robot_0").start()]
    try:
        probe.spin_until(lambda: n.count_publishers("/robot_0/cmd_vel") > 0
                         and n.count_subscribers("/world/state") > 0, 90, "the robot node")
        procs.append(NodeProcess(WORLD, {"world_config": open_floor_world, "wait_for_subscribers": 1,
                                         "real_time_factor": 0.5}).start())
        probe.spin_until(lambda: len(traces) > 100, 90, "100 decisions")
        assert any(c.linear.x > 0.05 for c in cmds), "the fused loop never drove"
        assert got and got[-1].agent_id == "robot_0" and got[-1].synaptic_ops > 0
        assert got[-1].energy_estimated_uj > 0 and traces[-1].energy_estimated_uj > 0
        assert {d.t_max for d in got[10:]} <= BUDGETS, "attention budgets are not applied in the fused loop"
        e2e = np.array([t.e2e_latency_ms for t in traces])
        assert np.all(e2e > 0)
        print(f"fused node under test load: e2e p50 {np.percentile(e2e, 50):.2f} ms, "
              f"p99 {np.percentile(e2e, 99):.2f} ms")
    finally:
        codes = [p.stop() for p in reversed(procs)]
        probe.close()
    assert codes == [0] * len(procs), "\n".join(p.log()[-3000:] for p in procs)
