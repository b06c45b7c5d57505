"""Plain-Python loop decoders written from the format descriptions, word by word.

They define the expected output of the vectorised decoders: the same events and
the same drop counts (see snn_autonomy.events.stats for the counter meanings).
Deliberately simple and slow; used only by tests.
"""
from __future__ import annotations

import struct
from typing import Dict, List, Tuple


class RefEvt3:
    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.y = self.base = self.vpol = self.th = self.tl = self.wraps = 0
        self.have_y = self.have_base = self.have_th = False
        self.last_t = None
        self.events: List[Tuple[int, int, int, int]] = []
        self.triggers: List[Tuple[int, int, int]] = []
        self.c: Dict[str, int] = {k: 0 for k in ("no_time_base", "no_row", "no_vector_base", "out_of_range",
                                                 "time_backwards", "unknown_words", "skipped_words",
                                                 "truncated_bytes", "time_wraps")}
        self._pending = b""

    def t(self) -> int:
        return self.wraps * (1 << 24) + self.th * 4096 + self.tl

    def _emit(self, xs: List[int], pol: int, vector: bool) -> None:
        if vector and not self.have_base:
            self.c["no_vector_base"] += len(xs)
            return
        if not self.have_th:
            self.c["no_time_base"] += len(xs)
            return
        if not self.have_y:
            self.c["no_row"] += len(xs)
            return
        t = self.t()
        if self.last_t is not None and t < self.last_t:
            self.c["time_backwards"] += len(xs)
            return
        self.last_t = t
        for x in xs:
            if x >= self.w or self.y >= self.h:
                self.c["out_of_range"] += 1
            else:
                self.events.append((x, self.y, t, pol))

    def feed(self, data: bytes) -> None:
        if len(data) % 2:
            self.c["truncated_bytes"] += 1
            data = data[:-1]
        for (w,) in struct.iter_unpack("<H", data):
            typ = w >> 12
            if typ == 0x0:
                self.y, self.have_y = w & 0x7FF, True
            elif typ == 0x2:
                self._emit([w & 0x7FF], (w >> 11) & 1, vector=False)
            elif typ == 0x3:
                self.base, self.vpol, self.have_base = w & 0x7FF, (w >> 11) & 1, True
            elif typ in (0x4, 0x5):
                n = 12 if typ == 0x4 else 8
                xs = [self.base + i for i in range(n) if (w >> i) & 1]
                self.base += n
                self._emit(xs, self.vpol, vector=True)
            elif typ == 0x6:
                self.tl = w & 0xFFF
            elif typ == 0x8:
                new = w & 0xFFF
                if self.have_th and self.th - new > 2048:
                    self.wraps += 1
                    self.c["time_wraps"] += 1
                self.th, self.have_th = new, True
            elif typ == 0xA:
                if not self.have_th:
                    self.c["no_time_base"] += 1
                else:
                    self.triggers.append((self.t(), (w >> 8) & 0xF, w & 1))
            elif typ in (0x7, 0x9, 0xE, 0xF):
                self.c["skipped_words"] += 1
            else:
                self.c["unknown_words"] += 1


class RefEvt2:
    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.th = self.wraps = 0
        self.have_th = False
        self.last_t = None
        self.events: List[Tuple[int, int, int, int]] = []
        self.triggers: List[Tuple[int, int, int]] = []
        self.c: Dict[str, int] = {k: 0 for k in ("no_time_base", "out_of_range", "time_backwards",
                                                 "unknown_words", "skipped_words", "truncated_bytes",
                                                 "time_wraps")}

    def feed(self, data: bytes) -> None:
        extra = len(data) % 4
        if extra:
            self.c["truncated_bytes"] += extra
            data = data[: len(data) - extra]
        for (w,) in struct.iter_unpack("<I", data):
            typ = w >> 28
            if typ in (0, 1):
                if not self.have_th:
                    self.c["no_time_base"] += 1
                    continue
                t = ((self.wraps << 28) + self.th) * 64 + ((w >> 22) & 0x3F)
                if self.last_t is not None and t < self.last_t:
                    self.c["time_backwards"] += 1
                    continue
                self.last_t = t
                x, y = (w >> 11) & 0x7FF, w & 0x7FF
                if x >= self.w or y >= self.h:
                    self.c["out_of_range"] += 1
                else:
                    self.events.append((x, y, t, typ))
            elif typ == 0x8:
                new = w & 0xFFFFFFF
                if self.have_th and self.th - new > (1 << 27):
                    self.wraps += 1
                    self.c["time_wraps"] += 1
                self.th, self.have_th = new, True
            elif typ == 0xA:
                if not self.have_th:
                    self.c["no_time_base"] += 1
                else:
                    t = ((self.wraps << 28) + self.th) * 64 + ((w >> 22) & 0x3F)
                    self.triggers.append((t, (w >> 8) & 0x1F, w & 1))
            elif typ in (0xE, 0xF):
                self.c["skipped_words"] += 1
            else:
                self.c["unknown_words"] += 1


