"""Dynamic-confidence early exit (after Li et al., "Unleashing the Potential of Spiking
Neural Networks with Dynamic Confidence", ICCV 2023).

After each step the class logits accumulated so far give a confidence; inference
stops at the first step whose confidence reaches the threshold (or at t_max).
Measures: `max_softmax` (largest class probability) and `entropy`
(1 - H(p) / log C, 1 for a one-hot p, 0 for a uniform one); defined in `backends.base`.
The threshold is calibrated on validation data: the lowest one whose exit accuracy
stays within `max_loss` of the accuracy after all t_max steps. The oracle exits at
the earliest step from which the running prediction is, and stays, correct: no
confidence rule can do better on that sample.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

# the measures live with the back ends, whose early-exit loop needs them too; public here as well
from ..backends.base import Measure, confidence
from ..backends.base import confidence_of as confidence_of, softmax as softmax


@dataclass
class ExitResult:
    prediction: np.ndarray   # (N,) class at exit
    steps: np.ndarray        # (N,) steps used (1..t_max)
    confidence: np.ndarray   # (N,) confidence at exit


def exit_at(step_logits: np.ndarray, threshold: float, t_max: Optional[int] = None,
            measure: Measure = "max_softmax") -> ExitResult:
    """Where each sample exits, from its per-step class logits (T, N, C)."""
    T = step_logits.shape[0] if t_max is None else min(t_max, step_logits.shape[0])
    conf = confidence(step_logits[:T], measure)            # (T, N)
    hit = conf >= threshold
    hit[T - 1] = True
    first = hit.argmax(0)                                  # first step index reaching the threshold
    n = np.arange(step_logits.shape[1])
    return ExitResult(step_logits[first, n].argmax(-1), first + 1, conf[first, n])


def oracle_steps(step_logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Earliest step from which the prediction is and stays correct (t_max when never)."""
    correct = step_logits.argmax(-1) == labels[None]       # (T, N)
    T = correct.shape[0]
    # stays correct from step t on: reverse cumulative AND
    stays = np.flip(np.logical_and.accumulate(np.flip(correct, 0), 0), 0)
    first = np.where(stays.any(0), stays.argmax(0), T - 1)
    return first + 1


@dataclass
class Calibration:
    threshold: float
    accuracy_full: float
    accuracy_exit: float
    mean_steps: float
    t_max: int
    measure: str
    max_loss: float


def sweep(step_logits: np.ndarray, labels: np.ndarray, thresholds: np.ndarray,
          measure: Measure = "max_softmax") -> List[Dict[str, float]]:
    """Accuracy and mean steps at each threshold."""
    out = []
    for th in thresholds:
        r = exit_at(step_logits, float(th), measure=measure)
        out.append({"threshold": float(th), "accuracy": float((r.prediction == labels).mean()),
                    "mean_steps": float(r.steps.mean())})
    return out


def calibrate(step_logits: np.ndarray, labels: np.ndarray, max_loss: float = 0.01,
              measure: Measure = "max_softmax") -> Calibration:
    """Lowest threshold with accuracy_exit >= accuracy_full - max_loss (fractions, not points)."""
    T = step_logits.shape[0]
    acc_full = float((step_logits[-1].argmax(-1) == labels).mean())
    conf = confidence(step_logits, measure)
    candidates = np.unique(np.concatenate([np.quantile(conf, np.linspace(0, 1, 401)), [1.0 + 1e-9]]))
    best = None
    for th in candidates:  # ascending: the first that qualifies is the lowest
        r = exit_at(step_logits, float(th), measure=measure)
        acc = float((r.prediction == labels).mean())
        if acc >= acc_full - max_loss - 1e-12:
            best = (float(th), acc, float(r.steps.mean()))
            break
    if best is None:  # unreachable: threshold above 1 always exits at t_max
        best = (1.0 + 1e-9, acc_full, float(T))
    return Calibration(best[0], acc_full, best[1], best[2], T, measure, max_loss)
