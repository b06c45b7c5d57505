"""Replay of an event file (Prophesee RAW, iniVation AEDAT4) as a stream of fixed-period event batches."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator, Tuple

from ..events.batch import EventBatch
from ..events.files import iter_file, read_file_header
from .packetizer import Packetizer


class RawReplaySource:
    """Yields (window end in sensor us, EventBatch) per `period_us`, optionally at recorded pace."""

    def __init__(self, path: Path, period_us: int = 1000, realtime: bool = False, rate: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.path = Path(path)
        header = read_file_header(self.path)
        self.width, self.height = header.width, header.height
        self.period_us = int(period_us)
        self.realtime, self.rate = realtime, rate
        self._clock, self._sleep = clock, sleep

    def __iter__(self) -> Iterator[Tuple[int, EventBatch]]:
        pk = Packetizer(self.width, self.height, self.period_us)
        start_wall = start_t = None
        last_t = None
        for batch, _ in iter_file(self.path):
            if not len(batch):
                continue
            last_t = batch.t_last
            for end_us, packet in pk.push(batch, batch.t_last):
                if self.realtime:
                    if start_wall is None:
                        start_wall, start_t = self._clock(), end_us
                    delay = start_wall + (end_us - start_t) / 1e6 / self.rate - self._clock()
                    if delay > 0:
                        self._sleep(delay)
                yield end_us, packet
        if last_t is not None:  # flush the final partial window
            for end_us, packet in pk.push(EventBatch.empty(self.width, self.height), last_t + self.period_us):
                yield end_us, packet

