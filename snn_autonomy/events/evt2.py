"""Prophesee EVT 2.0: vectorised (numba) decoder and encoder.

EVT2 is a stream of little-endian 32-bit words; the type is bits 31..28:
  0x0 CD_OFF / 0x1 CD_ON  y = bits 10..0, x = bits 21..11, ts_lsb = bits 27..22
  0x8 EVT_TIME_HIGH       bits 27..0: time bits 33..6; t = (time_high << 6) | ts_lsb
  0xA EXT_TRIGGER         value = bit 0, channel id = bits 12..8, ts_lsb = bits 27..22
  0xE OTHERS, 0xF CONTINUED: no event
The 34-bit microsecond time wraps every 4.77 h; wraps are unfolded from backwards
steps of TIME_HIGH larger than half its range.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .batch import EventBatch
from .stats import (C_EVENTS, C_NO_TIME_BASE, C_OUT_OF_RANGE, C_SKIPPED_WORDS, C_TIME_BACKWARDS,
                    C_TIME_WRAPS, C_TRIGGERS, C_UNKNOWN_WORDS, C_WORDS)
from .words import WordStreamDecoder, check_encodable, filler_words

_HIGH_BITS = 28
_HALF_HIGH = 1 << (_HIGH_BITS - 1)

_ST_TH, _ST_HAVE_TH, _ST_WRAPS, _ST_LAST_T = 0, 1, 2, 3
_N_STATE = 4


@njit(cache=True, nogil=True)
def _upper_bound(words):
    n_ev = 0
    n_tr = 0
    for i in range(words.shape[0]):
        typ = words[i] >> 28
        if typ <= 1:
            n_ev += 1
        elif typ == 0xA:
            n_tr += 1
    return n_ev, n_tr


@njit(cache=True, nogil=True)
def _decode(words, width, height, st, cnt, xs, ys, ts, ps, tr_t, tr_id, tr_val):
    th = st[_ST_TH]
    have_th = st[_ST_HAVE_TH]
    wraps = st[_ST_WRAPS]
    last_t = st[_ST_LAST_T]
    k = 0
    m = 0
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        typ = w >> 28
        if typ <= 1:
            if have_th == 0:
                cnt[C_NO_TIME_BASE] += 1
                continue
            t = (((wraps << _HIGH_BITS) | th) << 6) | ((w >> 22) & 0x3F)
            if t < last_t:
                cnt[C_TIME_BACKWARDS] += 1
                continue
            last_t = t
            x = (w >> 11) & 0x7FF
            y = w & 0x7FF
            if x >= width or y >= height:
                cnt[C_OUT_OF_RANGE] += 1
                continue
            xs[k] = x
            ys[k] = y
            ts[k] = t
            ps[k] = typ
            k += 1
        elif typ == 0x8:
            new_th = w & 0xFFFFFFF
            if have_th == 1 and th - new_th > _HALF_HIGH:
                wraps += 1
                cnt[C_TIME_WRAPS] += 1
            th = new_th
            have_th = 1
        elif typ == 0xA:
            if have_th == 0:
                cnt[C_NO_TIME_BASE] += 1
                continue
            tr_t[m] = (((wraps << _HIGH_BITS) | th) << 6) | ((w >> 22) & 0x3F)
            tr_id[m] = (w >> 8) & 0x1F
            tr_val[m] = w & 1
            m += 1
        elif typ == 0xE or typ == 0xF:
            cnt[C_SKIPPED_WORDS] += 1
        else:
            cnt[C_UNKNOWN_WORDS] += 1
    st[_ST_TH] = th
    st[_ST_HAVE_TH] = have_th
    st[_ST_WRAPS] = wraps
    st[_ST_LAST_T] = last_t
    cnt[C_WORDS] += words.shape[0]
    cnt[C_EVENTS] += k
    cnt[C_TRIGGERS] += m
    return k, m


class Evt2Decoder(WordStreamDecoder):
    """Stateful EVT2 decoder of one stream (see WordStreamDecoder)."""

    encoding = "evt2"
    word_dtype = np.dtype("<u4")
    state_size = _N_STATE
    last_t_slot = _ST_LAST_T

    def _upper_bound(self, words: np.ndarray) -> tuple:
        return _upper_bound(words)

    def _decode(self, words, state, counters, out, trig) -> tuple:
        return _decode(words, self.width, self.height, state, counters,
                       out["x"], out["y"], out["t"], out["p"], trig["t"], trig["id"], trig["value"])


@njit(cache=True, nogil=True)
def _encode(xs, ys, ts, ps, tr_t, tr_id, tr_val, out):
    n = xs.shape[0]
    n_tr = tr_t.shape[0]
    k = 0
    cur_th = np.int64(-1)
    i = 0
    m = 0
    while i < n or m < n_tr:
        trigger = m < n_tr and (i >= n or tr_t[m] <= ts[i])
        t = tr_t[m] if trigger else ts[i]
        th = t >> 6
        if th != cur_th:
            if cur_th >= 0:
                while th - cur_th >= _HALF_HIGH:
                    cur_th += _HALF_HIGH - 1
                    out[k] = (0x8 << 28) | (cur_th & 0xFFFFFFF)
                    k += 1
            out[k] = (0x8 << 28) | (th & 0xFFFFFFF)
            k += 1
            cur_th = th
        if trigger:
            out[k] = (0xA << 28) | ((t & 0x3F) << 22) | ((np.int64(tr_id[m]) & 0x1F) << 8) | (np.int64(tr_val[m]) & 1)
            m += 1
        else:
            out[k] = (np.int64(ps[i]) << 28) | ((t & 0x3F) << 22) | (np.int64(xs[i]) << 11) | np.int64(ys[i])
            i += 1
        k += 1
    return k


def encode_evt2(batch: EventBatch) -> bytes:
    """Encode a batch (events and triggers) as EVT2 words, starting with TIME_HIGH."""
    ev, tr = batch.events, batch.triggers
    if len(ev) == 0 and len(tr) == 0:
        return b""
    check_encodable(batch)
    out = np.empty(2 * (len(ev) + len(tr)) + filler_words(batch, 6, _HALF_HIGH) + 2, dtype="<u4")
    k = _encode(ev["x"], ev["y"], ev["t"], ev["p"], tr["t"], tr["id"], tr["value"], out)
    return out[:k].tobytes()
