"""`snn-autonomy launch`: the launch plan run here, one process group per node, without launch_ros."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest
import rclpy
import yaml
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rcl_interfaces.srv import GetParameters
from snn_autonomy_msgs.msg import DecisionTrace, WorldState

from conftest import ROOT
from ros_helpers import PROBE_QOS, STUCK_NODE, Probe
from snn_autonomy.config import ConfigError
from snn_autonomy.launch_plan import GAZEBO_OVERRIDES, NodeSpec, build_plan, load_launch_config
from snn_autonomy.launcher import Launcher, live_groups, node_command, params_yaml
from snn_autonomy.report.summary import stamp_seconds
from snn_autonomy.ros import qos
from snn_autonomy.ros.spin import SHUTDOWN_DEADLINE_S


def _groups_left(pids) -> set:
    return live_groups(list(pids))


# ---------------------------------------------------------------------------- params files
def test_params_file_is_read_by_rcl_as_written(tmp_path):
    """The params file of a namespaced node reaches it with the types ROS gives them."""
    spec = NodeSpec("control", "ctl", "/robot_7", {
        "rate": 7.5, "count": 3, "flag": True, "word": "y", "number_text": "1.0", "empty": [],
        "names": ["y", "n", "robot_0"], "mixed_numbers": [1, 2.5], "nested": {"deep": {"x": 1e-3}}})
    path = tmp_path / "p.yaml"
    path.write_text(params_yaml(spec))
    ctx = rclpy.Context()
    ctx.init(["--ros-args", "--params-file", str(path)])
    try:
        node = rclpy.create_node("ctl", namespace="/robot_7", context=ctx,
                                 automatically_declare_parameters_from_overrides=True)
        got = {k: p.value for k, p in node.get_parameters_by_prefix("").items()}
        node.destroy_node()
    finally:
        ctx.try_shutdown()
    assert got["rate"] == 7.5 and got["count"] == 3 and got["flag"] is True
    assert got["word"] == "y" and got["number_text"] == "1.0"     # quoted: not a bool, not a number
    assert list(got["names"]) == ["y", "n", "robot_0"] and list(got["mixed_numbers"]) == [1.0, 2.5]
    assert got["nested.deep.x"] == 1e-3 and "empty" not in got


def test_bad_parameter_values_are_named():
    with pytest.raises(ConfigError, match=r"/robot_0/x.mix: \[1, 'a'\] mixes int, str"):
        params_yaml(NodeSpec("control", "x", "/robot_0", {"mix": [1, "a"]}))
    with pytest.raises(ConfigError, match="not a valid parameter name"):
        params_yaml(NodeSpec("control", "x", "", {"bad key": 1}))


def test_node_commands_and_missing_executables(tmp_path, monkeypatch):
    spec = NodeSpec("perception", "perception", "/robot_0", remappings=(("events", "event_camera/events"),))
    cmd = node_command(spec, "p.yaml")
    assert cmd[1:3] == ["-m", "snn_autonomy.ros.perception_node"]
    assert cmd[3:] == ["--ros-args", "-r", "__node:=perception", "-r", "__ns:=/robot_0",
                       "-r", "events:=event_camera/events", "--params-file", "p.yaml"]
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="metavision_driver/driver_node is not installed"):
        node_command(NodeSpec("driver_node", "event_camera", "/robot_0", package="metavision_driver"), None)
    exe = tmp_path / "lib" / "metavision_driver" / "driver_node"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert node_command(NodeSpec("driver_node", "event_camera", "", package="metavision_driver"), None) == [
        str(exe), "--ros-args", "-r", "__node:=event_camera"]


# ---------------------------------------------------------------------------- plans of other kinds
def test_robot_and_gazebo_plans():
    robot = build_plan(load_launch_config(str(ROOT / "config" / "robot.yaml"), namespace="robot_3"))
    assert [(n.package, n.executable, n.namespace) for n in robot] == [
        ("metavision_driver", "driver_node", "/robot_3"), ("snn_autonomy", "perception", "/robot_3"),
        ("snn_autonomy", "control", "/robot_3"), ("snn_autonomy", "attention", "/robot_3"),
        ("snn_autonomy", "fleet_agent", "/robot_3")]
    assert robot[1].remappings == (("events", "event_camera/events"),)
    assert len(build_plan(load_launch_config(str(ROOT / "config" / "robot.yaml"), robots=2))) == 10
    gz = build_plan(load_launch_config(robots=2, overrides=GAZEBO_OVERRIDES))
    assert gz[0].package == "ros_gz_bridge" and not any(n.executable == "world" for n in gz)
    assert all(n.parameters["use_sim_time"] for n in gz)
    sensors = [n for n in gz if n.executable == "event_sensor"]
    assert [n.parameters["source"] for n in sensors] == ["image", "image"]
    entries = yaml.safe_load(Path(gz[0].parameters["config_file"]).read_text())
    names = [e["ros_topic_name"] for e in entries]
    assert names.count("/clock") == 1 and "/robot_1/camera/image_raw" in names
    # the simulator's LiDAR arrives where the built-in world publishes its own (dataset labels)
    assert {"gz_topic_name": "/model/robot_0/scan", "ros_type_name": "sensor_msgs/msg/LaserScan"}.items() <= \
        next(e for e in entries if e["ros_topic_name"] == "/robot_0/scan").items()
    assert {"gz_topic_name": "/model/robot_1/cmd_vel", "ros_topic_name": "/robot_1/cmd_vel"}.items() <= \
        next(e for e in entries if e["ros_topic_name"] == "/robot_1/cmd_vel").items()
    with pytest.raises(ConfigError, match="gz_bridge: true needs world: false"):
        load_launch_config(overrides={"gz_bridge": True})


# ---------------------------------------------------------------------------- supervision, no ROS
FAKE_NODE = r'''
import os, signal, subprocess, sys, time
mode = sys.argv[1]
if mode == "bad":
    sys.exit(2)
if mode == "crash":
    time.sleep(0.2)
    sys.exit(1)
if mode == "stubborn":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if mode == "spawner":   # leaves a child that ignores SIGINT in its group
    subprocess.Popen([sys.executable, "-c",
                      "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"])
try:
    while True:
        time.sleep(0.05)
except KeyboardInterrupt:
    sys.exit(0)
'''


def test_respawn_config_errors_escalation_and_no_orphans(tmp_path):
    script = tmp_path / "fake_node.py"
    script.write_text(FAKE_NODE)
    plan = [NodeSpec("x", "ok"), NodeSpec("x", "crash", respawn=True, respawn_delay_s=0.1),
            NodeSpec("x", "bad", "/robot_0", respawn=True, respawn_delay_s=0.1),
            NodeSpec("x", "spawner"), NodeSpec("x", "stubborn")]
    lines = []
    launcher = Launcher(plan, tmp_path / "logs", grace_s=1.0, term_s=0.5, echo=lines.append,
                        command=lambda spec, params: [sys.executable, str(script), spec.name])
    t0 = time.monotonic()
    status = launcher.run(duration_s=2.5)
    assert time.monotonic() - t0 < 10
    states = {s["node"]: s for s in launcher.states()}
    assert status == 1, lines
    assert states["/ok"]["state"] == "stopped" and states["/spawner"]["state"] == "stopped"
    assert states["/robot_0/bad"]["state"] == "failed" and states["/robot_0/bad"]["respawns"] == 0
    assert "configuration error" in states["/robot_0/bad"]["note"]
    assert 2 <= states["/crash"]["respawns"] <= 6     # respawned, with a growing delay
    assert states["/stubborn"]["state"] == "killed"
    assert (tmp_path / "logs" / "params" / "robot_0__bad.yaml").read_text().startswith("/robot_0/bad:")
    assert json.loads((tmp_path / "logs" / "nodes.json").read_text())["stopping"] is True
    assert not _groups_left(p for s in states.values() for p in s["pids"])


def _stuck_node_stopped(tmp_path, lines: list, where: str, **timing) -> Launcher:
    """The stuck node (STUCK_NODE `where`), run until it is stuck or ready to be, then shut down
    with the launcher's `timing`."""
    launcher = Launcher([NodeSpec("x", "stuck")], tmp_path / "logs", echo=lines.append,
                        command=lambda spec, params: [sys.executable, "-c", STUCK_NODE, where], **timing)
    launcher.start()
    log = launcher.node("stuck").log_path
    deadline = time.monotonic() + 60
    while ("stuck" if where == "callback" else "ready") not in log.read_text() and time.monotonic() < deadline:
        assert launcher.poll(), log.read_text()
        time.sleep(0.1)
    launcher.shutdown()
    return launcher


