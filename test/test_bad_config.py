"""Invalid configuration values given to real node processes: each refuses to start, with
exit status 2 and one line that names the parameter (never a traceback, never a silent exit 0)."""
from __future__ import annotations

import pytest

from ros_helpers import ATTENTION, CONTROL, FLEET_AGENT, PERCEPTION, ROBOT, SENSOR, WORLD, NodeProcess, Probe

CASES = [
    (CONTROL, {"watchdog.deadline_s": -1.0}, "watchdog.deadline_s"),          # outside its declared range
    (CONTROL, {"limits.max_linear_mps": "fast"}, "limits.max_linear_mps"),     # wrong type
    (SENSOR, {"dvs.contrast_threshold": 5.0}, "dvs.contrast_threshold"),
    (WORLD, {"odom_rate_hz": "often"}, "odom_rate_hz"),
    (WORLD, {"diagnostic_updater.period": -1.0}, "diagnostic_updater.period"),
    (WORLD, {"realtime_priority": 100}, "realtime_priority"),                # SCHED_FIFO is 1..99
    (SENSOR, {"source": "webcam"}, "source"),                                # not one of its choices
    (SENSOR, {"erc_mode": "maybe"}, "erc_mode"),
    (PERCEPTION, {"backend": "tensorflow"}, "backend"),
    (ROBOT, {"energy_meter": "wattmeter"}, "energy_meter"),
    (CONTROL, {"start_pose": [1.0, 2.0]}, "start_pose"),                     # [x, y, yaw] or []
    (ATTENTION, {"start_pose": [1.0, 2.0]}, "start_pose"),
]


@pytest.mark.parametrize("module,params,name", CASES, ids=[c[2] for c in CASES])
def test_invalid_parameter_value_is_exit_2_with_one_line(module, params, name):
    node = NodeProcess(module, params, namespace="/bad_config").start()
    try:
        node.proc.wait(60)
    finally:
        code = node.stop()
    log = node.log()
    assert code == 2, log[-2000:]
    assert "Traceback" not in log, log[-2000:]
    fatal = [ln for ln in log.splitlines() if "cannot start" in ln]
    assert len(fatal) == 1 and name in fatal[0], log[-2000:]


@pytest.mark.parametrize("module", [CONTROL, ATTENTION, FLEET_AGENT], ids=["control", "attention", "fleet_agent"])
def test_a_robot_the_world_file_does_not_name_starts_with_its_start_pose_and_not_without(module):
    """A real robot named as its owner likes (not robot_<n> of the built-in world): each node that
    places it in the map starts given its start_pose, and without one refuses, naming that
    parameter."""
    probe = Probe("start_pose_probe")
    node = NodeProcess(module, {"start_pose": [2.0, 3.0, 0.5]}, namespace="/scout_1").start()
    try:
        probe.spin_until(lambda: ("/scout_1" in [ns for _, ns in probe.node.get_node_names_and_namespaces()]
                                  or not node.alive()), 90, "the node in the graph")
        assert node.alive(), node.log()[-2000:]
    finally:
        code = node.stop()
        probe.close()
    assert code == 0, node.log()[-2000:]
    bare = NodeProcess(module, namespace="/scout_1").start()
    try:
        bare.proc.wait(60)
    finally:
        code = bare.stop()
    assert code == 2 and "set the start_pose parameter" in bare.log(), bare.log()[-2000:]


# Exit status 2 is a configuration error and nothing else: a bug while a node is built is a
# traceback and exit 1, which the launcher respawns as the plan says.
BUILD_FAILS = r'''
import sys
from rclpy.node import Node
from snn_autonomy.config import ConfigError
from snn_autonomy.ros.spin import spin_node

def build():
    node = Node("build_fails")
    if sys.argv[1] == "config":
        raise ConfigError("patrol.cruise_mps: -1.0 is below the minimum 0.0")
    return {}["a key the code forgot"]     # a bug

sys.exit(spin_node(build, []))
'''


@pytest.mark.parametrize("kind,status", [("config", 2), ("bug", 1)])
def test_exit_status_2_is_a_configuration_error_and_a_bug_is_a_traceback(kind, status):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", BUILD_FAILS, kind], capture_output=True, text=True, timeout=60)
    out = p.stdout + p.stderr
    assert p.returncode == status, out[-2000:]
    if kind == "config":
        assert "Traceback" not in out and "cannot start: patrol.cruise_mps" in out, out[-2000:]
    else:
        assert "Traceback" in out and "KeyError" in out and "cannot start" not in out, out[-2000:]


def test_the_launcher_respawns_a_node_with_a_bug_but_not_one_with_a_configuration_error(tmp_path):
    import sys

    from snn_autonomy.launch_plan import NodeSpec
    from snn_autonomy.launcher import Launcher

    plan = [NodeSpec("x", "config", respawn=True, respawn_delay_s=0.1),
            NodeSpec("x", "bug", respawn=True, respawn_delay_s=0.1)]
    launcher = Launcher(plan, tmp_path / "logs", grace_s=1.0, term_s=0.5, echo=lambda line: None,
                        command=lambda spec, params: [sys.executable, "-c", BUILD_FAILS, spec.name])

    def seen_both() -> None:    # a loaded machine may take more than a few seconds to start one
        st = {s["node"]: s for s in launcher.states()}
        if st["/config"]["state"] == "failed" and st["/bug"]["respawns"] >= 1:
            launcher.stop_reason = "both seen"

    launcher.run(duration_s=120.0, on_tick=seen_both)
    states = {s["node"]: s for s in launcher.states()}
    assert states["/config"]["state"] == "failed" and states["/config"]["respawns"] == 0, states
    assert states["/bug"]["respawns"] >= 1, states


def test_a_running_node_refuses_a_value_outside_its_choices_or_range():
    """`ros2 param set` on a live node: the same checks as at start, the old value kept."""
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    probe = Probe("param_probe")
    node = NodeProcess(SENSOR, {}, namespace="/param_check").start()
    try:
        client = AsyncParameterClient(probe.node, "/param_check/event_sensor")
        probe.spin_until(lambda: client.services_are_ready(), 60, "the sensor's parameter services")
        results = {}
        for name, value in (("erc_mode", "maybe"), ("subsample", 0), ("erc_mode", "enabled")):
            fut = client.set_parameters([Parameter(name, value=value)])
            probe.spin_until(fut.done, 30, f"setting {name}")
            results[(name, value)] = fut.result().results[0]
        assert not results[("erc_mode", "maybe")].successful
        assert "erc_mode" in results[("erc_mode", "maybe")].reason and "enabled" in results[("erc_mode", "maybe")].reason
        assert not results[("subsample", 0)].successful
        assert results[("erc_mode", "enabled")].successful
        fut = client.get_parameters(["erc_mode", "subsample"])
        probe.spin_until(fut.done, 30, "reading the parameters back")
        assert [v.string_value or v.integer_value for v in fut.result().values] == ["enabled", 1]
    finally:
        code = node.stop()
        probe.close()
    assert code == 0, node.log()[-2000:]
