"""Control (patrol policy, limits, watchdog), attention policy and the fused loop, driven directly."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from snn_autonomy.attention.policy import OPEN as OPEN_PATH
from snn_autonomy.attention.policy import ALERT, CALM, SPIN, AttentionConfig, AttentionInputs, AttentionPolicy
from snn_autonomy.control.limits import LimitsConfig, VelocityLimiter
from snn_autonomy.control.core import ControlCore
from snn_autonomy.control.policy import PatrolConfig, PatrolController, first_pass_start
from snn_autonomy.control.watchdog import IMMINENT, STALE, SafetyWatchdog, WatchdogConfig
from snn_autonomy.perception.labels import CENTER, CLEAR, LEFT, RIGHT
from snn_autonomy.perception.sectors import SectorSpec, make_percept


def test_watchdog_stops_on_stale_perception_and_counts_each_stop_once():
    w = SafetyWatchdog(WatchdogConfig(deadline_s=0.1))
    assert w.check(0.0) == STALE                      # nothing heard yet: do not move
    w.feed(0.0, False)
    assert w.check(0.05) is None and w.check(0.1) is None
    assert w.check(0.1001) == STALE and w.check(0.2) == STALE
    assert w.counters.stops[STALE] == 2               # the start, then one stop however long it lasts
    w.feed(0.25, True)
    assert w.check(0.25) == IMMINENT
    w.feed(0.26, False)
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


SPEC = SectorSpec()


def _percept(free_left_to_right, approaching=False, ttc_s=math.inf):
    """A decision whose sectors are free to the given ranges [m]."""
    return make_percept(SPEC, SPEC.grade(np.asarray(free_left_to_right, dtype=float)), approaching, ttc_s, 1.0)


OPEN = [9.0] * SPEC.count


def test_patrol_takes_decisions_of_another_sector_layout_without_mixing_the_two():
    """A perception restarted with another model (9 sectors of a 90-degree lens, then 14 of a
    140-degree one) while the robot turns: the smoothing window starts afresh, no crash."""
    wide = SectorSpec.for_camera(140.0)
    assert wide.count != SPEC.count
    p = PatrolController()
    p.assign("r", [(2.0, 0.0), (2.0, 2.0)], pose=(0.0, 0.0, 0.0))
    for k in range(5):
        p.command((0.0, 0.0, 0.3 * k), _percept(OPEN), 0.02 * k)
    blocked_ahead = [9.0] * 6 + [0.3, 0.3] + [9.0] * 6
    for k in range(5, 10):
        c = p.command((0.0, 0.0, 0.3 * k), make_percept(wide, wide.grade(np.asarray(blocked_ahead)), False,
                                                         math.inf, 1.0), 0.02 * k)
        assert math.isfinite(c.linear) and math.isfinite(c.angular)
    assert c.linear < 0.05                 # what the new layout sees straight ahead is not smoothed away


def test_patrol_turns_to_a_waypoint_it_does_not_face_before_driving_off():
    p = PatrolController()
    p.assign("r", [(2.0, 0.0), (2.0, 2.0)], pose=(0.0, 0.0, 0.0))
    c = p.command((0.0, 0.0, math.pi / 2), _percept(OPEN), 0.0)
    assert c.mode == "turn_to_goal" and c.angular < 0 and c.linear < 0.05
    c = p.command((0.0, 0.0, 0.0), _percept(OPEN), 0.1)
    assert c.mode == "pursue" and c.linear == pytest.approx(PatrolConfig().cruise_mps) and abs(c.angular) < 0.3
    assert p.command((1.9, 0.0, 0.0), _percept(OPEN), 0.2).mode in ("pursue", "turn_to_goal") and p.index == 1


def test_patrol_goes_around_an_obstacle_instead_of_stopping():
    p = PatrolController()
    p.assign("r", [(5.0, 0.0)], pose=(0.0, 0.0, 0.0))
    # something 0.5 m ahead, slightly right: steer left past it, still moving
    blocked = [9.0, 9.0, 9.0, 9.0, 0.5, 0.5, 9.0, 9.0, 9.0]
    c = p.command((0.0, 0.0, 0.0), _percept(blocked), 0.0)
    assert c.mode in ("avoid", "turn_to_goal") and c.angular > 0.0 and c.linear > 0.0
    side = np.sign(c.angular)
    # it slows for what is near ahead but does not halt
    for k in range(1, 6):
        c = p.command((0.0, 0.0, -side * 0.1 * k), _percept(blocked), 0.1 * k)
    assert c.linear > 0.0
    # the gap on the right only: it takes it
    right_gap = [0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 9.0, 9.0, 9.0]
    c = p.command((0.0, 0.0, 0.0), _percept(right_gap), 1.0)
    assert c.angular < 0


def test_patrol_turns_in_place_when_blocked_and_keeps_the_direction():
    p = PatrolController()
    p.assign("r", [(5.0, 0.0)], pose=(0.0, 0.0, 0.0))
    blocked = [0.3] * SPEC.count
    # blocked in view: it turns on the spot toward what it has not seen, one way, without dithering
    first = p.command((0.0, 0.0, 0.0), _percept(blocked), 0.0)
    assert first.mode == "turn_to_goal" and first.linear == 0.0 and first.angular != 0.0
    turns = [p.command((0.0, 0.0, -np.sign(first.angular) * 0.05 * k), _percept(blocked), 0.1 * k)
             for k in range(1, 6)]
    assert all(c.linear == 0.0 and c.angular == first.angular for c in turns)
    # blocked all around (the memory holds what it saw while turning): turn in place
    p = PatrolController()
    p.assign("r", [(5.0, 0.0)], pose=(0.0, 0.0, 0.0))
    for k in range(8):
        c = p.command((0.0, 0.0, k * math.pi / 4), _percept(blocked), 0.05 * k)
    assert c.mode == "turn_in_place" and c.linear == 0.0 and c.angular != 0.0


def test_patrol_remembers_an_obstacle_that_left_the_view():
    """Seen on the left, then out of view after a turn right: the robot does not turn straight
    back into it for the waypoint behind it."""
    p = PatrolController()
    p.assign("r", [(0.0, 5.0)], pose=(0.0, 0.0, 0.0))          # the waypoint is to the left
    wall_left = [0.45, 0.45, 0.45, 0.45, 9.0, 9.0, 9.0, 9.0, 9.0]
    p.command((0.0, 0.0, 0.0), _percept(wall_left), 0.0)
    # turned right by 60 deg: the wall is out of view now, the waypoint 150 deg to the left
    c = p.command((0.0, 0.0, -math.pi / 3), _percept(OPEN), 0.2)
    assert c.angular <= 0.0 or c.linear == 0.0
    forgetful = PatrolController()
    forgetful.assign("r", [(0.0, 5.0)], pose=(0.0, 0.0, 0.0))
    assert forgetful.command((0.0, 0.0, -math.pi / 3), _percept(OPEN), 0.2).angular > 0


def test_patrol_smooths_sectors_in_the_direction_they_look_while_the_robot_turns():
    """An obstacle straight ahead of where the robot started, seen while it turns left 10 deg per
    decision: it moves one sector right each time. The median must follow it, not mix directions."""
    p = PatrolController()
    width = math.radians(SPEC.hfov_deg) / SPEC.count
    for k in range(3):
        seen = [9.0] * SPEC.count
        seen[SPEC.count // 2 + k] = 0.5
        smoothed = p._smoothed(_percept(seen), k * width, 0.05 * k)
    assert smoothed.classes == _percept(seen).classes          # every decision agrees, once aligned
    # without the turn the same three decisions disagree on each sector, and the median loses it
    q = PatrolController()
    for k in range(3):
        seen = [9.0] * SPEC.count
        seen[SPEC.count // 2 + k] = 0.5
        smoothed = q._smoothed(_percept(seen), 0.0, 0.05 * k)
    assert min(smoothed.classes) == max(_percept(OPEN).classes)


def test_patrol_slows_at_once_for_something_near_that_the_median_does_not_see_yet():
    p = PatrolController()
    p.assign("r", [(5.0, 0.0)], pose=(0.0, 0.0, 0.0))
    for k in range(4):
        cruising = p.command((0.0, 0.0, 0.0), _percept(OPEN), 0.04 * k)
    assert cruising.linear == pytest.approx(PatrolConfig().cruise_mps)
    near = [9.0, 9.0, 9.0, 0.3, 0.3, 0.3, 9.0, 9.0, 9.0]
    c = p.command((0.0, 0.0, 0.0), _percept(near), 0.16)        # one decision in five: outvoted
    assert c.linear < 0.5 * cruising.linear
    assert abs(c.angular) < 0.1                                  # it steers by the median still


def test_patrol_slows_for_an_approach_flagged_without_a_time_to_contact():
    """An SNN's approach head says only 'closing in under 2 s': the controller slows as for
    flagged_ttc_s, as it does for a time to contact it is given, and not at all without a flag."""
    cfg = PatrolConfig()
    speeds = {}
    for name, approaching, ttc in (("clear", False, math.inf), ("flag", True, math.inf), ("figure", True, 0.5)):
        p = PatrolController(cfg)
        p.assign("r", [(5.0, 0.0)], pose=(0.0, 0.0, 0.0))
        speeds[name] = p.command((0.0, 0.0, 0.0), _percept(OPEN, approaching, ttc), 0.0).linear
    assert speeds["clear"] == pytest.approx(cfg.cruise_mps)
    assert speeds["flag"] == pytest.approx(cfg.cruise_mps * cfg.flagged_ttc_s / cfg.ttc_slow_s)
    assert speeds["figure"] == pytest.approx(cfg.cruise_mps * 0.5 / cfg.ttc_slow_s)


def test_patrol_skips_a_waypoint_it_makes_no_progress_toward():
    cfg = PatrolConfig(waypoint_timeout_s=2.0)
    p = PatrolController(cfg)
    p.assign("r", [(3.0, 0.0), (0.0, 3.0)], pose=(0.0, 0.0, 0.0))
    for k in range(40):                                           # stuck in place for 4 s
        p.command((0.0, 0.0, 0.0), _percept(OPEN), 0.1 * k)
    assert p.index == 1 and p.waypoints_skipped == 1 and p.waypoints_reached == 0


def test_patrol_starts_a_sweep_at_its_nearer_end_not_at_the_nearest_waypoint():
    # lanes at y = 0, 1, 2, driven out and back: from near the middle lane's start, the first
    # full pass is shortest from the first lane's start (index 0), not from the middle lane
    lanes = [(0.0, 0.0), (4.0, 0.0), (4.0, 1.0), (0.0, 1.0), (0.0, 2.0), (4.0, 2.0)]
    route = lanes + lanes[-2:0:-1]
    assert first_pass_start(route, (0.1, 1.0)) in (0, 5)
    assert first_pass_start(route, (0.0, -0.5)) == 0
    assert first_pass_start(route, (4.0, 2.5)) == 5
    # a route that is a plain loop: the nearest waypoint is where its first pass is shortest
    assert first_pass_start([(0.0, 0.0), (3.0, 0.0), (3.0, 3.0), (0.0, 3.0)], (2.9, 3.2)) == 2


def test_patrol_reaches_a_waypoint_near_a_wall_instead_of_circling_it():
    # a wall 0.8 m ahead of the centre (within the pass range), the waypoint 0.35 m ahead:
    # the body fits, so the robot drives to it (and then back along the route)
    p = PatrolController()
    p.assign("r", [(0.35, 0.0), (-3.0, 0.0)], pose=(0.0, 0.0, 0.0))
    wall = [0.62] * SPEC.count
    c = p.command((0.0, 0.0, 0.0), _percept(wall), 0.0)
    assert c.mode == "pursue" and c.linear > 0.0


def test_patrol_skips_a_waypoint_it_sees_inside_an_obstacle_at_once():
    p = PatrolController()
    p.assign("r", [(0.7, 0.0), (0.0, 3.0)], pose=(0.0, 0.0, 0.0))
    pillar = [9.0, 9.0, 9.0, 0.3, 0.3, 0.3, 9.0, 9.0, 9.0]      # 0.3 m ahead of the camera
    p.command((0.0, 0.0, 0.0), _percept(pillar), 0.0)
    assert p.index == 1 and p.waypoints_skipped == 1
    # seen free up to it: kept
    p = PatrolController()
    p.assign("r", [(0.7, 0.0), (0.0, 3.0)], pose=(0.0, 0.0, 0.0))
    p.command((0.0, 0.0, 0.0), _percept(OPEN), 0.0)
    assert p.index == 0 and p.waypoints_skipped == 0


def test_patrol_drives_a_lane_end_as_an_arc():
    # 0.5 m before a lane's end, the next lane 1 m to the left: already turning left, still moving
    p = PatrolController()
    p.assign("r", [(0.0, 0.0), (3.0, 0.0), (3.0, 1.0), (0.0, 1.0)])
    p.index = 1                                                   # on the way to the lane's end
    c = p.command((2.5, 0.0, 0.0), _percept(OPEN), 0.1)
    assert p.index == 1 and c.angular > 0.3 and c.linear > 0.2


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
    # 0: the model's calibrated threshold (0.986 here) instead of fixed values
    relative = _policy(calm_confidence=0.0, calm_threshold=0.0)
    calm = relative.decide(AttentionInputs(0.4, 0.0, CLEAR, 0.99, False))
    assert calm.mode == CALM and calm.t_max == 4 and calm.threshold == pytest.approx(0.986)
    assert relative.decide(AttentionInputs(0.4, 0.0, CLEAR, 0.97, False)).mode == ALERT


def test_attention_takes_the_open_budget_only_with_the_path_ahead_free_and_nothing_else_asking_for_care():
    from snn_autonomy.perception.sectors import SectorView

    pol = _policy()                                   # a 90-degree camera: 9 sectors of 10 degrees
    fov = math.radians(90.0)

    def view(free_m):
        return SectorView(tuple(4 if r >= 1.4 else 1 for r in free_m), tuple(free_m), fov)
    free = view([1.4] * 9)
    wall_at_the_left_edge = view([0.35] + [1.4] * 8)  # its centre at 40 degrees: outside the 30 judged on
    blocked_ahead = view([1.4] * 4 + [0.6] + [1.4] * 4)
    unsure = AttentionInputs(0.4, 0.0, CENTER, 0.5, False, view=free)
    a = pol.decide(unsure)
    assert a.mode == OPEN_PATH and a.t_max == 5 and a.threshold == pytest.approx(0.986), a
    assert pol.decide(replace(unsure, view=wall_at_the_left_edge)).mode == OPEN_PATH
    for inp in (replace(unsure, view=blocked_ahead), replace(unsure, approaching=True),
                replace(unsure, linear=0.2, angular=1.2), replace(unsure, view=None),
                replace(unsure, view=SectorView((4,) * 9, (1.4,) * 8, fov)),      # malformed: 9 classes, 8 ranges
                replace(unsure, pose=(0.0, 0.0, 0.0), shared=[(1.0, 0.1, 0.2, "robot_1")], agent_id="robot_0")):
        a = pol.decide(inp)
        assert a.mode == ALERT and a.t_max == 8, (inp, a)
    assert _policy(open_t_max=0).decide(unsure).mode == ALERT
    assert pol.decide(replace(unsure, label=CLEAR, confidence=0.97)).mode == CALM   # calm still comes first


def test_attention_takes_the_spin_budget_only_turning_on_the_spot_with_nothing_approaching():
    pol = _policy()
    spin = pol.decide(AttentionInputs(0.0, -1.5, CENTER, 0.4, False))
    assert spin.mode == SPIN and spin.t_max == 2 and spin.threshold == pytest.approx(0.986), spin
    assert spin.roi[2] < 128                                      # the ROI still follows the turn
    assert spin.rate_cap_ev_s == 80_000 and "rate cap 80,000" in spin.reason   # a turn's events are thinned
    assert pol.decide(AttentionInputs(0.04, 1.5, CLEAR, 0.99, False)).mode == SPIN   # over a confident clear too
    for inp in (AttentionInputs(0.0, -1.5, CENTER, 0.4, True),    # something approaches: alert
                AttentionInputs(0.2, -1.5, CENTER, 0.4, False),   # turning while driving
                AttentionInputs(0.0, -0.5, CENTER, 0.4, False)):  # a slow turn is not a spin
        a = pol.decide(inp)
        assert a.mode == ALERT and a.t_max == 8 and a.rate_cap_ev_s == 1e6, (inp, a)   # the general cap only
    # a machine that takes fewer events keeps its own lower cap; 0 leaves the general cap alone
    assert pol.decide(AttentionInputs(0.0, -1.5, CENTER, 0.4, False, admitted_ev_s=50_000)).rate_cap_ev_s == 50_000
    assert _policy(spin_rate_cap_ev_s=0).decide(AttentionInputs(0.0, -1.5, CENTER, 0.4, False)).rate_cap_ev_s == 1e6
    assert _policy(spin_t_max=0).decide(AttentionInputs(0.0, -1.5, CENTER, 0.4, False)).mode == ALERT
    assert _policy(spin_t_max=40).decide(AttentionInputs(0.0, -1.5, CENTER, 0.4, False)).t_max == 16   # model's T_max


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
    assert r["perception"] == "snn" and r["decisions"] > 2 * 3.0 * 20   # well over 20 per second and robot
    assert r["distance_m"] > 0.2 and 0.0 < r["coverage"] <= 1.0        # turning to its route first
    # attention caps every decision after a robot's first at 8 steps; the first runs to T_max 16
    first = 2 * (16 - 8) / r["decisions"]
    assert 1.0 <= r["steps_per_decision"] <= 8.0 + first, (r["steps_per_decision"], r["decisions"])
    assert r["watchdog_stops"][STALE] <= 2 * 1           # only the start, before the first decision
    assert np.isfinite(r["synops_per_decision"]) and r["synops_per_decision"] > 0
    # what each budget cost: the robots turn on the spot toward their routes, and there the
    # camera's events are thinned to the spin budget's 80 k/s (480 a 6 ms step; a step begun
    # before the command took the budget in force before it)
    budgets = r["by_budget"]
    assert {"alert", "spin"} <= set(budgets) and sum(b["fraction"] for b in budgets.values()) <= 1.0, budgets
    assert budgets["spin"]["steps_per_decision"] <= 2 and budgets["alert"]["steps_per_decision"] <= 8
    assert 0 < budgets["spin"]["events_per_step"] <= 1.25 * 480, budgets
    assert all(b["synops_per_step"] > 0 for b in budgets.values())


def test_closed_loop_drives_on_the_model_it_is_given(tmp_path):
    """A user's own model (here the delay-free one) drives the same loop; a missing one is refused
    before any run starts."""
    from snn_autonomy.bench.patrol import bench_patrol
    from snn_autonomy.loop.closed_loop import run_closed_loop
    from snn_autonomy.paths import model_path

    own = model_path("perception_nodelay.npz")
    r = run_closed_loop(agents=1, duration_s=1.5, seed=7, model=own)
    assert r["model"] == str(own) and r["decisions"] > 1.5 * 10   # a decision takes at most 16 steps of 6 ms
    assert r["synops_per_decision"] != run_closed_loop(agents=1, duration_s=1.5, seed=7)["synops_per_decision"]
    with pytest.raises(FileNotFoundError, match="no model file"):
        bench_patrol(("snn",), model=tmp_path / "none.npz")


def test_bench_patrol_drives_a_world_file_of_the_users_own_and_refuses_an_unknown_name():
    from snn_autonomy.bench.patrol import bench_patrol
    from snn_autonomy.config import ConfigError
    from snn_autonomy.paths import config_path

    r = bench_patrol(("oracle",), worlds=("unseen", str(config_path("world_default.yaml"))), seeds=(3,), agents=1,
                     duration_s=2.0, workers=1)
    assert [run["world"] for run in r["oracle"]["runs"]] == ["unseen", str(config_path("world_default.yaml"))]
    assert all(run["decisions"] > 0 for run in r["oracle"]["runs"])
    with pytest.raises(ConfigError, match="unknown world 'wide': use default or unseen, or a world YAML file"):
        bench_patrol(("oracle",), worlds=("default", "wide"))


def test_bench_patrol_measures_attentions_own_share_against_the_same_runs_with_attention_off():
    from snn_autonomy.bench.patrol import bench_patrol
    from snn_autonomy.config import ConfigError

    r = bench_patrol(("snn",), worlds=("default",), seeds=(7,), agents=1, duration_s=3.0, workers=2,
                     attention_share=True)
    on, off = r["snn"]["overall"], r["snn_attention_off"]["overall"]
    assert [run["attention"] for run in r["snn"]["runs"]] == [True]
    assert [run["attention"] for run in r["snn_attention_off"]["runs"]] == [False]
    assert on["steps_per_decision"] <= AttentionConfig().alert_t_max < 16      # every budget is capped
    assert off["calm_fraction"] == off["open_fraction"] == off["spin_fraction"] == 0.0
    share = r["attention_share"]
    assert share["synops_ratio"] == round(off["synops_per_decision"] / on["synops_per_decision"], 3)
    assert share["events_saved"] == round(1.0 - on["events_per_decision"] / off["events_per_decision"], 4)
    assert {"attention_events_saved", "attention_synops_ratio"} <= set(r["goals"])
    assert r["goals"]["attention_synops_ratio"] == (share["synops_ratio"] >= 2.0)
    with pytest.raises(ConfigError, match="attention's share is the SNN's"):
        bench_patrol(("oracle",), attention_share=True)


def test_oracle_fleet_patrols_its_regions_without_driving_into_walls_or_pillars(tmp_path):
    """Ground-truth perception through the same controller: the controller's own share of
    every figure (bench patrol gives the full 120 s figures)."""
    from snn_autonomy.loop.closed_loop import run_closed_loop

    r = run_closed_loop(agents=3, duration_s=25.0, seed=7, perception="oracle", plot=tmp_path / "paths.png")
    assert r["perception"] == "oracle" and r["decisions_per_s"] == pytest.approx(40.0, rel=0.05)
    assert r["collisions_at_fault_by_kind"]["wall"] == 0 and r["collisions_at_fault_by_kind"]["static"] == 0
    assert all(d > 2.0 for d in r["distance_per_robot_m"]), r["distance_per_robot_m"]   # none stays put
    assert r["mean_speed_mps"] > 0.15 and r["coverage"] > 0.05 and r["waypoints_reached"] >= 1
    assert set(r["collisions_by_kind"]) == {"wall", "static", "moving", "robot"}
    assert sum(r["halted_s"].values()) < 3 * 25.0 and min(r["min_clearance_m"]) >= -0.01
    assert (tmp_path / "paths.png").stat().st_size > 10_000


def test_collision_fault_and_episodes():
    from snn_autonomy.loop.metrics import at_fault

    # driving into a wall ahead: at fault; standing still, or hit from behind: not
    assert at_fault(0.0, 0.0, 0.0, 0.3, 0.18, 0.0)
    assert not at_fault(0.0, 0.0, 0.0, 0.0, 0.18, 0.0)
    assert not at_fault(0.0, 0.0, 0.0, 0.3, -0.18, 0.0)
    # an obstacle that runs into the side of a slow robot: its fault, not the robot's
    assert not at_fault(0.0, 0.0, 0.0, 0.1, 0.0, 0.18, other_vx=0.0, other_vy=-0.4)
    # catching up with an obstacle that moves away more slowly: the robot's fault
    assert at_fault(0.0, 0.0, 0.0, 0.4, 0.18, 0.0, other_vx=0.2, other_vy=0.0)


# ---------------------------------------------------------------- clock jumps


def test_watchdog_forgets_decisions_from_before_a_clock_jump():
    w = SafetyWatchdog(WatchdogConfig(deadline_s=0.1))
    w.feed(10.0, False)
    assert w.check(10.05) is None
    w.on_clock_jump(10.06)                            # announced (the node's jump callback), even a small one
    assert w.check(10.06) == STALE and w.age_s(10.06) == float("inf")
    w.feed(10.07, False)
    assert w.check(10.08) is None
    # unannounced: the clock reads earlier than the last decision; it never counts again,
    # not even once the clock has caught up with it
    assert w.check(3.0) == STALE and w.check(10.08) == STALE
    assert w.clock_jumps == 2 and w.counters.stops[STALE] == 2
    w.feed(4.0, False)
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
