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

The prior does not know the robot turned: a turn of one sector (10 degrees) within a decision's
gap puts the belief on the neighbouring bearing, which the floor lets the new evidence overrule.

The threshold calibrated with a prior (`calibrate_with_prior`) is its own: exits are judged on
chains of consecutive, non-overlapping decisions of one robot (`decision_chains`), against the
accuracy of a single window run to T_max (the figure the plain early exit is held to as well).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Tuple

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

    def __post_init__(self) -> None:
        if not (0.0 <= self.weight <= 1.0 and 0.0 < self.floor <= 1.0 and self.max_gap_us >= 0):
            raise ValueError(f"temporal prior needs weight in [0, 1], floor in (0, 1], max_gap_us >= 0: {self}")

    def log_belief(self, fused_logits: np.ndarray, groups: int) -> np.ndarray:
        """weight * log of the transitioned belief of a decision's fused class logits (flat, as they are)."""
        z = np.asarray(fused_logits, dtype=np.float64).reshape(*np.shape(fused_logits)[:-1], groups, -1)
        p = np.exp(z - z.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        k = p.shape[-1]
        return (self.weight * np.log((1.0 - self.floor) * p + self.floor / k)).reshape(np.shape(fused_logits))

    def to_manifest(self, threshold: float, **figures: float) -> Dict[str, Any]:
        return {**asdict(self), "threshold": float(threshold), **figures}


def prior_of(manifest: Dict[str, Any]) -> Optional[TemporalPrior]:
    """The temporal prior a model was calibrated with (manifest early_exit.prior), else None."""
    d = manifest.get("early_exit", {}).get("prior")
    if not d:
        return None
    return TemporalPrior(float(d["weight"]), float(d["floor"]), int(d["max_gap_us"]))


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
                    t_max: Optional[int] = None) -> ExitResult:
    """Where each sample exits with the temporal prior, each chain's decisions taken in order
    (step_logits: (T, N, C) class logits; chains and gaps as `decision_chains` gives them; a gap
    over `max_gap_us` drops the prior)."""
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
    belief = np.zeros((len(chains), C))
    for pos in range(length):
        live = table[:, pos] >= 0
        idx = table[live, pos]
        b = np.where((gap[live, pos] <= prior.max_gap_us)[:, None], belief[live], 0.0)
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
        belief[live] = prior.log_belief(at_exit, groups)
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
                         measure: Measure = "max_softmax", groups: int = 1, iterations: int = 12) -> PriorCalibration:
    """Lowest threshold (to 1/2^iterations of the range, by bisection: exits depend on the chain
    before, so each candidate is a full pass) whose exit accuracy with the prior stays within
    `max_loss` of a single window's accuracy after all T steps. Bisection assumes the accuracy
    does not fall as the threshold rises (more steps), as on every model measured; where no
    threshold meets the target, the one returned is above 1: never exit early."""
    acc_full = float((predict(step_logits[-1], groups) == labels).mean())

    def accuracy(th: float) -> ExitResult:
        return exit_with_prior(step_logits, chains, gaps_us, th, prior, measure, groups)

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

