"""How every node process ends on SIGINT and SIGTERM (the common main, `ros/spin.py`): between two
callbacks, with exit status 0 and no traceback, however busy it is; and at once while it is still
starting."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from snn_autonomy_msgs.msg import Perception

from ros_helpers import ATTENTION, NodeProcess, OutputLines, Probe
from snn_autonomy.ros import qos

# A node whose timer callback runs a second of Python: a signal that arrives meanwhile must not
# interrupt it (a controller must not stop half-way through a command).
BUSY_NODE = r'''
import sys, time
from rclpy.node import Node
from snn_autonomy.ros.spin import spin_node

class Busy(Node):
    def __init__(self):
        super().__init__("busy_callback")
        self.create_timer(0.05, self.work)

    def work(self):
        print("callback started", flush=True)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            sum(range(1000))
        print("callback finished", flush=True)

sys.exit(spin_node(Busy, sys.argv[1:]))
'''

# A node that takes long to build (as perception does while it loads its model and backend).
SLOW_START = r'''
import sys, time
from rclpy.node import Node
from snn_autonomy.ros.spin import spin_node

def build():
    print("building", flush=True)
    time.sleep(60)
    return Node("slow_start")

sys.exit(spin_node(build, sys.argv[1:]))
'''


# The main thread blocks the stop signals while it starts, so that the kernel hands SIGINT to
# another thread (rclpy's signal thread, say), as it may at any time: only Python's C handler
# runs there, and the main thread, asleep, does not see it without being woken.
SLOW_START_SIGNAL_ELSEWHERE = SLOW_START.replace(
    'print("building", flush=True)',
    'import signal; signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}); '
    'print("building", flush=True)')


def _start(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_node_between_callbacks_not_inside_one(sig):
    proc = _start(BUSY_NODE)
    output = OutputLines(proc)
    try:
        seen = output.wait_for("callback started")
        time.sleep(0.2)
        proc.send_signal(sig)
        t0 = time.monotonic()
        proc.wait(timeout=20)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    output.finish()
    out = output.text(seen)      # what it printed after the callback's start line
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out
    assert out.splitlines()[:1] == ["callback finished"], out   # the callback under way ran to its end
    assert "callback started" not in out, "a callback began after the stop request:\n" + out
    assert took < 5.0, f"stopping took {took:.1f} s"


@pytest.mark.parametrize("code", [SLOW_START, SLOW_START_SIGNAL_ELSEWHERE], ids=["main_thread", "another_thread"])
def test_a_signal_while_a_node_is_starting_stops_it_at_once(code):
    proc = _start(code)
    output = OutputLines(proc)
    try:
        seen = output.wait_for("building")
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        proc.wait(timeout=20)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    output.finish()
    out = output.text(seen)
    assert proc.returncode == 0 and "Traceback" not in out and "cannot start" not in out, out
    assert took < 5.0


def test_a_flooded_node_stopped_with_ctrl_c_twice_exits_cleanly():
    """Ctrl-C twice while the node takes messages as fast as they come: the first lands in the
    middle of taking a message, the second while the node shuts down. Neither may end it with
    a traceback or a signal status."""
    probe = Probe("flood_probe")
    pub = probe.node.create_publisher(Perception, "/robot_0/perception", qos.COMMAND)
    msg = Perception(agent_id="robot_0")
    try:
        for _ in range(3):
            node = NodeProcess(ATTENTION, namespace="/robot_0").start()
            try:
                probe.spin_until(lambda: pub.get_subscription_count() > 0, 60, "the attention node")
                end = time.monotonic() + 0.5
                while time.monotonic() < end:
                    pub.publish(msg)
                node.proc.send_signal(signal.SIGINT)
                for _ in range(2000):      # still flooding while it stops
                    pub.publish(msg)
                node.proc.send_signal(signal.SIGINT)
                code = node.proc.wait(20)
            finally:
                node.stop()
            assert code == 0, node.log()[-3000:]
            assert "Traceback" not in node.log()
    finally:
        probe.close()
