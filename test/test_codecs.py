"""EVT3 / EVT2 / libcaer_cmp / libcaer codecs: round trips, state across packets, wraps, bad input, fuzzing."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_decoders import RefEvt2, RefEvt3, RefLibcaer, RefLibcaerCmp
from snn_autonomy.events import EVENT_DTYPE, EventBatch, EventFormatError, UnsupportedEncodingError
from snn_autonomy.events.codec import encode, make_decoder
from snn_autonomy.events.synthetic import edge_stream

REFS = {"evt3": RefEvt3, "evt2": RefEvt2, "libcaer_cmp": RefLibcaerCmp, "libcaer": RefLibcaer}


def _words(fmt: str, ws) -> bytes:
    return b"".join(struct.pack("<H" if fmt == "evt3" else "<I", w) for w in ws)


def _as_tuples(batch):
    return list(zip(batch.x.tolist(), batch.y.tolist(), batch.t.tolist(), batch.p.tolist()))


@pytest.mark.parametrize("encoding", ["evt3", "evt2"])
def test_round_trip_synthetic_stream(encoding):
    stream = edge_stream(50_000, width=640, height=480, seed=3)
    data = encode(stream, encoding)
    out = make_decoder(encoding, 640, 480).decode(data)
    np.testing.assert_array_equal(out.events, stream.events)


def test_evt3_uses_vectors_for_runs():
    # 12 neighbours at one (t, y, p): base + one VECT_12 instead of 12 ADDR_X
    b = EventBatch.from_arrays(np.arange(100, 112), [7] * 12, [5] * 12, [1] * 12, 640, 480)
    words = np.frombuffer(encode(b, "evt3"), dtype="<u2")
    types = (words >> 12).tolist()
    assert types == [0x8, 0x6, 0x0, 0x3, 0x4]
    np.testing.assert_array_equal(make_decoder("evt3", 640, 480).decode(words).events, b.events)


def test_evt3_vector_8_and_gaps_decode():
    words = [0x8000 | 1, 0x6000 | 2, 0x0000 | 3, 0x3000 | (1 << 11) | 10, 0x5000 | 0b10000001, 0x4000 | 0b1]
    out = make_decoder("evt3", 640, 480).decode(_words("evt3", words))
    t = (1 << 12) | 2
    assert _as_tuples(out) == [(10, 3, t, 1), (17, 3, t, 1), (18, 3, t, 1)]


@pytest.mark.parametrize("encoding", ["evt3", "evt2"])
def test_state_carries_across_packets(encoding):
    stream = edge_stream(20_000, width=640, height=480, seed=5)
    data = encode(stream, encoding)
    dec = make_decoder(encoding, 640, 480)
    word = 2 if encoding == "evt3" else 4
    cuts = np.linspace(0, len(data) // word, 17).astype(int) * word
    parts = [dec.decode(data[a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    np.testing.assert_array_equal(np.concatenate([p.events for p in parts]), stream.events)


def test_evt3_time_wrap_is_unfolded():
    t = np.array([(1 << 24) - 3000, (1 << 24) - 10, (1 << 24) + 5, (1 << 24) + 9000], dtype=np.int64)
    b = EventBatch.from_arrays([1, 2, 3, 4], [1, 1, 1, 1], t, [0, 1, 0, 1], 64, 64)
    dec = make_decoder("evt3", 64, 64)
    out = dec.decode(encode(b, "evt3"))
    np.testing.assert_array_equal(out.t, t)
    assert dec.stats.time_wraps == 1


def test_long_silence_keeps_time_continuous():
    # 30 s without events: the encoder inserts TIME_HIGH steps so wraps stay detectable
    t = np.array([1000, 30_000_000, 31_000_000], dtype=np.int64)
    b = EventBatch.from_arrays([1, 2, 3], [0, 0, 0], t, [1, 1, 1], 64, 64)
    for enc in ("evt3", "evt2"):
        np.testing.assert_array_equal(make_decoder(enc, 64, 64).decode(encode(b, enc)).t, t)


def test_evt3_triggers():
    words = [0x8000 | 2, 0x6000 | 7, 0xA000 | (3 << 8) | 1]
    out = make_decoder("evt3", 64, 64).decode(_words("evt3", words))
    assert out.triggers.tolist() == [((2 << 12) | 7, 3, 1)]


# ---------------------------------------------------------------- bad input


def test_unsupported_encoding_is_a_typed_error():
    with pytest.raises(UnsupportedEncodingError, match="mono"):
        make_decoder("mono", 346, 260)
    with pytest.raises(EventFormatError):
        encode(EventBatch.empty(64, 64), "mono")


def test_events_before_time_and_row_are_counted_drops():
    words = [0x2000 | 5, 0x8000, 0x2000 | 5, 0x0000 | 1, 0x2000 | 5, 0x4000 | 1]
    dec = make_decoder("evt3", 64, 64)
    out = dec.decode(_words("evt3", words))
    assert len(out) == 1
    s = dec.stats
    assert (s.no_time_base, s.no_row, s.no_vector_base) == (1, 1, 1)


def test_out_of_range_and_time_backwards_are_counted():
    words = [0x8000 | 5, 0x0000 | 100, 0x2000 | 3, 0x0000 | 1, 0x2000 | 70, 0x2000 | 3,
             0x8000 | 4, 0x2000 | 4]
    dec = make_decoder("evt3", 64, 64)
    out = dec.decode(_words("evt3", words))
    assert _as_tuples(out) == [(3, 1, 5 << 12, 0)]
    s = dec.stats
    assert (s.out_of_range, s.time_backwards) == (2, 1)


def test_truncated_and_unknown_words_are_counted():
    dec = make_decoder("evt3", 64, 64)
    dec.decode(_words("evt3", [0x8000, 0x1000, 0xB000, 0x9000]) + b"\x01")
    s = dec.stats
    assert (s.truncated_bytes, s.unknown_words, s.skipped_words) == (1, 2, 1)


def test_non_bytes_input_is_a_typed_error():
    dec = make_decoder("evt3", 64, 64)
    with pytest.raises(EventFormatError):
        dec.decode(object())
    with pytest.raises(EventFormatError):
        dec.decode([1, 2, 300])


def test_encoder_refuses_unsorted_or_out_of_sensor_events():
    ev = np.zeros(2, dtype=EVENT_DTYPE)
    ev["t"] = [5, 3]
    with pytest.raises(EventFormatError, match="sorted"):
        encode(EventBatch(ev, 64, 64), "evt3")
    ev["t"] = [3, 5]
    ev["x"] = [1, 64]
    with pytest.raises(EventFormatError, match="outside"):
        encode(EventBatch(ev, 64, 64), "evt3")


def test_sensor_geometry_limits():
    with pytest.raises(EventFormatError):
        make_decoder("evt3", 4096, 10)
    with pytest.raises(EventFormatError):
        EventBatch.from_arrays([70], [1], [0], [1], 64, 64)


# ---------------------------------------------------------------- fuzzing

_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _compare(encoding, width, height, chunks):
    dec = make_decoder(encoding, width, height)
    ref = REFS[encoding](width, height)
    events, triggers = [], []
    for c in chunks:
        out = dec.decode(c)
        ref.feed(c)
        events += _as_tuples(out)
        triggers += out.triggers.tolist()
    assert events == ref.events
    assert triggers == ref.triggers
    s = dec.stats.as_dict()
    for k, v in ref.c.items():
        assert s[k] == v, k


@_SETTINGS
@given(chunks=st.lists(st.binary(max_size=600), max_size=4), width=st.integers(1, 2048),
       height=st.integers(1, 2048), encoding=st.sampled_from(["evt3", "evt2"]))
def test_fuzz_arbitrary_bytes_match_reference(chunks, width, height, encoding):
    # Arbitrary bytes never raise; output and counters equal the loop decoder's.
    _compare(encoding, width, height, chunks)


_EVT3_WORD = st.one_of(
    st.integers(0, 0xFFFF),
    st.builds(lambda typ, v: (typ << 12) | v, st.sampled_from([0x0, 0x2, 0x3, 0x4, 0x5, 0x6, 0x8, 0xA]),
              st.integers(0, 0xFFF)),
)


@_SETTINGS
@given(words=st.lists(_EVT3_WORD, max_size=400), cut=st.integers(0, 400), width=st.integers(1, 2048),
       height=st.integers(1, 2048))
def test_fuzz_structured_evt3_streams_match_reference(words, cut, width, height):
    data = _words("evt3", words)
    cut = min(cut, len(words)) * 2
    _compare("evt3", width, height, [data[:cut], data[cut:]])


@_SETTINGS
@given(n=st.integers(0, 300), seed=st.integers(0, 2**31 - 1), frac=st.floats(0, 1))
def test_fuzz_round_trip_of_valid_streams(n, seed, frac):
    b = edge_stream(n, width=320, height=240, vector_fraction=frac, seed=seed) if n else EventBatch.empty(320, 240)
    for enc in ("evt3", "evt2"):
        out = make_decoder(enc, 320, 240).decode(encode(b, enc))
        np.testing.assert_array_equal(out.events, b.events)


@pytest.mark.parametrize("encoding", ["evt3", "evt2"])
def test_triggers_survive_a_round_trip(encoding):
    from snn_autonomy.events import TRIGGER_DTYPE

    b = edge_stream(3000, width=320, height=240, seed=8)
    tr = np.zeros(3, dtype=TRIGGER_DTYPE)
    tr["t"] = [b.t_first, b.t[1500], b.t_last + 5]
    tr["id"] = [0, 3, 1]
    tr["value"] = [1, 0, 1]
    out = make_decoder(encoding, 320, 240).decode(encode(EventBatch(b.events, 320, 240, tr), encoding))
    np.testing.assert_array_equal(out.events, b.events)
    np.testing.assert_array_equal(out.triggers, tr)


def test_bag_triggers_survive_reencoding(evt3_bag):
    from snn_autonomy.events import PacketEncoder, PacketStreamDecoder
    from snn_autonomy.events.bag import read_event_packets

    dec, dec2, enc = PacketStreamDecoder(), PacketStreamDecoder(), PacketEncoder(1280, 720)
    n_ev = n_tr = 0
    for _, _, pkt in read_event_packets(evt3_bag):
        batch = dec.decode(pkt)
        again = dec2.decode(enc.encode(batch, pkt.stamp_ns))
        np.testing.assert_array_equal(again.events, batch.events)
        np.testing.assert_array_equal(again.triggers, batch.triggers)
        n_ev, n_tr = n_ev + len(again), n_tr + len(again.triggers)
    assert (n_ev, n_tr) == (82469, 2)


# ---------------------------------------------------------------- libcaer_cmp, libcaer (iniVation)

def _libcaer_messages(stream, encoding, per_message):
    """(bytes, time_base_ns) per message of `per_message` events, as libcaer_driver sends them."""
    from snn_autonomy.events.libcaer import time_base_ns

    out = []
    for a in range(0, len(stream), per_message):
        part = EventBatch(stream.events[a:a + per_message], stream.width, stream.height)
        out.append((encode(part, encoding), time_base_ns(part)))
    return out


def _sorted_events(ev):
    return ev[np.lexsort((ev["p"], ev["y"], ev["x"], ev["t"]))]


@pytest.mark.parametrize("encoding", ["libcaer_cmp", "libcaer"])
def test_libcaer_round_trip_over_messages(encoding):
    """A DAVIS346-sized stream cut into messages, each relative to its own time_base: the same
    events (libcaer_cmp orders a time's events by column and row, so compare as sets)."""
    stream = edge_stream(30_000, width=346, height=260, seed=4)
    stream = EventBatch(stream.events.copy(), 346, 260)
    stream.events["t"] += 1_700_000_000_000_000          # host time, microseconds since the epoch
    dec = make_decoder(encoding, 346, 260)
    parts = [dec.decode(data, tb) for data, tb in _libcaer_messages(stream, encoding, 1000)]
    got = np.concatenate([p.events for p in parts])
    np.testing.assert_array_equal(_sorted_events(got), _sorted_events(stream.events))
    assert dec.stats.dropped_events == 0


def test_libcaer_cmp_vectors_time_restart_and_carried_state():
    """Hand-made words: VECT_8 steps base y by 8; time restarts with each message while x, base y
    and polarity carry over; an event outside the sensor is dropped and counted."""
    words = [0x0000 | 1, 0x1000 | 2, 0x2000 | 5, 0x3000 | (1 << 11) | 7,      # t=(1<<12)|2, (5, 7, on)
             0x4000 | 10, 0x5000 | 0b10000001]                                # off at y 10 and 17
    dec = make_decoder("libcaer_cmp", 64, 64)
    out = dec.decode(_words("evt3", words), 3_000_000)     # time_base 3 ms
    t = 3000 + ((1 << 12) | 2)
    assert _as_tuples(out) == [(5, 7, t, 1), (5, 10, t, 0), (5, 17, t, 0)]
    # next message: no time words (t = its time_base), x = 5 and base y = 18 carried over
    out = dec.decode(_words("evt3", [0x5000 | 0b11, 0x2000 | 70, 0x3000 | 1]), 9_000_000)
    assert _as_tuples(out) == [(5, 18, 9000, 0), (5, 19, 9000, 0)]
    s = dec.stats
    assert (s.out_of_range, s.events) == (1, 5)


def test_libcaer_cmp_encoder_uses_vectors_for_columns():
    b = EventBatch.from_arrays([9] * 12, np.arange(20, 32), [5] * 12, [1] * 12, 346, 260)
    words = np.frombuffer(encode(b, "libcaer_cmp"), dtype="<u2")
    assert (words >> 12).tolist() == [0, 1, 2, 4, 5, 4, 5]             # 8 rows then 4 as two vectors
    out = make_decoder("libcaer_cmp", 346, 260).decode(words, 5000)
    np.testing.assert_array_equal(out.events, b.events)


def test_libcaer_timestamps_wrap_within_a_message():
    import struct

    recs = [(2**31 - 10, 3, 4, 1), (5, 6, 7, 0)]      # stamp, x, y, p: the second stamp wrapped
    data = b"".join(struct.pack("<Ii", (x << 17) | (y << 2) | (p << 1), t) for t, x, y, p in recs)
    dec = make_decoder("libcaer", 346, 260)
    out = dec.decode(data, 1_000_000)
    assert _as_tuples(out) == [(3, 4, 1000 + 2**31 - 10, 1), (6, 7, 1000 + 2**31 + 5, 0)]
    assert dec.stats.time_wraps == 1


@_SETTINGS
@given(chunks=st.lists(st.tuples(st.binary(max_size=600), st.integers(0, 2**63)), max_size=4),
       width=st.integers(1, 2048), height=st.integers(1, 2048), encoding=st.sampled_from(["libcaer_cmp", "libcaer"]))
def test_fuzz_libcaer_bytes_match_reference(chunks, width, height, encoding):
    # Arbitrary bytes and time bases never raise; output and counters equal the loop decoder's.
    dec = make_decoder(encoding, width, height)
    ref = REFS[encoding](width, height)
    events = []
    for data, tb in chunks:
        events += _as_tuples(dec.decode(data, tb))
        ref.feed(data, tb)
    assert events == ref.events
    s = dec.stats.as_dict()
    for k, v in ref.c.items():
        assert s[k] == v, k
