"""`snn-autonomy eval`: accuracy with and without early exit, the oracle bound, and the
accuracy / mean-steps curve over a sweep of thresholds (PNG)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from ..paths import resolve_model
from ..sim.config import load_world_config
from .bag_train import label_bags
from .dataset import Dataset, DatasetSpec, generate, input_spec_of, split_spec
from .early_exit import sweep
from .heads import Head, check_field_of_view
from .labels import LabelConfig
from .errors import RecordingError
from .model_io import load_model
from .rig import RigConfig, load_rig
from .temporal_prior import prior_of
from .train import evaluate_logits, exit_targets, prior_metrics, step_logits


def evaluate(model_file: Optional[Path] = None, world: str = "", episodes: Optional[int] = None,
             seed: Optional[int] = None, duration_s: Optional[float] = None,
             plot: Optional[Path] = None, bags: Optional[Sequence[Path]] = None,
             rig: Optional[RigConfig] = None) -> Dict[str, Any]:
    """Evaluate a model on the test split of `world` (default: its own test split), or on every
    LiDAR-labelled sample of recordings (`bags`, with the sensor `rig`).

    `episodes` worlds (layouts) are drawn from seeds `seed`, `seed`+1, ... when given;
    otherwise the fixed test seeds are used."""
    model_file = resolve_model(model_file)
    model, manifest = load_model(model_file)
    # the model's own input (grid, bins): a model trained on another grid would not even run
    ds: DatasetSpec = split_spec("test", world, inputs=input_spec_of(manifest))
    label_cfg = LabelConfig(**manifest["labels"]) if "labels" in manifest else ds.label
    head = Head.of(manifest)
    source: Dict[str, Any] = {"world": world or "default"}
    rig = (rig or load_rig()) if bags else None
    # its sectors laid over another field of view would be scored on the wrong bearings
    check_field_of_view(head, rig.camera.hfov_deg if rig else load_world_config(world or None).camera.hfov_deg)
    if bags:
        if head.sectors is None:
            raise RecordingError(f"{model_file} is a four-class model; recordings label sector models only")
        parts, reports, camera = label_bags(bags, rig, ds.inputs, head.sectors.count, label_cfg,
                                            log=lambda s: None)
        if tuple(camera) != tuple(manifest["input"]["sensor"]):
            raise RecordingError(f"the recordings' camera is {camera[0]}x{camera[1]}, the model's "
                                 f"{manifest['input']['sensor'][0]}x{manifest['input']['sensor'][1]}: it cannot "
                                 "decide on them (train one with snn-autonomy train --bag)")
        data = Dataset.concatenate(parts)
        source = {"bags": [str(b) for b in bags], "streams": reports}
    else:
        if episodes is not None or seed is not None:
            first = 900 if seed is None else int(seed)
            ds = replace(ds, seeds=tuple(range(first, first + (episodes or len(ds.seeds)))))
        if duration_s is not None:
            ds = replace(ds, duration_s=float(duration_s))
        data = generate(ds)
        source["seeds"] = list(ds.seeds)
    logits = step_logits(model, data.x, torch.device("cpu"))
    ee = manifest["early_exit"]
    result = evaluate_logits(logits, data, ee["threshold"], label_cfg, ee["measure"], head)
    prior = prior_of(manifest)
    if prior is not None:
        result["prior"] = prior_metrics(logits, data, ee["prior"]["threshold"], ee["threshold"], prior, head,
                                        ds.inputs.bin_us * logits.shape[0], ee["measure"])
    mask, targets = exit_targets(head, data, label_cfg)
    thresholds = np.unique(np.concatenate([np.linspace(0.3, 0.95, 27), 1.0 - np.logspace(-1.5, -4, 14)]))
    curve = sweep(logits[:, mask, :-1], targets, thresholds, ee["measure"], head.groups)
    result.update({"model": str(model_file), **source,
                   "early_exit_saving": 1.0 - result["mean_steps_exit"] / result["t_max"],
                   "curve": curve})
    if plot is not None:
        _plot(curve, result, plot)
        result["plot"] = str(plot)
    return result


def _plot(curve, result: Dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot([c["mean_steps"] for c in curve], [100 * c["accuracy"] for c in curve], "o-", ms=3,
            label="confidence threshold sweep")
    ax.plot(result["mean_steps_exit"], 100 * result["accuracy_exit"], "s", ms=9,
            label=f"calibrated threshold {result['threshold']:.3f}")
    ax.plot(result["oracle_mean_steps"], 100 * result["accuracy_full"], "*", ms=13, label="oracle")
    ax.axhline(100 * result["accuracy_full"], color="grey", ls=":", label=f"all {result['t_max']} steps")
    ax.set_xlabel("mean SNN time steps per decision")
    ax.set_ylabel("accuracy (%)")
    if result["head"] == "sectors":
        ax.set_ylabel("sectors right (%)")
        title = f"{result['samples']} test samples"
    else:
        title = f"{round(result['samples'] * (1 - result['ambiguous_fraction']))} unambiguous test samples"
    where = f"{result['world']} world" if "world" in result else f"{len(result['bags'])} recording(s)"
    ax.set_title(f"Early exit, {where}: {title}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
