"""SCHED_FIFO for the sensing-to-action chain: applied to every thread of a process (threads
started later inherit it), a refusal reported instead of raised, and a real node that applies
its `realtime_priority` parameter and says so on /diagnostics."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

from ros_helpers import CONTROL, NodeProcess, Probe, fifo_permitted
from snn_autonomy.realtime import check_priority, set_fifo_priority, thread_policies

# a process with three extra threads; each line on its stdin starts one more
THREADED = """
import sys, threading, time
def idle():
    time.sleep(60)
for _ in range(3):
    threading.Thread(target=idle, daemon=True).start()
print("ready", flush=True)
for line in sys.stdin:
    threading.Thread(target=idle, daemon=True).start()
    print("started", flush=True)
"""


@pytest.fixture(scope="module")
def permitted() -> bool:
    return fifo_permitted(50)


def test_priority_values_outside_1_to_99_are_refused_with_their_name():
    assert check_priority(0) == 0 and check_priority(99) == 99
    for bad in (-1, 100, 1.5, True, "40", None):
        with pytest.raises(ValueError, match="realtime_priority"):
            check_priority(bad)
    assert set_fifo_priority(0).requested == 0 and not set_fifo_priority(0).applied


def test_fifo_reaches_every_thread_and_threads_started_later_inherit_it(permitted):
    if not permitted:
        pytest.skip("this user may not use SCHED_FIFO (no CAP_SYS_NICE, rtprio limit 0)")
    p = subprocess.Popen([sys.executable, "-c", THREADED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        result = set_fifo_priority(7, pid=p.pid)
        assert result.applied and result.threads == 4, result
        assert "SCHED_FIFO priority 7 on 4 threads" in result.describe()
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "started"
        policies = thread_policies(p.pid)
        assert len(policies) == 5 and set(policies) == {(os.SCHED_FIFO, 7)}, policies
    finally:
        p.kill()
        p.wait()


def test_a_refused_priority_is_reported_and_the_process_keeps_normal_scheduling():
    # no CAP_SYS_NICE (root drops to nobody) and an rtprio limit of 0: the kernel must refuse
    # (imports first: nobody may not be able to read this checkout)
    code = ("import json, os, resource\n"
            "from snn_autonomy.realtime import set_fifo_priority\n"
            "resource.setrlimit(resource.RLIMIT_RTPRIO, (0, 0))\n"
            "if os.geteuid() == 0:\n"
            "    os.setgid(65534); os.setuid(65534)\n"
            "r = set_fifo_priority(40)\n"
            "print(json.dumps({'applied': r.applied, 'text': r.describe(), 'policy': os.sched_getscheduler(0)}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    assert not r["applied"] and r["policy"] == os.SCHED_OTHER
    assert "refused: no permission" in r["text"] and "ulimit -r` is 0" in r["text"], r["text"]


def test_a_node_runs_at_its_realtime_priority_and_reports_it_on_diagnostics(permitted):
    probe = Probe("realtime_probe")
    diags = []
    probe.node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 50)
    node = NodeProcess(CONTROL, {"realtime_priority": 33, "diagnostic_updater.period": 0.2},
                       namespace="/robot_0").start()

    def report():
        for m in diags:
            for s in m.status:
                if s.name == "robot_0/control: scheduling":
                    return s
        return None
    try:
        probe.spin_until(lambda: report() is not None, 60, "the control node's scheduling report")
        status = report()
        policies = thread_policies(node.proc.pid)
        if permitted:
            assert status.level == DiagnosticStatus.OK and status.message.startswith("SCHED_FIFO priority 33"), status.message
            assert set(policies) == {(os.SCHED_FIFO, 33)}, policies
        else:
            assert status.level == DiagnosticStatus.WARN and "refused" in status.message, status.message
            assert all(policy == os.SCHED_OTHER for policy, _ in policies), policies
        assert {kv.key: kv.value for kv in status.values}["realtime_priority"] == "33"
    finally:
        code = node.stop()
        probe.close()
    assert code == 0, node.log()[-2000:]
