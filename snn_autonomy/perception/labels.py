"""What perception reports, defined from ground-truth geometry.

The camera's horizontal field of view is cut into three equal sectors (left,
centre, right of the image). Anything (wall, obstacle, robot) nearer than
`near_m` in a sector blocks it. The centre sector is the robot's path, so it
comes first: `obstacle_center` when the centre is blocked; otherwise
`obstacle_left` / `obstacle_right` for the blocked side (the nearer one if both
are); otherwise `clear`. `approaching` is true when something in view closes in
with a time to contact under `ttc_s` (distance / closing speed). The controller
steers away from the reported side and stops on obstacle_center + approaching.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from ..config import spec
from ..sim.scan import HIT_NONE, RangeScan

CLASSES: Tuple[str, ...] = ("clear", "obstacle_left", "obstacle_center", "obstacle_right")
CLEAR, LEFT, CENTER, RIGHT = range(4)


@dataclass(frozen=True)
class LabelConfig:
    near_m: float = spec(0.9, lo=0.1, hi=20.0, help="an obstacle nearer than this matters", unit="m")
    ttc_s: float = spec(2.0, lo=0.1, hi=60.0, help="approaching when time to contact is below", unit="s")
    rays: int = spec(45, lo=3, hi=1001, help="ground-truth rays across the field of view for the four-class "
                                             "label (sector labels: sectors.RAYS_PER_SECTOR per sector)")
    distance_margin_m: float = spec(0.2, lo=0.0, hi=5.0, unit="m",
                                    help="nearest obstacle within near_m +- this: ambiguous")
    sector_margin: float = spec(0.25, lo=0.0, hi=10.0,
                                help="another sector within (1 + this) x the nearest distance: ambiguous")


@dataclass(frozen=True)
class Label:
    cls: int
    approaching: bool
    nearest_m: float
    ttc_s: float
    sector_m: Tuple[float, float, float]   # nearest distance in the left, centre and right sector


def sector_minima(scan: RangeScan, count: int = 3) -> Tuple[float, ...]:
    """Nearest range in each of `count` equal sectors of the rays' span, left to right (inf where
    nothing was hit). A ray counts in the sector its angle falls in: split by index, 45 rays over
    14 sectors would put sector edges up to 6 degrees from where the sectors' bearings say."""
    d = np.where(scan.kind != HIT_NONE, scan.distance, np.inf)
    angles = np.asarray(scan.angles, dtype=np.float64)
    half = float(np.abs(angles).max()) if len(angles) else 0.0
    k = np.zeros(len(angles), dtype=np.int64) if half == 0.0 else \
        np.clip(((half - angles) * (count / (2 * half))).astype(np.int64), 0, count - 1)   # rays run left to right
    out = np.full(count, np.inf)
    np.minimum.at(out, k, d)
    return tuple(float(v) for v in out)


def class_of(sector_m, near_m: float) -> int:
    left, centre, right = sector_m
    if centre < near_m:
        return CENTER
    if min(left, right) < near_m:
        return LEFT if left <= right else RIGHT
    return CLEAR


def ambiguous(sector_m, cfg: LabelConfig) -> bool:
    """A label that ground truth cannot settle cleanly: the distance that decides it lies
    within `distance_margin_m` of `near_m`, or both sides are blocked about equally (which
    one is 'the' obstacle is then a coin toss for any observer). Such samples are kept
    and reported separately (accuracy on all samples and on the unambiguous ones)."""
    left, centre, right = sector_m
    near, margin = cfg.near_m, cfg.distance_margin_m
    if abs(centre - near) < margin:
        return True
    if centre < near:
        return False
    side, other = min(left, right), max(left, right)
    if abs(side - near) < margin:
        return True
    return bool(side < near and other < near and other < side * (1.0 + cfg.sector_margin))


def label_from_scan(scan: RangeScan, cfg: LabelConfig) -> Label:
    sectors = sector_minima(scan)
    closing = scan.closing_speed
    with np.errstate(divide="ignore", invalid="ignore"):
        ttc = np.where((closing > 1e-3) & (scan.kind != HIT_NONE), scan.distance / closing, np.inf)
    t_min = float(ttc.min()) if len(ttc) else float("inf")
    return Label(class_of(sectors, cfg.near_m), bool(t_min < cfg.ttc_s), float(min(sectors)), t_min, sectors)
