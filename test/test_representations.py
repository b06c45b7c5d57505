"""Binned frames and voxel grids: shapes, conservation of events, ROI and pooling."""
from __future__ import annotations

import numpy as np
import pytest

from snn_autonomy.events import EventBatch, EventFormatError, Roi
from snn_autonomy.events.representations import binned_frames, voxel_grid
from snn_autonomy.events.synthetic import edge_stream


def test_binned_frames_shape_and_counts():
    b = edge_stream(10_000, width=128, height=96, seed=2)
    n_bins, bin_us = 5, (b.duration_us // 5) + 1
    f = binned_frames(b, b.t_first, bin_us, n_bins)
    assert f.shape == (5, 2, 96, 128) and f.dtype == np.float32
    assert f.sum() == len(b)
    assert f[:, 1].sum() == b.p.sum()  # channel 1 = ON


def test_binned_frames_single_event_lands_in_its_cell():
    b = EventBatch.from_arrays([7], [3], [250], [0], 16, 8)
    f = binned_frames(b, 0, 100, 4)
    assert f[2, 0, 3, 7] == 1 and f.sum() == 1


def test_binned_frames_roi_and_pooling():
    b = edge_stream(10_000, width=128, height=96, seed=4)
    roi = Roi(32, 16, 64, 48)
    f = binned_frames(b, b.t_first, b.duration_us + 1, 1, roi=roi)
    assert f.shape == (1, 2, 48, 64)
    assert f.sum() == roi.mask(b.x, b.y).sum()
    pooled = binned_frames(b, b.t_first, b.duration_us + 1, 1, roi=roi, out_size=(16, 12))
    assert pooled.shape == (1, 2, 12, 16)
    assert pooled.sum() == f.sum()
    np.testing.assert_allclose(pooled[0, 0], f[0, 0].reshape(12, 4, 16, 4).sum(axis=(1, 3)))


def test_voxel_grid_conserves_signed_events():
    b = edge_stream(5_000, width=64, height=48, seed=6)
    v = voxel_grid(b, 7)
    assert v.shape == (7, 48, 64)
    assert v.sum() == pytest.approx(float((2 * b.p.astype(int) - 1).sum()), abs=1e-3)


def test_voxel_grid_interpolates_between_bins():
    b = EventBatch.from_arrays([1, 1, 1], [1, 1, 1], [0, 25, 100], [1, 1, 1], 4, 4)
    v = voxel_grid(b, 5)  # bins at t = 0, 25, 50, 75, 100
    np.testing.assert_allclose(v[:, 1, 1], [1, 1, 0, 0, 1])


def test_roi_clamping():
    roi, changed = Roi(100, 10, 50, 50).clamped(128, 96)
    assert roi == Roi(100, 10, 28, 50) and changed
    roi, changed = Roi(500, 500, 10, 10).clamped(128, 96)
    assert roi == Roi.full(128, 96) and changed
    with pytest.raises(EventFormatError):
        Roi(0, 0, 0, 5)
    with pytest.raises(EventFormatError):
        binned_frames(EventBatch.empty(8, 8), 0, 0, 3)
