"""The temporal prior: a decision's belief carried into the next one's exit and classes."""
from __future__ import annotations

import math

import numpy as np
import pytest

from snn_autonomy.events.batch import EVENT_DTYPE, EventBatch
from snn_autonomy.perception.early_exit import exit_at
from snn_autonomy.perception.temporal_prior import (TemporalPrior, calibrate_with_prior, decision_chains,
                                                     exit_threshold, exit_with_prior, OdometrySpeed, prior_of,
                                                     turned)

WINDOW_US = 96_000


def _meta(times_ms, seeds=(1,), robots=(0,)):
    rows = [(s, r, t * 1000) for s in seeds for r in robots for t in times_ms]
    return np.array([(*row, 0, 0, 0, 0, 0) for row in rows], dtype=np.float64)


def test_samples_become_runs_of_decisions_one_window_apart():
    """Samples 50 ms apart with 96 ms windows: two interleaved chains per robot, 100 ms apart,
    4 ms from one decision's end to the next one's start; robots and seeds never mix, and a
    hole in the recording is a long gap."""
    meta = _meta([0, 50, 100, 150, 200, 250, 600], seeds=(1, 2), robots=(0, 1))
    chains, gaps = decision_chains(meta, WINDOW_US)
    assert len(chains) == 8 and sorted(np.concatenate(chains)) == list(range(len(meta)))
    for c, g in zip(chains, gaps):
        assert len(np.unique(meta[c][:, :2], axis=0)) == 1
        assert np.all(np.diff(meta[c, 2]) >= WINDOW_US)
        assert np.isinf(g[0])
    first = chains[0]
    assert list(meta[first, 2] / 1000) == [0, 100, 200, 600]
    assert list(gaps[0][1:] / 1000) == [4, 4, 304]


def test_with_no_weight_the_prior_changes_nothing():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(8, 12, 3 * 4)).cumsum(0)
    chains, gaps = decision_chains(_meta(np.arange(12) * 100.0), WINDOW_US)
    plain = exit_at(logits, 0.7, groups=3)
    same = exit_with_prior(logits, chains, gaps, 0.7, TemporalPrior(weight=0.0), groups=3)
    assert np.array_equal(plain.prediction, same.prediction) and np.array_equal(plain.steps, same.steps)


def test_a_sure_decision_settles_an_unsure_one_unless_it_is_too_old():
    """Decision 1 is sure of class 2; decision 2's evidence leans a little to class 1. With the
    prior, decision 2 names class 2 and exits at once; across a gap longer than max_gap_us it
    is on its own."""
    T, K = 4, 3
    logits = np.zeros((T, 2, K))
    logits[:, 0, 2] = 6.0                                  # sure of class 2 from the first step
    logits[:, 1, 1] = 0.3                                  # unsure, slightly for class 1
    prior = TemporalPrior(weight=0.5, floor=0.1, max_gap_us=50_000)
    near = _meta([0, 100])
    chains, gaps = decision_chains(near, WINDOW_US)
    r = exit_with_prior(logits, chains, gaps, 0.6, prior)
    assert list(r.prediction) == [2, 2] and list(r.steps) == [1, 1]
    chains, gaps = decision_chains(_meta([0, 200]), WINDOW_US)      # 104 ms apart: too old
    r = exit_with_prior(logits, chains, gaps, 0.6, prior)
    assert list(r.prediction) == [2, 1] and r.steps[1] == T
    # the pull is bounded: evidence against the belief of more than 2 nats (at the defaults) wins
    logits[:, 1, 1] = 2.5
    chains, gaps = decision_chains(near, WINDOW_US)
    assert exit_with_prior(logits, chains, gaps, 0.6, TemporalPrior()).prediction[1] == 1


def test_a_turned_belief_moves_to_the_bearing_it_is_now_at():
    """Sectors left to right: after a left turn of one sector, what sector 0 saw is in sector 1;
    half a sector takes half of each neighbour; the sector that now looks past the old view's
    edge has no belief (uniform), and a right turn moves the other way."""
    K = 3
    b = np.eye(K)[[2, 0, 1]]                              # 3 sectors, each sure of one class
    left = turned(b, 1.0)
    assert np.allclose(left[0], 1 / K) and np.allclose(left[1:], b[:2])
    assert np.allclose(turned(b, -1.0)[:2], b[1:]) and np.allclose(turned(b, -1.0)[2], 1 / K)
    half = turned(b, 0.5)
    assert np.allclose(half[1], (b[0] + b[1]) / 2) and np.allclose(half.sum(-1), 1.0)
    assert np.allclose(turned(b[None].repeat(2, 0), np.array([0.0, 1.0]))[0], b)     # one turn per decision


