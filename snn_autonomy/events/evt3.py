"""Prophesee EVT 3.0: vectorised (numba) decoder and encoder.

EVT3 is a stream of little-endian 16-bit words; the type is bits 15..12:
  0x0 ADDR_Y       y = bits 10..0 (the row of the following events)
  0x2 ADDR_X       x = bits 10..0, polarity = bit 11: one event at (x, y, t)
  0x3 VECT_BASE_X  base x = bits 10..0, polarity = bit 11 for the vectors after it
  0x4 VECT_12      bits 11..0: an event at base_x + i for each set bit i; base_x += 12
  0x5 VECT_8       bits 7..0: same for 8 pixels; base_x += 8
  0x6 TIME_LOW     t bits 11..0
  0x8 TIME_HIGH    t bits 23..12 (the 24-bit microsecond counter wraps every 16.78 s)
  0xA EXT_TRIGGER  value = bit 0, channel id = bits 11..8
  0x7 CONTINUED_4, 0xE OTHERS, 0xF CONTINUED_12, 0x9 (padding from some cameras): no event
Decoding state (row, vector base, time, wrap count) carries across packets of one
stream. The encoder writes packets that are self-contained (each starts with
TIME_HIGH, TIME_LOW and ADDR_Y), so a receiver that lost a packet over a
best-effort transport decodes the next one correctly.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .batch import EventBatch
from .stats import (C_EVENTS, C_NO_ROW, C_NO_TIME_BASE, C_NO_VECTOR_BASE, C_OUT_OF_RANGE,
                    C_SKIPPED_WORDS, C_TIME_BACKWARDS, C_TIME_WRAPS, C_TRIGGERS, C_UNKNOWN_WORDS,
                    C_WORDS)
from .words import WordStreamDecoder, check_encodable, filler_words

TIME_BITS = 24
_HALF_HIGH = 1 << 11  # half the TIME_HIGH range: a larger backwards step is a wrap

# Decoder state slots (int64 array, persists between packets).
_ST_Y, _ST_HAVE_Y, _ST_BASE_X, _ST_VPOL, _ST_HAVE_BASE = 0, 1, 2, 3, 4
_ST_TH, _ST_TL, _ST_HAVE_TH, _ST_WRAPS, _ST_LAST_T = 5, 6, 7, 8, 9
_N_STATE = 10

_POPCOUNT = np.array([bin(i).count("1") for i in range(4096)], dtype=np.int64)


def _word_capacity_table() -> np.ndarray:
    """For each of the 65536 words: events it can emit (bits 3..0), trigger flag (bit 4)."""
    w = np.arange(1 << 16, dtype=np.int64)
    typ = w >> 12
    table = np.zeros(1 << 16, dtype=np.uint8)
    table[typ == 0x2] = 1
    table[typ == 0x4] = _POPCOUNT[w[typ == 0x4] & 0xFFF]
    table[typ == 0x5] = _POPCOUNT[w[typ == 0x5] & 0xFF]
    table[typ == 0xA] = 16
    return table


_CAPACITY = _word_capacity_table()


@njit(cache=True, nogil=True)
def _upper_bound(words, table):
    """Events and triggers a word stream can hold at most (before drops).

    Branch-free table look-ups, so this pass costs a fraction of the decode."""
    n_ev = 0
    n_tr = 0
    for i in range(words.shape[0]):
        v = table[words[i]]
        n_ev += v & 15
        n_tr += v >> 4
    return n_ev, n_tr


@njit(cache=True, nogil=True)
def _decode(words, width, height, st, cnt, popcount, xs, ys, ts, ps, tr_t, tr_id, tr_val):
    """Decode `words` into the output columns; returns (n_events, n_triggers).

    Word types are tested in the order of their frequency in camera data.
    `ok` caches whether an event at the current (time, row) would be kept; it only
    changes when a time or row word arrives or an event is emitted.
    """
    y = st[_ST_Y]
    have_y = st[_ST_HAVE_Y]
    base_x = st[_ST_BASE_X]
    vpol = st[_ST_VPOL]
    have_base = st[_ST_HAVE_BASE]
    th = st[_ST_TH]
    tl = st[_ST_TL]
    have_th = st[_ST_HAVE_TH]
    wraps = st[_ST_WRAPS]
    last_t = st[_ST_LAST_T]
    t = (wraps << TIME_BITS) | (th << 12) | tl
    ok = have_th != 0 and have_y != 0 and t >= last_t
    k = 0
    m = 0
    n = words.shape[0]
    for i in range(n):
        w = np.int64(words[i])
        typ = w >> 12
        if typ == 0x2:  # ADDR_X: one event
            if ok:
                x = w & 0x7FF
                if x < width and y < height:
                    xs[k] = x
                    ys[k] = y
                    ts[k] = t
                    ps[k] = (w >> 11) & 1
                    k += 1
                else:
                    cnt[C_OUT_OF_RANGE] += 1
                last_t = t
            elif have_th == 0:
                cnt[C_NO_TIME_BASE] += 1
            elif have_y == 0:
                cnt[C_NO_ROW] += 1
            else:
                cnt[C_TIME_BACKWARDS] += 1
        elif typ == 0x6:  # TIME_LOW
            tl = w & 0xFFF
            t = (wraps << TIME_BITS) | (th << 12) | tl
            ok = have_th != 0 and have_y != 0 and t >= last_t
        elif typ == 0x0:  # ADDR_Y
            y = w & 0x7FF
            have_y = 1
            ok = have_th != 0 and t >= last_t
        elif typ == 0x8:  # TIME_HIGH
            new_th = w & 0xFFF
            if have_th == 1 and th - new_th > _HALF_HIGH:
                wraps += 1
                cnt[C_TIME_WRAPS] += 1
            th = new_th
            have_th = 1
            t = (wraps << TIME_BITS) | (th << 12) | tl
            ok = have_y != 0 and t >= last_t
        elif typ == 0x4 or typ == 0x5:  # VECT_12 / VECT_8
            if typ == 0x4:
                mask = w & 0xFFF
                nbits = 12
            else:
                mask = w & 0xFF
                nbits = 8
            first = base_x
            base_x += nbits
            if have_base == 0:
                cnt[C_NO_VECTOR_BASE] += popcount[mask]
            elif not ok:
                if have_th == 0:
                    cnt[C_NO_TIME_BASE] += popcount[mask]
                elif have_y == 0:
                    cnt[C_NO_ROW] += popcount[mask]
                else:
                    cnt[C_TIME_BACKWARDS] += popcount[mask]
            else:
                last_t = t
                for b in range(nbits):
                    if (mask >> b) & 1:
                        x = first + b
                        if x < width and y < height:
                            xs[k] = x
                            ys[k] = y
                            ts[k] = t
                            ps[k] = vpol
                            k += 1
                        else:
                            cnt[C_OUT_OF_RANGE] += 1
        elif typ == 0x3:  # VECT_BASE_X
            base_x = w & 0x7FF
            vpol = (w >> 11) & 1
            have_base = 1
        elif typ == 0xA:  # EXT_TRIGGER
            if have_th == 0:
                cnt[C_NO_TIME_BASE] += 1
            else:
                tr_t[m] = t
                tr_id[m] = (w >> 8) & 0xF
                tr_val[m] = w & 1
                m += 1
        elif typ == 0x7 or typ == 0x9 or typ == 0xE or typ == 0xF:
            cnt[C_SKIPPED_WORDS] += 1
        else:
            cnt[C_UNKNOWN_WORDS] += 1
    st[_ST_Y] = y
    st[_ST_HAVE_Y] = have_y
    st[_ST_BASE_X] = base_x
    st[_ST_VPOL] = vpol
    st[_ST_HAVE_BASE] = have_base
    st[_ST_TH] = th
    st[_ST_TL] = tl
    st[_ST_HAVE_TH] = have_th
    st[_ST_WRAPS] = wraps
    st[_ST_LAST_T] = last_t
    cnt[C_WORDS] += n
    cnt[C_EVENTS] += k
    cnt[C_TRIGGERS] += m
    return k, m


class Evt3Decoder(WordStreamDecoder):
    """Stateful EVT3 decoder of one stream (see WordStreamDecoder)."""

    encoding = "evt3"
    word_dtype = np.dtype("<u2")
    state_size = _N_STATE
    last_t_slot = _ST_LAST_T

    def _upper_bound(self, words: np.ndarray) -> tuple:
        return _upper_bound(words, _CAPACITY)

    def _decode(self, words, state, counters, out, trig) -> tuple:
        return _decode(words, self.width, self.height, state, counters, _POPCOUNT,
                       out["x"], out["y"], out["t"], out["p"], trig["t"], trig["id"], trig["value"])


# --------------------------------------------------------------------------- encoder

@njit(cache=True, nogil=True, inline="always")
def _time_words(t, out, k, cur_th_full, cur_tl):
    """Emit the TIME_HIGH / TIME_LOW words that bring the receiver to time t."""
    th_full = t >> 12
    if th_full != cur_th_full:
        # A receiver unfolds wraps from backwards steps of TIME_HIGH: never let
        # it see a forward jump of half the range or more in one step.
        if cur_th_full >= 0:
            while th_full - cur_th_full >= _HALF_HIGH:
                cur_th_full += _HALF_HIGH - 1
                out[k] = 0x8000 | (cur_th_full & 0xFFF)
                k += 1
        out[k] = 0x8000 | (th_full & 0xFFF)
        k += 1
        cur_th_full = th_full
        cur_tl = -1
    tl = t & 0xFFF
    if tl != cur_tl:
        out[k] = 0x6000 | tl
        k += 1
        cur_tl = tl
    return k, cur_th_full, cur_tl


@njit(cache=True, nogil=True)
def _encode(xs, ys, ts, ps, tr_t, tr_id, tr_val, out):
    """Encode sorted events and triggers into EVT3 words; returns the number of words written."""
    n = xs.shape[0]
    n_tr = tr_t.shape[0]
    k = 0
    cur_th_full = np.int64(-1)
    cur_tl = np.int64(-1)
    cur_y = np.int64(-1)
    i = 0
    m = 0
    while i < n or m < n_tr:
        if m < n_tr and (i >= n or tr_t[m] <= ts[i]):
            k, cur_th_full, cur_tl = _time_words(tr_t[m], out, k, cur_th_full, cur_tl)
            out[k] = 0xA000 | ((np.int64(tr_id[m]) & 0xF) << 8) | (np.int64(tr_val[m]) & 1)
            k += 1
            m += 1
            continue
        ti = ts[i]
        k, cur_th_full, cur_tl = _time_words(ti, out, k, cur_th_full, cur_tl)
        yi = np.int64(ys[i])
        if yi != cur_y:
            out[k] = yi
            k += 1
            cur_y = yi
        pi = np.int64(ps[i])
        # Longest run of events at the same (t, y, p) with strictly increasing x
        # that fits 12-pixel vectors chained from x_i.
        base = np.int64(xs[i])
        j = i + 1
        prev = base
        while j < n and ts[j] == ti and ys[j] == yi and ps[j] == pi and xs[j] > prev:
            prev = np.int64(xs[j])
            j += 1
        if j - i >= 3:
            out[k] = 0x3000 | (pi << 11) | base
            k += 1
            while i < j:
                mask = 0
                while i < j and np.int64(xs[i]) < base + 12:
                    mask |= 1 << (np.int64(xs[i]) - base)
                    i += 1
                out[k] = 0x4000 | mask
                k += 1
                base += 12
        else:
            out[k] = 0x2000 | (pi << 11) | base
            k += 1
            i += 1
    return k


def encode_evt3(batch: EventBatch) -> bytes:
    """Encode a batch (events and triggers) as one self-contained EVT3 packet (see module docstring)."""
    ev, tr = batch.events, batch.triggers
    if len(ev) == 0 and len(tr) == 0:
        return b""
    check_encodable(batch)
    out = np.empty(4 * (len(ev) + len(tr)) + filler_words(batch, 12, _HALF_HIGH) + 4, dtype="<u2")
    k = _encode(ev["x"], ev["y"], ev["t"], ev["p"], tr["t"], tr["id"], tr["value"], out)
    return out[:k].tobytes()
