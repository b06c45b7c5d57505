"""The launch plan: one source of truth for the node graph."""
from __future__ import annotations

import py_compile

import pytest

from conftest import ROOT
from snn_autonomy.config import ConfigError
from snn_autonomy.launch_plan import build_plan, load_launch_config


def test_default_plan_has_a_world_a_coordinator_and_the_loop_per_robot():
    plan = build_plan(load_launch_config())
    per_robot = ["event_sensor", "perception", "control", "attention", "fleet_agent"]
    assert [n.executable for n in plan] == ["world"] + per_robot * 3 + ["coordinator"]
    assert [n.namespace for n in plan[1:-1]] == [f"/robot_{i}" for i in range(3) for _ in per_robot]
    assert plan[0].parameters["robots"] == 3 and plan[1].parameters["source"] == "world"
    assert all(n.respawn for n in plan if n.executable == "perception")
    assert plan[-1].parameters["allowed_agents"] == ["robot_0", "robot_1", "robot_2"]


def test_the_built_in_worlds_nodes_run_on_its_clock_unless_told_otherwise(tmp_path):
    """The world steps at real_time_factor x real time and publishes /clock: every other node
    follows it, so the watchdog's deadline and the velocity ramps are in the world's seconds;
    the world itself, the clock's source, stays on the wall clock."""
    plan = build_plan(load_launch_config())
    assert "use_sim_time" not in plan[0].parameters
    assert all(n.parameters["use_sim_time"] is True for n in plan[1:])
    p = tmp_path / "plan.yaml"
    p.write_text("launch:\n  use_sim_time: false\n")
    assert not any("use_sim_time" in n.parameters for n in build_plan(load_launch_config(str(p))))
    p.write_text("launch:\n  world: false\n  sensor_source: bag\n")
    assert not any("use_sim_time" in n.parameters for n in build_plan(load_launch_config(str(p))))


def test_attention_takes_the_model_and_prior_perception_runs(tmp_path):
    """Attention's full budget is the threshold perception exits at: the same model, with or
    without its temporal prior."""
    p = tmp_path / "plan.yaml"
    p.write_text("launch:\n  perception_parameters:\n    model: other.npz\n    temporal_prior: false\n"
                 "    torch_threads: 2\n")
    attention = [n for n in build_plan(load_launch_config(str(p))) if n.executable == "attention"]
    assert len(attention) == 3
    assert all(n.parameters["model"] == "other.npz" and n.parameters["temporal_prior"] is False for n in attention)
    assert not any("torch_threads" in n.parameters for n in attention)


def test_robots_override_and_bad_values():
    plan = build_plan(load_launch_config(robots=5))
    assert sum(n.executable == "event_sensor" for n in plan) == 5
    with pytest.raises(ConfigError, match="robots: -1 is below the minimum 0"):
        load_launch_config(robots=-1)


def test_bad_source_is_named(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_text("launch:\n  sensor_source: gazebo\n")
    with pytest.raises(ConfigError, match="sensor_source: 'gazebo' is not one of"):
        load_launch_config(str(p))


def test_launch_files_compile_and_every_executable_is_installed():
    import re

    for f in (ROOT / "launch").glob("*.launch.py"):
        py_compile.compile(str(f), doraise=True)
    scripts = set(re.findall(r'"(\w+)": "snn_autonomy\.ros\.', (ROOT / "setup.py").read_text()))
    assert {n.executable for n in build_plan(load_launch_config())} <= scripts


def test_fused_mode_runs_one_robot_node_per_robot(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_text("launch:\n  mode: fused\n  robots: 2\n")
    plan = build_plan(load_launch_config(str(p)))
    assert [n.executable for n in plan] == ["world", "robot", "fleet_agent", "robot", "fleet_agent", "coordinator"]
    p.write_text("launch:\n  mode: fused\n  sensor_source: bag\n  world: false\n")
    with pytest.raises(ConfigError, match="needs sensor_source: world"):
        load_launch_config(str(p))


def test_cpu_affinity_reaches_every_instance_of_a_node_and_bad_values_are_named(tmp_path):
    p = tmp_path / "plan.yaml"
    p.write_text("launch:\n  robots: 2\n  cpu_affinity: {world: [0], event_sensor: [0], perception: [1], control: [1]}\n")
    plan = build_plan(load_launch_config(str(p)))
    cpus = {(n.namespace, n.name): n.cpus for n in plan}
    assert cpus[("", "world")] == (0,) and cpus[("/robot_1", "event_sensor")] == (0,)
    assert cpus[("/robot_0", "perception")] == (1,) and cpus[("/robot_1", "control")] == (1,)
    assert cpus[("/robot_0", "attention")] == () and cpus[("", "coordinator")] == ()
    assert next(n for n in plan if n.name == "world").prefix() == "taskset -c 0"
    assert next(n for n in plan if n.name == "attention").prefix() is None
    for text, why in (("{percepton: [1]}", "'percepton' is not one of"), ("{control: []}", "non-empty list"),
                      ("{control: [-1]}", "non-empty list"), ("{control: [true]}", "expected an integer")):
        p.write_text(f"launch:\n  cpu_affinity: {text}\n")
        with pytest.raises(ConfigError, match=why):
            load_launch_config(str(p))


def test_realtime_priority_reaches_the_chain_by_default_and_bad_values_are_named(tmp_path):
    prio = {(n.namespace, n.name): n.parameters.get("realtime_priority") for n in build_plan(load_launch_config())}
    assert prio[("/robot_0", "perception")] == 45 and prio[("/robot_2", "control")] == 50
    assert prio[("/robot_1", "event_sensor")] is None and prio[("", "world")] is None
    assert prio[("/robot_0", "fleet_agent")] is None and prio[("", "coordinator")] is None
    fused = build_plan(load_launch_config(overrides={"mode": "fused"}))
    assert {n.parameters.get("realtime_priority") for n in fused if n.name == "robot"} == {45}
    p = tmp_path / "plan.yaml"
    p.write_text("launch:\n  robots: 1\n  realtime_priority: {}\n")
    assert not any("realtime_priority" in n.parameters for n in build_plan(load_launch_config(str(p))))
    p.write_text("launch:\n  robots: 1\n  realtime_priority: {world: 10, control: 0}\n")
    prio = {n.name: n.parameters.get("realtime_priority") for n in build_plan(load_launch_config(str(p)))}
    assert prio["world"] == 10 and prio["control"] is None and prio["perception"] is None
    for text, why in (("{perception: 100}", "0 .normal scheduling. to 99"), ("{event_camera: 40}", "is not one of"),
                      ("{control: true}", "expected an integer")):
        p.write_text(f"launch:\n  realtime_priority: {text}\n")
        with pytest.raises(ConfigError, match=why):
            load_launch_config(str(p))
