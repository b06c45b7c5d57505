"""The DVS emulator and image conversion."""
from __future__ import annotations

import math

import numpy as np
import pytest

from snn_autonomy.sensors.dvs import DvsConfig, DvsEmulator
from snn_autonomy.sensors.image import IMAGE_ENCODINGS, ImageEventSource, image_to_intensity

QUIET = DvsConfig(threshold_sigma=0.0, leak_rate_hz=0.0, shot_noise_rate_hz=0.0, refractory_us=0)


def test_brightness_step_gives_one_event_per_threshold():
    em = DvsEmulator(4, 2, QUIET)
    em.feed(np.full((2, 4), 0.2), 0)
    frame = np.full((2, 4), 0.2)
    frame[1, 2] = 0.2 * math.exp(0.2 * 3.5)   # +3.5 thresholds: 3 ON events
    frame[0, 0] = 0.2 * math.exp(-0.2 * 2.2)  # -2.2 thresholds: 2 OFF events
    out = em.feed(frame, 1000)
    on = out.events[out.p == 1]
    off = out.events[out.p == 0]
    assert len(on) == 3 and set(zip(on["x"], on["y"])) == {(2, 1)}
    assert len(off) == 2 and set(zip(off["x"], off["y"])) == {(0, 0)}
    # crossing times interpolated linearly in log intensity: 1/3.5, 2/3.5, 3/3.5 of the interval
    np.testing.assert_allclose(on["t"], [math.ceil(1000 * k / 3.5) for k in (1, 2, 3)], atol=1)
    assert np.all(np.diff(out.t) >= 0) and out.t.min() > 0 and out.t.max() <= 1000


def test_refractory_period_suppresses_fast_repeats():
    cfg = DvsConfig(threshold_sigma=0.0, leak_rate_hz=0.0, shot_noise_rate_hz=0.0, refractory_us=500)
    em = DvsEmulator(1, 1, cfg)
    em.feed(np.array([[0.1]]), 0)
    out = em.feed(np.array([[0.1 * math.exp(0.2 * 5.5)]]), 1000)  # 5 crossings 182 us apart
    assert len(out) == 2  # at ~182 us and ~727 us; the others fall in the refractory period


def test_noise_and_leak_rates_and_threshold_spread():
    cfg = DvsConfig(shot_noise_rate_hz=50.0, leak_rate_hz=0.0, seed=3)
    em = DvsEmulator(64, 48, cfg)
    frame = np.full((48, 64), 0.5)
    em.feed(frame, 0)
    n = sum(len(em.feed(frame, t)) for t in range(1000, 1_000_001, 1000))
    expected = 50.0 * 64 * 48
    assert abs(n - expected) < 5 * math.sqrt(expected)
    leak = DvsEmulator(64, 48, DvsConfig(shot_noise_rate_hz=0.0, leak_rate_hz=2.0, seed=3))
    leak.feed(frame, 0)
    ev = [leak.feed(frame, t) for t in range(10_000, 2_250_001, 10_000)]
    on = sum(int(b.p.sum()) for b in ev)
    assert on == 4 * 64 * 48  # every pixel leaks one ON event per 1 / 2 Hz = 0.5 s
    assert em.c_on.std() == pytest.approx(0.03, rel=0.1) and em.c_on.mean() == pytest.approx(0.2, rel=0.02)


def test_same_seed_same_events():
    rng = np.random.default_rng(0)
    frames = rng.uniform(0.05, 1.0, (20, 24, 32))
    outs = []
    for _ in range(2):
        em = DvsEmulator(32, 24, DvsConfig(seed=5))
        outs.append(np.concatenate([em.feed(f, i * 1000).events for i, f in enumerate(frames)]))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert len(outs[0]) > 1000


def test_emulator_rejects_wrong_frames():
    em = DvsEmulator(8, 8)
    em.feed(np.full((8, 8), 0.5), 1000)
    with pytest.raises(ValueError, match="not after"):
        em.feed(np.full((8, 8), 0.5), 1000)
    with pytest.raises(ValueError, match="emulator is 8x8"):
        em.feed(np.full((4, 8), 0.5), 2000)


@pytest.mark.parametrize("encoding", sorted(IMAGE_ENCODINGS))
def test_image_encodings(encoding):
    dtype, ch, scale = IMAGE_ENCODINGS[encoding]
    h, w = 3, 5
    maxv = 1.0 if dtype == np.float32 else np.iinfo(dtype).max
    pix = np.zeros((h, w, ch), dtype=dtype)
    pix[1, 2] = maxv  # one white pixel
    pad = 4
    data = np.zeros((h, w * ch * np.dtype(dtype).itemsize + pad), dtype=np.uint8)
    data[:, : w * ch * np.dtype(dtype).itemsize] = pix.reshape(h, -1).view(np.uint8)
    img = image_to_intensity(encoding, w, h, data.shape[1], data.tobytes())
    assert img.shape == (h, w)
    assert img[1, 2] == pytest.approx(1.0, abs=1e-3) and img.sum() == pytest.approx(1.0, abs=1e-3)


def test_bad_images_are_counted_not_raised():
    src = ImageEventSource()
    assert src.feed("yuv422", 4, 4, 8, bytes(32), 0) is None
    assert "unsupported image encoding 'yuv422'" in src.counters.last_problem
    assert src.feed("mono8", 4, 4, 4, bytes(10), 0) is None  # too short
    assert src.counters.rejected == 2 and "shorter" not in src.counters.last_problem
    assert src.feed("mono8", 4, 4, 4, bytes(16), 1000) is not None
    assert src.feed("mono8", 8, 4, 8, bytes(32), 2000) is not None
    assert src.counters.size_changes == 1
    assert src.feed("mono8", 8, 4, 8, bytes(32), 1500) is not None
    assert src.counters.time_backwards == 1


def test_large_random_changes_never_overrun_the_event_buffer():
    # float32 references drifting over many threshold crossings once made the emulator emit
    # more events than it had counted room for; every crossing is now counted exactly once.
    rng = np.random.default_rng(7)
    em = DvsEmulator(32, 24, DvsConfig(shot_noise_rate_hz=2000.0, refractory_us=0, seed=1))
    em.feed(np.full((24, 32), 0.5), 0)
    total = 0
    for i in range(1, 400):
        out = em.feed(rng.uniform(0.001, 1.0, (24, 32)), i * 1000)
        assert out.events.dtype.names == ("x", "y", "t", "p")
        assert np.all(np.diff(out.t) >= 0) and out.x.max() < 32 and out.y.max() < 24
        total += len(out)
    assert total > 100_000
