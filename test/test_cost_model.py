"""Admission from measured cost: the running fit recovers what work costs, the cap follows the
machine, and latency over target is reported without cutting the cap."""
from __future__ import annotations

import math

import numpy as np
import pytest

from snn_autonomy.attention.policy import AttentionConfig, AttentionInputs, AttentionPolicy
from snn_autonomy.perception.cost_model import AdmissionConfig, CostModel, MeasuredAdmission, quantize_down

PACKET_S, EVENT_S, STEP_S = 40e-6, 80e-9, 300e-6


def _work(rng, n: int, rate_ev_s: float, per_event: float = EVENT_S, per_step: float = STEP_S):
    """n packets of 1 ms (steps of 2 ms: every other packet completes one), noisy wall times."""
    for i in range(n):
        events = int(rng.poisson(rate_ev_s * 1e-3))
        steps = i % 2
        yield PACKET_S + per_event * events + per_step * steps + rng.normal(0, 5e-6), events, steps


def test_the_fit_recovers_the_costs_and_follows_a_slower_machine():
    rng = np.random.default_rng(1)
    cost = CostModel(memory=2000)
    for seconds, events, steps in _work(rng, 3000, 300_000):
        cost.observe(seconds, events, steps)
    cost.fit()
    assert cost.per_event_s == pytest.approx(EVENT_S, rel=0.15)
    assert cost.per_step_s == pytest.approx(STEP_S, rel=0.1)
    # the machine becomes twice slower (a hog on the core): within a few memories, the fit follows
    for seconds, events, steps in _work(rng, 3000, 300_000, 2 * EVENT_S, 2 * STEP_S):
        cost.observe(seconds, events, steps)
    cost.fit()
    assert cost.per_event_s == pytest.approx(2 * EVENT_S, rel=0.15)
    assert cost.per_step_s == pytest.approx(2 * STEP_S, rel=0.1)
    cost.observe(math.nan, 10, 1)               # a bad measurement is ignored, not fitted
    assert cost.samples == 6000
    # a low cap: hardly any variation in the events for a long time. The fit stays sane (a
    # recursive fit with forgetting winds up here and drifts) and no cost comes out negative.
    for i in range(20_000):
        cost.observe(PACKET_S + 2 * EVENT_S * 20 + 2 * STEP_S * (i % 2) + rng.normal(0, 5e-6), 20, i % 2)
    cost.fit()
    assert cost.per_step_s == pytest.approx(2 * STEP_S, rel=0.1)
    assert cost.per_packet_s + 20 * cost.per_event_s == pytest.approx(PACKET_S + 40 * EVENT_S, rel=0.2)


def _admission(cfg: AdmissionConfig, wall_s: float, rate_ev_s: float, time_scale: float = 1.0,
               latency_ms: float = 1.0, per_event: float = EVENT_S, rng=None) -> tuple:
    rng = rng or np.random.default_rng(0)
    adm = MeasuredAdmission(cfg, steps_per_sensor_s=500.0)
    wall = 0.0
    for i, (seconds, events, steps) in enumerate(_work(rng, int(wall_s * 1000 * time_scale), rate_ev_s, per_event)):
        wall += 1e-3 / time_scale
        adm.observe(wall, int(i * 1000), seconds, events, steps)
        adm.observe_latency(latency_ms)
    return adm, wall


def test_the_cap_is_what_the_share_affords_at_the_measured_cost():
    cfg = AdmissionConfig(busy_share=0.5, max_rate_ev_s=1e9, min_rate_ev_s=0.0)
    adm, _ = _admission(cfg, 4.0, 200_000)
    # 0.5 - (40 us x 1000 + 300 us x 500) / s = 0.31 of a second for events at 80 ns: 3.9 M ev/s
    expected = (0.5 - PACKET_S * 1000 - STEP_S * 500) / EVENT_S
    assert adm.admitted_ev_s == pytest.approx(quantize_down(expected), rel=0.15)
    assert adm.fixed_load == pytest.approx(PACKET_S * 1000 + STEP_S * 500, rel=0.1)
    assert not adm.contended and "affords" in adm.reason and adm.busy == pytest.approx(adm.fixed_load + 200_000 * EVENT_S, rel=0.1)
    # a simulator at a quarter of real time: four times the affordable events per sensor second
    slow, _ = _admission(cfg, 16.0, 200_000, time_scale=0.25)
    assert slow.time_scale == pytest.approx(0.25, rel=0.02)
    assert slow.admitted_ev_s > 3.5 * adm.admitted_ev_s


