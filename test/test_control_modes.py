"""One control core, two deployments: the same scripted decision sequence gives the same commands
through the fused loop (FusedAgent, as the `robot` node drives it) and through a real split-mode
`control` node over DDS.

The node runs on simulation time (use_sim_time) and the test owns /clock, so that both sides see
the very same times: the watchdog's ticks every 20 ms, a stretch without decisions long enough for
a stale stop, a clock fast-forwarded by 5 s (stop until the next decision), an unreadable decision
(refused by both, no command), obstacles on each side and an imminent collision ahead."""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, Twist
from rosgraph_msgs.msg import Clock
from snn_autonomy_msgs.msg import Assignment, Perception

from ros_helpers import CONTROL, NodeProcess, Probe, diag_values
from snn_autonomy.control.core import ControlCore, ControlTiming
from snn_autonomy.control.watchdog import ODOM_STALE, WatchdogConfig
from snn_autonomy.events.batch import EventBatch
from snn_autonomy.loop.fused import FusedAgent
from snn_autonomy.perception.heads import Head
from snn_autonomy.perception.labels import CENTER, CLASSES, CLEAR, LEFT, RIGHT
from snn_autonomy.perception.runtime import Decision
from snn_autonomy.perception.sectors import SectorSpec
from snn_autonomy.ros import qos

ORIGIN = (1.0, 4.0, math.pi / 2)    # facing its nearest waypoint, (1, 6)
WAYPOINTS = [(3.0, 4.5), (3.0, 6.0), (1.0, 6.0)]
TICK_MS = 20                      # ControlTiming().tick_hz = 50
JUMP_MS = 5000                    # a simulator fast-forwarded: far over clock_jump_threshold_s


def _script() -> List[Tuple[int, Optional[tuple]]]:
    """(sim time in ms, decision or None): one step per watchdog tick."""
    steps: List[Tuple[int, Optional[tuple]]] = []
    t = 1000
    pattern = [(CLEAR, 0.9, False)] * 8 + [(LEFT, 0.8, False)] * 4 + [(CENTER, 0.95, True)] * 3 + \
        [(RIGHT, 0.7, False)] * 3 + [(7, 1.5, False)] + [(CLEAR, 0.99, False)] * 6
    for d in pattern:
        steps.append((t, d))
        t += TICK_MS
    for _ in range(8):                # 160 ms without a decision: stale after 100 ms
        steps.append((t, None))
        t += TICK_MS
    steps.append((t, (CLEAR, 0.9, False)))
    t += JUMP_MS
    steps.append((t, None))           # the jump itself
    for d in [(CLEAR, 0.9, False)] * 5 + [(CENTER, 0.9, False)] * 3:
        t += TICK_MS
        steps.append((t, d))
    return steps


def _seconds(ms: int) -> float:
    return ms * 1_000_000 * 1e-9      # as the node computes it from its clock's nanoseconds


# A sector model's view of each scripted label: nothing near; something at 0.35-0.6 m in the
# left third; under 0.35 m in the centre; at 0.6-0.9 m in the right third.
SECTOR_VIEWS = {CLEAR: (5,) * 9, LEFT: (1, 1, 2, 5, 5, 5, 5, 5, 5), CENTER: (5, 5, 4, 0, 0, 1, 5, 5, 5),
                RIGHT: (5, 5, 5, 5, 5, 5, 2, 2, 3)}


class _ScriptedPerception:
    """Stands where StreamingPerception stands in the fused loop: hands out the scripted decision."""

    classes = list(CLASSES)
    model_t_max, threshold = 16, 0.9

    def __init__(self, head: Head) -> None:
        self.next: Optional[tuple] = None
        self.head = head
        self.odometry: List[str] = []      # what the loop told of odometry, one entry per event batch

    def set_heading(self, yaw_rad: float) -> bool:
        self.odometry.append("heading")    # the scripted decisions carry no prior to turn
        return True

    def set_speed(self, forward_mps: float) -> bool:
        return True           # nor one to hold

    def forget_odometry(self) -> None:
        self.odometry.append("forgotten")

    def push(self, batch, now_us: int) -> list:
        if self.next is None:
            return []
        label, conf, approaching = self.next
        self.next = None
        scores = np.full(len(CLASSES), 0.1)
        sectors = SECTOR_VIEWS.get(label, (5,) * 9) if self.head.sectors is not None else ()
        return [Decision(now_us, label, scores, conf, approaching, 0.9 if approaching else 0.1, 4, 16, True,
                         0.9, 0, 0, 0.0, 0, sectors=sectors)]


