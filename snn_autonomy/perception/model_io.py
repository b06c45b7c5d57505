"""Model files: weights in .npz (no pickle) beside a JSON manifest.

The manifest names the architecture and its configuration, the input geometry,
the classes, T_max, the calibrated early-exit threshold, measured metrics, how
the model was trained, and the sha256 and shape of every weight tensor. Loading
refuses a file whose hash or shapes do not match the manifest. Reading a manifest needs no
torch (the attention node reads one and starts in a fraction of the time); loading a model does.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Tuple

import numpy as np

from .errors import ModelFileError

if TYPE_CHECKING:
    from .model import ConvSNN

FORMAT = "snn_autonomy.perception/1"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_model(model: "ConvSNN", weights: Path, manifest: Dict[str, Any]) -> Dict[str, Any]:
    """Write `weights` (.npz) and its manifest (.json beside it); returns the manifest."""
    weights = Path(weights)
    arrays = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(buf.getvalue())
    full = {
        "format": FORMAT,
        **manifest,
        "architecture": {"name": "ConvSNN", **model.cfg.as_dict()},
        "weights": {"file": weights.name, "sha256": sha256_file(weights),
                    "tensors": {k: list(v.shape) for k, v in arrays.items()}},
        "dense_macs_per_step": model.dense_macs_per_step(),
        "neurons": model.neurons(),
    }
    write_manifest(weights, full)
    return full


def write_manifest(weights: Path, manifest: Dict[str, Any]) -> None:
    manifest_path(weights).write_text(json.dumps(manifest, indent=2, default=_jsonable) + "\n")


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_manifest(weights: Path) -> Dict[str, Any]:
    path = manifest_path(weights)
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelFileError(f"{weights}: manifest {path.name} is missing") from exc
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def verified_manifest(weights: Path) -> Dict[str, Any]:
    """The manifest of a model file whose weights match its sha256 (ModelFileError otherwise)."""
    weights = Path(weights)
    if not weights.exists():
        raise ModelFileError(f"model file {weights} does not exist")
    manifest = read_manifest(weights)
    want = manifest.get("weights", {}).get("sha256")
    got = sha256_file(weights)
    if got != want:
        raise ModelFileError(f"{weights}: sha256 {got[:16]}... does not match the manifest's {str(want)[:16]}...; "
                             "the file is corrupt or not the one the manifest describes")
    return manifest


def load_model(weights: Path) -> Tuple["ConvSNN", Dict[str, Any]]:
    """Load and verify a model; raises ModelFileError on any mismatch."""
    import torch

    from .model import ConvSNN, ModelConfig

    weights = Path(weights)
    manifest = verified_manifest(weights)
    arch = dict(manifest["architecture"])
    if arch.pop("name", None) != "ConvSNN":
        raise ModelFileError(f"{weights}: unknown architecture {manifest['architecture'].get('name')!r}")
    try:
        cfg = ModelConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()})
    except TypeError as exc:
        raise ModelFileError(f"{weights}: architecture does not match this version: {exc}") from exc
    model = ConvSNN(cfg)
    try:
        with np.load(weights, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise ModelFileError(f"{weights}: unreadable weights ({exc})") from exc
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    shapes = {k: tuple(v.shape) for k, v in arrays.items()}
    if shapes != expected or {k: tuple(v) for k, v in manifest["weights"]["tensors"].items()} != expected:
        raise ModelFileError(f"{weights}: tensor shapes {shapes} do not match the architecture {expected}")
    model.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()})
    model.eval()
    return model, manifest
