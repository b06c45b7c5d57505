"""Control (patrol policy, limits, watchdog), attention policy and the fused loop, driven directly."""
from __future__ import annotations

import math

import numpy as np
import pytest

from snn_autonomy.attention.policy import ALERT, CALM, AttentionConfig, AttentionInputs, AttentionPolicy
from snn_autonomy.control.limits import LimitsConfig, VelocityLimiter
from snn_autonomy.control.core import ControlCore
from snn_autonomy.control.policy import PatrolController
from snn_autonomy.control.watchdog import IMMINENT, STALE, SafetyWatchdog, WatchdogConfig
from snn_autonomy.perception.labels import CENTER, CLEAR, LEFT, RIGHT


def test_watchdog_stops_on_stale_perception_and_counts_each_stop_once():
    w = SafetyWatchdog(WatchdogConfig(deadline_s=0.1))
    assert w.check(0.0) == STALE                      # nothing heard yet: do not move
    w.feed(0.0, False, False)
    assert w.check(0.05) is None and w.check(0.1) is None
    assert w.check(0.1001) == STALE and w.check(0.2) == STALE
    assert w.counters.stops[STALE] == 2               # the start, then one stop however long it lasts
    w.feed(0.25, True, True)
    assert w.check(0.25) == IMMINENT
    w.feed(0.26, True, False)
    assert w.check(0.26) is None
    assert w.counters.stops[IMMINENT] == 1 and w.counters.stopped_s > 0.1


def test_controller_halts_forward_motion_when_collision_is_imminent_and_stops_when_blind():
    c = ControlCore()
    c.on_decision(0.0, CLEAR, 4, 1.0, False)
    for k in range(1, 30):
        v, w = c.on_decision(0.02 * k, CLEAR, 4, 1.0, False)
    assert v > 0.3
    v, w = c.on_decision(0.62, CENTER, 4, 1.0, True)
    assert v == 0.0 and w != 0.0                      # halted, turning in place is allowed
    assert c.on_tick(0.65) is None
    assert c.on_tick(0.75) == (0.0, 0.0) and c.mode == STALE


def test_limiter_bounds_speed_and_acceleration_but_never_delays_a_stop():
    lim = VelocityLimiter(LimitsConfig(max_linear_mps=0.5, max_angular_rps=1.0, max_linear_accel=1.0))
    lim.limit(0.0, 0.0, 0.0)
    assert lim.limit(5.0, 9.0, 0.1) == pytest.approx((0.1, 0.6))
    assert lim.limit(float("nan"), 1.0, 0.2) == (0.0, 0.0)      # a NaN command is a stop
    lim.limit(0.5, 0.0, 0.3)
    assert lim.stop(0.31) == (0.0, 0.0)


def test_patrol_steers_for_waypoints_and_away_from_obstacles():
    p = PatrolController()
    p.assign("r", [(2.0, 0.0), (2.0, 2.0)], pose=(0.0, 0.0, 0.0))
    c = p.command((0.0, 0.0, math.pi / 2), CLEAR, False, 0.0)
    assert c.mode == "pursue" and c.angular < 0 and c.linear < 0.05   # facing away: turn first
    assert p.command((0.0, 0.0, 0.0), LEFT, False, 1.0).angular < 0
    assert p.command((0.0, 0.0, 0.0), RIGHT, False, 1.1).angular > 0
    first = p.command((0.0, 0.0, 0.0), CENTER, False, 1.2)
    assert first.linear == 0.0
    # the turn direction is kept while the centre stays blocked
    assert all(p.command((0.0, 0.0, 0.1 * k), CENTER, False, 1.3).angular == first.angular for k in range(5))
    assert p.command((0.0, 0.0, 0.0), CLEAR, False, 1.5).mode == "hold"   # straight on after avoiding
    assert p.command((1.9, 0.0, 0.0), CLEAR, False, 5.0).mode == "pursue" and p.index == 1


def _policy(**kw):
    return AttentionPolicy(128, 96, 90.0, model_t_max=16, model_threshold=0.986, cfg=AttentionConfig(**kw))


