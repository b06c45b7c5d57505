"""Exported ONNX step graphs kept on disk between runs (`<cache root>/onnx`, see paths.cache_root).

Exporting the step graphs takes torch and a few seconds at every start of a perception node;
the graphs depend only on the model's weights and on the code that exports them. So an entry
is keyed by the weights' sha256 (from the model's manifest, checked against the file before
anything is loaded), the graph variant (event-driven or dense, int8, dense fallback) and a
fingerprint of the exporter: its source and the model definition it exports, and the torch,
onnx and onnxruntime versions. Any change to one of them makes a new key; old entries are
never read again and can be deleted at any time.

Entries are written to a temporary name and renamed, so a reader never sees half an entry.
A cache that cannot be written (a read-only home, a full disk) is not an error: the node
exports as before. An entry that ONNX Runtime cannot read is dropped and exported afresh.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Optional

from ..paths import PACKAGE_DIR, cache_root
from .ort_stepper import OrtGraphs

# the code whose output is cached: the exporter and the model definition it traces
_EXPORTER_SOURCES = (PACKAGE_DIR / "backends" / "onnx_backend.py", PACKAGE_DIR / "perception" / "model.py")
_VERSIONED = ("torch", "onnx", "onnxruntime")


def exporter_fingerprint() -> str:
    h = hashlib.sha256()
    for path in _EXPORTER_SOURCES:
        h.update(path.read_bytes())
    for dist in _VERSIONED:
        try:
            h.update(f"{dist}=={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{dist} missing".encode())
    return h.hexdigest()


class GraphCache:
    def __init__(self, root: Optional[Path] = None) -> None:
        self.root = Path(root) if root is not None else cache_root() / "onnx"
        self._fingerprint: Optional[str] = None

    def key(self, weights_sha256: str, sparse: bool, int8: bool, dense: bool) -> str:
        if self._fingerprint is None:
            self._fingerprint = exporter_fingerprint()
        variant = f"sparse={sparse},int8={int8},dense={dense}"
        return hashlib.sha256(f"{weights_sha256}|{variant}|{self._fingerprint}".encode()).hexdigest()[:32]

    def _paths(self, key: str):
        return self.root / f"{key}.json", self.root / f"{key}.step.onnx", self.root / f"{key}.dense.onnx"

    def load(self, key: str) -> Optional[OrtGraphs]:
        meta_path, step_path, dense_path = self._paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            return OrtGraphs(step=step_path.read_bytes(),
                             dense=dense_path.read_bytes() if meta["dense"] else None,
                             state_shapes={k: tuple(v) for k, v in meta["state_shapes"]},
                             neurons=int(meta["neurons"]), name=str(meta["name"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, key: str, graphs: OrtGraphs) -> bool:
        """Write an entry (the metadata last, so that a complete entry is the only one read);
        False when the cache cannot be written."""
        meta_path, step_path, dense_path = self._paths(key)
        meta = {"dense": graphs.dense is not None, "neurons": graphs.neurons, "name": graphs.name,
                "state_shapes": [[k, list(v)] for k, v in graphs.state_shapes.items()]}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _write(step_path, graphs.step)
            if graphs.dense is not None:
                _write(dense_path, graphs.dense)
            _write(meta_path, json.dumps(meta).encode())
            return True
        except OSError:
            return False

    def drop(self, key: str) -> None:
        for path in self._paths(key):
            try:
                path.unlink()
            except OSError:
                pass


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
