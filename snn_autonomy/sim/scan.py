"""What a ray scan of the world holds, without the ray caster: the types that labels and
perception read, importable without numba (the ray caster is sim/ground_truth.py)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HIT_NONE, HIT_WALL, HIT_OBSTACLE, HIT_ROBOT = -1, 0, 1, 2


@dataclass
class RangeScan:
    """Per ray (left to right across the image): distance, hit kind/index, closing speed (m/s, + = nearer)."""

    angles: np.ndarray      # relative to the heading, + to the left, rad
    distance: np.ndarray
    kind: np.ndarray
    index: np.ndarray
    closing_speed: np.ndarray
