"""Inference back ends behind one stepping interface (`reset`, `step`, `run_until_exit`).

torch: `snn_autonomy.perception.runtime.Stepper`; onnxruntime: `onnx_backend.OrtStepper`;
lava: `lava_backend.LavaStepper` (Lava 0.10 in its own Python 3.10 environment, a worker process).
`make_stepper(name, model_file)` picks one by name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

BACKENDS = ("torch", "onnxruntime", "lava")


def make_stepper(name: str, model_file: Path, **options) -> Tuple[object, Dict]:
    """(stepper, manifest) of the model in `model_file` on back end `name`.

    Options of onnxruntime: providers (list), threads (int), int8 (bool), sparse (bool or None: the
    event-driven graph where it is exact, i.e. one thread on the CPU provider; else the dense one),
    dense_fallback (bool, default true: the event-driven graph hands busy frames to the dense one).
    Options of lava: tag ("floating_pt" or "fixed_pt"), max_steps (int, default the model's t_max),
    taps ("relay" or "delaydense"), timeout_s (float, per request), python (the Lava interpreter)."""
    from ..perception.model_io import load_model

    model, manifest = load_model(model_file)
    if name == "torch":
        from ..perception.runtime import Stepper

        return Stepper(model), manifest
    if name == "onnxruntime":
        from .onnx_backend import OrtStepper

        return OrtStepper.from_model(model, **options), manifest
    if name == "lava":
        from .lava_backend import LavaStepper

        return LavaStepper.from_model(model, manifest, **options), manifest
    raise ValueError(f"unknown back end {name!r}; available: {', '.join(BACKENDS)}")
