"""Counters every decoder keeps: what was decoded and what was dropped, and why.

Bad input inside a stream is never an exception and never silent: each problem
increments one of these counters, which nodes report on /diagnostics.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, List

import numpy as np

# Index of each counter in the int64 array the numba kernels fill. Kept in one
# place so EVT2 and EVT3 kernels and DecodeStats agree.
C_WORDS = 0
C_EVENTS = 1
C_TRIGGERS = 2
C_NO_TIME_BASE = 3      # event before the stream's first TIME_HIGH
C_NO_ROW = 4            # EVT3 event before the first ADDR_Y
C_NO_VECTOR_BASE = 5    # EVT3 vector before the first VECT_BASE_X
C_OUT_OF_RANGE = 6      # x >= width or y >= height
C_TIME_BACKWARDS = 7    # event older than the newest already emitted
C_UNKNOWN_WORDS = 8     # word type the format does not define
C_SKIPPED_WORDS = 9     # padding / CONTINUED / OTHERS words (legal, no event)
C_TRUNCATED_BYTES = 10  # trailing bytes that do not fill a whole word
C_TIME_WRAPS = 11       # sensor time counter wrap-arounds unfolded
N_COUNTERS = 12


def new_counters() -> np.ndarray:
    return np.zeros(N_COUNTERS, dtype=np.int64)


@dataclass
class DecodeStats:
    """Cumulative counts of one decoder (one stream)."""

    words: int = 0
    events: int = 0
    triggers: int = 0
    no_time_base: int = 0
    no_row: int = 0
    no_vector_base: int = 0
    out_of_range: int = 0
    time_backwards: int = 0
    unknown_words: int = 0
    skipped_words: int = 0
    truncated_bytes: int = 0
    time_wraps: int = 0

    @classmethod
    def from_counters(cls, c: np.ndarray) -> "DecodeStats":
        return cls(*(int(v) for v in c[:N_COUNTERS]))

    def __add__(self, other: "DecodeStats") -> "DecodeStats":
        return DecodeStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def dropped_events(self) -> int:
        return self.no_time_base + self.no_row + self.no_vector_base + self.out_of_range + self.time_backwards

    def as_dict(self) -> Dict[str, int]:
        d = {f.name: int(getattr(self, f.name)) for f in fields(self)}
        d["dropped_events"] = self.dropped_events
        return d

    def problems(self) -> List[str]:
        """Human-readable lines for every non-zero problem counter."""
        text = {
            "no_time_base": "events before the first TIME_HIGH (time unknown) dropped",
            "no_row": "events before the first ADDR_Y (row unknown) dropped",
            "no_vector_base": "vector events before the first VECT_BASE_X dropped",
            "out_of_range": "events outside the sensor geometry dropped",
            "time_backwards": "events older than the newest decoded event dropped",
            "unknown_words": "words of an undefined type skipped",
            "truncated_bytes": "trailing bytes that do not form a whole word ignored",
        }
        return [f"{getattr(self, k)} {v}" for k, v in text.items() if getattr(self, k)]
