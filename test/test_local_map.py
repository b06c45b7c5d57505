"""The controller's rolling local map: marked where decisions saw something near, cleared where
they saw free, kept beside and behind the lens until it expires."""
from __future__ import annotations

import math

import numpy as np
import pytest

from snn_autonomy.control.local_map import LocalMap
from snn_autonomy.control.policy import PatrolController
from snn_autonomy.perception.sectors import SectorSpec, make_percept

WIDE = SectorSpec.for_camera(140.0)     # the built-in lens: 14 sectors of 10 degrees
W = math.radians(10)


def _ahead(m: LocalMap, free: float, mark: float, now_s: float, robot=(0.0, 0.0), yaw: float = 0.0) -> None:
    """One decision of a single sector straight ahead of a lens at `robot`."""
    m.update(robot, (robot[0], robot[1], yaw), [0.0], W, [free], [mark], now_s)


def test_a_mark_is_kept_where_it_was_seen_and_cleared_when_the_camera_sees_free_through_it():
    m = LocalMap()
    _ahead(m, 0.5, 0.55, 0.0)
    xs, ys = m.obstacles()
    assert xs == pytest.approx([0.55]) and ys == pytest.approx([0.0])     # the point itself, not its cell
    _ahead(m, 0.5, np.nan, 0.05)            # the same free range: the mark beyond it stays
    assert m.obstacles()[0].size == 1
    _ahead(m, 0.9, np.nan, 0.1)             # seen free to 0.9 m: a mover that has gone
    assert m.obstacles()[0].size == 0
    _ahead(m, 0.5, 0.55, 0.2)
    assert m.obstacles()[0].size == 1       # seen again: marked again


def test_what_no_ray_reaches_is_kept_until_it_expires_and_a_clock_going_back_forgets_all():
    m = LocalMap(memory_s=1.5)
    _ahead(m, 0.3, 0.3, 0.0)
    _ahead(m, 2.2, np.nan, 1.0, yaw=math.pi / 2)          # looking left now: the mark is beside the lens
    assert m.obstacles()[0].size == 1 and m.obstacles(1.5)[0].size == 1
    assert m.obstacles(1.51)[0].size == 0                  # older than memory_s
    _ahead(m, 0.3, 0.3, 2.0)
    _ahead(m, 2.2, np.nan, 0.5, yaw=math.pi / 2)           # a replayed bag, a reset simulation
    assert m.obstacles()[0].size == 0


def test_the_map_rolls_with_the_robot_keeping_one_mark_per_cell():
    m = LocalMap(radius_m=1.6)
    _ahead(m, 0.3, 0.32, 0.0)
    _ahead(m, 0.3, 0.33, 0.01)
    assert m.obstacles()[0] == pytest.approx([0.33])       # the same cell: the newest mark
    # 1 m on, facing the other way: within the map's radius, kept in the map frame
    _ahead(m, 2.2, np.nan, 0.1, robot=(0.0, 1.0), yaw=math.pi / 2)
    assert m.obstacles()[0] == pytest.approx([0.33])
    # 3 m on: the mark has left the map and is forgotten
    _ahead(m, 2.2, np.nan, 0.2, robot=(0.0, 3.0), yaw=math.pi / 2)
    _ahead(m, 2.2, np.nan, 0.3, robot=(0.0, 0.0), yaw=math.pi / 2)
    assert m.obstacles()[0].size == 0


def test_patrol_keeps_the_end_of_a_wall_beside_the_lens_though_the_decision_cannot_see_it():
    """The built-in lens looks 70 degrees to each side from 0.16 m ahead of the robot's centre.
    Something 0.25 m from the lens at 65 degrees left lies at 40 degrees from the centre; after a
    turn of 10 degrees right it is 77 degrees from the lens, out of its view, but still in the
    bins of the robot's histogram that the view covers. The decision calls those sectors free; the
    histogram keeps the thing, so the robot's flank does not sweep into it."""
    p = PatrolController()
    angles = np.asarray(WIDE.angles())
    ranges = np.full(WIDE.count, 9.0)
    ranges[int(np.argmin(np.abs(angles - math.radians(65))))] = 0.3
    p.command((0.0, 0.0, 0.0), make_percept(WIDE, WIDE.grade(ranges), False, math.inf, 1.0), 0.0)
    yaw = math.radians(-10)
    open_ = make_percept(WIDE, WIDE.grade(np.full(WIDE.count, 9.0)), False, math.inf, 1.0)
    p.command((0.0, 0.0, yaw), open_, 0.05)
    centres, free = p.histogram((0.0, 0.0, yaw), open_)
    toward = int(np.argmin(np.abs(centres - math.radians(50))))
    assert free[toward] == pytest.approx(0.35, abs=0.03)        # the thing, from the robot's centre
    assert abs(centres[toward]) < abs(angles[0])                 # in a bin the view covers
    # seen free again once the lens looks there (past the smoothing window): gone
    for now in (0.3, 0.35):
        p.command((0.0, 0.0, 0.0), open_, now)
    assert len(p.local_map) == 0
    assert p.histogram((0.0, 0.0, 0.0), open_)[1].min() > 2.0


def test_patrol_marks_a_range_class_in_its_middle_and_class_0_at_the_stop_range():
    p = PatrolController()
    ranges = np.full(WIDE.count, 9.0)
    ranges[:4] = [0.2, 0.5, 0.7, 1.0]              # classes 0, 1 (0.35-0.6), 2 (0.6-0.9) and 3
    percept = make_percept(WIDE, WIDE.grade(ranges), False, math.inf, 1.0)
    p.command((0.0, 0.0, 0.0), percept, 0.0)
    marks = p._mark_ranges(percept)
    assert marks[:3] == pytest.approx([p.cfg.stop_range_m, 0.475, 0.75])
    assert np.isnan(marks[3:]).all()               # free to 0.9 m or more: not near enough to mark
    first = PatrolController()                     # before any decision showed class 2's lower edge
    only = make_percept(WIDE, WIDE.grade(np.r_[0.5, np.full(WIDE.count - 1, 9.0)]), False, math.inf, 1.0)
    first._smoothed(only, 0.0, 0.0)
    assert first._mark_ranges(only)[0] == pytest.approx(0.35)    # its lower edge: never farther than known