def _fused_commands(steps, head: Head) -> Tuple[List[tuple], List[int]]:
    """Commands of the fused loop, and how many there are after each step."""
    engine = _ScriptedPerception(head)
    agent = FusedAgent(engine, 128, 96, 90.0, attention=False, origin=ORIGIN)
    agent.control.on_assignment("r1", WAYPOINTS)
    empty = EventBatch.empty(128, 96)
    out: List[tuple] = []
    counts = []
    last_ms = None
    for ms, d in steps:
        now = _seconds(ms)
        if last_ms is not None and ms - last_ms > 500:      # what the node's jump callback does
            out.append(agent.control.on_clock_jump(now, _seconds(ms - last_ms)))
        last_ms = ms
        stop = agent.on_tick(now)
        if stop is not None:
            out.append(stop)
        if d is not None:
            engine.next = d
            cmd = agent.on_events(empty, ms * 1000, now)
            if cmd is not None:
                out.append(cmd)
        counts.append(len(out))
    return out, counts


def _perception(head: Head, label: int, conf: float, approaching: bool, k: int) -> Perception:
    m = Perception()
    m.agent_id, m.decision_id = "robot_0", k
    m.class_names = list(CLASSES)
    m.label, m.confidence, m.approaching = label, conf, approaching
    if head.sectors is not None:           # as perception_msg fills it
        view = head.sectors.view(SECTOR_VIEWS.get(label, (5,) * 9))
        m.fov_rad, m.sector_classes, m.sector_free_m = view.fov_rad, list(view.classes), list(view.free_m)
    return m


@pytest.mark.parametrize("head", [Head(), Head(SectorSpec())], ids=["four_classes", "sectors"])
def test_fused_and_split_control_give_the_same_commands(head):
    steps = _script()
    expected, counts = _fused_commands(steps, head)
    assert len(expected) > 40
    kinds = {("stop" if c == (0.0, 0.0) else "turn" if c[0] == 0.0 else "drive") for c in expected}
    assert kinds == {"stop", "turn", "drive"}, expected        # the script exercises every branch

    probe = Probe("control_modes_probe")
    n = probe.node
    got: List[tuple] = []
    diag: list = []
    n.create_subscription(Twist, "/robot_0/cmd_vel", lambda m: got.append((m.linear.x, m.angular.z)), qos.COMMAND)
    n.create_subscription(DiagnosticArray, "/diagnostics", diag.append, 100)
    clock = n.create_publisher(Clock, "/clock", 10)
    perception = n.create_publisher(Perception, "/robot_0/perception", qos.COMMAND)
    assignment = n.create_publisher(Assignment, "/robot_0/assignment", qos.LATCHED)
    node = NodeProcess(CONTROL, {"use_sim_time": True, "start_pose": list(ORIGIN),
                                 "diagnostic_updater.period": TICK_MS / 1000.0,
                                 "tick_hz": ControlTiming().tick_hz}, namespace="/robot_0").start()
    try:
        probe.spin_until(lambda: clock.get_subscription_count() and perception.get_subscription_count()
                         and assignment.get_subscription_count() and n.count_publishers("/robot_0/cmd_vel"),
                         60, "the control node's topics")
        a = Assignment()
        a.agent_id, a.region.region_id = "robot_0", "r1"
        a.region.waypoints = [Point(x=x, y=y) for x, y in WAYPOINTS]
        assignment.publish(a)

        def advance(ms: int) -> None:
            c = Clock()
            c.clock.sec, c.clock.nanosec = divmod(ms * 1_000_000, 1_000_000_000)
            stamp_ns = ms * 1_000_000
            # The node's diagnostics run on its clock: one stamped `ms` says it has taken this time
            # step. /clock is best effort: the same time again is no jump, so it is resent until then.
            for _ in range(100):
                clock.publish(c)
                try:
                    probe.spin_until(lambda: any(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec >= stamp_ns
                                                 for m in diag[-5:]), 0.3)
                    return
                except AssertionError:
                    continue
            raise AssertionError(f"the node never reached sim time {ms} ms")

        # The node's diagnostics come on its (simulated) clock: while it stands still no newer one
        # says whether the assignment was taken, so the clock moves a tick at a time (and the
        # assignment is sent again) until one does, ahead of the script's first step.
        t = steps[0][0] - 20 * TICK_MS
        advance(t)
        while diag_values(diag, "control: control").get("region") != "r1":
            assert t < steps[0][0] - 2 * TICK_MS, "the assignment was never taken"
            assignment.publish(a)
            t += TICK_MS
            advance(t)
        while t < steps[0][0] - 2 * TICK_MS:      # on to where the script starts, a tick at a time
            t += TICK_MS
            advance(t)
        got.clear()
        for k, ((ms, d), want) in enumerate(zip(steps, counts)):
            advance(ms)
            if d is not None:
                perception.publish(_perception(head, *d, k))
            probe.spin_until(lambda: len(got) >= want, 30,
                             f"{want} commands by step {k} ({ms} ms); got {len(got)}: {got[-3:]}")
        advance(steps[-1][0] + TICK_MS)       # the last decision's command is in; nothing more comes
        probe.spin_until(lambda: len(got) >= counts[-1], 5, "the last command")
        final = diag_values(diag, "control: control")
    finally:
        code = node.stop()
        probe.close()
    assert code == 0, node.log()[-2000:]
    assert len(got) == len(expected), (got, expected)
    # the message carries the sector ranges and field of view as float32: a few 1e-9 apart
    tol = 1e-9 if head.sectors is None else 1e-6
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == pytest.approx(e, abs=tol), f"command {i}: split {g}, fused {e}"
    assert int(final["bad_decisions"]) == 1 and int(final["clock_jumps"]) == 1, final
    assert math.isclose(float(final["last_clock_jump_s"]), JUMP_MS / 1000.0, abs_tol=0.05), final


