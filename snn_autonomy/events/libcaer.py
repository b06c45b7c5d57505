"""iniVation (DVXplorer, DAVIS) events as `libcaer_driver` publishes them: `libcaer_cmp` and
`libcaer`. Vectorised (numba) decoders and the encoders for fixtures.

Both carry times relative to the EventPacket's `time_base` (nanoseconds; the host's clock of the
driver): an event's absolute time is time_base + t x 1000 ns, kept here in microseconds.

libcaer_cmp: little-endian 16-bit words, code in bits 15..12:
  0 TIME_HIGH    bits 11..0 are time bits 23..12
  1 TIME_LOW     bits 11..0 are time bits 11..0
  2 ADDR_X       x = bits 10..0
  3 ADDR_Y       y = bits 10..0, polarity = bit 11: one event at the current x
  4 VECT_BASE_Y  base y = bits 10..0, polarity = bit 11
  5 VECT_8       bits 7..0: an event at (x, base y + i) for every set bit i; then base y += 8
The time (24 bits of microseconds) starts afresh with every message; x, base y and polarity
carry over from one message to the next. There are no trigger events.

libcaer: 8 bytes per event, little-endian: uint32 data (polarity bit 1, y bits 16..2, x bits
31..17), int32 timestamp in microseconds that wraps at 2^31; a timestamp lower than the one
before it within a message has wrapped. Bit 0 of data (libcaer's valid mark) is not read, as by
the driver project's decoder.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .batch import EventBatch
from .errors import EventFormatError
from .stats import C_EVENTS, C_OUT_OF_RANGE, C_TIME_BACKWARDS, C_TIME_WRAPS, C_UNKNOWN_WORDS, C_WORDS
from .words import WordStreamDecoder, check_encodable

# libcaer_cmp codes
TIME_HIGH, TIME_LOW, ADDR_X, ADDR_Y, VECT_BASE_Y, VECT_8 = range(6)
_CMP_MAX_SPAN_US = 1 << 24          # relative times of one message
_WRAP_US = 1 << 31                  # libcaer timestamps

# state carried across messages: x, base y, polarity (libcaer_cmp), the newest time emitted
_ST_X, _ST_BASE_Y, _ST_POL, _ST_LAST_T = 0, 1, 2, 3
_N_STATE = 4


@njit(cache=True, nogil=True)
def _cmp_upper_bound(words):
    n = 0
    for i in range(words.shape[0]):
        code = words[i] >> 12
        if code == ADDR_Y:
            n += 1
        elif code == VECT_8:
            n += 8
    return n


@njit(cache=True, nogil=True)
def _cmp_decode(words, base_us, width, height, st, cnt, xs, ys, ts, ps):
    x = st[_ST_X]
    base_y = st[_ST_BASE_Y]
    pol = st[_ST_POL]
    last_t = st[_ST_LAST_T]
    high = np.int64(0)      # time restarts with every message
    low = np.int64(0)
    k = 0
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        code = w >> 12
        if code == TIME_HIGH:
            high = (w & 0xFFF) << 12
        elif code == TIME_LOW:
            low = w & 0xFFF
        elif code == ADDR_X:
            x = w & 0x7FF
        elif code == ADDR_Y or code == VECT_8:
            t = base_us + (high | low)
            if code == ADDR_Y:
                n, ybase, mask, p = 1, w & 0x7FF, np.int64(1), (w >> 11) & 1
            else:
                n, ybase, mask, p = 8, base_y, w & 0xFF, pol
                base_y += 8
            for j in range(n):
                if (mask >> j) & 1 == 0:
                    continue
                y = ybase + j
                if t < last_t:
                    cnt[C_TIME_BACKWARDS] += 1
                    continue
                last_t = t
                if x >= width or y >= height:
                    cnt[C_OUT_OF_RANGE] += 1
                    continue
                xs[k] = x
                ys[k] = y
                ts[k] = t
                ps[k] = p
                k += 1
        elif code == VECT_BASE_Y:
            base_y = w & 0x7FF
            pol = (w >> 11) & 1
        else:
            cnt[C_UNKNOWN_WORDS] += 1
    st[_ST_X] = x
    st[_ST_BASE_Y] = base_y
    st[_ST_POL] = pol
    st[_ST_LAST_T] = last_t
    cnt[C_WORDS] += words.shape[0]
    cnt[C_EVENTS] += k
    return k


@njit(cache=True, nogil=True)
def _raw_decode(words, base_us, width, height, st, cnt, xs, ys, ts, ps):
    last_t = st[_ST_LAST_T]
    high = np.int64(0)
    prev = np.int64(-1)
    k = 0
    for i in range(words.shape[0]):
        w = np.int64(words[i])          # data in the low 32 bits, the timestamp in the high 32
        data = w & 0xFFFFFFFF
        stamp = (w >> 32) & 0xFFFFFFFF
        if stamp >= _WRAP_US:           # negative as int32: not a libcaer timestamp
            cnt[C_UNKNOWN_WORDS] += 1
            continue
        if stamp < prev:
            high += _WRAP_US
            cnt[C_TIME_WRAPS] += 1
        prev = stamp
        t = base_us + high + stamp
        if t < last_t:
            cnt[C_TIME_BACKWARDS] += 1
            continue
        last_t = t
        x = (data >> 17) & 0x7FFF
        y = (data >> 2) & 0x7FFF
        if x >= width or y >= height:
            cnt[C_OUT_OF_RANGE] += 1
            continue
        xs[k] = x
        ys[k] = y
        ts[k] = t
        ps[k] = (data >> 1) & 1
        k += 1
    st[_ST_LAST_T] = last_t
    cnt[C_WORDS] += words.shape[0]
    cnt[C_EVENTS] += k
    return k


class _RelativeTimeDecoder(WordStreamDecoder):
    """A libcaer stream (see WordStreamDecoder): times relative to each message's time_base, no triggers."""

    state_size = _N_STATE
    last_t_slot = _ST_LAST_T

    _kernel = None      # the numba kernel of the encoding (a subclass's staticmethod)

    def _decode(self, words, state, counters, out, trig) -> tuple:
        return self._kernel(words, self._time_base_us, self.width, self.height, state, counters,
                            out["x"], out["y"], out["t"], out["p"]), 0


