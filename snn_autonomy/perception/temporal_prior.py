"""A decision's belief carried into the next: the temporal prior of the early-exit loop.

Each decision starts the network afresh (its state is reset), yet consecutive decisions of one
camera look at nearly the same scene: at the 0.5 m/s cruise the robot moves 2.5 cm in a 48 ms
decision. Without a prior every decision pays again for the evidence the one before gathered.
With it, each step's class logits z_k are fused with the previous decision's class
probabilities p (per sector for a sector head):

    fused_k = z_k + weight * log((1 - floor) * p + floor / K)

- `floor` is the transition: a share of the belief spread over all K classes, because the scene
  may have changed since (an obstacle stepped in, the robot turned by a sector). It also bounds
  the prior's pull: a class the last decision was sure of is favoured by at most
  weight * log((1 - floor + floor / K) / (floor / K)) nats (2.0 at the defaults).
- `weight` < 1 because the network's probabilities are over-confident and the windows of one
  scene are not independent evidence.

The confidence, the exit and the decision's classes are those of the fused logits. The prior
is dropped when the previous decision ended more than `max_gap_us` before this one's first step,
and whenever the stream starts afresh (a time jump, lost packets).

With `follow_heading` and the robot's odometry (`StreamingPerception.set_heading`), the belief
is turned with the robot before it is applied: a turn of d radians moves what was seen at bearing
b to bearing b - d, so each sector's belief is taken from the bearing it was seen at (linear
between neighbours; a sector that comes into view from outside the last one's gets no belief).
At 10 degrees a sector, a robot turning at 1 rad/s puts a 100 ms old belief more than half a
sector off. Without odometry the belief stays where it was seen, which the floor lets the new
evidence overrule.

While the robot does not drive (odometry's forward speed below `hold_speed_mps` both when the
belief was kept and when the next decision begins: turning on the spot, or standing), the ranges
it saw still hold: a turn only moves their bearings, which the turn above follows, and only a
moving obstacle can have changed them. Such a belief is weighted `hold_weight` (a whole
decision's evidence) with the floor `hold_floor`. It matters because these are the decisions the
camera is worst at: turning on the spot, every edge in view sweeps sideways, nothing in the
image moves by its range (no parallax) and horizontal edges such as a wall's foot make no
events; a single window names 56 % of such sectors right, against 87 % while driving.

The threshold calibrated with a prior (`calibrate_with_prior`) is its own: exits are judged on
chains of consecutive, non-overlapping decisions of one robot (`decision_chains`), against the
accuracy of a single window run to T_max (the figure the plain early exit is held to as well).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Deque, Dict, List, Optional, Tuple, Union

import numpy as np

from ..backends.base import Measure, confidence
from .early_exit import ExitResult, predict


@dataclass(frozen=True)
class TemporalPrior:
    # chosen by the robots (docs/perception.md): on the validation split every weight 0.4-1.0 and
    # floor 0.1-0.3 met the calibration target, in 8.3-9.2 steps instead of 12.8; 0.7 / 0.2 exited
    # earliest (8.27), but over 16 patrol runs its robots were at fault 3 times, these once
    weight: float = 0.5
    floor: float = 0.1
    max_gap_us: int = 100_000    # a belief older than one full window (96 ms) is not carried
    follow_heading: bool = True  # turn the belief with the robot (odometry), where it is known
    # while the robot does not drive (see the module docstring); 0 m/s: never. 0.03 m/s moves the
    # camera 3 mm in a 96 ms window. Chosen on the validation split: the fewest steps at the
    # calibration target among weights 0.8-1.0, floors 0.05-0.3 and speeds 0.03-0.15 m/s
    # (docs/perception.md); its floor bounds the pull at 3.2 nats, where 0.1 would give 4.0
    hold_speed_mps: float = 0.03
    hold_weight: float = 1.0
    hold_floor: float = 0.2

    def __post_init__(self) -> None:
        if not (0.0 <= self.weight <= 1.0 and 0.0 < self.floor <= 1.0 and self.max_gap_us >= 0
                and 0.0 <= self.hold_weight <= 1.0 and 0.0 < self.hold_floor <= 1.0 and self.hold_speed_mps >= 0.0):
            raise ValueError(f"temporal prior needs weights in [0, 1], floors in (0, 1], max_gap_us >= 0 and "
                             f"hold_speed_mps >= 0: {self}")

    def holds(self, speed_then: np.ndarray, speed_now: np.ndarray) -> np.ndarray:
        """Whether a belief kept at forward speed `speed_then` holds its ranges at `speed_now`
        (m/s; NaN, unknown, never holds)."""
        with np.errstate(invalid="ignore"):
            return (np.abs(speed_then) < self.hold_speed_mps) & (np.abs(speed_now) < self.hold_speed_mps)

    def log_belief(self, belief: np.ndarray, held: Union[bool, np.ndarray] = False) -> np.ndarray:
        """weight * log of the transitioned belief (`belief_of`'s (..., groups, K) probabilities),
        flat as the class logits are; with the hold's weight and floor where `held` (per leading
        index, or one for all)."""
        k = belief.shape[-1]
        held = np.asarray(held, dtype=bool)[..., None, None]
        weight = np.where(held, self.hold_weight, self.weight)
        floor = np.where(held, self.hold_floor, self.floor)
        out = weight * np.log((1.0 - floor) * belief + floor / k)
        return out.reshape(*belief.shape[:-2], -1)

    def to_manifest(self, threshold: float, **figures: float) -> Dict[str, Any]:
        return {**asdict(self), "threshold": float(threshold), **figures}


def belief_of(fused_logits: np.ndarray, groups: int) -> np.ndarray:
    """A decision's class probabilities per group (..., groups, K), from its flat fused logits."""
    z = np.asarray(fused_logits, dtype=np.float64).reshape(*np.shape(fused_logits)[:-1], groups, -1)
    p = np.exp(z - z.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def turned(belief: np.ndarray, turn_sectors: Union[float, np.ndarray]) -> np.ndarray:
    """Sector beliefs (..., S, K), sectors left to right, after the robot turned left by
    `turn_sectors` sector widths (per leading index, or one for all): what sector j sees now was
    seen at j - turn, taken linearly between neighbours; sectors that see what lay outside the
    view get the uniform belief (no prior)."""
    b = np.asarray(belief, dtype=np.float64)
    s, k = b.shape[-2], b.shape[-1]
    turn = np.broadcast_to(np.asarray(turn_sectors, dtype=np.float64), b.shape[:-2])[..., None]
    src = np.arange(s) - turn                                       # (..., S) fractional source sector
    lo = np.floor(src)
    frac = (src - lo)[..., None]
    padded = np.concatenate([np.full(b.shape[:-2] + (1, k), 1.0 / k), b, np.full(b.shape[:-2] + (1, k), 1.0 / k)], -2)

    def at(i: np.ndarray) -> np.ndarray:
        idx = np.where((i >= 0) & (i < s), i + 1, 0).astype(np.int64)     # outside the view: the uniform row
        return np.take_along_axis(padded, idx[..., None], -2)

    return (1.0 - frac) * at(lo) + frac * at(lo + 1)


def wrap_angle(a: Union[float, np.ndarray]) -> np.ndarray:
    """Angles in (-pi, pi]."""
    return np.pi - np.mod(np.pi - np.asarray(a, dtype=np.float64), 2 * np.pi)


class CarriedBelief:
    """One stream's belief between its decisions, as a runtime carries it: `keep` a decision's
    fused logits when it ends, `set_heading` and `set_speed` as odometry comes, and take
    `log_prior` at the next decision's first step (None where there is none, or it is older than
    `max_gap_us`)."""

    def __init__(self, prior: TemporalPrior, groups: int, sector_rad: float = 0.0) -> None:
        self.prior = prior
        self.groups = groups
        self.follows = prior.follow_heading and groups > 1 and sector_rad > 0
        self.sector_rad = sector_rad
        self.heading: Optional[float] = None      # the newest odometry heading
        self._belief: Optional[np.ndarray] = None
        self._end_us = 0
        self._yaw: Optional[float] = None         # the heading when the belief was kept
        self.speed = math.nan                     # the newest odometry forward speed (m/s)
        self._speed = math.nan                    # the speed when the belief was kept
        self.turned = 0                           # priors turned with the robot
        self.held = 0                             # priors that held their ranges (the robot did not drive)

    def set_heading(self, yaw_rad: float) -> bool:
        """The robot's heading (rad, any fixed frame); non-finite values are refused (False)."""
        if not math.isfinite(yaw_rad):
            return False
        self.heading = float(yaw_rad)
        return True

    def set_speed(self, forward_mps: float) -> bool:
        """The robot's forward speed (m/s); non-finite values are refused (False)."""
        if not math.isfinite(forward_mps):
            return False
        self.speed = float(forward_mps)
        return True

    def forget_odometry(self) -> None:
        """Odometry went silent: the heading and speed are unknown until it comes again, so the
        next priors are neither turned nor held (a belief kept meanwhile is never turned)."""
        self.heading = None
        self.speed = math.nan

    def keep(self, fused_logits: np.ndarray, end_us: int) -> None:
        """A decision's fused class logits, as it ends at `end_us`, at the heading known then."""
        self._belief = belief_of(fused_logits, self.groups)
        self._end_us = end_us
        self._yaw = self.heading
        self._speed = self.speed

    def forget(self) -> None:
        self._belief = None

    def log_prior(self, start_us: int) -> Optional[np.ndarray]:
        """The weighted log prior for a decision whose first step begins at `start_us`."""
        if self._belief is None or start_us - self._end_us > self.prior.max_gap_us:
            return None
        belief = self._belief
        if self.follows and self.heading is not None and self._yaw is not None:
            belief = turned(belief, float(wrap_angle(self.heading - self._yaw)) / self.sector_rad)
            self.turned += 1
        held = bool(self.prior.holds(self._speed, self.speed))
        self.held += held
        return self.prior.log_belief(belief, held)


class OdometrySpeed:
    """The forward speed the hold judges by: the larger of the twist's and the one at which the
    position moved over the last `horizon_s`, so that an odometry source which leaves its twist at
    zero never makes a driving robot look as if it stood (a noisy position only ever stops the
    hold)."""

    def __init__(self, horizon_s: float = 0.1) -> None:
        self.horizon_s = horizon_s
        self._track: Deque[Tuple[float, float, float]] = deque()     # (t s, x, y)

    def update(self, t_s: float, x: float, y: float, twist_mps: float) -> float:
        """The speed (m/s) at time `t_s` (any clock, not going back), position `x`, `y` (m) and the
        twist's forward speed; NaN where the twist or the position is not finite."""
        if not all(math.isfinite(v) for v in (t_s, x, y, twist_mps)):
            return math.nan
        while self._track and self._track[-1][0] > t_s:       # the clock went back: start afresh
            self._track.clear()
        self._track.append((t_s, x, y))
        while len(self._track) > 2 and t_s - self._track[1][0] >= self.horizon_s:
            self._track.popleft()
        t0, x0, y0 = self._track[0]
        moved = math.hypot(x - x0, y - y0) / (t_s - t0) if t_s > t0 else 0.0
        return max(abs(twist_mps), moved)


def exit_heading(yaw_start: np.ndarray, yaw_end: np.ndarray, steps: np.ndarray, t: int) -> np.ndarray:
    """The robot's heading when a decision exits after `steps` of a window of `t` steps, over which
    it turned from `yaw_start` to `yaw_end` (taken linearly; the shorter way round)."""
    return yaw_start + wrap_angle(yaw_end - yaw_start) * steps / t


def exit_speed(speed_start: np.ndarray, speed_end: np.ndarray, steps: np.ndarray, t: int) -> np.ndarray:
    """The robot's forward speed when a decision exits after `steps` of a window of `t` steps, over
    which it went from `speed_start` to `speed_end` (taken linearly)."""
    return speed_start + (speed_end - speed_start) * steps / t


def prior_of(manifest: Dict[str, Any]) -> Optional[TemporalPrior]:
    """The temporal prior a model was calibrated with (manifest early_exit.prior), else None."""
    d = manifest.get("early_exit", {}).get("prior")
    if not d:
        return None
    # a manifest from before the belief followed the heading, or held while the robot did not
    # drive, was calibrated without it
    return TemporalPrior(float(d["weight"]), float(d["floor"]), int(d["max_gap_us"]), bool(d.get("follow_heading")),
                         float(d.get("hold_speed_mps", 0.0)), float(d.get("hold_weight", d["weight"])),
                         float(d.get("hold_floor", d["floor"])))


def exit_threshold(manifest: Dict[str, Any], temporal_prior: bool = True) -> float:
    """The calibrated confidence threshold of a model run with its temporal prior (where it has
    one and `temporal_prior`) or without."""
    ee = manifest["early_exit"]
    if temporal_prior and ee.get("prior"):
        return float(ee["prior"]["threshold"])
    return float(ee["threshold"])


def decision_chains(meta: np.ndarray, window_us: int) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Samples of a dataset as a robot's runs of consecutive decisions, and the gap before each.

    Per (seed, robot) (meta columns: seed or recording, robot, t_end_us), in time order, a sample
    joins the first chain whose last window ended before its own began (window `window_us`):
    samples 50 ms apart with 96 ms windows make two interleaved chains per robot, decisions
    100 ms apart. The gap is the time from the predecessor's end to the decision's first step
    (infinite for a chain's first)."""
    meta = np.asarray(meta)
    order = np.lexsort((meta[:, 2], meta[:, 1], meta[:, 0]))
    chains: List[List[int]] = []
    per_robot: Dict[tuple, List[int]] = {}
    for i in order:
        t = meta[i, 2]
        mine = per_robot.setdefault((meta[i, 0], meta[i, 1]), [])
        for c in mine:
            if meta[chains[c][-1], 2] <= t - window_us:
                chains[c].append(int(i))
                break
        else:
            mine.append(len(chains))
            chains.append([int(i)])
    out = [np.asarray(c) for c in chains]
    gaps = [np.concatenate([[np.inf], np.diff(meta[c, 2]) - window_us]) for c in out]
    return out, gaps


def exit_with_prior(step_logits: np.ndarray, chains: List[np.ndarray], gaps_us: List[np.ndarray], threshold: float,
                    prior: TemporalPrior, measure: Measure = "max_softmax", groups: int = 1,
                    t_max: Optional[int] = None, headings: Optional[np.ndarray] = None,
                    sector_rad: float = 0.0, speeds: Optional[np.ndarray] = None) -> ExitResult:
    """Where each sample exits with the temporal prior, each chain's decisions taken in order
    (step_logits: (T, N, C) class logits; chains and gaps as `decision_chains` gives them; a gap
    over `max_gap_us` drops the prior). With `headings` ((N, 2): the robot's yaw at each window's
    start and end, NaN where unknown) and sectors `sector_rad` wide, a prior that follows the
    heading is turned by the robot's turn from the predecessor's exit (its yaw taken linearly
    within its window) to this window's start. With `speeds` ((N, 2): the robot's forward speed at
    each window's start and end), a belief holds its ranges where the robot's speed at the
    predecessor's exit (taken linearly within its window) and at this window's start are both
    below the prior's `hold_speed_mps`."""
    T = step_logits.shape[0] if t_max is None else min(t_max, step_logits.shape[0])
    N, C = step_logits.shape[1], step_logits.shape[2]
    pred = np.zeros((N, groups) if groups > 1 else (N,), dtype=np.int64)
    steps = np.zeros(N, dtype=np.int64)
    conf_out = np.zeros(N)
    length = max((len(c) for c in chains), default=0)
    table = np.full((len(chains), length), -1, dtype=np.int64)
    gap = np.full((len(chains), length), np.inf)
    for j, c in enumerate(chains):
        table[j, :len(c)] = c
        gap[j, :len(c)] = gaps_us[j]
    follow = prior.follow_heading and headings is not None and sector_rad > 0 and groups > 1
    belief = np.full((len(chains), groups, C // groups), 1.0 / (C // groups))
    belief_yaw = np.full(len(chains), np.nan)          # the robot's heading at each chain's last exit
    belief_speed = np.full(len(chains), np.nan)        # ... and its forward speed then
    for pos in range(length):
        live = table[:, pos] >= 0
        idx = table[live, pos]
        b = belief[live]
        if follow:
            turn = wrap_angle(headings[idx, 0] - belief_yaw[live]) / sector_rad
            b = turned(b, np.nan_to_num(turn, nan=0.0))
        held = prior.holds(belief_speed[live], speeds[idx, 0]) if speeds is not None else False
        b = np.where((gap[live, pos] <= prior.max_gap_us)[:, None], prior.log_belief(b, held), 0.0)
        fused = step_logits[:T, idx] + b[None]
        conf = confidence(fused, measure, groups)                 # (T, n)
        hit = conf >= threshold
        hit[-1] = True
        first = hit.argmax(0)
        n = np.arange(len(idx))
        at_exit = fused[first, n]
        pred[idx] = predict(at_exit, groups)
        steps[idx] = first + 1
        conf_out[idx] = conf[first, n]
        belief[live] = belief_of(at_exit, groups)
        if follow:
            belief_yaw[live] = exit_heading(headings[idx, 0], headings[idx, 1], first + 1, step_logits.shape[0])
        if speeds is not None:
            belief_speed[live] = exit_speed(speeds[idx, 0], speeds[idx, 1], first + 1, step_logits.shape[0])
    return ExitResult(pred, steps, conf_out)


@dataclass
class PriorCalibration:
    threshold: float
    accuracy_full: float          # one window, all T steps, no prior: the reference
    accuracy_exit: float          # with the prior, at the calibrated threshold
    accuracy_full_with_prior: float
    mean_steps: float


def calibrate_with_prior(step_logits: np.ndarray, labels: np.ndarray, chains: List[np.ndarray],
                         gaps_us: List[np.ndarray], prior: TemporalPrior, max_loss: float = 0.01,
                         measure: Measure = "max_softmax", groups: int = 1, iterations: int = 12,
                         headings: Optional[np.ndarray] = None, sector_rad: float = 0.0,
                         speeds: Optional[np.ndarray] = None) -> PriorCalibration:
    """Lowest threshold (to 1/2^iterations of the range, by bisection: exits depend on the chain
    before, so each candidate is a full pass) whose exit accuracy with the prior stays within
    `max_loss` of a single window's accuracy after all T steps. Bisection assumes the accuracy
    does not fall as the threshold rises (more steps), as on every model measured; where no
    threshold meets the target, the one returned is above 1: never exit early."""
    acc_full = float((predict(step_logits[-1], groups) == labels).mean())

    def accuracy(th: float) -> ExitResult:
        return exit_with_prior(step_logits, chains, gaps_us, th, prior, measure, groups,
                               headings=headings, sector_rad=sector_rad, speeds=speeds)

    lo, hi = 0.0, 1.0 + 1e-9
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if float((accuracy(mid).prediction == labels).mean()) >= acc_full - max_loss - 1e-12:
            hi = mid
        else:
            lo = mid
    r = accuracy(hi)
    full = accuracy(1.0 + 1e-9)
    return PriorCalibration(float(hi), acc_full, float((r.prediction == labels).mean()),
                            float((full.prediction == labels).mean()), float(r.steps.mean()))

