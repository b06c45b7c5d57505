"""Frame-to-event emulation: a DVS pixel model in the spirit of ESIM and v2e.

Each pixel compares its log intensity with the level at its last event (its
reference). Whenever the log intensity has risen by the pixel's ON threshold
(or fallen by its OFF threshold) it emits an event and moves its reference by
one threshold. Between two frames the log intensity is taken to change linearly,
so event times are interpolated to the microsecond where each threshold is
crossed. Per-pixel thresholds are drawn once from N(C, sigma) (fixed-pattern
mismatch); a pixel is blind for `refractory_us` after an event (crossings then
move its reference but emit nothing); leak slowly lowers the reference, so
static pixels emit ON events at about `leak_rate_hz`; shot noise adds random
events at `shot_noise_rate_hz` per pixel. Randomness comes from one seeded
Generator, so a seed reproduces the stream exactly.
Units: time in integer microseconds, intensity linear in (0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
from numba import njit

from ..config import spec
from ..events.batch import EVENT_DTYPE, EventBatch

LOG_EPS = 1e-3  # intensity floor before the logarithm (dark pixels saturate here)


@dataclass(frozen=True)
class DvsConfig:
    contrast_threshold: float = spec(0.2, lo=0.01, hi=2.0, help="mean ON/OFF threshold C", unit="log intensity")
    threshold_sigma: float = spec(0.03, lo=0.0, hi=1.0, help="pixel-to-pixel spread of C", unit="log intensity")
    min_threshold: float = spec(0.01, lo=0.001, hi=1.0, help="floor for drawn thresholds")
    refractory_us: int = spec(100, lo=0, hi=1_000_000, unit="us")
    leak_rate_hz: float = spec(0.1, lo=0.0, hi=1000.0, unit="Hz per pixel")
    shot_noise_rate_hz: float = spec(0.5, lo=0.0, hi=10000.0, unit="Hz per pixel")
    seed: int = spec(0, lo=0)


@njit(cache=True, nogil=True)
def _active_pixels(log_new, ref, c_on, c_off, leak, active):
    """Apply leak to the references; list pixels that cross a threshold.

    Returns (number of active pixels, upper bound on their events)."""
    n_act = 0
    n_ev = 0
    for i in range(log_new.shape[0]):
        r = ref[i] - leak * c_on[i]
        ref[i] = r
        d = log_new[i] - r
        if d >= c_on[i]:
            active[n_act] = i
            n_act += 1
            n_ev += int(d / c_on[i])
        elif -d >= c_off[i]:
            active[n_act] = i
            n_act += 1
            n_ev += int(-d / c_off[i])
    return n_act, n_ev


@njit(cache=True, nogil=True)
def _emulate(active, log_old, log_new, ref, c_on, c_off, last_t, t0, t1, refractory, width, xs, ys, ts, ps):
    """Threshold crossings of the active pixels between frames at t0 and t1 (us); returns events written.

    The number of crossings of a pixel is computed exactly as in `_active_pixels` (so the
    output never exceeds the space counted for it), and crossing j lies at ref + j * C."""
    k = 0
    cap = xs.shape[0]
    span = t1 - t0
    for a in range(active.shape[0]):
        i = active[a]
        l0 = log_old[i]
        l1 = log_new[i]
        dl = l1 - l0
        d = l1 - ref[i]
        if d >= c_on[i]:
            step = c_on[i]
            n = int(d / step)
            pol = 1
        elif -d >= c_off[i]:
            step = -c_off[i]
            n = int(-d / c_off[i])
            pol = 0
        else:
            continue
        base = ref[i]
        for j in range(1, n + 1):
            level = base + j * step
            frac = (level - l0) / dl if dl != 0.0 else 1.0
            frac = min(1.0, max(0.0, frac))
            # (t0, t1]: a crossing at the old frame's level belongs just after it
            te = t0 + max(np.int64(1), np.int64(np.ceil(frac * span)))
            if te - last_t[i] >= refractory and k < cap:
                last_t[i] = te
                xs[k] = i % width
                ys[k] = i // width
                ts[k] = te
                ps[k] = pol
                k += 1
        ref[i] = base + n * step
    return k


@njit(cache=True, nogil=True)
def _counting_sort_by_time(src, t0, span, dst):
    """Stable sort of events whose times lie in (t0, t0 + span] (a counting sort: O(n + span))."""
    counts = np.zeros(span + 2, dtype=np.int64)
    for i in range(src.shape[0]):
        counts[src[i].t - t0] += 1
    total = 0
    for b in range(counts.shape[0]):
        c = counts[b]
        counts[b] = total
        total += c
    for i in range(src.shape[0]):
        b = src[i].t - t0
        dst[counts[b]] = src[i]
        counts[b] += 1


class DvsEmulator:
    """Turns a sequence of intensity frames into events (see module docstring).

    `feed(frame, t_us)` takes a (height, width) linear intensity image and returns the
    EventBatch of events in (t_prev, t_us], sorted by time. The first frame only sets
    the references (no events).
    """

    def __init__(self, width: int, height: int, cfg: Optional[DvsConfig] = None) -> None:
        self.cfg = cfg or DvsConfig()
        self.width = int(width)
        self.height = int(height)
        self.rng = np.random.default_rng(self.cfg.seed)
        n = self.width * self.height
        c = self.cfg
        self.c_on = np.maximum(self.rng.normal(c.contrast_threshold, c.threshold_sigma, n),
                               c.min_threshold).astype(np.float32)
        self.c_off = np.maximum(self.rng.normal(c.contrast_threshold, c.threshold_sigma, n),
                                c.min_threshold).astype(np.float32)
        self.ref = np.zeros(n, dtype=np.float32)
        self._active = np.empty(n, dtype=np.int64)
        self.last_t = np.full(n, -(1 << 62), dtype=np.int64)
        self._log = None
        self.t_us: Optional[int] = None
        self.frames = 0
        self.events = 0

    def set_noise(self, leak_rate_hz: float, shot_noise_rate_hz: float) -> None:
        """Change the noise rates from the next frame on (as a real camera's biases can be changed
        while it streams); thresholds, mismatch and the random stream stay as they are."""
        self.cfg = replace(self.cfg, leak_rate_hz=float(leak_rate_hz), shot_noise_rate_hz=float(shot_noise_rate_hz))

    def reset(self) -> None:
        """Forget the last frame (the next frame sets new references)."""
        self._log = None
        self.t_us = None

    def feed(self, frame: np.ndarray, t_us: int) -> EventBatch:
        if frame.shape != (self.height, self.width):
            raise ValueError(f"frame is {frame.shape[::-1]}, emulator is {self.width}x{self.height}")
        log_new = np.log(np.maximum(frame.astype(np.float32, copy=False).ravel(), np.float32(LOG_EPS)))
        t_us = int(t_us)
        self.frames += 1
        if self._log is None or self.t_us is None:
            self._log, self.ref[:], self.t_us = log_new, log_new, t_us
            return EventBatch.empty(self.width, self.height)
        if t_us <= self.t_us:
            raise ValueError(f"frame time {t_us} us is not after the previous frame ({self.t_us} us)")
        t0 = self.t_us
        dt_s = (t_us - t0) * 1e-6
        c = self.cfg
        n_act, n = _active_pixels(log_new, self.ref, self.c_on, self.c_off, np.float32(c.leak_rate_hz * dt_s),
                                  self._active)
        n_noise = int(self.rng.poisson(c.shot_noise_rate_hz * self.width * self.height * dt_s)) \
            if c.shot_noise_rate_hz else 0
        ev = np.empty(n + n_noise, dtype=EVENT_DTYPE)
        k = _emulate(self._active[:n_act], self._log, log_new, self.ref, self.c_on, self.c_off, self.last_t, t0, t_us,
                     c.refractory_us, self.width, ev["x"], ev["y"], ev["t"], ev["p"])
        if n_noise:
            noise = ev[k:k + n_noise]
            pix = self.rng.integers(0, self.width * self.height, n_noise)
            noise["x"], noise["y"] = pix % self.width, pix // self.width
            noise["t"] = self.rng.integers(t0 + 1, t_us + 1, n_noise)
            noise["p"] = self.rng.integers(0, 2, n_noise)
        ev = ev[:k + n_noise]
        # events of different pixels interleave in time; events of one pixel are already ordered
        out = np.empty_like(ev)
        _counting_sort_by_time(ev, t0, t_us - t0, out)
        ev = out
        self._log, self.t_us = log_new, t_us
        self.events += len(ev)
        return EventBatch(ev, self.width, self.height)