class LibcaerCmpDecoder(_RelativeTimeDecoder):
    encoding = "libcaer_cmp"
    word_dtype = np.dtype("<u2")
    _kernel = staticmethod(_cmp_decode)

    def _upper_bound(self, words: np.ndarray) -> tuple:
        return _cmp_upper_bound(words), 0


class LibcaerDecoder(_RelativeTimeDecoder):
    encoding = "libcaer"
    word_dtype = np.dtype("<u8")
    _kernel = staticmethod(_raw_decode)

    def _upper_bound(self, words: np.ndarray) -> tuple:
        return len(words), 0


def time_base_ns(batch: EventBatch) -> int:
    """The time_base an encoder here writes relative to: the batch's first event (ns)."""
    return int(batch.t_first) * 1000 if len(batch) else 0


def encode_libcaer_cmp(batch: EventBatch) -> bytes:
    """One message: times relative to the first event (`time_base_ns`), up to 2^24 us after it.
    The events of one time, column and polarity go out in ascending y: as VECT_BASE_Y + VECT_8
    where an 8-row window holds two or more of them, else one ADDR_Y each."""
    ev = batch.events
    if len(ev) == 0:
        return b""
    check_encodable(batch)
    rel = ev["t"] - ev["t"][0]
    if int(rel[-1]) >= _CMP_MAX_SPAN_US:
        raise EventFormatError(f"libcaer_cmp holds {_CMP_MAX_SPAN_US} us per message; the batch spans {int(rel[-1])}")
    order = np.lexsort((ev["y"], ev["p"], ev["x"], rel))          # time first, then column, polarity, row
    t_all, x_all, y_all, p_all = (a[order].tolist() for a in (rel, ev["x"], ev["y"], ev["p"]))
    out: list = []
    high = low = x_cur = -1
    i, n = 0, len(t_all)
    while i < n:
        t, x, p = t_all[i], x_all[i], p_all[i]
        j = i
        while j < n and t_all[j] == t and x_all[j] == x and p_all[j] == p:
            j += 1
        if t >> 12 != high or t & 0xFFF != low:
            if t >> 12 != high:
                high = t >> 12
                out.append((TIME_HIGH << 12) | high)
            low = t & 0xFFF
            out.append((TIME_LOW << 12) | low)
        if x != x_cur:
            x_cur = x
            out.append((ADDR_X << 12) | x)
        rows = y_all[i:j]
        k = 0
        while k < len(rows):
            window = [rows[k]]           # distinct rows within 8 of the first (a repeat needs its own word)
            while k + len(window) < len(rows) and window[-1] < rows[k + len(window)] < rows[k] + 8:
                window.append(rows[k + len(window)])
            if len(window) >= 2:
                out.append((VECT_BASE_Y << 12) | (p << 11) | rows[k])
                out.append((VECT_8 << 12) | sum(1 << (r - rows[k]) for r in window))
            else:
                out.append((ADDR_Y << 12) | (p << 11) | rows[k])
            k += len(window)
        i = j
    return np.asarray(out, dtype="<u2").tobytes()


def encode_libcaer(batch: EventBatch) -> bytes:
    """One message of 8-byte events, timestamps relative to the first event (`time_base_ns`)."""
    ev = batch.events
    if len(ev) == 0:
        return b""
    check_encodable(batch, max_coord=0x7FFF)
    rel = (ev["t"] - ev["t"][0]) % _WRAP_US
    data = (ev["x"].astype(np.uint64) << 17) | (ev["y"].astype(np.uint64) << 2) | (ev["p"].astype(np.uint64) << 1)
    return ((rel.astype(np.uint64) << 32) | data).astype("<u8").tobytes()
