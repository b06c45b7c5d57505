"""Inference back ends behind one stepping interface (`reset`, `step`, `run_until_exit`).

torch: `snn_autonomy.perception.runtime.Stepper`; onnxruntime: `onnx_backend.OrtStepper`.
`make_stepper(name, model_file)` picks one by name.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple

BACKENDS = ("torch", "onnxruntime")


def make_stepper(name: str, model_file: Path, **options) -> Tuple[object, Dict]:
    """(stepper, manifest) of the model in `model_file` on back end `name`.

    Options of onnxruntime: providers (list), threads (int), int8 (bool)."""
    from ..perception.model_io import load_model

    model, manifest = load_model(model_file)
    if name == "torch":
        from ..perception.runtime import Stepper

        return Stepper(model), manifest
    if name == "onnxruntime":
        from .onnx_backend import OrtStepper

        return OrtStepper.from_model(model, **options), manifest
    raise ValueError(f"unknown back end {name!r}; available: {', '.join(BACKENDS)}")
