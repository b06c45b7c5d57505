"""Fleet core without ROS: regions, optimal assignment, liveness, rejection counters, detection merging."""
from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from snn_autonomy.config import ConfigError, from_dict
from snn_autonomy.control.frames import compose
from snn_autonomy.fleet.agent import FleetAgent
from snn_autonomy.fleet.assignment import optimal_assignment, travel_costs
from snn_autonomy.fleet.config import AgentConfig, FleetConfig
from snn_autonomy.fleet.coordinator import REJECT_REASONS, Coordinator
from snn_autonomy.fleet.detections import Sighting
from snn_autonomy.fleet.regions import loop_distance, partition, row_counts
from snn_autonomy.fleet.state import HEALTH_ERROR, HEALTH_OK, HEALTH_WARN, AgentReport
from snn_autonomy.sim.config import load_world_config

ARENA = load_world_config(None).arena.size_m
IDS = ("robot_0", "robot_1", "robot_2", "robot_3")


def _cfg(**kw) -> FleetConfig:
    return from_dict({"allowed_agents": list(IDS), **kw}, FleetConfig)


def _beat(c: Coordinator, seqs: dict, aid: str, now: float, x: float = 1.0, y: float = 1.0, **kw):
    seqs[aid] = seqs.get(aid, -1) + 1
    return c.on_agent_state(AgentReport(aid, seqs[aid], x, y, **kw), now)


def _run(c: Coordinator, seqs: dict, agents: dict, t0: float, t1: float, period: float = 0.2, tick: float = 0.05):
    """Heartbeats of `agents` (id -> (x, y)) every `period` and ticks every `tick` from t0 to t1; the plans."""
    plans = []
    steps = int(round((t1 - t0) / tick))
    every = int(round(period / tick))
    for k in range(steps + 1):
        now = t0 + k * tick
        if k % every == 0:
            for aid, (x, y) in agents.items():
                assert _beat(c, seqs, aid, now, x, y) is None
        p = c.tick(now)
        if p is not None:
            plans.append(p)
    return plans


# ---------------------------------------------------------------- regions

@pytest.mark.parametrize("n", range(1, 13))
def test_partition_covers_the_arena_with_equal_non_overlapping_regions(n):
    regions = partition(ARENA, n, 0.6)
    assert len(regions) == n and len({r.region_id for r in regions}) == n
    for r in regions:
        assert r.area_m2 == pytest.approx(ARENA[0] * ARENA[1] / n)
        assert all(r.contains(x, y) for x, y in r.waypoints), "patrol loop leaves its region"
    rng = np.random.default_rng(n)
    for x, y in rng.uniform((0, 0), ARENA, size=(300, 2)):
        assert sum(r.contains(x, y) for r in regions) == 1


def test_layout_is_near_square():
    assert row_counts(1, 10, 8) == [1]
    assert row_counts(4, 10, 8) == [2, 2]
    assert row_counts(3, 30, 1) == [3]           # a corridor: strips across it
    assert row_counts(3, 1, 30) == [1, 1, 1]
    with pytest.raises(ValueError):
        row_counts(0, 10, 8)


def test_loop_distance():
    loop = ((1.0, 1.0), (3.0, 1.0), (3.0, 3.0), (1.0, 3.0))
    assert loop_distance(2.0, 1.0, loop) == 0.0
    assert loop_distance(2.0, 2.0, loop) == pytest.approx(1.0)   # centre: 1 m to every side
    assert loop_distance(0.0, 0.0, loop) == pytest.approx(math.sqrt(2))
    assert loop_distance(1.0, 2.5, loop) == 0.0                  # on the closing segment


# ---------------------------------------------------------------- assignment

