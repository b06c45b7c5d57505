"""What the controller steers with: free range per sector of the field of view.

The camera's horizontal field of view is cut into `SectorSpec.count` equal sectors, left to
right. Each sector's nearest obstacle (wall, obstacle, robot) is graded into a range class by
`edges_m`: class 0 is nearer than edges_m[0], class k lies in [edges_m[k-1], edges_m[k]), the
last class is "at least edges_m[-1]" (free as far as the controller cares). The controller
takes the lower edge of each class as the free range: it never believes a sector freer than
its class says.

Three producers make the same `SectorPercept`, so closed-loop figures split into controller
error and perception error:
- `oracle_percept`: from the world's geometry (what perfect perception would report);
- `SectorView.percept` from a decision of a sector model (one softmax of range classes per
  sector: the shipped model, whose manifest has a "sectors" section, `SectorSpec.from_manifest`;
  `SectorSpec.view` makes the view, which travels in the Perception message);
- `percept_from_classes`: from a decision of a four-class model (snn_autonomy.perception.labels),
  whose only range information is "something nearer than near_m in the left / centre / right
  third".
A sector decision also gives the four-class label (`summary_label`), so consumers of the label
(attention, fleet sightings) work with either kind of model, and a `sensor_msgs/LaserScan`
virtual scan (`scan_ranges`) for a costmap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from ..config import spec
from ..sim.scan import HIT_NONE, RangeScan
from .labels import CENTER, CLEAR, LEFT, RIGHT, LabelConfig, sector_minima

if TYPE_CHECKING:       # the world and its ray caster (numba) load only where a scan is cast
    from ..sim.world import World


SECTOR_DEG = 10.0    # a sector's width: a 0.2 m obstacle at 1.2 m, a robot's body at 2 m
RAYS_PER_SECTOR = 5  # ground-truth rays 2 deg apart: a 0.2 m obstacle is hit out to 5.7 m


def sector_count(hfov_deg: float) -> int:
    """Sectors across a camera's horizontal field of view, each about SECTOR_DEG wide."""
    return max(3, int(round(hfov_deg / SECTOR_DEG)))