def test_bounds_and_the_machine_that_cannot_step_the_model_in_time():
    cfg = AdmissionConfig(busy_share=0.3, min_rate_ev_s=20_000.0, max_rate_ev_s=1_000_000.0)
    fast, _ = _admission(cfg, 3.0, 100_000, per_event=1e-9)
    assert fast.admitted_ev_s == pytest.approx(quantize_down(1_000_000.0))       # never above the ceiling
    costly, _ = _admission(cfg, 3.0, 300_000, per_event=1e-6)   # events take the node over its share: cut
    spare = 0.3 - PACKET_S * 1000 - STEP_S * 500
    assert costly.admitted_ev_s < 300_000
    assert costly.admitted_ev_s == pytest.approx(quantize_down(spare / 1e-6), rel=0.15)
    starved, _ = _admission(cfg, 3.0, 30_000, per_event=1e-5)
    assert starved.admitted_ev_s == pytest.approx(quantize_down(20_000.0))      # never below the floor
    adm = MeasuredAdmission(cfg, steps_per_sensor_s=500.0)
    assert adm.admitted_ev_s is None and adm.reason == "measuring"
    wall = 0.0
    for i in range(3000):       # 1 ms a step of 2 ms: the steps alone take half of the time
        wall += 1e-3
        adm.observe(wall, i * 1000, 1e-3 * (i % 2) + 100e-9 * 300, 300, i % 2)
    # no cut of the events could bring it within its share: none is made (stale packets are shed)
    assert adm.over_share and adm.admitted_ev_s == pytest.approx(quantize_down(300_000.0))


def test_latency_over_target_is_reported_and_cuts_nothing():
    """A decision that waits for a core (a contended machine) is not helped by fewer events: the
    cap stays what the cost affords, and the wait is flagged for the diagnostics."""
    cfg = AdmissionConfig(busy_share=0.5, decision_latency_ms=8.0, max_rate_ev_s=1e9, min_rate_ev_s=0.0)
    calm, _ = _admission(cfg, 4.0, 300_000, latency_ms=1.0)
    late, _ = _admission(cfg, 4.0, 300_000, latency_ms=16.0)
    assert late.contended and not calm.contended and late.latency_p95_ms == pytest.approx(16.0)
    assert late.admitted_ev_s == calm.admitted_ev_s
    assert 0.0 < late.event_share < 1.0


def test_a_node_within_its_share_keeps_what_comes_in_whatever_the_fit():
    """The fit may misjudge (few distinct event counts); a node measured busy within its share
    is never capped below the events it takes now."""
    cfg = AdmissionConfig(busy_share=0.5, min_rate_ev_s=0.0, max_rate_ev_s=1e9)
    adm = MeasuredAdmission(cfg, steps_per_sensor_s=500.0)
    wall = 0.0
    for i in range(3000):   # the same 150 events in every packet: the event cost cannot be told apart
        wall += 1e-3
        adm.observe(wall, i * 1000, 200e-6, 150, i % 2)
    assert adm.busy == pytest.approx(0.2, rel=0.05)
    assert adm.admitted_ev_s >= quantize_down(adm.events_per_sensor_s) >= 140_000


def test_a_stream_that_jumps_is_measured_afresh():
    adm, wall = _admission(AdmissionConfig(), 3.0, 100_000)
    scale = adm.time_scale
    adm.observe(wall + 1.5, 10**12, 1e-4, 100, 1)       # sensor time leapt: no rate from this window
    assert adm.time_scale == scale


def test_quantize_down_is_stable_and_never_rounds_up():
    for r in (1.0, 19_999.0, 123_456.0, 1e6, 3.3e6):
        q = quantize_down(r)
        assert q <= r < q * 1.13 and quantize_down(q) == q
    assert quantize_down(0.0) == 0.0


def test_attention_applies_the_lower_of_its_cap_and_perceptions():
    policy = AttentionPolicy(128, 96, 90.0, 16, 0.6, AttentionConfig(rate_cap_ev_s=1_000_000.0))
    inp = dict(linear=0.3, angular=0.0, label=1, confidence=0.9, approaching=False)
    assert policy.decide(AttentionInputs(**inp)).rate_cap_ev_s == 1_000_000.0
    low = policy.decide(AttentionInputs(**inp, admitted_ev_s=250_000.0))
    assert low.rate_cap_ev_s == 250_000.0 and "what perception takes" in low.reason
    assert policy.decide(AttentionInputs(**inp, admitted_ev_s=5e6)).rate_cap_ev_s == 1_000_000.0
    assert policy.decide(AttentionInputs(**inp, admitted_ev_s=math.nan)).rate_cap_ev_s == 1_000_000.0
    uncapped = AttentionPolicy(128, 96, 90.0, 16, 0.6, AttentionConfig(rate_cap_ev_s=0.0))
    assert uncapped.decide(AttentionInputs(**inp, admitted_ev_s=300_000.0)).rate_cap_ev_s == 300_000.0