@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (3, 5), (5, 3), (2, 6)])
def test_optimal_assignment_matches_brute_force(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        costs = rng.uniform(0, 10, size=shape)
        pairs = optimal_assignment(costs)
        a, r = shape
        assert len(pairs) == min(a, r)
        assert len({i for i, _ in pairs}) == len({j for _, j in pairs}) == len(pairs)
        if a <= r:
            best = min(sum(costs[i, p[i]] for i in range(a)) for p in itertools.permutations(range(r), a))
        else:
            best = min(sum(costs[p[j], j] for j in range(r)) for p in itertools.permutations(range(a), r))
        assert sum(costs[i, j] for i, j in pairs) == pytest.approx(best)


def test_plan_minimises_total_travel():
    rng = np.random.default_rng(3)
    for trial in range(10):
        c = Coordinator(_cfg(keep_bonus_m=0.0), ARENA)
        pos = {aid: tuple(rng.uniform((0, 0), ARENA)) for aid in IDS}
        plan = _run(c, {}, pos, 0.0, 0.5)[-1]
        assert len(plan.assignments) == 4 and not plan.unassigned_region_ids
        regions = partition(ARENA, 4, c.cfg.waypoint_inset_m)
        costs = travel_costs([pos[a] for a in IDS], regions)
        best = min(sum(costs[i, p[i]] for i in range(4)) for p in itertools.permutations(range(4)))
        assert sum(a.travel_cost_m for a in plan.assignments) == pytest.approx(best)


def test_fixed_region_count_lists_unassigned_regions():
    c = Coordinator(_cfg(region_count=5), ARENA)
    plan = _run(c, {}, {"robot_0": (1, 1), "robot_1": (9, 7)}, 0.0, 0.5)[-1]
    assert len(plan.assignments) == 2 and len(plan.unassigned_region_ids) == 3


# ---------------------------------------------------------------- membership and liveness

def test_join_plans_once_after_the_settle_time_and_again_for_a_late_joiner():
    c = Coordinator(_cfg(), ARENA)
    seqs = {}
    _beat(c, seqs, "robot_0", 0.0)
    _beat(c, seqs, "robot_1", 0.1, 9.0, 7.0)
    assert c.tick(0.2) is None                     # settling: 0.25 s after the first join
    plan = c.tick(0.25)
    assert plan.reason == "agent_joined" and plan.plan_id == 1 and len(plan.assignments) == 2
    assert plan.for_agent("robot_0").region.contains(2.0, 2.0)   # the region near it
    assert c.tick(0.3) is None
    plans = _run(c, seqs, {"robot_0": (1, 1), "robot_1": (9, 7), "robot_2": (9, 1)}, 0.4, 1.0)
    assert [p.reason for p in plans] == ["agent_joined"] and len(plans[0].assignments) == 3
    assert plans[0].stamp_s == pytest.approx(0.4 + c.cfg.join_settle_s)


def test_loss_is_replanned_within_timeout_plus_one_tick():
    cfg = _cfg(heartbeat_timeout_s=1.0, tick_period_s=0.05)
    c = Coordinator(cfg, ARENA)
    seqs = {}
    fleet = {"robot_0": (1, 1), "robot_1": (9, 7), "robot_2": (9, 1)}
    first = _run(c, seqs, fleet, 0.0, 2.0)[-1]
    lost_region = first.for_agent("robot_2").region
    last_beat = 2.0
    plans = _run(c, seqs, {k: v for k, v in fleet.items() if k != "robot_2"}, 2.05, 5.0)
    assert len(plans) == 1
    p = plans[0]
    assert p.reason == "agent_lost" and p.lost_agent_ids == ("robot_2",)
    assert p.stamp_s - last_beat <= cfg.heartbeat_timeout_s + cfg.tick_period_s + 1e-9
    assert p.stamp_s - last_beat < 2.0
    assert sorted(p.mapping()) == ["robot_0", "robot_1"]
    assert sum(a.region.area_m2 for a in p.assignments) == pytest.approx(ARENA[0] * ARENA[1])
    assert any(a.region.contains(*lost_region.centre) for a in p.assignments), "lost region not re-assigned"
    assert c.last_loss.agent_id == "robot_2" and 0 <= c.last_loss.delay_s <= cfg.tick_period_s + 1e-9
    assert c.stats()["losses"] == 1 and c.stats()["last_loss_silence_s"] <= 1.05


def test_losing_every_agent_publishes_an_empty_plan():
    c = Coordinator(_cfg(), ARENA)
    seqs = {}
    _run(c, seqs, {"robot_0": (1, 1)}, 0.0, 0.5)
    plans = _run(c, seqs, {}, 0.55, 3.0)
    assert len(plans) == 1 and plans[0].assignments == () and plans[0].lost_agent_ids == ("robot_0",)
    assert c.tick(20.0) is None          # nothing left to re-optimise


def test_restarted_agent_is_rejected_until_lost_then_rejoins():
    c = Coordinator(_cfg(), ARENA)
    seqs = {}
    _run(c, seqs, {"robot_0": (1, 1), "robot_1": (9, 7)}, 0.0, 1.0)
    seqs["robot_1"] = -1                            # the process restarted: its sequence starts over
    assert _beat(c, seqs, "robot_1", 1.1, 9, 7) == "seq_not_increasing"
    plans = _run(c, seqs, {"robot_0": (1, 1)}, 1.2, 2.5)
    assert [p.reason for p in plans] == ["agent_lost"]
    assert _beat(c, seqs, "robot_1", 2.6, 9, 7) is None
    assert c.tick(2.6 + c.cfg.join_settle_s).reason == "agent_joined"


def test_unhealthy_agent_is_dropped_at_once_and_taken_back_when_well():
    c = Coordinator(_cfg(), ARENA)
    seqs = {}
    _run(c, seqs, {"robot_0": (1, 1), "robot_1": (9, 7)}, 0.0, 1.0)
    assert _beat(c, seqs, "robot_1", 1.05, 9, 7, health=HEALTH_ERROR) is None
    p = c.tick(1.05)
    assert p.reason == "availability" and list(p.mapping()) == ["robot_0"]
    assert _beat(c, seqs, "robot_1", 1.1, 9, 7, health=HEALTH_WARN) is None
    assert sorted(c.tick(1.1).mapping()) == ["robot_0", "robot_1"]
    c2 = Coordinator(_cfg(required_capabilities=["lidar"], min_energy_budget_j=10.0), ARENA)
    s2 = {}
    _beat(c2, s2, "robot_0", 0.0, capabilities=("lidar",), energy_budget_j=50.0)
    _beat(c2, s2, "robot_1", 0.0, capabilities=("event_camera",))
    _beat(c2, s2, "robot_2", 0.0, capabilities=("lidar",), energy_budget_j=5.0)
    _beat(c2, s2, "robot_3", 0.0, capabilities=("lidar", "event_camera"))   # unknown budget: accepted
    assert sorted(c2.tick(1.0).mapping()) == ["robot_0", "robot_3"]


def test_periodic_replan_only_when_the_assignment_changes():
    c = Coordinator(_cfg(replan_period_s=2.0, keep_bonus_m=0.5), ARENA)
    seqs = {}
    plans = _run(c, seqs, {"robot_0": (1, 1), "robot_1": (9, 7)}, 0.0, 5.0)
    assert [p.reason for p in plans] == ["agent_joined"]          # same places: nothing new
    first = plans[0]
    # the two robots swap places: a periodic re-plan swaps their regions
    plans = _run(c, seqs, {"robot_0": (9, 7), "robot_1": (1, 1)}, 5.05, 8.0)
    assert [p.reason for p in plans] == ["periodic"]
    assert plans[0].mapping() == {"robot_0": first.mapping()["robot_1"], "robot_1": first.mapping()["robot_0"]}


def test_keep_bonus_prevents_swaps_for_marginal_gains():
    regions = partition(ARENA, 2, 0.6)
    # both agents stand between the two regions, each marginally nearer the other's region
    a, b = regions[0].region_id, regions[1].region_id
    (ax, ay), (bx, by) = regions[0].centre, regions[1].centre
    d = math.hypot(bx - ax, by - ay)
    mx, my, ux, uy = (ax + bx) / 2, (ay + by) / 2, (bx - ax) / d, (by - ay) / d
    for bonus, expect in ((0.0, {"robot_0": b, "robot_1": a}), (0.5, {"robot_0": a, "robot_1": b})):
        c = Coordinator(_cfg(keep_bonus_m=bonus, region_count=2), ARENA)
        seqs = {}
        _beat(c, seqs, "robot_0", 0.0, mx + 0.1 * ux, my + 0.1 * uy, assigned_region_id=a)
        _beat(c, seqs, "robot_1", 0.0, mx - 0.1 * ux, my - 0.1 * uy, assigned_region_id=b)
        assert c.tick(1.0).mapping() == expect


def test_clock_jumping_back_does_not_keep_silent_agents_alive():
    c = Coordinator(_cfg(), ARENA)
    seqs = {}
    _run(c, seqs, {"robot_0": (1, 1), "robot_1": (9, 7)}, 100.0, 101.0)
    plans = _run(c, seqs, {"robot_0": (1, 1)}, 0.0, 1.5)   # simulation time restarted at 0
    assert c.clock_jumps == 1 and [p.lost_agent_ids for p in plans] == [("robot_1",)]


def test_same_inputs_same_plans():
    def once():
        c = Coordinator(_cfg(), ARENA)
        seqs = {}
        out = _run(c, seqs, {"robot_0": (1, 1), "robot_1": (9, 7), "robot_2": (5, 4)}, 0.0, 1.0)
        out += _run(c, seqs, {"robot_0": (1, 1)}, 1.05, 3.0)
        return out
    assert once() == once()


# ---------------------------------------------------------------- rejection

def test_malformed_and_unknown_heartbeats_are_rejected_and_counted():
    c = Coordinator(_cfg(), ARENA)
    good = AgentReport("robot_0", 5, 1.0, 1.0)
    nan = float("nan")
    cases = {
        "not_allowed": replace(good, agent_id="intruder"),
        "empty_id": replace(good, agent_id=""),
        "bad_id": replace(good, agent_id="robot_0\n"),
        "non_finite_pose": replace(good, x=nan),
        "bad_orientation": replace(good, orientation=(0.0, 0.0, 0.0, 0.0)),
        "out_of_arena": replace(good, x=50.0),
        "non_finite_velocity": replace(good, linear_mps=float("inf")),
        "bad_health": replace(good, health=9),
        "bad_energy": replace(good, energy_used_j=-1.0),
    }
    for reason, report in cases.items():
        assert c.on_agent_state(report, 0.0) == reason
    assert c.on_agent_state(good, 0.0) is None
    assert c.on_agent_state(replace(good, seq=4), 0.1) == "seq_not_increasing"
    assert c.on_agent_state(replace(good, seq=5), 0.1) == "seq_not_increasing"
    assert c.on_agent_state(replace(good, energy_budget_j=nan, seq=6), 0.2) is None   # unknown budget is fine
    stats = c.stats()
    for reason in cases:
        assert stats[f"rejected_{reason}"] == 1, reason
    assert stats["rejected_seq_not_increasing"] == 2
    assert stats["rejected_total"] == len(cases) + 2 and stats["heartbeats_accepted"] == 2
    assert set(f"rejected_{r}" for r in REJECT_REASONS) <= set(stats)
    assert list(c.members) == ["robot_0"]


def test_allow_list_has_an_explicit_default_and_never_an_empty_one():
    assert FleetConfig().allowed_agents == ["robot_0", "robot_1", "robot_2"]
    with pytest.raises(ConfigError, match="allowed_agents"):
        from_dict({"allowed_agents": []}, FleetConfig)
    c = Coordinator(from_dict({"allowed_agents": ["robot_*", "drone_7"]}, FleetConfig), ARENA)
    assert c.allowed("robot_42") and c.allowed("drone_7") and not c.allowed("drone_8")
    assert Coordinator(from_dict({"allowed_agents": ["*"]}, FleetConfig), ARENA).allowed("anyone")


def test_fleet_size_is_bounded():
    c = Coordinator(from_dict({"allowed_agents": ["*"], "max_agents": 2}, FleetConfig), ARENA)
    assert [c.on_agent_state(AgentReport(f"a{i}", 0, 1.0, 1.0), 0.0) for i in range(3)] == [None, None, "fleet_full"]


# ---------------------------------------------------------------- detections

def _seen(src, x, y, t, label=1, conf=0.8):
    return Sighting(src, label, "obstacle", conf, x, y, radius_m=0.2, stamp_s=t)


def test_detections_of_one_object_from_two_agents_merge():
    c = Coordinator(_cfg(merge_radius_m=0.5, detection_horizon_s=1.0), ARENA)
    assert c.on_sighting(_seen("robot_0", 2.0, 2.0, 9.8, conf=0.9), 10.0) is None
    assert c.on_sighting(_seen("robot_1", 2.2, 2.1, 9.9, conf=0.6), 10.0) is None
    assert c.on_sighting(_seen("robot_1", 2.1, 2.0, 9.9, label=2), 10.0) is None   # another class: kept apart
    assert c.on_sighting(_seen("robot_2", 6.0, 6.0, 9.7), 10.0) is None
    merged = c.merged_detections(10.0)
    assert len(merged) == 3
    obj = next(m for m in merged if m.label == 1 and m.x < 3)
    assert (obj.source_agent_id, obj.x, obj.confidence) == ("robot_1", 2.2, 0.9)   # newest sighting, best confidence
    # later, only what is still within the horizon
    assert [m.source_agent_id for m in c.merged_detections(10.75)] == ["robot_1", "robot_1"]
    assert c.merged_detections(11.5) == []


def test_bad_or_foreign_detections_are_dropped_and_counted():
    c = Coordinator(_cfg(detection_horizon_s=1.0, future_tolerance_s=0.5, max_detections=3), ARENA)
    assert c.on_sighting(_seen("intruder", 1, 1, 10.0), 10.0) == "not_allowed"
    assert c.on_sighting(_seen("", 1, 1, 10.0), 10.0) == "empty_id"
    assert c.on_sighting(_seen("robot_0", float("nan"), 1, 10.0), 10.0) == "non_finite"
    assert c.on_sighting(_seen("robot_0", 1, 1, 10.0, conf=1.5), 10.0) == "bad_confidence"
    assert c.on_sighting(_seen("robot_0", 1, 1, 8.5), 10.0) == "stale"
    assert c.on_sighting(_seen("robot_0", 1, 1, 11.0), 10.0) == "from_future"
    for k in range(5):
        assert c.on_sighting(_seen("robot_0", k, 1, 9.5 + 0.1 * k), 10.0) is None
    s = c.stats()
    assert s["detections_dropped_overflow"] == 2 and s["detections_kept"] == 3
    assert s["detections_dropped_total"] == 8 and s["detections_accepted"] == 5
    assert sorted(m.x for m in c.merged_detections(10.0)) == [2, 3, 4]     # the oldest went first


# ---------------------------------------------------------------- agent side

def test_agent_heartbeats_count_up_and_carry_the_map_pose():
    a = FleetAgent("robot_1", (2.0, 3.0, math.pi / 2), AgentConfig())
    h0, h1 = a.heartbeat(0.0), a.heartbeat(0.2)
    assert (h0.seq, h1.seq) == (0, 1)
    assert (h0.x, h0.y) == (2.0, 3.0) and h0.health == HEALTH_WARN and "no odometry" in h0.health_message
    assert math.isnan(h0.energy_budget_j) and h0.capabilities == ("event_camera",)
    assert a.on_odom(1.0, 0.0, 0.0, 0.3, 0.0, 0.3)
    h = a.heartbeat(0.4)
    assert (h.x, h.y) == pytest.approx((2.0, 4.0)) and h.yaw == pytest.approx(math.pi / 2) and h.health == HEALTH_OK
    assert not a.on_odom(float("nan"), 0, 0, 0, 0, 0.5) and a.odom_rejected == 1
    assert a.heartbeat(2.0).health == HEALTH_WARN                 # odometry went silent
    assert FleetAgent("r", (0, 0, 0), AgentConfig(use_odom=False)).heartbeat(0).health == HEALTH_OK
    assert compose((1.0, 1.0, 0.0), (0.5, 0.5, 0.1)) == pytest.approx((1.5, 1.5, 0.1))
    with pytest.raises(ValueError):
        FleetAgent("", (0, 0, 0), AgentConfig())


def test_agent_takes_its_share_of_a_plan_and_reports_it():
    c = Coordinator(_cfg(), ARENA)
    agents = {aid: FleetAgent(aid, pos, AgentConfig(use_odom=False))
              for aid, pos in (("robot_0", (1, 1, 0)), ("robot_1", (9, 7, 0)))}
    plan = None
    for k in range(10):
        now = 0.1 * k
        for a in agents.values():
            assert c.on_agent_state(a.heartbeat(now), now) is None
        plan = c.tick(now) or plan
    for a in agents.values():
        assert a.on_plan(plan) and a.assignment.region.region_id == plan.mapping()[a.agent_id]
        assert not a.on_plan(plan)                                  # the same region again: no change
        assert a.heartbeat(2.0).assigned_region_id == a.assignment.region.region_id
    bystander = FleetAgent("robot_9", (5, 5, 0), AgentConfig())
    assert not bystander.on_plan(plan) and bystander.assignment is None and bystander.plan_id == plan.plan_id


def test_agent_config_validation():
    with pytest.raises(ConfigError, match="start_pose"):
        from_dict({"start_pose": [1.0, 2.0]}, AgentConfig)
    assert from_dict({"start_pose": [1.0, 2.0, 0.0]}, AgentConfig).start_pose == [1.0, 2.0, 0.0]
    assert HEALTH_OK == 0


# ---------------------------------------------------------------- rate limits and field bounds

def test_heartbeat_flood_is_rate_limited_per_agent_and_counted():
    c = Coordinator(_cfg(heartbeat_rate_limit_hz=20.0, heartbeat_burst=4), ARENA)
    seqs: dict = {}
    flood = [_beat(c, seqs, "robot_0", 1.0) for _ in range(10)]            # 10 at once: the burst passes
    assert flood.count(None) == 4 and flood.count("rate_limited") == 6
    assert _beat(c, seqs, "robot_1", 1.0) is None                          # another agent is not affected
    assert _beat(c, seqs, "robot_0", 1.05) is None                         # 0.05 s refills one token
    assert _beat(c, seqs, "robot_0", 1.05) == "rate_limited"
    # at the nominal 5 Hz nothing is ever limited
    assert all(_beat(c, seqs, "robot_1", 2.0 + 0.2 * k) is None for k in range(50))
    s = c.stats()
    assert s["rejected_rate_limited"] == 7 and s["rejected_total"] == 7
    # a clock jumping back refills nothing
    c2 = Coordinator(_cfg(heartbeat_rate_limit_hz=20.0, heartbeat_burst=1), ARENA)
    assert _beat(c2, {}, "robot_0", 5.0) is None
    assert _beat(c2, {"robot_0": 0}, "robot_0", 1.0) == "rate_limited"


def test_detection_flood_is_rate_limited_per_agent_and_counted():
    c = Coordinator(_cfg(detection_rate_limit_hz=10.0, detection_burst=5), ARENA)
    out = [c.on_sighting(_seen("robot_0", 1, 1, 10.0), 10.0) for _ in range(8)]
    assert out.count(None) == 5 and out.count("rate_limited") == 3
    assert c.on_sighting(_seen("robot_1", 5, 5, 10.0), 10.0) is None
    assert c.on_sighting(_seen("robot_0", 1, 1, 10.1), 10.1) is None       # 0.1 s at 10 Hz: one token
    s = c.stats()
    assert s["detections_dropped_rate_limited"] == 3 and s["detections_accepted"] == 7


def test_rate_limit_buckets_stay_bounded_under_made_up_ids():
    c = Coordinator(from_dict({"allowed_agents": ["*"], "max_agents": 2}, FleetConfig), ARENA)
    for i in range(100):
        c.on_sighting(_seen(f"spoof_{i}", 1, 1, 10.0 + 0.01 * i), 10.0 + 0.01 * i)
    assert len(c._detection_buckets) <= 8


def test_every_heartbeat_and_detection_field_is_bounded():
    c = Coordinator(_cfg(), ARENA)
    good = AgentReport("robot_0", 1, 1.0, 1.0, capabilities=("event_camera",))
    cases = {
        "bad_text": [replace(good, health_message="x" * 257), replace(good, health_message="a\x00b"),
                     replace(good, assigned_region_id="r" * 200)],
        "bad_capabilities": [replace(good, capabilities=("c",) * 33), replace(good, capabilities=("",)),
                             replace(good, capabilities=("x" * 129,))],
        "bad_stamp": [replace(good, stamp_s=float("inf"))],
        "bad_seq": [replace(good, seq=2 ** 64), replace(good, seq=-1)],
        "bad_energy": [replace(good, energy_budget_j=-1.0), replace(good, energy_budget_j=float("inf")),
                       replace(good, energy_used_j=float("nan"))],
        "bad_footprint": [replace(good, footprint_radius_m=-0.1), replace(good, footprint_radius_m=float("inf")),
                          replace(good, footprint_radius_m=11.0)],
    }
    t = 0.0
    for reason, reports in cases.items():
        for r in reports:
            t += 1.0          # apart, so no rate limit interferes
            assert c.on_agent_state(r, t) == reason, (reason, r)
    assert c.on_agent_state(replace(good, health_message="ok", capabilities=("c",) * 32), t + 1) is None
    for seq, unknown in ((2, 0.0), (3, float("nan"))):         # the message's default, and NaN: not said
        assert c.on_agent_state(replace(good, seq=seq, footprint_radius_m=unknown), t + seq) is None
    assert c.on_sighting(replace(_seen("robot_0", 1, 1, t), label_name="n" * 129), t) == "bad_label"
    assert c.on_sighting(replace(_seen("robot_0", 1, 1, t), label=2 ** 40), t) == "bad_label"
    assert c.on_sighting(replace(_seen("robot_0", 1, 1, t), radius_m=-0.1), t) == "bad_radius"
    s = c.stats()
    assert s["rejected_bad_text"] == 3 and s["rejected_bad_capabilities"] == 3 and s["detections_dropped_bad_label"] == 2


def test_rate_limit_config_is_validated():
    with pytest.raises(ConfigError, match="heartbeat_rate_limit_hz"):
        from_dict({"heartbeat_rate_limit_hz": 0.0}, FleetConfig)
    with pytest.raises(ConfigError, match="detection_burst"):
        from_dict({"detection_burst": 0}, FleetConfig)


# ---------------------------------------------------------------- clock jumps


@pytest.mark.parametrize("jump_s", [100.0, -95.0])
def test_a_clock_jump_keeps_the_plan_and_a_dead_agent_is_still_lost(jump_s):
    c = Coordinator(_cfg(), ARENA)
    seqs: dict = {}
    agents = {"robot_0": (1, 1), "robot_1": (9, 7)}
    first = _run(c, seqs, agents, 100.0, 101.0)
    assert len(first) == 1 and c.on_sighting(_seen("robot_0", 2, 2, 101.0), 101.0) is None
    t = 101.0 + jump_s
    c.on_clock_jump(t)                                 # the node's jump callback
    assert _run(c, seqs, agents, t, t + 3.0) == []     # no re-plan, nobody lost or rejected
    assert c.clock_jumps == 1 and sorted(c.members) == ["robot_0", "robot_1"] and not c.rejected
    s = c.stats()   # the sighting was stamped on the old time line
    assert s["detections_kept"] == 0 and s["detections_dropped_clock_jump"] == 1 and s["detections_accepted"] == 1
    plans = _run(c, seqs, {"robot_0": (1, 1)}, t + 3.05, t + 5.0)
    assert [p.lost_agent_ids for p in plans] == [("robot_1",)]
    assert c.last_loss.silence_s <= c.cfg.heartbeat_timeout_s + c.cfg.tick_period_s + 1e-9


def test_sweep_route_covers_its_region_in_lanes_and_closes_the_loop():
    from snn_autonomy.fleet.regions import LANE_SPACING_M, sweep_route
    from snn_autonomy.loop.coverage import RegionCoverage

    route = sweep_route(0.0, 0.0, 3.0, 8.0, inset_m=0.5)
    xs = sorted({round(x, 6) for x, _y in route})
    assert xs == [0.5, 1.5, 2.5] and all(0.5 <= y <= 7.5 for _x, y in route)     # lanes along the long side
    assert np.allclose(np.diff(xs), LANE_SPACING_M)
    # driven once through (and back), the lanes pass within reach of every cell of the region
    cov = RegionCoverage([(0, 0), (3, 0), (3, 8), (0, 8)])
    pts = list(route) + [route[0]]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        for s in np.linspace(0.0, 1.0, 50):
            cov.visit(x0 + s * (x1 - x0), y0 + s * (y1 - y0))
    assert cov.fraction > 0.9
    assert route[-1] != route[0] and len(route) == 2 * 3 * 5 - 2      # 7 m lanes: waypoints 1.75 m apart
    steps = np.hypot(*np.diff(np.array(route), axis=0).T)
    assert steps.max() <= 2.0 + 1e-9
