"""Synthetic event streams with the structure of real camera output, for benchmarks and tests.

An event camera watching moving edges fires runs of neighbouring pixels of one
row within the same microsecond (which EVT3 packs into vector words) mixed with
isolated events. `edge_stream` draws such a stream from a seeded Generator.
"""
from __future__ import annotations

import numpy as np

from .batch import EVENT_DTYPE, EventBatch


def edge_stream(n_events: int, width: int = 1280, height: int = 720, rate_ev_s: float = 10e6,
                vector_fraction: float = 0.5, t0_us: int = 0, seed: int = 0) -> EventBatch:
    """About n_events events at rate_ev_s; `vector_fraction` of them in same-row runs of 3-12 pixels."""
    rng = np.random.default_rng(seed)
    n_run_events = int(n_events * vector_fraction)
    run_len = rng.integers(3, 13, size=max(1, n_run_events // 7))
    run_len = run_len[np.cumsum(run_len) <= n_run_events]
    n_single = n_events - int(run_len.sum())
    n_groups = len(run_len) + n_single
    sizes = np.concatenate([run_len, np.ones(n_single, dtype=np.int64)])
    rng.shuffle(sizes)
    duration_us = max(1, int(n_events / rate_ev_s * 1e6))
    t = np.sort(rng.integers(t0_us, t0_us + duration_us, size=n_groups))
    y = rng.integers(0, height, size=n_groups)
    p = rng.integers(0, 2, size=n_groups)
    x0 = rng.integers(0, width - 12, size=n_groups)
    idx = np.repeat(np.arange(n_groups), sizes)
    offset = np.arange(len(idx)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    ev = np.empty(len(idx), dtype=EVENT_DTYPE)
    ev["t"] = t[idx]
    ev["y"] = y[idx]
    ev["p"] = p[idx]
    ev["x"] = x0[idx] + offset
    return EventBatch(ev, width, height)
