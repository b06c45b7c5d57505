"""Inference back ends behind one stepping interface (`base.Stepper`: `reset`, `step`, `run_until_exit`).

torch: `torch_backend.TorchStepper`; onnxruntime: `onnx_backend.OrtStepper`; lava:
`lava_backend.LavaStepper` (Lava 0.10 in its own Python 3.10 environment, a worker process).
`make_stepper(name, model, manifest)` picks one by name for a loaded model. Back ends take the
model (a perception ConvSNN) as an argument and import nothing from the perception package.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Union

from ..config import ConfigError
from .base import Stepper, output_groups

if TYPE_CHECKING:
    from ..perception.model import ConvSNN

BACKENDS = ("torch", "onnxruntime", "lava")


def make_stepper(name: str, model: Union[ConvSNN, Callable[[], ConvSNN]], manifest: Dict[str, Any],
                 **options) -> Stepper:
    """A stepper of `model` (with its `manifest`) on back end `name`. `model` may also be a
    function that loads it: onnxruntime calls it only when the model's exported graphs are not
    in the graph cache (graph_cache.py), so that a start from the cache needs no torch.

    Options of onnxruntime: providers (list), threads (int), int8 (bool), sparse (bool or None: the
    event-driven graph where it is exact, i.e. one thread on the CPU provider; else the dense one),
    dense_fallback (bool, default true: the event-driven graph hands busy frames to the dense one).
    Options of lava: tag ("floating_pt" or "fixed_pt"), max_steps (int, default the model's t_max),
    taps ("relay" or "delaydense"), timeout_s (float, per request), python (the Lava interpreter)."""
    stepper = _open(name, model, manifest, **options)
    stepper.groups = output_groups(manifest)
    return stepper


def _open(name: str, model, manifest: Dict[str, Any], **options) -> Stepper:
    load = model if callable(model) and not hasattr(model, "init_state") else (lambda: model)
    if name == "torch":
        from .torch_backend import TorchStepper

        return TorchStepper(load())
    if name == "onnxruntime":
        from .ort_stepper import OrtStepper

        return OrtStepper.open(manifest, load, **options)
    if name == "lava":
        from .lava_backend import LavaStepper

        return LavaStepper.from_model(load(), manifest, **options)
    raise ConfigError(f"unknown back end {name!r}; available: {', '.join(BACKENDS)}")
