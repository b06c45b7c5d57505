"""Cutting an event stream into packets of a fixed period (like a driver's
`event_message_time_threshold`), aligned to multiples of the period."""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from ..events.batch import EventBatch


class Packetizer:
    """push(batch, now_us) -> [(window_end_us, batch)] for every window that ended.

    A window [k*P, (k+1)*P) is complete once the stream time reaches (k+1)*P; its
    events (possibly none) go out as one packet. Batches must come in time order.
    """

    def __init__(self, width: int, height: int, period_us: int = 1000) -> None:
        if period_us <= 0:
            raise ValueError(f"packet period must be positive, got {period_us} us")
        self.width, self.height, self.period_us = int(width), int(height), int(period_us)
        self._pending: List[EventBatch] = []
        self._window_start: Optional[int] = None
        self.restarts = 0             # times the stream's time ran back (its source restarted)
        self.dropped_on_restart = 0   # events of the unfinished window of the old time line

    @property
    def pending_events(self) -> int:
        """Events held for the window that has not ended yet."""
        return sum(len(b) for b in self._pending)

    def push(self, batch: EventBatch, now_us: int) -> List[Tuple[int, EventBatch]]:
        if self._window_start is not None and now_us < self._window_start:
            # time ran back (a restarted simulator or driver): the old line's last window can never
            # close; drop it (counted) and start windows on the new time line
            self.restarts += 1
            self.dropped_on_restart += self.pending_events
            self._pending, self._window_start = [], None
        if self._window_start is None:
            self._window_start = (int(now_us) // self.period_us) * self.period_us
            if len(batch):
                self._window_start = min(self._window_start, (batch.t_first // self.period_us) * self.period_us)
        if len(batch):
            self._pending.append(batch)
        out = []
        while self._window_start + self.period_us <= now_us:
            end = self._window_start + self.period_us
            parts = [b.time_window(self._window_start, end) for b in self._pending]
            events = np.concatenate([p.events for p in parts]) if parts else np.zeros(0, dtype=batch.events.dtype)
            out.append((end, EventBatch(events, self.width, self.height)))
            self._pending = [b.time_window(end, 1 << 62) for b in self._pending]
            self._pending = [b for b in self._pending if len(b)]
            self._window_start = end
        return out
