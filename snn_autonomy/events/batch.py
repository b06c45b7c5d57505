"""EventBatch: the one in-memory form of events in this project.

Events are a numpy structured array of EVENT_DTYPE, sorted by time:
  x, y  uint16  pixel column and row (0 <= x < width, 0 <= y < height)
  t     int64   time in microseconds (sensor clock, unwrapped)
  p     int8    polarity: 1 = ON (brighter), 0 = OFF (darker)
Sensor geometry is (width, height) in pixels. External trigger events (Prophesee
EXT_TRIGGER) travel beside the CD events in TRIGGER_DTYPE.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from .errors import EventFormatError

EVENT_DTYPE = np.dtype([("x", "<u2"), ("y", "<u2"), ("t", "<i8"), ("p", "i1")])
TRIGGER_DTYPE = np.dtype([("t", "<i8"), ("id", "u1"), ("value", "u1")])


def _empty_triggers() -> np.ndarray:
    return np.zeros(0, dtype=TRIGGER_DTYPE)


@dataclass(frozen=True)
class EventBatch:
    """Events of one sensor over a span of time (see module docstring for units)."""

    events: np.ndarray
    width: int
    height: int
    triggers: np.ndarray = field(default_factory=_empty_triggers)

    def __post_init__(self) -> None:
        if not isinstance(self.events, np.ndarray) or self.events.dtype != EVENT_DTYPE:
            raise EventFormatError(f"events must be a numpy array of EVENT_DTYPE, got {getattr(self.events, 'dtype', type(self.events))}")
        if self.events.ndim != 1:
            raise EventFormatError(f"events must be 1-D, got shape {self.events.shape}")
        if self.triggers.dtype != TRIGGER_DTYPE:
            raise EventFormatError(f"triggers must be TRIGGER_DTYPE, got {self.triggers.dtype}")
        for name in ("width", "height"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or not 0 < int(v) <= 65535:
                raise EventFormatError(f"{name} must be an integer in 1..65535, got {v!r}")

    # -- construction -----------------------------------------------------------------
    @classmethod
    def empty(cls, width: int, height: int) -> "EventBatch":
        return cls(np.zeros(0, dtype=EVENT_DTYPE), int(width), int(height))

    @classmethod
    def from_arrays(cls, x: Sequence[int], y: Sequence[int], t: Sequence[int], p: Sequence[int],
                    width: int, height: int) -> "EventBatch":
        """Build a batch from columns, checking ranges and time order (raises EventFormatError)."""
        x = np.asarray(x)
        y = np.asarray(y)
        t = np.asarray(t)
        p = np.asarray(p)
        n = len(x)
        if not (len(y) == len(t) == len(p) == n):
            raise EventFormatError(f"column lengths differ: x={len(x)} y={len(y)} t={len(t)} p={len(p)}")
        ev = np.empty(n, dtype=EVENT_DTYPE)
        if n:
            if x.min() < 0 or x.max() >= width or y.min() < 0 or y.max() >= height:
                raise EventFormatError(f"coordinates outside the {width}x{height} sensor")
            if not np.isin(p, (0, 1)).all():
                raise EventFormatError("polarity must be 0 (OFF) or 1 (ON)")
            if np.any(np.diff(t) < 0):
                raise EventFormatError("event times must be non-decreasing")
        ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
        return cls(ev, int(width), int(height))

    @staticmethod
    def concatenate(batches: Iterable["EventBatch"]) -> "EventBatch":
        batches = list(batches)
        if not batches:
            raise EventFormatError("nothing to concatenate")
        w, h = batches[0].width, batches[0].height
        if any((b.width, b.height) != (w, h) for b in batches):
            raise EventFormatError("cannot concatenate batches of different sensor sizes")
        return EventBatch(np.concatenate([b.events for b in batches]), w, h,
                          np.concatenate([b.triggers for b in batches]))

    # -- views -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.events)

    @property
    def x(self) -> np.ndarray:
        return self.events["x"]

    @property
    def y(self) -> np.ndarray:
        return self.events["y"]

    @property
    def t(self) -> np.ndarray:
        return self.events["t"]

    @property
    def p(self) -> np.ndarray:
        return self.events["p"]

    @property
    def t_first(self) -> int | None:
        return int(self.events["t"][0]) if len(self.events) else None

    @property
    def t_last(self) -> int | None:
        return int(self.events["t"][-1]) if len(self.events) else None

    @property
    def duration_us(self) -> int:
        return 0 if len(self.events) == 0 else int(self.events["t"][-1] - self.events["t"][0])

    def time_window(self, t_start: int, t_end: int) -> "EventBatch":
        """Events with t_start <= t < t_end (a view, no copy). Requires sorted times."""
        t = self.events["t"]
        i0, i1 = np.searchsorted(t, [t_start, t_end], side="left")
        tt = self.triggers["t"]
        j0, j1 = np.searchsorted(tt, [t_start, t_end], side="left")
        return EventBatch(self.events[i0:i1], self.width, self.height, self.triggers[j0:j1])

    def is_sorted(self) -> bool:
        return bool(len(self.events) < 2 or np.all(np.diff(self.events["t"]) >= 0))

    def __repr__(self) -> str:
        span = f", t=[{self.t_first}, {self.t_last}] us" if len(self) else ""
        return f"EventBatch({len(self)} events, {len(self.triggers)} triggers, {self.width}x{self.height}{span})"
