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

Grouped outputs (`groups` > 1: one softmax of K range classes per sector of the field of
view): the logits are (..., groups x K), predictions and labels (N, groups), accuracy is the
fraction of sectors right, the confidence is the least certain sector's
(`backends.base.confidence`), and the oracle waits until every sector is and stays right.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

# the measures live with the back ends, whose early-exit loop needs them too; public here as well
from ..backends.base import Measure, confidence
from ..backends.base import confidence_of as confidence_of, softmax as softmax


def predict(class_logits: np.ndarray, groups: int = 1) -> np.ndarray:
    """Class per sample (..., ) of (..., C) logits, or per sample and group (..., groups)."""
    if groups > 1:
        return class_logits.reshape(*class_logits.shape[:-1], groups, -1).argmax(-1)
    return class_logits.argmax(-1)


@dataclass
class ExitResult:
    prediction: np.ndarray   # (N,) class at exit, (N, groups) for grouped outputs
    steps: np.ndarray        # (N,) steps used (1..t_max)
    confidence: np.ndarray   # (N,) confidence at exit


def exit_at(step_logits: np.ndarray, threshold: float, t_max: Optional[int] = None,
            measure: Measure = "max_softmax", groups: int = 1) -> ExitResult:
    """Where each sample exits, from its per-step class logits (T, N, C)."""
    T = step_logits.shape[0] if t_max is None else min(t_max, step_logits.shape[0])
    return _exit(step_logits[:T], confidence(step_logits[:T], measure, groups), threshold, groups)


def _exit(step_logits: np.ndarray, conf: np.ndarray, threshold: float, groups: int) -> ExitResult:
    """exit_at with the confidence (T, N) already computed (a sweep computes it once)."""
    hit = conf >= threshold
    hit[-1] = True
    first = hit.argmax(0)                                  # first step index reaching the threshold
    n = np.arange(step_logits.shape[1])
    return ExitResult(predict(step_logits[first, n], groups), first + 1, conf[first, n])


def oracle_steps(step_logits: np.ndarray, labels: np.ndarray, groups: int = 1) -> np.ndarray:
    """Earliest step from which the prediction is and stays correct (t_max when never)."""
    correct = predict(step_logits, groups) == labels[None]  # (T, N) or (T, N, groups)
    if groups > 1:
        correct = correct.all(-1)
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
          measure: Measure = "max_softmax", groups: int = 1) -> List[Dict[str, float]]:
    """Accuracy and mean steps at each threshold."""
    out = []
    conf = confidence(step_logits, measure, groups)
    for th in thresholds:
        r = _exit(step_logits, conf, float(th), groups)
        out.append({"threshold": float(th), "accuracy": float((r.prediction == labels).mean()),
                    "mean_steps": float(r.steps.mean())})
    return out


def calibrate(step_logits: np.ndarray, labels: np.ndarray, max_loss: float = 0.01,
              measure: Measure = "max_softmax", groups: int = 1) -> Calibration:
    """Lowest threshold with accuracy_exit >= accuracy_full - max_loss (fractions, not points)."""
    T = step_logits.shape[0]
    acc_full = float((predict(step_logits[-1], groups) == labels).mean())
    conf = confidence(step_logits, measure, groups)
    candidates = np.unique(np.concatenate([np.quantile(conf, np.linspace(0, 1, 401)), [1.0 + 1e-9]]))
    best = None
    for th in candidates:  # ascending: the first that qualifies is the lowest
        r = _exit(step_logits, conf, float(th), groups)
        acc = float((r.prediction == labels).mean())
        if acc >= acc_full - max_loss - 1e-12:
            best = (float(th), acc, float(r.steps.mean()))
            break
    if best is None:  # unreachable: threshold above 1 always exits at t_max
        best = (1.0 + 1e-9, acc_full, float(T))
    return Calibration(best[0], acc_full, best[1], best[2], T, measure, max_loss)
