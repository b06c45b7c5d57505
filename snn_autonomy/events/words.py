"""Helpers shared by the word-based codecs (EVT2, EVT3)."""
from __future__ import annotations

import numpy as np

from . import stats as S
from .batch import EVENT_DTYPE, TRIGGER_DTYPE, EventBatch
from .errors import EventFormatError
from .stats import DecodeStats, new_counters


def as_words(buf, dtype: np.dtype, counters: np.ndarray) -> np.ndarray:
    """View `buf` as little-endian words of `dtype`.

    Accepts bytes-like objects, uint8 arrays, lists of ints (rclpy's uint8[]) and
    arrays already of `dtype`. A trailing partial word is counted in
    C_TRUNCATED_BYTES and ignored; anything else unreadable is an EventFormatError.
    """
    if isinstance(buf, np.ndarray):
        if buf.dtype == dtype and buf.ndim == 1:
            return buf
        if buf.dtype != np.uint8 or buf.ndim != 1:
            raise EventFormatError(f"expected 1-D uint8 or {dtype} data, got {buf.dtype} {buf.shape}")
        raw = buf
    elif isinstance(buf, (bytes, bytearray, memoryview)):
        raw = np.frombuffer(buf, dtype=np.uint8)
    elif isinstance(buf, (list, tuple)):
        try:
            raw = np.asarray(buf, dtype=np.uint8)
        except (OverflowError, ValueError, TypeError) as exc:
            raise EventFormatError(f"event bytes must be integers 0..255: {exc}") from exc
    else:
        try:
            raw = np.frombuffer(memoryview(buf), dtype=np.uint8)
        except (TypeError, ValueError) as exc:
            raise EventFormatError(f"cannot read events from {type(buf).__name__}") from exc
    extra = raw.shape[0] % dtype.itemsize
    if extra:
        counters[S.C_TRUNCATED_BYTES] += extra
        raw = raw[: raw.shape[0] - extra]
    if not raw.flags["C_CONTIGUOUS"]:
        raw = np.ascontiguousarray(raw)
    return raw.view(dtype)


def filler_words(batch: EventBatch, low_bits: int, half_high: int) -> int:
    """Upper bound on the extra TIME_HIGH words an encoder inserts across long silences."""
    t = np.sort(np.concatenate([batch.events["t"], batch.triggers["t"]]))
    if len(t) < 2:
        return 0
    return int((np.diff(t >> low_bits) // (half_high - 1)).sum())


def check_encodable(batch: EventBatch, max_coord: int = 2047) -> None:
    """Raise EventFormatError unless the batch is sorted, in its geometry, and t >= 0."""
    tr = batch.triggers
    if len(tr) and (int(tr["t"].min()) < 0 or np.any(np.diff(tr["t"]) < 0)):
        raise EventFormatError("trigger times must be sorted and >= 0 to encode")
    ev = batch.events
    if len(ev) == 0:
        return
    if int(ev["t"][0]) < 0:
        raise EventFormatError("cannot encode negative event times")
    if not batch.is_sorted():
        raise EventFormatError("events must be sorted by time to encode")
    if int(ev["x"].max()) >= min(batch.width, max_coord + 1) or int(ev["y"].max()) >= min(batch.height, max_coord + 1):
        raise EventFormatError(f"event coordinates outside the {batch.width}x{batch.height} sensor")
    p = ev["p"]
    if int(p.min()) < 0 or int(p.max()) > 1:     # (np.isin costs ~10x as much per packet)
        raise EventFormatError("polarity must be 0 (OFF) or 1 (ON)")


class WordStreamDecoder:
    """Stateful decoder of one word-based stream (one camera topic or one file).

    `decode(buf)` accepts bytes, memoryviews, uint8 arrays, lists of ints or arrays
    of the format's word type, and returns an EventBatch of the events it completes.
    Decoding state carries over to the next call. Problems inside the stream are
    counted in `stats` (DecodeStats), never raised; EventFormatError is raised only
    for arguments that are not bytes at all.
    Subclasses set the class attributes and the two numba kernels.
    """

    encoding = ""
    word_dtype = np.dtype("<u2")
    state_size = 0
    last_t_slot = 0

    def __init__(self, width: int, height: int) -> None:
        if not (0 < int(width) <= 2048 and 0 < int(height) <= 2048):
            raise EventFormatError(
                f"{self.encoding} addresses 11 bits: sensor {width}x{height} outside 1..2048")
        self.width = int(width)
        self.height = int(height)
        self._counters = new_counters()
        self.reset()

    def reset(self) -> None:
        """Forget the stream state, as for a new stream; counters are kept."""
        self._state = np.zeros(self.state_size, dtype=np.int64)
        self._state[self.last_t_slot] = np.iinfo(np.int64).min

    @property
    def stats(self) -> DecodeStats:
        return DecodeStats.from_counters(self._counters)

    def decode(self, buf, time_base_ns: int = 0) -> EventBatch:
        """Events of `buf`; `time_base_ns` (the message's time_base) is read only by formats whose
        times are relative to it (libcaer), EVT times are the sensor's own."""
        words = as_words(buf, self.word_dtype, self._counters)
        self._time_base_us = int(time_base_ns) // 1000
        n_ev, n_tr = self._upper_bound(words)
        out = np.empty(n_ev, dtype=EVENT_DTYPE)
        trig = np.empty(n_tr, dtype=TRIGGER_DTYPE)
        k, m = self._decode(words, self._state, self._counters, out, trig)
        return EventBatch(out[:k], self.width, self.height, trig[:m])

    def _upper_bound(self, words: np.ndarray) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError

    def _decode(self, words, state, counters, out, trig) -> tuple:  # pragma: no cover - abstract
        raise NotImplementedError
