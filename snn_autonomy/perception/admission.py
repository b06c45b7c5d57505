"""Which event packets perception steps when it cannot step them all: newest wins, without
starving.

A packet older than `max_age_ms` when its turn comes means the node is behind: it is dropped,
so that queueing adds at most that much to a decision's latency, and the engine is told that
input is missing. But the subscription keeps only `queue_depth` packets: once that many in a
row came too old, the queue has turned over and the age is the transport's (a stalled sender,
a slow link), not a backlog this node can shed. Dropping on would decide nothing for as long
as the delay lasts, so such packets are taken as they come until one arrives in time.
"""
from __future__ import annotations


class PacketAdmission:
    def __init__(self, max_age_ms: float, queue_depth: int) -> None:
        self.max_age_ms = float(max_age_ms)      # 0: take every packet
        self.queue_depth = int(queue_depth)
        self.dropped_stale = 0                   # dropped: the node was behind
        self.taken_late = 0                      # taken although old: the delay was the transport's
        self._late_run = 0

    def admit(self, age_ms: float) -> bool:
        """Whether to step a packet that is `age_ms` old now."""
        late = 0.0 < self.max_age_ms < age_ms
        self._late_run = self._late_run + 1 if late else 0
        if not late:
            return True
        if self._late_run > self.queue_depth:
            self.taken_late += 1
            return True
        self.dropped_stale += 1
        return False

    @property
    def transport_late(self) -> bool:
        """True while packets are taken late (more than a queue's worth in a row came too old)."""
        return self._late_run > self.queue_depth
