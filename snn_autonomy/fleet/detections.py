"""Detections shared across the fleet: validated, kept for a horizon, merged per object.

Agents see different parts of the arena; merging what each one saw gives every agent a picture
of objects it does not sense itself. Two detections of the same label closer than the merge
radius are taken as one object; the merged object is the newest sighting (positions of moving
objects are not averaged across times) with the highest confidence of the group. Times are on
the coordinator's clock; agents on other hosts must keep their clocks synchronised (NTP/PTP)
to within `future_tolerance_s`, or their detections are rejected as coming from the future.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from typing import List, Optional


@dataclass(frozen=True)
class Sighting:
    """One detection in the map frame: position [m], velocity [m/s], radius [m], stamp [s]."""

    source_agent_id: str
    label: int
    label_name: str
    confidence: float
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    radius_m: float = 0.0
    stamp_s: float = 0.0


def sighting_problem(s: Sighting) -> Optional[str]:
    """Why a sighting is malformed (a counter name), or None. The source id is checked by the caller."""
    if not all(math.isfinite(v) for v in (s.x, s.y, s.vx, s.vy, s.radius_m, s.confidence, s.stamp_s)):
        return "non_finite"
    if not 0.0 <= s.confidence <= 1.0:
        return "bad_confidence"
    if s.radius_m < 0.0:
        return "bad_radius"
    return None


class DetectionMerger:
    def __init__(self, horizon_s: float, merge_radius_m: float, future_tolerance_s: float,
                 max_kept: int) -> None:
        self.horizon_s = horizon_s
        self.merge_radius_m = merge_radius_m
        self.future_tolerance_s = future_tolerance_s
        self.max_kept = max_kept
        self._kept: List[Sighting] = []
        self.accepted = 0
        self.dropped = Counter()   # stale, from_future, non_finite, ... and overflow

    def add(self, s: Sighting, now_s: float) -> Optional[str]:
        """Keep a sighting; returns why it was dropped, or None."""
        why = sighting_problem(s)
        if why is None and s.stamp_s < now_s - self.horizon_s:
            why = "stale"
        if why is None and s.stamp_s > now_s + self.future_tolerance_s:
            why = "from_future"
        if why is not None:
            self.dropped[why] += 1
            return why
        self._kept.append(s)
        self.accepted += 1
        if len(self._kept) > self.max_kept:
            self._kept.sort(key=lambda k: k.stamp_s)
            extra = len(self._kept) - self.max_kept
            del self._kept[:extra]
            self.dropped["overflow"] += extra
        return None

    def merged(self, now_s: float) -> List[Sighting]:
        """One sighting per object seen within the horizon, newest first (deterministic order)."""
        self._kept = [k for k in self._kept if k.stamp_s >= now_s - self.horizon_s]
        order = sorted(self._kept, key=lambda k: (-k.stamp_s, -k.confidence, k.source_agent_id, k.label, k.x, k.y))
        groups: List[List[Sighting]] = []
        r2 = self.merge_radius_m ** 2
        for s in order:
            for g in groups:
                head = g[0]
                if head.label == s.label and (head.x - s.x) ** 2 + (head.y - s.y) ** 2 <= r2:
                    g.append(s)
                    break
            else:
                groups.append([s])
        return [replace(g[0], confidence=max(k.confidence for k in g)) for g in groups]

    def __len__(self) -> int:
        return len(self._kept)