def test_a_node_that_will_not_stop_writes_its_stacks_to_its_log_before_it_is_killed(tmp_path):
    lines = []
    launcher = _stuck_node_stopped(tmp_path, lines, "callback", grace_s=1.0, term_s=0.5)
    log = launcher.node("stuck").log_path
    text = log.read_text()
    assert launcher.states()[0]["state"] == "killed" and launcher.exit_status() == 1
    assert "in stuck_in_a_callback" in text, text[-3000:]       # the dump names where it was stuck
    assert any("its threads' stacks go to" in line for line in lines), lines


def test_a_node_past_its_shutdown_deadline_is_reported_as_an_unclean_stop(tmp_path):
    """A node whose teardown blocks (as a DDS destructor waiting on a lock does), given longer
    than its own deadline, ends itself (status 1, every thread's stack in its log): not a failure
    of the run, but named in the summary."""
    launcher = _stuck_node_stopped(tmp_path, [], "teardown", grace_s=SHUTDOWN_DEADLINE_S + 30)
    log = launcher.node("stuck").log_path
    summary = launcher.summary()
    assert summary["exit_status"] == 0 and summary["unclean_stop_logs"] == {"stuck": str(log)}, summary
    assert "exit status 1 while stopping" in summary["states"]["stuck"]
    text = log.read_text()
    assert "Timeout" in text and "in destroy_node" in text, text[-3000:]     # where it hung