_CMP_COUNTERS = ("out_of_range", "time_backwards", "unknown_words", "truncated_bytes", "time_wraps")


class RefLibcaerCmp:
    """libcaer_cmp, word by word: 16-bit words, code in bits 15..12; time relative to each
    message's time_base (ns), restarting with every message; x, base y, polarity carry over."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.x = self.base_y = self.pol = 0
        self.last_t = None
        self.events: List[Tuple[int, int, int, int]] = []
        self.triggers: List[Tuple[int, int, int]] = []
        self.c: Dict[str, int] = {k: 0 for k in _CMP_COUNTERS}

    def _event(self, x: int, y: int, t: int, p: int) -> None:
        if self.last_t is not None and t < self.last_t:
            self.c["time_backwards"] += 1
            return
        self.last_t = t
        if x >= self.w or y >= self.h:
            self.c["out_of_range"] += 1
        else:
            self.events.append((x, y, t, p))

    def feed(self, data: bytes, time_base_ns: int = 0) -> None:
        extra = len(data) % 2
        if extra:
            self.c["truncated_bytes"] += extra
            data = data[: len(data) - extra]
        base_us, high, low = time_base_ns // 1000, 0, 0
        for (w,) in struct.iter_unpack("<H", data):
            code, v = w >> 12, w & 0xFFF
            if code == 0:
                high = v << 12
            elif code == 1:
                low = v
            elif code == 2:
                self.x = w & 0x7FF
            elif code == 3:
                self._event(self.x, w & 0x7FF, base_us + high + low, (w >> 11) & 1)
            elif code == 4:
                self.base_y, self.pol = w & 0x7FF, (w >> 11) & 1
            elif code == 5:
                for i in range(8):
                    if (w >> i) & 1:
                        self._event(self.x, self.base_y + i, base_us + high + low, self.pol)
                self.base_y += 8
            else:
                self.c["unknown_words"] += 1


class RefLibcaer:
    """libcaer, record by record: uint32 data (polarity bit 1, y bits 16..2, x bits 31..17) and an
    int32 timestamp (us) that wraps at 2^31 within a message, relative to its time_base (ns)."""

    def __init__(self, width: int, height: int) -> None:
        self.w, self.h = width, height
        self.last_t = None
        self.events: List[Tuple[int, int, int, int]] = []
        self.triggers: List[Tuple[int, int, int]] = []
        self.c: Dict[str, int] = {k: 0 for k in _CMP_COUNTERS}

    def feed(self, data: bytes, time_base_ns: int = 0) -> None:
        extra = len(data) % 8
        if extra:
            self.c["truncated_bytes"] += extra
            data = data[: len(data) - extra]
        wraps, prev = 0, None
        for data_word, stamp in struct.iter_unpack("<Ii", data):
            if stamp < 0:
                self.c["unknown_words"] += 1
                continue
            if prev is not None and stamp < prev:
                wraps += 1
                self.c["time_wraps"] += 1
            prev = stamp
            t = time_base_ns // 1000 + wraps * (1 << 31) + stamp
            if self.last_t is not None and t < self.last_t:
                self.c["time_backwards"] += 1
                continue
            self.last_t = t
            x, y = (data_word >> 17) & 0x7FFF, (data_word >> 2) & 0x7FFF
            if x >= self.w or y >= self.h:
                self.c["out_of_range"] += 1
            else:
                self.events.append((x, y, t, (data_word >> 1) & 1))
