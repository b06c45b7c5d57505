"""The torch back end: the model's own `step` at batch 1, state kept in the stepper."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .base import Measure, StepResult, run_until_exit

if TYPE_CHECKING:
    from ..perception.model import ConvSNN


def synaptic_ops(spikes: Sequence[torch.Tensor], fanouts: Sequence[torch.Tensor]) -> torch.Tensor:
    """Synaptic operations of one step per sample: sum over layers of spikes x fan-out.
    Input events count as spikes (an input pixel with n events drives its synapses n times)."""
    total = 0
    for s, f in zip(spikes, fanouts):
        total = total + (s * f).flatten(1).sum(1)
    return total


class TorchStepper:
    """The stepping API (see `base.Stepper`) on a ConvSNN in torch."""

    name = "torch"
    groups = 1          # make_stepper sets it from the manifest

    def __init__(self, model: ConvSNN) -> None:
        self.model = model.eval()
        self.fanouts: List[torch.Tensor] = model.fanout_maps()
        self.neurons = model.neurons()
        self.reset()

    def reset(self) -> None:
        self.state = self.model.init_state(1)

    @torch.no_grad()
    def step(self, frame: np.ndarray) -> StepResult:
        x = torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32))[None]
        logits, self.state, spikes = self.model.step(x, self.state, trace=True)
        ops = float(synaptic_ops(spikes, self.fanouts)[0])
        return StepResult(logits[0].numpy(), ops, self.neurons)

    def run_until_exit(self, frames: np.ndarray, threshold: float, t_max: Optional[int] = None,
                       measure: Measure = "max_softmax", groups: Optional[int] = None) -> Tuple[StepResult, int, float]:
        return run_until_exit(self, frames, threshold, t_max, measure, groups)
