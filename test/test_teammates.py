"""The fleet's other robots in the controller: where their heartbeats put them, what the robot does
about one the camera has not seen, and when they are forgotten."""
from __future__ import annotations

import math

import numpy as np
import pytest

from snn_autonomy.control.core import ControlCore
from snn_autonomy.control.policy import PatrolController
from snn_autonomy.control.teammates import Teammates
from snn_autonomy.fleet.state import AgentReport
from snn_autonomy.perception.sectors import SectorSpec, make_percept

WIDE = SectorSpec.for_camera(140.0)     # the built-in lens: 14 sectors of 10 degrees
OPEN = make_percept(WIDE, WIDE.grade(np.full(WIDE.count, 9.0)), False, math.inf, 1.0)


def _centre(t: Teammates, now_s: float) -> tuple:
    xs, ys = t.bodies(now_s, (0.0, 0.0))
    assert xs.size, "no teammate"
    assert np.hypot(xs - xs.mean(), ys - ys.mean()) == pytest.approx(np.full(xs.size, t.body_radius_m))
    return float(xs.mean()), float(ys.mean())


def test_a_teammate_is_placed_where_its_heartbeat_carries_it_and_forgotten_when_silent():
    t = Teammates(body_radius_m=0.18, timeout_s=1.0, predict_s=0.5)
    assert t.update("robot_1", 1.0, 1.0, -math.pi / 2, 0.5, 10.0, 10.0) == ""   # driving toward -y at 0.5 m/s
    assert _centre(t, 10.0) == pytest.approx((1.0, 1.0))
    assert _centre(t, 10.4) == pytest.approx((1.0, 0.8))                   # 0.4 s on
    assert _centre(t, 10.9) == pytest.approx((1.0, 0.75))                  # no farther than predict_s
    assert t.update("robot_1", 1.0, 0.9, -math.pi / 2, 0.0, 9.5, 10.0) == ""    # older than the one held: ignored
    assert _centre(t, 10.0) == pytest.approx((1.0, 1.0))
    t.update("robot_2", 5.0, 5.0, 0.0, 0.0, 10.0, 10.0)                    # beyond the map's reach: not an obstacle
    assert t.bodies(10.0, (0.0, 0.0))[0].size == 72 and len(t) == 2     # 1.6 cm apart
    assert t.bodies(11.01, (0.0, 0.0))[0].size == 0 and len(t) == 0        # silent for longer than timeout_s
    t.update("robot_1", 1.0, 1.0, 0.0, 0.0, 20.0, 20.0)
    assert t.bodies(15.0, (0.0, 0.0))[0].size == 0 and len(t) == 0        # a clock gone back: forgotten


def test_a_teammate_the_camera_has_not_seen_stops_the_robot_short_of_it_and_steers_it_away():
    """The camera reports everything free; a teammate's heartbeat puts it 0.4 m ahead (its body 0.22 m
    from the robot's centre, nearer than the stop range): no forward motion, and the robot turns
    away instead of toward it. Once the teammate is heard no more, the robot drives on."""
    alone, shared = PatrolController(), PatrolController()
    pose = (0.0, 0.0, 0.0)
    free_run = alone.command(pose, OPEN, 0.0)
    assert free_run.linear == pytest.approx(alone.cfg.cruise_mps, rel=0.02)   # a bin 5 degrees off straight
    shared.teammates.update("robot_1", 0.4, 0.0, math.pi, 0.0, 0.0, 0.0)
    held = shared.command(pose, OPEN, 0.0)
    assert held.linear == 0.0 and held.angular != 0.0
    centres, free = shared.histogram(pose, OPEN, 0.0)
    assert free[int(np.argmin(np.abs(centres)))] == pytest.approx(0.22, abs=0.01)
    # a teammate beside the robot, out of the camera's view, blocks the turn toward it
    shared.teammates.update("robot_1", 0.0, 0.45, 0.0, 0.0, 0.5, 0.5)
    centres, free = shared.histogram(pose, OPEN, 0.5)
    left = int(np.argmin(np.abs(centres - math.pi / 2)))
    assert free[left] == pytest.approx(0.27, abs=0.01)
    assert shared.command(pose, OPEN, 2.0).linear == pytest.approx(free_run.linear)   # silent for 1.5 s


def test_a_teammate_is_as_wide_as_its_heartbeat_says_or_as_this_robot_where_it_does_not_say():
    t = Teammates(body_radius_m=0.18)
    t.update("big", 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, footprint_radius_m=0.5)
    t.update("unsaid", -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, footprint_radius_m=0.0)     # the message's default
    xs, ys = t.bodies(0.0, (0.0, 0.0))
    r = np.hypot(xs, ys)
    assert r[xs > 0].min() == pytest.approx(0.5, abs=1e-3) and r[xs < 0].min() == pytest.approx(0.82, abs=1e-3)
    # no 10-degree bin of the wide body falls between two of its points, from 0.1 m on
    near = Teammates()
    near.update("big", 0.6, 0.0, 0.0, 0.0, 0.0, 0.0, footprint_radius_m=0.5)
    xs, ys = near.bodies(0.0, (0.0, 0.0))
    seen = np.abs(np.degrees(np.arctan2(ys, xs)))
    assert np.all(np.diff(np.sort(seen[seen < 60])) < 10.0)


def _beat(agent_id: str, x: float, stamp_s: float, **kw) -> AgentReport:
    return AgentReport(agent_id, 0, x, 0.0, stamp_s=stamp_s, **kw)


def test_a_heartbeat_not_finite_or_stamped_off_this_clock_is_refused_and_counted():
    core = ControlCore()
    assert core.on_teammate(_beat("robot_1", math.nan, 1.0), 1.0) == "not finite"
    assert core.on_teammate(_beat("robot_1", 0.0, 1.0, linear_mps=math.inf), 1.0) == "not finite"
    assert core.on_teammate(_beat("", 0.0, 1.0), 1.0) == "not finite"
    assert core.on_teammate(_beat("robot_1", 0.5, 1.0, footprint_radius_m=-0.2), 1.0) == "footprint radius -0.2 m"
    # a sender whose clock is 5 s ahead (clocks not synchronised): refused, with the offset
    assert core.on_teammate(_beat("robot_2", 0.5, 6.0), 1.0) == "stamped +5.0 s from this clock"
    assert core.on_teammate(_beat("robot_1", 0.5, 1.0), 1.2) == ""
    values = core.status(1.2).values
    assert values["teammates_rejected"] == 5 and values["teammates"] == 1