def test_attention_is_calm_only_driving_straight_after_a_confident_clear():
    pol = _policy()
    calm = pol.decide(AttentionInputs(0.4, 0.0, CLEAR, 0.97, False))
    assert calm.mode == CALM and calm.t_max == 4 and calm.threshold == pytest.approx(0.85) and calm.roi == (0, 0, 0, 0)
    for inp in (AttentionInputs(0.4, 0.0, CENTER, 0.99, False), AttentionInputs(0.4, 0.0, CLEAR, 0.6, False),
                AttentionInputs(0.4, 0.0, CLEAR, 0.99, True), AttentionInputs(0.2, 1.2, CLEAR, 0.99, False)):
        a = pol.decide(inp)
        assert a.mode == ALERT and a.t_max == 8 and a.threshold == pytest.approx(0.986), inp


def test_attention_roi_drops_the_side_the_robot_turns_away_from():
    pol = _policy()
    left = pol.decide(AttentionInputs(0.2, 1.2, LEFT, 0.99, False))
    x, y, w, h = left.roi
    assert x == 0 and 0 < 128 - w <= 13 and h == 96             # turning left: the right edge goes
    right = pol.decide(AttentionInputs(0.2, -1.2, RIGHT, 0.99, False))
    assert right.roi[0] == 128 - right.roi[2] > 0


def test_fleet_detection_in_the_path_makes_the_robot_alert_but_one_beside_it_does_not():
    pol = _policy()
    pose = (0.0, 0.0, 0.0)
    ahead = pol.decide(AttentionInputs(0.4, 0.0, CLEAR, 0.99, False, pose=pose, shared=[(1.0, 0.1, 0.2, "robot_1")],
                                       agent_id="robot_0"))
    beside = pol.decide(AttentionInputs(0.4, 0.0, CLEAR, 0.99, False, pose=pose, shared=[(1.0, 1.0, 0.2, "robot_1")],
                                        agent_id="robot_0"))
    stale = pol.decide(AttentionInputs(0.4, 0.0, CLEAR, 0.99, False, pose=pose, shared=[(1.0, 0.1, 5.0, "robot_1")],
                                       agent_id="robot_0"))
    assert ahead.mode == ALERT and "fleet" in ahead.reason
    assert beside.mode == CALM and stale.mode == CALM


def test_fused_closed_loop_patrols_with_real_perception():
    """Fused mode end to end: world, camera, DVS, SNN, controller, attention in one process."""
    from snn_autonomy.loop.closed_loop import run_closed_loop

    r = run_closed_loop(agents=2, duration_s=3.0, attention=True, seed=7)
    assert r["decisions"] > 2 * 3.0 * 20                 # well over 20 decisions per second per robot
    assert r["distance_m"] > 0.5 and 0.0 < r["coverage"] <= 1.0
    assert 1.0 <= r["steps_per_decision"] <= 8.0         # attention caps at 8 steps
    assert r["watchdog_stops"][STALE] <= 2 * 1           # only the start, before the first decision
    assert np.isfinite(r["synops_per_decision"]) and r["synops_per_decision"] > 0


# ---------------------------------------------------------------- clock jumps


def test_watchdog_forgets_decisions_from_before_a_clock_jump():
    w = SafetyWatchdog(WatchdogConfig(deadline_s=0.1))
    w.feed(10.0, False, False)
    assert w.check(10.05) is None
    w.on_clock_jump(10.06)                            # announced (the node's jump callback), even a small one
    assert w.check(10.06) == STALE and w.age_s(10.06) == float("inf")
    w.feed(10.07, False, False)
    assert w.check(10.08) is None
    # unannounced: the clock reads earlier than the last decision; it never counts again,
    # not even once the clock has caught up with it
    assert w.check(3.0) == STALE and w.check(10.08) == STALE
    assert w.clock_jumps == 2 and w.counters.stops[STALE] == 2
    w.feed(4.0, False, False)
    assert w.check(4.05) is None
    assert w.counters.stopped_s >= 0.0                # time stopped across a jump is never negative


@pytest.mark.parametrize("jump_to", [2.0, 500.0])
def test_controller_stops_at_a_clock_jump_and_starts_again_from_rest(jump_to):
    c = ControlCore()
    for k in range(60):
        v, _ = c.on_decision(100.0 + 0.02 * k, CLEAR, 4, 1.0, False)
    assert v > 0.3
    assert c.on_clock_jump(jump_to, jump_to - 101.18) == (0.0, 0.0) and c.mode == STALE
    assert c.on_tick(jump_to + 0.01) == (0.0, 0.0)     # no decision since the jump: still stopped
    v, w = c.on_decision(jump_to + 0.02, CLEAR, 4, 1.0, False)
    assert 0.0 < v <= LimitsConfig().max_linear_accel * 0.02 + 1e-9 and c.mode != STALE   # from rest, limited
