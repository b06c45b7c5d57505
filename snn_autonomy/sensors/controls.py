"""Sensing controls an event sensor applies before publishing: region of interest,
spatial subsampling and an event-rate cap (what AttentionCommand sets at run time
and what the sensor node exposes as parameters, like real camera drivers).

- ROI: events outside it are dropped (coordinates keep the sensor frame).
- Subsampling s: only pixels with x % s == 0 and y % s == 0 are kept (s*s fewer
  events, same geometry).
- Rate cap R events/s, in the manner of Prophesee's event-rate controller: time
  is cut into reference windows of `window_us`; a window holding more than
  R * window events keeps an evenly spaced subset of exactly that many.
Invalid commands never crash the sensor: an ROI reaching outside the sensor is
clamped (with a warning), a negative / NaN cap or a subsampling below 1 is
rejected and the previous value kept; both are counted.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from ..events.batch import EventBatch
from ..events.roi import Roi

DEFAULT_WINDOW_US = 200  # Prophesee ERC reference period


@dataclass
class FilterCounters:
    events_in: int = 0
    events_out: int = 0
    dropped_roi: int = 0
    dropped_subsample: int = 0
    dropped_rate_cap: int = 0
    commands: int = 0
    commands_clamped: int = 0
    commands_rejected: int = 0
    last_warning: str = ""


@dataclass
class SensingControls:
    """Current settings: roi None = full sensor; rate_cap 0 = no cap; subsample 1 = none."""

    roi: Optional[Roi] = None
    rate_cap_ev_s: float = 0.0
    subsample: int = 1
    window_us: int = DEFAULT_WINDOW_US


class EventFilter:
    def __init__(self, width: int, height: int, controls: Optional[SensingControls] = None) -> None:
        self.width = int(width)
        self.height = int(height)
        self.controls = controls or SensingControls()
        self.counters = FilterCounters()
        self._win_id: Optional[int] = None   # rate-cap window the previous batch ended in
        self._win_kept = 0                   # events kept in that window so far

    # ------------------------------------------------------------------ commands
    def set_controls(self, roi: Optional[Sequence[int]] = None, rate_cap_ev_s: Optional[float] = None,
                     subsample: Optional[int] = None) -> List[str]:
        """Apply a command; None leaves a setting unchanged. roi is (x, y, w, h), all zeros = full
        sensor. Returns warnings (also kept in counters.last_warning)."""
        c = self.counters
        c.commands += 1
        warnings: List[str] = []
        rejected = False
        if roi is not None:
            vals = [int(v) if isinstance(v, (int, np.integer)) else v for v in roi]
            if len(vals) != 4 or not all(isinstance(v, (int, np.integer)) for v in vals):
                warnings.append(f"ROI {list(roi)!r} rejected: expected 4 integers x, y, width, height")
                rejected = True
            elif all(v == 0 for v in vals):
                self.controls.roi = None
            elif min(vals) < 0 or vals[2] == 0 or vals[3] == 0:
                warnings.append(f"ROI {vals} rejected: negative offset or empty size")
                rejected = True
            else:
                clamped, changed = Roi(*vals).clamped(self.width, self.height)
                if changed:
                    warnings.append(f"ROI {vals} clamped to the {self.width}x{self.height} sensor: "
                                    f"{[clamped.x_offset, clamped.y_offset, clamped.width, clamped.height]}")
                    c.commands_clamped += 1
                self.controls.roi = None if clamped == Roi.full(self.width, self.height) else clamped
        if rate_cap_ev_s is not None:
            if not isinstance(rate_cap_ev_s, (int, float)) or not math.isfinite(rate_cap_ev_s) or rate_cap_ev_s < 0:
                warnings.append(f"event-rate cap {rate_cap_ev_s!r} rejected: must be a finite number >= 0")
                rejected = True
            else:
                self.controls.rate_cap_ev_s = float(rate_cap_ev_s)
        if subsample is not None:
            if not isinstance(subsample, (int, np.integer)) or subsample < 1 or subsample > 64:
                warnings.append(f"subsampling {subsample!r} rejected: must be an integer in 1..64")
                rejected = True
            else:
                self.controls.subsample = int(subsample)
        if rejected:
            c.commands_rejected += 1
        if warnings:
            c.last_warning = "; ".join(warnings)
        return warnings

    # ------------------------------------------------------------------ data
    def apply(self, batch: EventBatch) -> EventBatch:
        c = self.counters
        ctl = self.controls
        ev = batch.events
        c.events_in += len(ev)
        if ctl.roi is not None and len(ev):
            keep = ctl.roi.mask(ev["x"], ev["y"])
            c.dropped_roi += int(len(ev) - keep.sum())
            ev = ev[keep]
        if ctl.subsample > 1 and len(ev):
            s = ctl.subsample
            keep = (ev["x"] % s == 0) & (ev["y"] % s == 0)
            c.dropped_subsample += int(len(ev) - keep.sum())
            ev = ev[keep]
        if ctl.rate_cap_ev_s > 0 and len(ev):
            ev = self._rate_cap(ev)
        c.events_out += len(ev)
        return EventBatch(ev, batch.width, batch.height, batch.triggers)

    def _rate_cap(self, ev: np.ndarray) -> np.ndarray:
        ctl = self.controls
        # Windows hold at least one allowed event, so low caps use longer windows.
        window = max(ctl.window_us, int(math.ceil(1e6 / ctl.rate_cap_ev_s)))
        allowed = math.floor(ctl.rate_cap_ev_s * window * 1e-6)
        win = ev["t"] // window
        starts = np.flatnonzero(np.r_[True, win[1:] != win[:-1]])
        counts = np.diff(np.r_[starts, len(ev)])
        budget = np.full(len(counts), float(allowed))
        continued = self._win_id is not None and win[0] == self._win_id
        if continued:  # the previous batch already spent part of this window's budget
            budget[0] = max(0.0, allowed - self._win_kept)
        ratio = np.repeat(np.minimum(1.0, budget / counts), counts)
        rank = np.arange(len(ev)) - np.repeat(starts, counts)
        keep = np.floor((rank + 1) * ratio) > np.floor(rank * ratio)
        kept_last = int(keep[starts[-1]:].sum())
        if continued and len(counts) == 1:
            kept_last += self._win_kept
        self._win_id, self._win_kept = int(win[-1]), kept_last
        self.counters.dropped_rate_cap += int(len(ev) - keep.sum())
        return ev[keep]
