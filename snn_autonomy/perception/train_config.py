"""The training recipe as configuration (no torch here: the command line reads its defaults)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Tuple

from ..config import spec


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe; the defaults are the shipped model's (`snn-autonomy train` with no options)."""
    head: Literal["sectors", "classes"] = spec("sectors", help="sectors: a range class per sector of the field of "
                                                "view; classes: the four-class task")
    epochs: int = spec(40, lo=1, hi=10_000, help="passes over the training split")
    batch_size: int = spec(512, lo=1, hi=65536, help="samples per optimiser step")
    lr: float = spec(4e-3, lo=1e-6, hi=1.0, help="Adam learning rate (cosine-annealed to 0)")
    seed: int = spec(0, lo=0, help="weight initialisation and sample order")
    approach_weight: float = spec(0.5, lo=0.0, hi=100.0, help="weight of the approaching loss")
    synops_weight: float = spec(0.0, lo=0.0, hi=100.0,
                                help="weight in the loss of the synaptic operations the spiking layers send "
                                     "per step, per 100 k of them (0 = not counted): the energy a decision "
                                     "costs, traded against its accuracy")
    delay_steps: int = spec(4, lo=0, hi=64, help="learnable synaptic delays in the fc layer, max steps (0 = off)")
    channels: Tuple[int, int] = spec((16, 32), lo=1, hi=1024, help="channels of the two convolutions")
    hidden: int = spec(128, lo=4, hi=4096, help="hidden LIF neurons")
    reset: Literal["zero", "subtract"] = spec("zero", help="LIF reset: zero (as Loihi 2 and NIR) or subtract")
    max_exit_loss: float = spec(0.01, lo=0.0, hi=1.0, help="calibration: allowed accuracy loss of early exit")
    device: str = spec("auto", help="auto (a GPU where there is one) | cpu | cuda | cuda:N")
