"""Procedural textures for the built-in world, as arrays a numba renderer reads.

Each texture is (kind, period, low, high, seed); `texture_value(table, i, u, v)`
returns the linear intensity at surface coordinates (u, v) in metres: along the
surface and up it for walls and cylinders, world x and y for the floor. Hard
edges make motion produce the contrast steps an event camera responds to.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
from numba import njit

from .config import TextureConfig

KIND_UNIFORM, KIND_STRIPES, KIND_CHECKER, KIND_BARS = 0, 1, 2, 3
_KIND_IDS = {"uniform": KIND_UNIFORM, "stripes": KIND_STRIPES, "checker": KIND_CHECKER, "bars": KIND_BARS}
# columns of the table
T_KIND, T_PERIOD, T_LOW, T_HIGH, T_SEED = 0, 1, 2, 3, 4


def texture_table(textures: Dict[str, TextureConfig]) -> Tuple[np.ndarray, List[str]]:
    """(n, 5) float64 table and the names in row order (sorted, so ids are stable)."""
    names = sorted(textures)
    table = np.zeros((len(names), 5), dtype=np.float64)
    for i, name in enumerate(names):
        t = textures[name]
        table[i] = (_KIND_IDS[t.kind], t.period_m, t.low, t.high, t.seed)
    return table, names


@njit(cache=True, nogil=True, inline="always")
def _hash01(n: np.int64, seed: np.int64) -> float:
    # integer hash (splitmix-style) -> [0, 1)
    z = (n * np.int64(0x9E3779B1) + seed * np.int64(0x85EBCA77) + np.int64(0x165667B1)) & np.int64(0xFFFFFFFF)
    z = ((z ^ (z >> 15)) * np.int64(0x2C1B3C6D)) & np.int64(0xFFFFFFFF)
    z = ((z ^ (z >> 12)) * np.int64(0x297A2D39)) & np.int64(0xFFFFFFFF)
    z = z ^ (z >> 15)
    return (z & np.int64(0xFFFFFF)) / 16777216.0


@njit(cache=True, nogil=True)
def texture_value(table, tid, u, v):
    kind = int(table[tid, T_KIND])
    period = table[tid, T_PERIOD]
    low = table[tid, T_LOW]
    high = table[tid, T_HIGH]
    if kind == KIND_UNIFORM:
        return high
    iu = np.int64(np.floor(u / period))
    if kind == KIND_STRIPES:
        return high if iu % 2 == 0 else low
    if kind == KIND_CHECKER:
        iv = np.int64(np.floor(v / period))
        return high if (iu + iv) % 2 == 0 else low
    # bars: grey levels drawn per period cell
    return low + (high - low) * _hash01(iu, np.int64(table[tid, T_SEED]))