@dataclass(frozen=True)
class SectorSpec:
    count: int = spec(9, lo=3, hi=64, help="sectors across the field of view (10 deg each at 90 deg)")
    edges_m: Tuple[float, ...] = spec((0.35, 0.6, 0.9, 1.4, 2.2), lo=0.01, hi=100.0, unit="m",
                                      help="range class edges, ascending; the last is 'free'")
    hfov_deg: float = spec(90.0, lo=10.0, hi=170.0, unit="deg")
    ttc_s: float = spec(2.0, lo=0.1, hi=60.0, unit="s", help="approaching when time to contact is below")

    @classmethod
    def for_camera(cls, hfov_deg: float) -> "SectorSpec":
        """One sector per SECTOR_DEG of the camera's field of view."""
        return cls(count=sector_count(hfov_deg), hfov_deg=hfov_deg)

    def fits(self, hfov_deg: float) -> bool:
        """Whether these sectors span a camera of `hfov_deg` (within half a degree)."""
        return abs(self.hfov_deg - float(hfov_deg)) <= 0.5

    def for_view(self, hfov_deg: float) -> "SectorSpec":
        """These range classes over a camera of `hfov_deg`: this spec where the field of view is
        its own, else one sector per SECTOR_DEG of the new view (a model fine-tuned onto another
        camera gets a fresh readout for them)."""
        if self.fits(hfov_deg):
            return self
        return replace(self, count=sector_count(hfov_deg), hfov_deg=float(hfov_deg))

    def __post_init__(self) -> None:
        e = tuple(float(v) for v in self.edges_m)
        if not e or any(b <= a for a, b in zip(e, e[1:])) or e[0] <= 0:
            raise ValueError(f"edges_m must be positive and ascending, got {self.edges_m!r}")

    @property
    def classes(self) -> int:
        return len(self.edges_m) + 1

    @property
    def width_rad(self) -> float:
        return math.radians(self.hfov_deg) / self.count

    def angles(self) -> np.ndarray:
        """Centre of each sector relative to the heading [rad], + to the left, left to right."""
        return sector_angles(self.count, math.radians(self.hfov_deg))

    def view(self, classes) -> "SectorView":
        """A decision's sector classes as they travel to the controller."""
        classes = tuple(int(c) for c in classes)
        return SectorView(classes, tuple(float(v) for v in self.lower_edge(np.array(classes))),
                          math.radians(self.hfov_deg))

    def grade(self, ranges_m: np.ndarray) -> np.ndarray:
        """Range class of each sector's nearest range."""
        return np.searchsorted(np.asarray(self.edges_m), np.asarray(ranges_m, dtype=float), side="right")

    def edge_gap(self, ranges_m: np.ndarray) -> np.ndarray:
        """How far each range lies from the nearest class edge, as a fraction of that edge: a
        range within a few percent of an edge is one a small error of range puts in the
        neighbouring class."""
        edges = np.asarray(self.edges_m, dtype=float)
        r = np.asarray(ranges_m, dtype=float)[..., None]
        return np.min(np.abs(r - edges) / edges, axis=-1)

    def lower_edge(self, classes: np.ndarray) -> np.ndarray:
        """The free range the controller may assume for each class (0 for class 0)."""
        lo = np.concatenate([[0.0], np.asarray(self.edges_m, dtype=float)])
        return lo[np.asarray(classes, dtype=int)]

    def scan_ranges(self, classes: np.ndarray) -> np.ndarray:
        """Ranges of a virtual laser scan, one ray per sector: the lower edge of each class (an
        obstacle is marked no farther than perception vouches for), half the first edge for
        class 0, and +inf (REP 117: nothing within range_max) for the last class."""
        classes = np.asarray(classes, dtype=int)
        r = self.lower_edge(classes)
        r = np.where(classes == 0, self.edges_m[0] / 2, r)
        return np.where(classes >= self.classes - 1, np.inf, r)

    def as_manifest(self) -> dict:
        return {"count": self.count, "edges_m": list(self.edges_m), "hfov_deg": self.hfov_deg, "ttc_s": self.ttc_s}

    @classmethod
    def from_manifest(cls, manifest: dict) -> Optional["SectorSpec"]:
        """The sector head of a model manifest; None for a four-class model."""
        d = manifest.get("sectors")
        return None if d is None else cls(int(d["count"]), tuple(float(e) for e in d["edges_m"]),
                                          float(d["hfov_deg"]), float(d["ttc_s"]))


def summary_label(spec_: SectorSpec, classes: np.ndarray, near_m: float) -> int:
    """The four-class label (labels.class_of) of a sector view: sectors are grouped into the
    left, centre and right thirds and a third is blocked when one of its sectors is of a class
    wholly nearer than near_m; the nearer side wins (the lower class), left on a tie."""
    classes = np.asarray(classes, dtype=int)
    blocked_below = int(spec_.grade(np.array([near_m]))[0])    # classes below this lie under near_m
    left, centre, right = (int(t.min()) for t in np.array_split(classes, 3))
    if centre < blocked_below:
        return CENTER
    if min(left, right) < blocked_below:
        return LEFT if left <= right else RIGHT
    return CLEAR


def sector_angles(count: int, hfov_rad: float) -> np.ndarray:
    """Centres of `count` equal sectors of a field of view `hfov_rad` wide, left to right [rad]."""
    width = hfov_rad / count
    return hfov_rad / 2 - width * (np.arange(count) + 0.5)


@dataclass(frozen=True)
class SectorView:
    """A sector model's decision as it travels (the sector fields of snn_autonomy_msgs/Perception):
    enough for a controller that holds no model manifest."""

    classes: Tuple[int, ...]        # range class per sector, left to right
    free_m: Tuple[float, ...]       # the range each sector is free to (lower edge of its class)
    fov_rad: float                  # the field of view the sectors split

    def problem(self) -> str:
        """Why this view cannot be steered by ('' when it can)."""
        if len(self.classes) != len(self.free_m) or not 3 <= len(self.classes) <= 64:
            return f"{len(self.classes)} sector classes and {len(self.free_m)} ranges (3..64 sectors, one range each)"
        if not (math.isfinite(self.fov_rad) and 0.0 < self.fov_rad < math.pi):
            return f"field of view {self.fov_rad} rad outside (0, pi)"
        if not all(math.isfinite(r) and r >= 0.0 for r in self.free_m):
            return "a sector range is negative or not finite"
        return ""

    def percept(self, approaching: bool, confidence: float, ttc_s: float = math.inf) -> "SectorPercept":
        angles = sector_angles(len(self.classes), self.fov_rad)
        return SectorPercept(tuple(self.classes), tuple(self.free_m), tuple(float(a) for a in angles),
                             bool(approaching), float(ttc_s), float(confidence))


