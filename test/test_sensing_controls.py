"""ROI, subsampling and the event-rate cap; the packetizer."""
from __future__ import annotations

import numpy as np
import pytest

from snn_autonomy.events import EventBatch
from snn_autonomy.events.synthetic import edge_stream
from snn_autonomy.sensors.controls import EventFilter
from snn_autonomy.sensors.packetizer import Packetizer


def _stream(n=40_000, rate=4e6):
    return edge_stream(n, width=128, height=96, rate_ev_s=rate, seed=1)


def test_roi_and_subsample():
    s = _stream()
    f = EventFilter(128, 96)
    assert f.set_controls(roi=[10, 20, 30, 40], subsample=2) == []
    out = f.apply(s)
    assert len(out) > 0
    assert out.x.min() >= 10 and out.x.max() < 40 and out.y.min() >= 20 and out.y.max() < 60
    assert (out.x % 2 == 0).all() and (out.y % 2 == 0).all()
    c = f.counters
    assert c.dropped_roi + c.dropped_subsample + len(out) == len(s)


def test_rate_cap_bounds_every_window_across_batches():
    s = _stream()
    f = EventFilter(128, 96)
    f.set_controls(rate_cap_ev_s=1e6)  # 200 events per 200-us window
    edges = np.linspace(s.t_first, s.t_last + 1, 37).astype(np.int64)  # batch cuts inside windows
    out = EventBatch.concatenate([f.apply(s.time_window(a, b)) for a, b in zip(edges[:-1], edges[1:])])
    per_window = np.bincount(out.t // 200)
    assert per_window.max() <= 200
    duration = (s.t_last - s.t_first) / 1e6
    assert len(out) / duration == pytest.approx(1e6, rel=0.05)  # the cap is reached, not undershot
    assert f.counters.dropped_rate_cap == len(s) - len(out)
    # kept events are spread over each window, not the first N
    w = out.t[out.t // 200 == out.t[len(out) // 2] // 200]
    assert w.max() - w.min() > 150


def test_low_rate_cap_uses_longer_windows():
    s = _stream()
    f = EventFilter(128, 96)
    f.set_controls(rate_cap_ev_s=1000.0)
    out = f.apply(s)
    assert 0 < len(out) <= 1000 * (s.duration_us / 1e6) + 1


def test_bad_commands_are_rejected_or_clamped_and_counted():
    f = EventFilter(128, 96)
    f.set_controls(rate_cap_ev_s=5e5, subsample=2)
    assert "rejected" in f.set_controls(rate_cap_ev_s=-1.0)[0]
    assert "rejected" in f.set_controls(rate_cap_ev_s=float("nan"))[0]
    assert "rejected" in f.set_controls(subsample=0)[0]
    assert f.controls.rate_cap_ev_s == 5e5 and f.controls.subsample == 2  # previous values kept
    w = f.set_controls(roi=[100, 80, 100, 100])
    assert "clamped" in w[0] and f.controls.roi.width == 28 and f.controls.roi.height == 16
    f.set_controls(roi=[500, 500, 10, 10])  # entirely outside: full sensor, never blind
    assert f.controls.roi is None
    assert f.counters.commands_rejected == 3 and f.counters.commands_clamped == 2


def test_packetizer_windows_and_empty_packets():
    s = _stream(n=5000, rate=1e6)
    pk = Packetizer(128, 96, period_us=1000)
    out = []
    for a in range(0, s.t_last + 2000, 700):
        out += pk.push(s.time_window(a, a + 700), a + 700)
    ends = [e for e, _ in out]
    assert ends == list(range(1000, ends[-1] + 1, 1000))
    got = np.concatenate([b.events for _, b in out])
    np.testing.assert_array_equal(got, s.time_window(0, ends[-1]).events)
    for end, b in out:
        assert len(b) == 0 or (b.t.min() >= end - 1000 and b.t.max() < end)
