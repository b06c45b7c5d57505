"""`snn-autonomy train --bag`: train, or fine-tune, the perception SNN on a robot's own recordings.

Every camera of every bag (`bag_dataset.resolve_topics`) gives LiDAR-labelled samples; each
stream is cut in time into training (the first 70 %), validation (15 %) and test (the last 15 %)
blocks, so no split sees moments next to another's. Then the same training, early-exit
calibration on validation and test metrics as the simulator's data (`train`). With `--init` the
network starts from a model's weights and keeps its architecture, input grid, time steps and
range classes; the camera geometry and field of view become the recordings'.
"""
from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..config import to_dict
from .bag_dataset import dataset_from_bag, resolve_topics
from .dataset import Dataset, InputSpec, input_spec_of
from .errors import RecordingError
from .heads import Head
from .labels import LabelConfig
from .model_io import load_model
from .rig import RigConfig
from .sectors import SectorSpec
from .train import calibrate_and_test, checkpoint_of, pick_device, save_trained, trained_config, train_model
from .train_config import TrainConfig

SPLIT = (0.70, 0.85)           # time fractions where validation, then test, begin in every stream


def split_in_time(data: Dataset) -> Tuple[Dataset, Dataset, Dataset]:
    """(train, val, test) of one stream's samples, in time order."""
    order = np.argsort(data.meta[:, 2], kind="stable")
    n = len(order)
    cuts = [int(round(f * n)) for f in SPLIT]
    parts = np.split(order, cuts)
    return tuple(data.take(idx) for idx in parts)


def label_bags(bags: Sequence[Path], rig: RigConfig, inputs: InputSpec, sectors: int, label: LabelConfig,
               events: Optional[str] = None, scan: Optional[str] = None, odom: Optional[str] = None,
               log: Callable[[str], None] = print) -> Tuple[List[Dataset], List[dict], Tuple[int, int]]:
    """LiDAR-labelled samples of every camera of the bags (one Dataset each), their reports, and
    the cameras' one geometry (recordings of cameras of different sizes are refused)."""
    parts, reports, geometry = [], [], None
    for b, bag in enumerate(bags):
        for topics in resolve_topics(Path(bag), events, scan, odom):
            t0 = time.monotonic()
            data, report = dataset_from_bag(Path(bag), rig, inputs, sectors, label, topics=topics, bag_index=b)
            log(f"{bag} {topics.events}: {report.samples} samples of {report.scans} scans "
                f"({time.monotonic() - t0:.0f} s){'; dropped ' + str(report.dropped) if report.dropped else ''}")
            if geometry is not None and report.camera != geometry:
                raise RecordingError(f"{bag} {topics.events}: a {report.camera[0]}x{report.camera[1]} camera among "
                                     f"{geometry[0]}x{geometry[1]} ones; train one model per camera geometry")
            geometry = report.camera
            parts.append(data)
            reports.append(report.as_dict())
    return parts, reports, geometry


def bag_datasets(bags: Sequence[Path], rig: RigConfig, inputs: InputSpec, sectors: int, label: LabelConfig,
                 events: Optional[str] = None, scan: Optional[str] = None, odom: Optional[str] = None,
                 log: Callable[[str], None] = print) -> Tuple[Dict[str, Dataset], List[dict], Tuple[int, int]]:
    """({train, val, test}, per-stream reports, camera geometry) of the recordings."""
    parts, reports, geometry = label_bags(bags, rig, inputs, sectors, label, events, scan, odom, log)
    splits = list(zip(*(split_in_time(d) for d in parts)))
    out = {name: Dataset.concatenate(list(p)) for name, p in zip(("train", "val", "test"), splits)}
    for name, d in out.items():
        if len(d) == 0:
            raise RecordingError(f"the recordings give no {name} sample ({sum(r['samples'] for r in reports)} "
                                 "samples in all); record longer")
    return out, reports, geometry


def run_bag_training(cfg: TrainConfig, bags: Sequence[Path], out: Path, rig: RigConfig,
                     init: Optional[Path] = None, inputs: Optional[InputSpec] = None,
                     topics: Tuple[Optional[str], Optional[str], Optional[str]] = (None, None, None),
                     command: str = "", progress=None, log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Label the bags, train (from `init`'s weights when given), calibrate, test, write the model."""
    start, base = None, None
    if init is not None:
        start, base = load_model(Path(init))
        inputs = input_spec_of(base)
        spec = SectorSpec.from_manifest(base)
        if spec is None:
            raise RecordingError(f"{init} is a four-class model; recordings train sector models only")
        label = LabelConfig(**base["labels"])
        spec = spec.for_view(rig.camera.hfov_deg)
    else:
        inputs = inputs or InputSpec()
        label = LabelConfig()
        spec = SectorSpec.for_camera(rig.camera.hfov_deg)
    head = Head(spec)
    data, reports, camera = bag_datasets(bags, rig, inputs, spec.count, label, *topics, log=log)
    inputs = replace(inputs, sensor=tuple(camera))
    log(f"train {len(data['train'])}, val {len(data['val'])}, test {len(data['test'])} samples")
    t0 = time.monotonic()
    model, history = train_model(cfg, data["train"], data["val"], inputs, head, checkpoint=checkpoint_of(out),
                                 progress=progress, init=start)
    train_s = time.monotonic() - t0
    early_exit, test_metrics = calibrate_and_test(model, data["val"], data["test"], label, cfg.max_exit_loss,
                                                  device=pick_device(cfg.device), head=head, bin_us=inputs.bin_us)
    manifest = {
        **head.manifest(),
        "input": asdict(inputs),
        "t_max": inputs.t_max,
        "early_exit": early_exit,
        "labels": asdict(label),
        "metrics": {"test": test_metrics},
        "training": {"command": command, "config": trained_config(cfg, base), "device": str(pick_device(cfg.device)),
                     "seconds": round(train_s, 1), "history": history, "init": str(init) if init else None,
                     "rig": to_dict(rig), "bags": reports,
                     "datasets": {k: {"samples": len(v), "source": "recordings, LiDAR labels"} for k, v in data.items()}},
    }
    save_trained(model, out, manifest)
    return manifest