def test_a_prior_that_follows_the_heading_lands_where_the_robot_turned():
    """Decision 1 is sure of an obstacle (class 0) in the left sector; the robot then turns left
    by one sector, and decision 2's evidence is weak. Following the heading, the belief lands
    on the middle sector; without headings (or with the prior not following them) it stays left."""
    T, G, K = 4, 3, 3
    sure = np.full((G, K), -4.0)
    sure[0, 0], sure[1:, 2] = 4.0, 4.0                    # left sector near, the others free
    logits = np.zeros((T, 2, G * K))
    logits[:, 0] = sure.reshape(-1)
    logits[:, 1, 2::K] = 0.1                              # decision 2 leans a little to 'free' everywhere
    chains, gaps = decision_chains(_meta([0, 100]), WINDOW_US)
    width = np.radians(10.0)
    headings = np.array([[0.0, 0.0], [width, width]])      # turned left one sector between the two
    follows = exit_with_prior(logits, chains, gaps, 1.1, TemporalPrior(), groups=G, headings=headings,
                              sector_rad=width)
    assert list(follows.prediction[1]) == [2, 0, 2]
    stays = exit_with_prior(logits, chains, gaps, 1.1, TemporalPrior(), groups=G)
    assert list(stays.prediction[1]) == [0, 2, 2]
    blind = exit_with_prior(logits, chains, gaps, 1.1, TemporalPrior(follow_heading=False), groups=G,
                            headings=headings, sector_rad=width)
    assert np.array_equal(blind.prediction, stays.prediction)
    unknown = exit_with_prior(logits, chains, gaps, 1.1, TemporalPrior(), groups=G,
                              headings=np.full((2, 2), np.nan), sector_rad=width)
    assert np.array_equal(unknown.prediction, stays.prediction)


def test_a_belief_holds_its_ranges_while_the_robot_does_not_drive():
    """Decision 1 is sure the middle sector is near (class 0); decision 2's evidence leans to
    'free' there, as a robot turning on the spot or standing sees a wall whose foot makes no
    events. While the robot drove, the ordinary prior lets that evidence win; while it did not
    drive (odometry below the hold speed at the first decision's exit and at the second's
    start), the belief holds. Unknown speeds never hold."""
    T, G, K = 4, 3, 3
    sure = np.full((G, K), -4.0)
    sure[1, 0], sure[0, 2], sure[2, 2] = 4.0, 4.0, 4.0
    logits = np.zeros((T, 2, G * K))
    logits[:, 0] = sure.reshape(-1)
    logits[:, 1, 2::K] = 2.0                              # decision 2 leans to 'free' everywhere
    chains, gaps = decision_chains(_meta([0, 100]), WINDOW_US)
    prior = TemporalPrior()

    def middle(speeds):
        return exit_with_prior(logits, chains, gaps, 1.1, prior, groups=G, speeds=speeds).prediction[1, 1]

    assert middle(np.array([[0.0, 0.0], [0.0, 0.0]])) == 0            # held: still near
    assert middle(np.array([[0.0, 0.0], [0.3, 0.3]])) == 2            # drives off: the evidence wins
    assert middle(np.array([[0.3, 0.3], [0.0, 0.0]])) == 2            # had been driving
    assert middle(np.full((2, 2), np.nan)) == 2 and middle(None) == 2
    never = TemporalPrior(hold_speed_mps=0.0)
    assert exit_with_prior(logits, chains, gaps, 1.1, never, groups=G,
                           speeds=np.zeros((2, 2))).prediction[1, 1] == 2
    assert list(prior.holds(np.array([0.0, 0.02, 0.0, np.nan]), np.array([-0.02, 0.0, 0.05, 0.0]))) == \
        [True, True, False, False]
    # the speed judged by: the twist's, or the position's where a source leaves its twist at zero
    speed = OdometrySpeed(horizon_s=0.1)
    assert speed.update(0.0, 0.0, 0.0, -0.2) == 0.2                    # reversing drives too
    assert [speed.update(0.05 * k, 0.01 * k, 0.0, 0.0) for k in (1, 2, 3, 4)] == pytest.approx([0.2] * 4)
    assert speed.update(0.45, 0.04, 0.0, 0.0) == 0.0                   # stood still for the horizon
    assert math.isnan(speed.update(0.5, 0.04, 0.0, float("nan")))
    assert speed.update(0.1, 0.5, 0.0, 0.0) == 0.0                    # the clock went back: afresh


def test_calibration_with_the_prior_meets_its_target_and_saves_steps():
    """Robots' runs over scenes that change now and then, with evidence that builds over the
    steps: the calibrated threshold keeps the exit within the allowed loss of a single
    window's full accuracy, in fewer steps than without the prior."""
    rng = np.random.default_rng(5)
    T, G, K, runs, length = 12, 4, 5, 20, 30
    truth = np.zeros((runs, length, G), dtype=int)
    for r in range(runs):
        scene = rng.integers(0, K, G)
        for j in range(length):
            if rng.random() < 0.1:
                scene = rng.integers(0, K, G)
            truth[r, j] = scene
    labels = truth.reshape(-1, G)
    n = len(labels)
    onehot = np.eye(K)[labels]                                            # (N, G, K)
    drift = np.arange(1, T + 1)[:, None, None, None] * 0.35
    logits = (onehot[None] * drift + rng.normal(scale=1.0, size=(T, n, G, K)).cumsum(0) * 0.5).reshape(T, n, G * K)
    meta = _meta(np.arange(length) * 100.0, seeds=range(runs))
    chains, gaps = decision_chains(meta, WINDOW_US)
    cal = calibrate_with_prior(logits, labels, chains, gaps, TemporalPrior(), max_loss=0.01, groups=G)
    assert cal.accuracy_exit >= cal.accuracy_full - 0.01 - 1e-9
    r = exit_with_prior(logits, chains, gaps, cal.threshold, TemporalPrior(), groups=G)
    assert float((r.prediction == labels).mean()) == pytest.approx(cal.accuracy_exit)
    from snn_autonomy.perception.early_exit import calibrate

    plain = calibrate(logits, labels, 0.01, groups=G)
    assert cal.mean_steps < plain.mean_steps, (cal, plain)


