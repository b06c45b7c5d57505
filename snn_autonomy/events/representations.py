"""Dense tensors built from events, as perception consumes them.

Shape conventions (asserted in tests):
  binned frames  (T, 2, H, W)  T time bins; channel 0 = OFF, 1 = ON; float32 counts
  voxel grid     (B, H, W)     B temporal bins; polarity-signed, bilinear in time
H, W are the output grid: the ROI's size, or `out_size` (W, H) when the ROI is
pooled onto a fixed grid (each output cell sums the pixels that map onto it).
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .batch import EventBatch
from .errors import EventFormatError
from .roi import Roi


def _grid_index(batch: EventBatch, roi: Roi, out_size: Optional[Tuple[int, int]]):
    """Cell (gx, gy) of each event inside the ROI, the keep mask and grid (W, H)."""
    x = batch.x.astype(np.int64)
    y = batch.y.astype(np.int64)
    keep = roi.mask(x, y)
    x = x[keep] - roi.x_offset
    y = y[keep] - roi.y_offset
    if out_size is None:
        gw, gh = roi.width, roi.height
    else:
        gw, gh = int(out_size[0]), int(out_size[1])
        if gw <= 0 or gh <= 0:
            raise EventFormatError(f"out_size must be positive, got {out_size}")
        x = x * gw // roi.width
        y = y * gh // roi.height
    return x, y, keep, gw, gh


def binned_frames(batch: EventBatch, t_start: int, bin_us: int, n_bins: int,
                  roi: Optional[Roi] = None, out_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Event counts per time bin and polarity: (n_bins, 2, H, W) float32.

    Bin i holds events with t_start + i*bin_us <= t < t_start + (i+1)*bin_us; events
    outside [t_start, t_start + n_bins*bin_us) or outside the ROI are ignored.
    """
    if bin_us <= 0 or n_bins <= 0:
        raise EventFormatError(f"bin_us and n_bins must be positive, got {bin_us}, {n_bins}")
    roi = roi or Roi.full(batch.width, batch.height)
    gx, gy, keep, gw, gh = _grid_index(batch, roi, out_size)
    t = batch.t[keep]
    p = batch.p[keep].astype(np.int64)
    b = (t - int(t_start)) // int(bin_us)
    inside = (b >= 0) & (b < n_bins)
    flat = ((b[inside] * 2 + p[inside]) * gh + gy[inside]) * gw + gx[inside]
    counts = np.bincount(flat, minlength=n_bins * 2 * gh * gw)
    return counts.astype(np.float32).reshape(n_bins, 2, gh, gw)


def voxel_grid(batch: EventBatch, n_bins: int, t_start: Optional[int] = None, t_end: Optional[int] = None,
               roi: Optional[Roi] = None, out_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Polarity-signed events spread over n_bins by linear interpolation in time: (n_bins, H, W).

    The time span [t_start, t_end] (default: the batch's first and last event) maps
    onto bin centres 0 .. n_bins-1; each event adds +1 (ON) or -1 (OFF), split between
    the two nearest bins in proportion to its distance from them.
    """
    if n_bins <= 0:
        raise EventFormatError(f"n_bins must be positive, got {n_bins}")
    roi = roi or Roi.full(batch.width, batch.height)
    gx, gy, keep, gw, gh = _grid_index(batch, roi, out_size)
    grid = np.zeros(n_bins * gh * gw, dtype=np.float64)
    if len(gx) == 0:
        return grid.reshape(n_bins, gh, gw).astype(np.float32)
    t = batch.t[keep].astype(np.float64)
    t0 = float(t[0] if t_start is None else t_start)
    t1 = float(t[-1] if t_end is None else t_end)
    inside = (t >= t0) & (t <= t1)
    t, gx, gy = t[inside], gx[inside], gy[inside]
    pol = np.where(batch.p[keep][inside] > 0, 1.0, -1.0)
    tn = (t - t0) * (n_bins - 1) / (t1 - t0) if t1 > t0 else np.zeros_like(t)
    lo = np.floor(tn).astype(np.int64)
    frac = tn - lo
    pix = gy * gw + gx
    for bins, weight in ((lo, 1.0 - frac), (lo + 1, frac)):
        ok = bins < n_bins
        grid += np.bincount(bins[ok] * gh * gw + pix[ok], weights=pol[ok] * weight[ok], minlength=grid.size)
    return grid.reshape(n_bins, gh, gw).astype(np.float32)