def test_both_modes_refuse_non_finite_odometry_and_unreadable_decisions():
    core = ControlCore((1.0, 4.0, 0.0))
    assert not core.on_odom(float("nan"), 0.0, 0.0)
    assert not core.on_odom(0.0, 0.0, 0.0, float("inf"), 0.0)
    assert core.pose == (1.0, 4.0, 0.0) and core.counters.refused["odom"] == 2
    assert core.on_odom(1.0, 0.0, math.pi / 2)
    assert core.pose == pytest.approx((2.0, 4.0, math.pi / 2))
    assert core.on_decision(0.0, 4, 4, 0.9, False) is None             # a label outside the classes
    assert core.on_decision(0.0, 0, 4, float("nan"), False) is None    # a confidence that is no probability
    assert core.counters.refused["decision"] == 2 and core.watchdog.age_s(0.0) == math.inf


def test_odometry_gone_silent_stops_the_robot_until_it_comes_again():
    """Odometry that came and then went silent past the watchdog's deadline leaves the pose the
    last known: the robot stops (counted once per lapse), perception's prior forgets heading and
    speed, and both resume with the next odometry. A robot run without odometry is never stopped
    for it, and a clock jump gives odometry a fresh deadline on the new time line."""
    engine = _ScriptedPerception(Head(SectorSpec()))
    agent = FusedAgent(engine, 128, 96, 90.0, attention=False, origin=ORIGIN)
    core = agent.control
    core.on_assignment("r1", WAYPOINTS)
    empty = EventBatch.empty(128, 96)
    deadline = WatchdogConfig().odom_deadline_s

    def decide(now_s: float) -> tuple:
        engine.next = (CLEAR, 0.99, False)
        return agent.on_events(empty, int(now_s * 1e6), now_s)

    for k in range(60):                             # 1.2 s of decisions, no odometry at all
        decide(1.0 + 0.02 * k)
    assert core.mode != ODOM_STALE and core.status(2.2).values["odom_age_ms"] == math.inf
    assert core.command[0] > 0.0 and "forgotten" not in engine.odometry
    t = 2.2
    for _ in range(25):                             # odometry with every decision: still driving
        assert core.on_odom(0.0, 0.0, 0.0, 0.3, 0.0, now_s=t)
        decide(t)
        t += 0.02
    assert core.mode != ODOM_STALE and core.command[0] > 0.0
    engine.odometry.clear()
    silent_from = t - 0.02
    while t < silent_from + deadline + 0.2:          # odometry silent, decisions go on
        cmd = decide(t)
        t += 0.02
    assert cmd == (0.0, 0.0) and core.mode == ODOM_STALE
    assert agent.on_tick(t) == (0.0, 0.0)           # between decisions too
    status = core.status(t)
    assert not status.ok and "no odometry" in status.summary and status.values["stops_stale_odom"] == 1
    # perception was told while the odometry was fresh, and told to forget once it was not
    assert engine.odometry[0] == "heading" and engine.odometry[-1] == "forgotten"
    assert core.on_odom(0.0, 0.0, 0.0, 0.0, 0.0, now_s=t)
    for _ in range(5):
        decide(t)
        t += 0.02
    assert core.mode != ODOM_STALE and core.command[0] > 0.0 and engine.odometry[-1] == "heading"
    # a fast-forwarded clock is no lapse: the odometry's deadline starts again on the new time line
    core.on_clock_jump(t + 5.0, 5.0)
    t += 5.0
    decide(t + 0.02)
    assert core.mode != ODOM_STALE and core.watchdog.counters.stops[ODOM_STALE] == 1