def test_bad_prior_settings_are_refused():
    for bad in ({"weight": 1.5}, {"floor": 0.0}, {"max_gap_us": -1}, {"hold_weight": 2.0}, {"hold_floor": 0.0},
                {"hold_speed_mps": -0.1}):
        with pytest.raises(ValueError, match="temporal prior"):
            TemporalPrior(**bad)


def _noise_stream(seed: int, t0_us: int, span_us: int) -> EventBatch:
    rng = np.random.default_rng(seed)
    ev = np.zeros(20000, EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 128, ev.size), rng.integers(0, 96, ev.size), rng.integers(0, 2, ev.size)
    ev["t"] = np.sort(rng.integers(t0_us, t0_us + span_us, ev.size))
    return EventBatch(ev, 128, 96)


def test_the_shipped_model_carries_its_belief_from_decision_to_decision():
    """The shipped model was calibrated with a prior: its runtime uses the prior's threshold and
    carries each decision's belief into the next; a time jump starts afresh, without one; and
    the prior can be turned off, with the single window's threshold."""
    from snn_autonomy.paths import model_path
    from snn_autonomy.perception.runtime import StreamingPerception

    path = model_path("perception_default.npz")
    eng = StreamingPerception.from_file(path, "torch")
    manifest = eng.manifest
    assert prior_of(manifest) == eng.prior and eng.prior is not None
    assert eng.threshold == exit_threshold(manifest) == manifest["early_exit"]["prior"]["threshold"]
    decisions = eng.push(_noise_stream(3, 0, 300_000), 300_000)
    assert len(decisions) >= 3
    assert not decisions[0].with_prior and all(d.with_prior for d in decisions[1:])
    # a leap of sensor time: the stream starts afresh and its first decision has no prior
    eng.push(_noise_stream(4, 5_000_000, 1000), 5_001_000)
    after = eng.push(_noise_stream(5, 5_001_000, 200_000), 5_201_000)
    assert after and not after[0].with_prior and eng.time_jumps == 1

    # with odometry, the belief turns with the robot; a non-finite heading is refused
    assert eng.prior.follow_heading and eng.turned_decisions == 0
    assert not eng.set_heading(float("nan")) and eng.set_heading(0.0)
    t = 5_201_000
    for k in range(6):
        eng.set_heading(0.05 * k)
        eng.push(_noise_stream(6 + k, t, 50_000), t + 50_000)
        t += 50_000
    assert 0 < eng.turned_decisions <= eng.prior_decisions

    # with the robot's speed, the belief holds its ranges while it does not drive
    assert eng.prior.hold_speed_mps > 0 and eng.held_decisions == 0
    assert not eng.set_speed(float("inf"))
    for speed, count in ((0.3, lambda: eng.held_decisions == 0), (0.0, lambda: eng.held_decisions > 0)):
        eng.set_speed(speed)
        for k in range(4):
            eng.push(_noise_stream(20 + k, t, 50_000), t + 50_000)
            t += 50_000
        assert count(), (speed, eng.held_decisions)

    # odometry gone silent: the last heading and speed are forgotten, so a robot that stood when
    # its odometry died is not held (nor turned) until odometry comes again
    held, turned = eng.held_decisions, eng.turned_decisions
    eng.forget_odometry()
    for k in range(4):
        eng.push(_noise_stream(30 + k, t, 50_000), t + 50_000)
        t += 50_000
    assert (eng.held_decisions, eng.turned_decisions) == (held, turned) and eng.prior_decisions > 0
    eng.set_heading(0.0)
    eng.set_speed(0.0)
    for k in range(4):
        eng.push(_noise_stream(40 + k, t, 50_000), t + 50_000)
        t += 50_000
    assert eng.held_decisions > held and eng.turned_decisions > turned

    # a manifest calibrated before the hold runs without it
    old = {"early_exit": {"prior": {k: v for k, v in manifest["early_exit"]["prior"].items()
                                    if not k.startswith("hold_")}}}
    assert prior_of(old).hold_speed_mps == 0.0 and prior_of(old).weight == eng.prior.weight

    off = StreamingPerception.from_file(path, "torch", temporal_prior=False)
    assert off.prior is None and off.threshold == manifest["early_exit"]["threshold"]
    assert not any(d.with_prior for d in off.push(_noise_stream(3, 0, 300_000), 300_000))