@dataclass(frozen=True)
class SectorPercept:
    """One decision in the controller's terms (ranges from the camera, in metres)."""

    classes: Tuple[int, ...]        # range class per sector, left to right
    free_m: Tuple[float, ...]       # lower edge of each class: the range assumed free
    angles: Tuple[float, ...]       # sector centres relative to the heading [rad], + left
    approaching: bool               # something in view closes in with time to contact under ttc_s
    ttc_s: float                    # the smallest time to contact in view (inf when nothing closes in)
    confidence: float               # of the decision that made it, [0, 1]

    @property
    def imminent(self) -> bool:
        """Something in the central sectors nearer than the first class edge, and closing in."""
        n = len(self.classes)
        centre = self.classes[n // 3: n - n // 3]
        return self.approaching and min(centre) == 0


def make_percept(spec_: SectorSpec, classes: np.ndarray, approaching: bool, ttc_s: float,
                 confidence: float) -> SectorPercept:
    classes = np.asarray(classes, dtype=int)
    return SectorPercept(tuple(int(c) for c in classes), tuple(float(v) for v in spec_.lower_edge(classes)),
                         tuple(float(a) for a in spec_.angles()), bool(approaching), float(ttc_s),
                         float(confidence))


def sector_scan(world: World, robot: int, count: int, hfov_deg: Optional[float] = None) -> RangeScan:
    """Ground-truth rays for `count` sectors across the view of `robot`'s camera (or `hfov_deg`),
    RAYS_PER_SECTOR each: what training labels, the oracle and the check of LiDAR labels see."""
    from ..sim.ground_truth import range_scan

    return range_scan(world, robot, n_rays=count * RAYS_PER_SECTOR, hfov_deg=hfov_deg)


def oracle_percept(world: World, robot: int, spec_: SectorSpec) -> SectorPercept:
    """What perfect perception would report for `robot` now, from the world's geometry."""
    scan = sector_scan(world, robot, spec_.count, spec_.hfov_deg)
    hit = scan.kind != HIT_NONE
    ranges = np.array(sector_minima(scan, spec_.count))
    with np.errstate(divide="ignore", invalid="ignore"):
        ttc = np.where(hit & (scan.closing_speed > 1e-3), scan.distance / scan.closing_speed, np.inf)
    t_min = float(ttc.min()) if len(ttc) else math.inf
    return make_percept(spec_, spec_.grade(ranges), t_min < spec_.ttc_s, t_min, 1.0)


def percept_from_classes(spec_: SectorSpec, label: int, approaching: bool, confidence: float,
                         label_cfg: LabelConfig = LabelConfig(), ttc_s: float = math.inf) -> SectorPercept:
    """A four-class decision as sectors. Every sector the model called clear gets the class of
    near_m (it saw nothing nearer there, so near_m is all that can be assumed free); a blocked
    side's sectors the class below (something nearer than near_m, how near unknown: the
    controller steers away from it and keeps moving, as from any obstacle inside its
    pass range); a blocked centre class 1, or class 0 when it is also approaching, which the
    watchdog takes as imminent (the four-class task's halt: obstacle_center and approaching)."""
    clear = int(spec_.grade(np.array([label_cfg.near_m]))[0])
    classes = np.full(spec_.count, clear)
    thirds = np.array_split(np.arange(spec_.count), 3)
    blocked = {LEFT: thirds[0], CENTER: thirds[1], RIGHT: thirds[2]}.get(int(label))
    if int(label) == CENTER:
        classes[blocked] = 0 if approaching else 1
    elif blocked is not None:
        classes[blocked] = clear - 1
    return make_percept(spec_, classes, approaching, ttc_s, confidence)