# ---------------------------------------------------------------------------- the real nodes
def _get_parameters(probe: Probe, node: str, names) -> dict:
    client = probe.node.create_client(GetParameters, f"{node}/get_parameters")
    try:
        probe.spin_until(client.service_is_ready, 20.0, f"{node}/get_parameters")
        future = client.call_async(GetParameters.Request(names=list(names)))
        probe.spin_until(future.done, 10.0, f"parameters of {node}")
        values = future.result().values
        return {n: (v.double_value, v.integer_value, v.bool_value, v.string_value) for n, v in zip(names, values)}
    finally:
        probe.node.destroy_client(client)


def _nodes_json(log_dir: Path) -> dict:
    try:
        return {n["node"]: n for n in json.loads((log_dir / "nodes.json").read_text())["nodes"]}
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def test_launch_runs_the_plan_respawns_and_stops_cleanly(tmp_path):
    world = yaml.safe_load((ROOT / "config" / "world_default.yaml").read_text())
    world["world"]["camera"]["frame_rate_hz"] = 200.0     # a light load on 2 shared cores
    (tmp_path / "world.yaml").write_text(yaml.safe_dump(world))
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump({"launch": {
        "robots": 1, "world": True, "world_config": str(tmp_path / "world.yaml"),
        "world_parameters": {"real_time_factor": 0.3}, "respawn_delay_s": 4.0,
        "perception_parameters": {"torch_threads": 1},
        "control_parameters": {"tick_hz": 7.5, "watchdog": {"deadline_s": 0.25}}}}))
    expected = {(n.name, n.namespace or "/") for n in build_plan(load_launch_config(str(plan_file)))}
    assert len(expected) == 7
    log_dir = tmp_path / "logs"
    runner = subprocess.Popen([sys.executable, "-m", "snn_autonomy.cli", "launch", str(plan_file),
                               "--log-dir", str(log_dir), "--console", "events", "--grace", "5"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
    probe = Probe("launch_probe")
    states = []
    probe.node.create_subscription(WorldState, "/world/state", states.append, PROBE_QOS)
    cmds, speeds, decided = [], [], []
    probe.node.create_subscription(Twist, "/robot_0/cmd_vel", lambda m: cmds.append((time.monotonic(), m)),
                                   qos.COMMAND)
    probe.node.create_subscription(Odometry, "/robot_0/ground_truth",
                                   lambda m: speeds.append((time.monotonic(), stamp_seconds(m.header.stamp),
                                                            abs(m.twist.twist.linear.x))),
                                   qos.COMMAND)
    # decisions as control acted on them (its trace follows each cmd_vel it sent on a decision): control's
    # publisher stays matched while perception restarts, where a new perception's first decisions could
    # reach control before this probe has discovered the new publisher
    probe.node.create_subscription(DecisionTrace, "/robot_0/decision_trace",
                                   lambda m: decided.append((time.monotonic(), stamp_seconds(m.header.stamp),
                                                             m.decision_id)), qos.COMMAND)
    pids: set = set()
    try:
        # every node of the plan comes up, under its name and namespace
        probe.spin_until(lambda: expected <= set(probe.node.get_node_names_and_namespaces()), 40.0,
                         "every node of the plan in the graph")
        # parameters from the params files: the namespaced control node's, and the world's robot count
        got = _get_parameters(probe, "/robot_0/control", ["tick_hz", "watchdog.deadline_s", "world_config"])
        assert got["tick_hz"][0] == 7.5 and got["watchdog.deadline_s"][0] == 0.25
        assert got["world_config"][3] == str(tmp_path / "world.yaml")
        # the world file has 3 robots; the plan says 1
        probe.spin_until(lambda: any(list(s.robot_ids) == ["robot_0"] for s in states), 20.0,
                         "/world/state of one robot")

        # a respawning node killed with SIGKILL comes back
        first = _nodes_json(log_dir)["/robot_0/perception"]
        assert first["state"] == "running" and first["respawns"] == 0
        probe.spin_until(lambda: decided and any(v > 0.05 for _t, _w, v in speeds[-20:]), 30.0,
                         "the robot driving on its perception")
        os.kill(first["pid"], signal.SIGKILL)
        t_kill = time.monotonic()

        def respawned() -> bool:
            now = _nodes_json(log_dir).get("/robot_0/perception", {})
            return now.get("respawns") == 1 and now.get("state") == "running" and now.get("pid") != first["pid"]
        probe.spin_until(respawned, 20.0, "perception respawned")
        # the respawned perception's decisions are those after its decision ids start again (by arrival, a
        # starved probe can take the killed one's last traces well after the kill)
        def first_new() -> Optional[int]:
            return next((i for i in range(1, len(decided)) if decided[i][2] < decided[i - 1][2]), None)
        probe.spin_until(lambda: first_new() is not None, 30.0, "decisions from the respawned perception")
        # (0.3 s before the first new decision: this probe may take a cmd_vel caused by it before its
        # trace, as topics are not delivered in order)
        new = first_new()
        back, back_world = decided[new][0] - 0.3, decided[new][1]
        killed_world = max([w for t, w, _v in speeds if t <= t_kill] + [w for _t, w, _i in decided[:new]])
        seen = (f"perception down {back + 0.3 - t_kill:.2f} s of wall time, {back_world - killed_world:.2f} s "
                f"of the world's; decision ids around the restart {[i for _t, _w, i in decided[max(new - 3, 0):new + 2]]}")
        # control's watchdog runs on the world's clock: the outage must be longer than its deadline, a tick and
        # the braking (0.25 + 0.13 + 0.4 s) for the checks below to mean anything (a starved world runs slower
        # than its real-time factor; the respawn delay leaves it 4 s of wall time, 1.2 s at 0.3)
        assert back - t_kill > 3.0 and back_world - killed_world > 0.8, seen
        # the robot is held stopped while perception is gone: the watchdog (deadline 0.25 s here); from the
        # first stop after the kill (a starved probe may still take commands sent before it), only stops
        after_kill = [m.linear.x == 0.0 and m.angular.z == 0.0 for t, m in cmds if t_kill < t < back]
        held = after_kill[after_kill.index(True):] if True in after_kill else []
        assert len(held) >= 3 and all(held), f"moved without perception: {after_kill}; {seen}"
        # in the world's time (a starved world or probe stretches any wall-clock window): the robot comes to
        # rest within the watchdog's deadline, a control tick and its braking from at most 0.6 m/s at
        # 1.5 m/s^2 (0.25 + 0.13 + 0.4 s; 0.25 s more for the probe's view of the kill), and stays at rest
        # until the respawned perception's first decision (its packet's stamp)
        after = [(w, v) for _t, w, v in sorted(speeds, key=lambda s: s[1]) if killed_world < w < back_world]
        stopped = next((w for w, v in after if v < 1e-3), None)
        assert stopped is not None and stopped - killed_world < 1.05, f"no standstill in time: {after[:40]}"
        rest = [v for w, v in after if w >= stopped]
        assert rest and max(rest) < 1e-3, f"the robot kept moving: {max(rest):.3f} m/s"
        probe.spin_for(1.0)
        assert _nodes_json(log_dir)["/robot_0/perception"]["state"] == "running", _nodes_json(log_dir)

        # SIGTERM to the runner: clean shutdown, exit 0, no process of any node group left
        pids = {p for n in _nodes_json(log_dir).values() for p in n["pids"]}
        assert len(pids) == 8, _nodes_json(log_dir)
        runner.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        out, _ = runner.communicate(timeout=20)
        took = time.monotonic() - t0
        assert runner.returncode == 0, out
        assert took < 12, f"shutdown took {took:.1f} s"
        assert not _groups_left(pids)
        final = _nodes_json(log_dir)
        assert {n["state"] for n in final.values()} == {"stopped"}, out
        assert "respawn in 4.0 s" in out and "robot_0/perception: started" in out
    except BaseException:
        launch_log = log_dir / "launch.log"
        print(launch_log.read_text() if launch_log.exists() else "no launch.log")   # shown by pytest on failure
        raise
    finally:
        probe.close()
        if runner.poll() is None:
            runner.send_signal(signal.SIGTERM)
            try:
                runner.wait(20)
            except subprocess.TimeoutExpired:
                runner.kill()           # the nodes get SIGTERM from the kernel (PR_SET_PDEATHSIG)
                runner.wait()


# ---------------------------------------------------------------------------- launch files, with launch_ros faked
class _Action:
    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration:
    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: dict) -> str:
        return context[self.name]


def _launch_file_actions(monkeypatch, name: str, **arguments) -> list:
    """Evaluate launch/<name> as `ros2 launch` would, with minimal stand-ins for launch and launch_ros."""
    import importlib.util
    import types

    mods = {m: types.ModuleType(m) for m in ("launch", "launch.actions", "launch.substitutions",
                                              "launch.launch_description_sources", "launch_ros", "launch_ros.actions")}
    mods["launch"].LaunchDescription = _Action
    for cls in ("DeclareLaunchArgument", "OpaqueFunction", "LogInfo", "IncludeLaunchDescription"):
        setattr(mods["launch.actions"], cls, type(cls, (_Action,), {}))
    mods["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    mods["launch.launch_description_sources"].PythonLaunchDescriptionSource = _Action
    mods["launch_ros.actions"].Node = type("Node", (_Action,), {})
    for m, mod in mods.items():
        monkeypatch.setitem(sys.modules, m, mod)
    spec = importlib.util.spec_from_file_location(name.replace(".", "_"), ROOT / "launch" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entities = module.generate_launch_description().args[0]
    context = {e.args[0]: e.kwargs["default_value"] for e in entities if type(e).__name__ == "DeclareLaunchArgument"}
    assert set(arguments) <= set(context), f"{name} has no argument {set(arguments) - set(context)}"
    context.update(arguments)
    out = []
    for e in entities:
        if type(e).__name__ == "OpaqueFunction":
            out += e.kwargs["function"](context)
    return out


def test_launch_files_build_their_nodes_from_the_plan(monkeypatch):
    actions = _launch_file_actions(monkeypatch, "robot.launch.py", namespace="robot_3", driver="libcaer_driver")
    nodes = [a.kwargs for a in actions if type(a).__name__ == "Node"]
    assert [(n["package"], n["name"], n["namespace"]) for n in nodes] == [
        ("libcaer_driver", "event_camera", "/robot_3"), ("snn_autonomy", "perception", "/robot_3"),
        ("snn_autonomy", "control", "/robot_3"), ("snn_autonomy", "attention", "/robot_3"),
        ("snn_autonomy", "fleet_agent", "/robot_3")]
    assert nodes[1]["remappings"] == [("events", "event_camera/events")] and nodes[1]["respawn"]

    actions = _launch_file_actions(monkeypatch, "gazebo.launch.py", robot_sdf="robot.sdf",
                                   robots="robot_0={x: 1.0, y: 2.0, yaw: 0.5}; robot_1={x: 3.0}")
    nodes = [a.kwargs for a in actions if type(a).__name__ == "Node"]
    spawns = [n for n in nodes if n["executable"] == "create"]
    assert [s["arguments"][:2] for s in spawns] == [["-name", "robot_0"], ["-name", "robot_1"]]
    assert spawns[0]["arguments"][4:8] == ["-x", "1.0", "-y", "2.0"]
    plan_nodes = [n for n in nodes if n["executable"] != "create"]
    assert plan_nodes[0]["executable"] == "parameter_bridge"
    assert not any(n["executable"] == "world" for n in plan_nodes)
    sensor = next(n for n in plan_nodes if n["executable"] == "event_sensor")
    assert sensor["parameters"][0]["source"] == "image" and sensor["parameters"][0]["use_sim_time"] is True
    control = next(n for n in plan_nodes if n["executable"] == "control" and n["namespace"] == "/robot_0")
    assert control["parameters"][0]["start_pose"] == [1.0, 2.0, 0.5]
    # attention places the teammates' detections in the same map frame as control
    attention = next(n for n in plan_nodes if n["executable"] == "attention" and n["namespace"] == "/robot_0")
    assert attention["parameters"][0]["start_pose"] == [1.0, 2.0, 0.5]
    coordinator = next(n for n in plan_nodes if n["executable"] == "coordinator")
    assert coordinator["parameters"][0]["allowed_agents"] == ["robot_0", "robot_1"]


def test_secured_plan_gives_each_node_its_enclave_and_the_security_environment(tmp_path):
    from snn_autonomy.launch_plan import build_plan, load_launch_config, security_environment
    from snn_autonomy.launcher import node_command

    p = tmp_path / "plan.yaml"
    p.write_text(f"launch:\n  robots: 1\n  security: {{enable: true, strategy: Enforce, keystore: {tmp_path}}}\n")
    cfg = load_launch_config(str(p))
    env = security_environment(cfg)
    assert env["ROS_SECURITY_ENABLE"] == "true" and env["ROS_SECURITY_STRATEGY"] == "Enforce"
    for spec in build_plan(cfg):
        cmd = node_command(spec, None)
        assert cmd[cmd.index("--enclave") + 1] == spec.enclave and spec.enclave.endswith(spec.name)


def test_cpu_affinity_is_set_before_the_node_starts_and_an_unusable_cpu_is_refused(tmp_path):
    code = "import os, time; print(sorted(os.sched_getaffinity(0)), flush=True); time.sleep(30)"
    usable = sorted(os.sched_getaffinity(0))
    plan = [NodeSpec("x", "pinned", cpus=(usable[-1],)), NodeSpec("x", "free"), NodeSpec("x", "nowhere", cpus=(4095,))]
    launcher = Launcher(plan, tmp_path / "logs", grace_s=1.0, term_s=0.5, echo=lambda line: None,
                        command=lambda spec, params: [sys.executable, "-c", code])
    status = launcher.run(duration_s=1.5)
    states = {s["node"]: s for s in launcher.states()}
    assert (tmp_path / "logs" / "pinned.log").read_text().splitlines()[0] == str([usable[-1]])
    assert (tmp_path / "logs" / "free.log").read_text().splitlines()[0] == str(usable)
    assert states["/nowhere"]["state"] == "failed" and "cpu_affinity [4095]" in states["/nowhere"]["note"]
    assert status == 1
    assert not _groups_left(p for s in states.values() for p in s["pids"])


def test_a_node_with_a_realtime_priority_starts_up_boosted_and_returns_to_its_nice_once_built(tmp_path):
    """Its start-up (imports, model, warm-up) runs at a raised weight where the kernel allows it, not
    at SCHED_FIFO, which would starve the rest of the machine; once built, the node returns every
    thread to the launcher's own nice (and takes SCHED_FIFO itself, tested in test_realtime)."""
    from snn_autonomy.realtime import STARTUP_NICE
    may_raise = subprocess.run([sys.executable, "-c", "import os; os.nice(-1)"]).returncode == 0
    own = os.getpriority(os.PRIO_PROCESS, 0)
    code = ("import os, threading, time\n"
            "from snn_autonomy.realtime import end_startup_boost\n"
            "def nice(): return os.getpriority(os.PRIO_PROCESS, 0)\n"
            "before = (os.sched_getscheduler(0), nice())\n"
            "t = threading.Thread(target=time.sleep, args=(30,), daemon=True); t.start()\n"
            "end_startup_boost()\n"
            "tids = os.listdir('/proc/self/task')\n"
            "after = sorted({os.getpriority(os.PRIO_PROCESS, int(x)) for x in tids})\n"
            "print(*before, *after, len(tids), flush=True); time.sleep(30)")
    plan = [NodeSpec("x", "urgent", parameters={"realtime_priority": 45}), NodeSpec("x", "plain")]
    launcher = Launcher(plan, tmp_path / "logs", grace_s=1.0, term_s=0.5, echo=lambda line: None,
                        command=lambda spec, params: [sys.executable, "-c", code])
    launcher.run(duration_s=1.5)
    urgent = (tmp_path / "logs" / "urgent.log").read_text().split()[:4]
    plain = (tmp_path / "logs" / "plain.log").read_text().split()[:4]
    assert plain == [str(os.SCHED_OTHER), str(own), str(own), "2"]
    boosted = min(own, STARTUP_NICE) if may_raise else own
    assert urgent == [str(os.SCHED_OTHER), str(boosted), str(own), "2"]
