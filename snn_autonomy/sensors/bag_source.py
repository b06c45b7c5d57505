"""Replay of EventPacket bags, as fast as possible or at the recorded pace."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator, Optional, Tuple

from ..events.bag import read_event_packets
from ..events.packet import EventPacketData


class BagReplaySource:
    """Yields (receive time ns, packet) from one EventPacket topic of a rosbag2 bag.

    With `realtime=True` packets are released at the pace they were recorded
    (scaled by `rate`), measured on `clock` (monotonic seconds).
    """

    def __init__(self, path: Path, topic: Optional[str] = None, realtime: bool = False, rate: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.path = Path(path)
        self.topic = topic
        self.realtime = realtime
        self.rate = rate
        self._clock = clock
        self._sleep = sleep

    def __iter__(self) -> Iterator[Tuple[int, EventPacketData]]:
        start_wall = None
        start_bag = None
        for _, t_ns, pkt in read_event_packets(self.path, self.topic):
            if self.realtime:
                if start_wall is None:
                    start_wall, start_bag = self._clock(), t_ns
                due = start_wall + (t_ns - start_bag) / 1e9 / self.rate
                delay = due - self._clock()
                if delay > 0:
                    self._sleep(delay)
            yield t_ns, pkt
