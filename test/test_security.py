"""SROS2: nodes fail closed (exit 2, one line) when security is requested and cannot be provided."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from ros_helpers import OutputLines

from snn_autonomy.config import ConfigError
from snn_autonomy.launch_plan import (build_plan, launch_ros_security, load_launch_config, security_environment,
                                      security_overrides)
from snn_autonomy.ros.security import ENCLAVE_FILES, SecurityError, check_security, middleware_problem

NODE = [sys.executable, "-m", "snn_autonomy.ros.coordinator_node", "--ros-args", "-r", "__node:=coordinator"]
SECURITY_VARS = ("ROS_SECURITY_ENABLE", "ROS_SECURITY_STRATEGY", "ROS_SECURITY_KEYSTORE",
                 "ROS_SECURITY_ENCLAVE_OVERRIDE")


def _keystore(root, enclave="coordinator", files=ENCLAVE_FILES):
    d = root / "enclaves" / enclave
    d.mkdir(parents=True)
    for f in files:
        (d / f).write_text("not a real certificate\n")
    return root


def _env(**kw):
    env = {k: v for k, v in os.environ.items() if k not in SECURITY_VARS}
    env.update(kw)
    return env


def _run_node(env, timeout=20.0):
    t0 = time.monotonic()
    p = subprocess.run(NODE, env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t0


@pytest.mark.parametrize("fake_keystore", [False, True])
def test_enforce_without_usable_security_exits_2_with_one_line(tmp_path, fake_keystore):
    keystore = _keystore(tmp_path / "ks") if fake_keystore else tmp_path / "missing"
    rc, out, dt = _run_node(_env(ROS_SECURITY_ENABLE="true", ROS_SECURITY_STRATEGY="Enforce",
                                 ROS_SECURITY_KEYSTORE=str(keystore)))
    assert rc == 2, out
    fatal = [line for line in out.splitlines() if "[FATAL]" in line]
    assert len(fatal) == 1 and "Traceback" not in out, out
    if fake_keystore:   # the pip Fast DDS has no security plugins
        assert "no DDS Security plugins" in fatal[0], out
    else:
        assert f"keystore {keystore} does not exist" in fatal[0], out
    assert dt < 10.0


def test_without_security_variables_the_node_starts_normally():
    p = subprocess.Popen(NODE, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    output = OutputLines(p)
    try:
        output.wait_for("coordinator: arena")   # until the node says it runs (ceiling for a loaded machine)
        assert p.poll() is None, output.text()
    finally:
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=60)
    out = output.finish()
    assert p.returncode == 0, out
    assert "coordinator: arena" in out and "FATAL" not in out


# ---------------------------------------------------------------------------- the check itself, no process
def _ok(env):
    return None


def test_disabled_does_nothing_and_near_misses_are_refused():
    assert not check_security([], {}).enabled
    assert not check_security([], {"ROS_SECURITY_ENABLE": "false"}).enabled
    for value in ("True", "1", "yes"):      # rcl would read these as "off" and run unsecured
        with pytest.raises(SecurityError, match="exactly 'true'"):
            check_security([], {"ROS_SECURITY_ENABLE": value})
    with pytest.raises(SecurityError, match="ROS_SECURITY_STRATEGY='enforce'"):
        check_security([], {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "enforce"})


def test_enclave_resolution_and_missing_files_are_named(tmp_path):
    ks = _keystore(tmp_path / "ks", "robot_0/perception")
    env = {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce", "ROS_SECURITY_KEYSTORE": str(ks)}
    argv = ["x", "--ros-args", "-r", "__node:=perception", "-r", "__ns:=/robot_0"]
    e = dict(env)
    st = check_security(argv, e, middleware=_ok)
    assert st.enclave == "/robot_0/perception" and e["ROS_SECURITY_ENCLAVE_OVERRIDE"] == "/robot_0/perception"
    assert check_security(["x", "--ros-args", "--enclave", "/robot_0/perception"], dict(env), _ok).enclave \
        == "/robot_0/perception"
    with pytest.raises(SecurityError, match=r"enclave /robot_1/perception has no directory"):
        check_security(argv, {**env, "ROS_SECURITY_ENCLAVE_OVERRIDE": "/robot_1/perception"}, _ok)
    with pytest.raises(SecurityError, match="not a valid name"):
        check_security(argv, {**env, "ROS_SECURITY_ENCLAVE_OVERRIDE": "/robot_0/../x"}, _ok)
    (ks / "enclaves/robot_0/perception/permissions.p7s").unlink()
    with pytest.raises(SecurityError, match="lacks permissions.p7s"):
        check_security(argv, dict(env), _ok)
    with pytest.raises(SecurityError, match="ROS_SECURITY_KEYSTORE is not set"):
        check_security(argv, {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce"}, _ok)
    # Permissive with nothing there: rcl runs unsecured, so it is a loud warning, not an exit
    st = check_security(argv, {**env, "ROS_SECURITY_STRATEGY": "Permissive"}, _ok)
    assert "UNSECURED" in st.warning


def test_this_fast_dds_has_no_security_plugins():
    why = middleware_problem({})
    assert why is not None and "no DDS Security plugins" in why


def test_launch_plan_gives_every_node_its_enclave_and_the_environment(tmp_path):
    cfg = load_launch_config(overrides=security_overrides("true", "", str(tmp_path), "/fleet_a"))
    plan = build_plan(cfg)
    assert all(n.enclave == f"/fleet_a{n.namespace}/{n.name}" for n in plan)
    assert security_environment(cfg) == {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": "Enforce",
                                         "ROS_SECURITY_KEYSTORE": str(tmp_path)}
    kw = launch_ros_security(cfg, plan[1])
    assert kw["ros_arguments"] == ["--enclave", "/fleet_a/robot_0/event_sensor"]
    off = load_launch_config()
    assert all(n.enclave == "" for n in build_plan(off)) and security_environment(off) == {}
    with pytest.raises(ConfigError, match="security.keystore"):
        load_launch_config(overrides=security_overrides("true"))
    with pytest.raises(ConfigError, match="security.strategy"):
        load_launch_config(overrides=security_overrides("true", "enforce", "/ks"))
