"""Training of the perception SNN: surrogate gradients through time (BPTT).

The head (`heads.Head`) says what the class logits are: one softmax of range classes per
sector of the field of view (the default, `--head sectors`) or the four-class task
(`--head classes`). Loss: at every time step, class cross-entropy (per sector for the
sector head; class-weighted by 1/sqrt(frequency)) plus `approach_weight` x binary
cross-entropy of `approaching`, averaged over the steps, so the network learns to be right
early (what early exit cashes in). Augmentation: left-right mirroring with the targets
mirrored (sectors reversed; left/right labels swapped). Adam with cosine decay;
the epoch with the best validation accuracy at T_max is kept. Deterministic for
a seed on a given device. After training, the early-exit threshold is calibrated
on the validation split and the model is written with its manifest.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..sim.config import load_world_config
from .dataset import META_SPEED_END, META_SPEED_START, META_YAW_END, META_YAW_START, Dataset, InputSpec, generate_all, input_spec_of, split_spec
from .early_exit import calibrate, exit_at, oracle_steps, predict
from .heads import Head
from .labels import CLASSES, LabelConfig
from .model import ConvSNN, ModelConfig, make_model
from .model_io import load_model, save_model
from .sectors import SectorSpec
from .temporal_prior import TemporalPrior, calibrate_with_prior, decision_chains, exit_with_prior
from .train_config import TrainConfig


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@torch.no_grad()
def step_logits(model: ConvSNN, x: np.ndarray, device: torch.device, batch: int = 512) -> np.ndarray:
    """Per-step logits (T, N, C+1) of uint8 inputs (N, T, 2, H, W)."""
    model.eval()
    out = []
    for i in range(0, len(x), batch):
        xb = torch.from_numpy(x[i:i + batch]).to(device).float().transpose(0, 1)
        out.append(model(xb).cpu().numpy())
    return np.concatenate(out, axis=1)


def head_of(cfg: TrainConfig, sectors: int, hfov_deg: float) -> Head:
    """The head a training recipe asks for, over the data's `sectors` sectors of a camera's
    horizontal field of view `hfov_deg` (the data's ray casts span it)."""
    return Head(SectorSpec(count=sectors, hfov_deg=hfov_deg) if cfg.head == "sectors" else None)


SYNOPS_UNIT = 1e5     # synops_weight is per this many synaptic operations per step


def _loss(model: ConvSNN, xb: torch.Tensor, yb: torch.Tensor, ab: torch.Tensor, weights: torch.Tensor,
          cfg: TrainConfig, k: int, fanouts: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, float]:
    """(loss, the spiking layers' synaptic operations per step and sample). yb: (B,) or (B, S)
    targets of softmaxes of k classes."""
    logits, ops = model.forward_counting(xb.transpose(0, 1), fanouts)   # (T, B, C+1), (T, B)
    T = logits.shape[0]
    cls = logits[..., :-1].reshape(-1, k)               # (T * B * groups, k), groups fastest
    ce = F.cross_entropy(cls, yb.reshape(-1).repeat(T), weight=weights)
    bce = F.binary_cross_entropy_with_logits(logits[..., -1].reshape(-1), ab.repeat(T))
    synops = ops.mean()
    loss = ce + cfg.approach_weight * bce
    if cfg.synops_weight > 0:      # else counted for the record only, with no backward pass through it
        loss = loss + cfg.synops_weight * synops / SYNOPS_UNIT
    return loss, float(synops.detach())


def _fits_on_gpu(nbytes: int, device: torch.device) -> bool:
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < 0.5 * free


def retargeted(init: ConvSNN, logits: int, seed: int = 0) -> ConvSNN:
    """A copy of `init` for a head of `logits` classes: the same network where its readout fits;
    else its layers with a fresh readout (another camera's sector count: what the convolutions
    and the hidden layer learnt of events carries over, the readout maps it to the new sectors)."""
    if init.cfg.n_classes == logits:
        return copy.deepcopy(init)
    model = make_model(replace(init.cfg, n_classes=logits), seed=seed)
    state = model.state_dict()
    state.update({k: v for k, v in init.state_dict().items() if not k.startswith("out.")})
    model.load_state_dict(state)
    return model


def trained_config(cfg: TrainConfig, base: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """The recipe as the manifest records it: fine-tuned from the model of manifest `base`, the
    architecture trained is that model's, not the recipe's."""
    config = asdict(cfg)
    if base is not None:
        config.update({k: base["training"]["config"][k] for k in ("channels", "hidden", "delay_steps", "reset")
                       if k in base.get("training", {}).get("config", {})})
    return config


def train_model(cfg: TrainConfig, train: Dataset, val: Dataset, inputs: InputSpec, head: Head,
                checkpoint: Optional[Path] = None,
                progress: Optional[Callable[[int, int, Dict[str, float]], None]] = None,
                init: Optional[ConvSNN] = None) -> tuple:
    """Returns (best model, history list). With `init`, training starts from that model's weights
    (fine-tuning; its architecture, not the recipe's, is trained)."""
    device = pick_device(cfg.device)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    mcfg = ModelConfig(in_hw=(inputs.grid[1], inputs.grid[0]), channels=tuple(cfg.channels), hidden=cfg.hidden,
                       n_classes=head.logits, delay_steps=cfg.delay_steps, reset=cfg.reset)
    model = make_model(mcfg, seed=cfg.seed) if init is None else retargeted(init, head.logits, cfg.seed)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    fanouts = [f.to(device) for f in model.fanout_maps()]
    steps_per_epoch = math.ceil(len(train) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    k = head.classes_per_group
    targets = head.targets(train.y, train.sector_m)
    mirrored = head.mirrored(targets)
    # weight the classes of the augmented set (mirrored copies swap left and right)
    freq = np.bincount(np.concatenate([targets.ravel(), mirrored.ravel()]), minlength=k).astype(np.float64)
    weights = torch.tensor(1.0 / np.sqrt(np.maximum(freq, 1.0)), dtype=torch.float32, device=device)
    weights = weights / weights.mean()
    # On a GPU with room for it, the (sparse, uint8) training set lives on the device, so that
    # batches are gathered there instead of copied over PCIe every step.
    data_device = device if device.type == "cuda" and _fits_on_gpu(train.x.nbytes, device) else torch.device("cpu")
    x_all = torch.from_numpy(train.x).to(data_device)
    y_all = torch.from_numpy(targets).to(data_device)
    m_all = torch.from_numpy(mirrored).to(data_device)
    a_all = torch.from_numpy(train.approaching.astype(np.float32)).to(data_device)
    val_targets = head.targets(val.y, val.sector_m)
    best = (-1.0, None)
    history = []
    for epoch in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(train))
        flips = rng.random(len(train)) < 0.5
        total = total_synops = 0.0
        t0 = time.monotonic()
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            tidx = torch.from_numpy(idx).to(data_device)
            xb = x_all[tidx].to(device).float()
            ab = a_all[tidx].to(device)
            fl = torch.from_numpy(flips[idx]).to(device)
            xb = torch.where(fl[:, None, None, None, None], xb.flip(-1), xb)
            fy = fl.reshape(-1, *([1] * (y_all.dim() - 1)))
            yb = torch.where(fy, m_all[tidx].to(device), y_all[tidx].to(device))
            loss, synops = _loss(model, xb, yb, ab, weights, cfg, k, fanouts)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            total_synops += synops * len(idx)
        logits = step_logits(model, val.x, device)
        acc = float((predict(logits[-1, :, :-1], head.groups) == val_targets).mean())
        row = {"epoch": epoch + 1, "loss": total / len(train), "synops_per_step": total_synops / len(train),
               "val_accuracy": acc, "seconds": time.monotonic() - t0}
        history.append(row)
        if acc > best[0]:
            best = (acc, {k: v.detach().clone() for k, v in model.state_dict().items()})
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"epoch": epoch + 1, "model": model.state_dict(), "optimizer": opt.state_dict(),
                        "history": history}, checkpoint)
        if progress:
            progress(epoch + 1, cfg.epochs, row)
    model.load_state_dict(best[1])
    return model.cpu().eval(), history


def checkpoint_of(out: Path) -> Path:
    """Where training keeps its per-epoch state while a run for the model file `out` goes on."""
    return out.with_suffix(".ckpt")


def save_trained(model: ConvSNN, out: Path, manifest: Dict[str, Any]) -> None:
    """Write the trained model; its checkpoint, kept only while a run may be cut short, goes."""
    save_model(model, out, manifest)
    checkpoint_of(out).unlink(missing_ok=True)


def exit_targets(head: Head, data: Dataset, label_cfg: LabelConfig) -> Tuple[np.ndarray, np.ndarray]:
    """(sample mask, targets) that early exit is calibrated and swept on: every sample for the
    sector head; for the four-class head the unambiguous ones (labels.ambiguous)."""
    if head.sectors is None:
        sure = ~data.ambiguous(label_cfg)
        return sure, data.y[sure]
    return np.ones(len(data), dtype=bool), head.targets(data.y, data.sector_m)


NEAR_EDGE = 0.1   # a sector's true range within 10 % of a class edge (9 cm at 0.9 m) is "near an edge"
NOT_DRIVING_MPS = TemporalPrior.hold_speed_mps   # the figures of samples whose robot turned on the spot or stood


def evaluate_logits(logits: np.ndarray, data: Dataset, threshold: float, label_cfg: LabelConfig,
                    measure: str = "max_softmax", head: Head = Head()) -> Dict[str, Any]:
    """Metrics of per-step logits (T, N, C+1) on `data`."""
    if head.sectors is None:
        return _evaluate_classes(logits, data, threshold, label_cfg, measure)
    cls, g = logits[..., :-1], head.groups
    y = head.targets(data.y, data.sector_m)
    r = exit_at(cls, threshold, measure=measure, groups=g)
    full = predict(cls[-1], g)
    names = head.class_names()
    per_class = {name: float((full[y == k] == k).mean()) if (y == k).any() else None for k, name in enumerate(names)}
    right = full == y
    near = head.sectors.edge_gap(data.sector_m) <= NEAR_EDGE
    return {
        "head": "sectors",
        "samples": int(len(data)),
        "accuracy_full": float(right.mean()),                    # fraction of sectors right, all samples
        "accuracy_exit": float((r.prediction == y).mean()),
        "mean_steps_exit": float(r.steps.mean()),
        "t_max": int(cls.shape[0]),
        "oracle_mean_steps": float(oracle_steps(cls, y, g).mean()),
        "within_one_class_full": float((np.abs(full - y) <= 1).mean()),
        "within_one_class_exit": float((np.abs(r.prediction - y) <= 1).mean()),
        "all_sectors_right_full": float(right.all(1).mean()),
        "farther_than_true_full": float((full > y).mean()),     # the unsafe error: a sector believed freer
        # how much of the error is at the class edges, where a range error of a few percent decides
        "near_edge_fraction": float(near.mean()),
        "errors_near_edge_full": float((near & ~right).sum() / max(1, (~right).sum())),
        "accuracy_away_from_edges_full": float(right[~near].mean()) if (~near).any() else None,
        "per_class_accuracy": per_class,
        "summary_accuracy_full": float((head.summary(full, label_cfg) == data.y).mean()),
        "summary_accuracy_exit": float((head.summary(r.prediction, label_cfg) == data.y).mean()),
        "approaching_accuracy": float(((logits[-1, :, -1] > 0) == data.approaching.astype(bool)).mean()),
        "threshold": float(threshold),
        "measure": measure,
        "class_balance": {name: int(c) for name, c in zip(names, np.bincount(y.ravel(), minlength=len(names)))},
    }


def _evaluate_classes(logits: np.ndarray, data: Dataset, threshold: float, label_cfg: LabelConfig,
                      measure: str) -> Dict[str, Any]:
    """The four-class head: headline figures (accuracy_full, accuracy_exit, mean_steps_exit,
    oracle) on the samples whose label is unambiguous (labels.ambiguous); the same on all
    samples beside them (suffix _all), with the fraction of ambiguous samples."""
    cls = logits[..., :-1]
    amb = data.ambiguous(label_cfg)
    sure = ~amb
    r = exit_at(cls, threshold, measure=measure)
    full = cls[-1].argmax(-1)
    per_class = {}
    for k, name in enumerate(CLASSES):
        m = (data.y == k) & sure
        per_class[name] = float((full[m] == k).mean()) if m.any() else None
    app_pred = logits[-1, :, -1] > 0
    y = data.y
    return {
        "head": "classes",
        "samples": int(len(data)),
        "ambiguous_fraction": float(amb.mean()),
        "accuracy_full": float((full[sure] == y[sure]).mean()),
        "accuracy_exit": float((r.prediction[sure] == y[sure]).mean()),
        "mean_steps_exit": float(r.steps[sure].mean()),
        "t_max": int(cls.shape[0]),
        "oracle_mean_steps": float(oracle_steps(cls[:, sure], y[sure]).mean()),
        "per_class_accuracy": per_class,
        "accuracy_full_all": float((full == y).mean()),
        "accuracy_exit_all": float((r.prediction == y).mean()),
        "mean_steps_exit_all": float(r.steps.mean()),
        "approaching_accuracy": float((app_pred == data.approaching.astype(bool)).mean()),
        "threshold": float(threshold),
        "measure": measure,
        "class_balance": data.class_balance(),
    }


def odometry_inputs(data: Dataset, head: Head) -> Dict[str, Any]:
    """What a temporal prior that follows the robot needs of a dataset: the robot's yaw and forward
    speed at each sample's window's start and end, and the model's sector width."""
    return {"headings": data.meta[:, [META_YAW_START, META_YAW_END]],
            "speeds": data.meta[:, [META_SPEED_START, META_SPEED_END]],
            "sector_rad": head.sector_rad}


def prior_metrics(logits: np.ndarray, data: Dataset, threshold: float, plain_threshold: float, prior: TemporalPrior,
                  head: Head, window_us: int, measure: str = "max_softmax") -> Dict[str, Any]:
    """A sector model's figures with its temporal prior, over `data`'s samples taken as robots'
    runs of consecutive decisions (`temporal_prior.decision_chains`), beside those of single
    windows at the same budgets: T_max, and attention's calm, open, spin and alert caps."""
    from ..attention.policy import AttentionConfig   # the caps the robots run with (attention sits above perception)

    caps = AttentionConfig()
    cls, g = logits[..., :-1], head.groups
    y = head.targets(data.y, data.sector_m)
    chains, gaps = decision_chains(data.meta, window_us)
    odo = odometry_inputs(data, head)
    r = exit_with_prior(cls, chains, gaps, threshold, prior, measure, g, **odo)
    full = exit_with_prior(cls, chains, gaps, 1.0 + 1e-9, prior, measure, g, **odo)
    budgets = {}
    for t in sorted((set(caps.step_caps().values()) | {cls.shape[0]}) - {0}):
        capped = r if t == cls.shape[0] else exit_with_prior(cls, chains, gaps, threshold, prior, measure, g, t_max=t,
                                                             **odo)
        single = exit_at(cls, plain_threshold, t_max=t, measure=measure, groups=g)
        budgets[str(t)] = {"accuracy_with_prior": float((capped.prediction == y).mean()),
                           "mean_steps_with_prior": float(capped.steps.mean()),
                           "accuracy_single_window": float((single.prediction == y).mean()),
                           "mean_steps_single_window": float(single.steps.mean())}
    # samples whose robot was not driving when they began (turning on the spot, or standing)
    still = np.abs(np.nan_to_num(odo["speeds"][:, 0], nan=np.inf)) < NOT_DRIVING_MPS
    return {**asdict(prior), "threshold": float(threshold),
            "chains": len(chains), "headings_known": float(np.isfinite(odo["headings"]).all(1).mean()),
            "speeds_known": float(np.isfinite(odo["speeds"]).all(1).mean()),
            "mean_decision_gap_ms": float(np.mean([d for c in gaps for d in c[1:]]) / 1000),
            "accuracy_exit": float((r.prediction == y).mean()),
            "mean_steps_exit": float(r.steps.mean()),
            "accuracy_full_with_prior": float((full.prediction == y).mean()),
            "within_one_class_exit": float((np.abs(r.prediction - y) <= 1).mean()),
            "farther_than_true_exit": float((r.prediction > y).mean()),
            "not_driving": {"samples": int(still.sum()),
                            "accuracy_exit": float((r.prediction[still] == y[still]).mean()) if still.any() else None,
                            "mean_steps_exit": float(r.steps[still].mean()) if still.any() else None},
            "by_t_max": budgets}


def calibrate_and_test(model: ConvSNN, val: Dataset, test: Dataset, label_cfg: LabelConfig, max_loss: float,
                       measure: str = "max_softmax", device: Optional[torch.device] = None,
                       head: Head = Head(), bin_us: int = 0) -> Tuple[dict, dict]:
    """Calibrate the early-exit threshold on `val`, then measure on `test`: the manifest's
    `early_exit` section and its test metrics. A sector model (given the step length `bin_us`)
    is also calibrated with the temporal prior (`early_exit.prior`, `metrics.prior`)."""
    device = device or torch.device("cpu")
    model.to(device)
    val_logits = step_logits(model, val.x, device)
    test_logits = step_logits(model, test.x, device)
    model.cpu()
    mask, targets = exit_targets(head, val, label_cfg)
    cal = calibrate(val_logits[:, mask, :-1], targets, max_loss, measure, head.groups)
    metrics = evaluate_logits(test_logits, test, cal.threshold, label_cfg, measure, head)
    on = "validation split, unambiguous samples" if head.sectors is None else "validation split, all samples"
    early_exit = {"measure": cal.measure, "threshold": cal.threshold, "max_loss": cal.max_loss, "groups": head.groups,
                  "calibrated_on": on, "val_accuracy_full": cal.accuracy_full, "val_accuracy_exit": cal.accuracy_exit,
                  "val_mean_steps": cal.mean_steps}
    if head.sectors is not None and bin_us:
        prior, window_us = TemporalPrior(), bin_us * val_logits.shape[0]
        pc = calibrate_with_prior(val_logits[..., :-1], targets, *decision_chains(val.meta, window_us), prior,
                                  max_loss, measure, head.groups, **odometry_inputs(val, head))
        early_exit["prior"] = prior.to_manifest(
            pc.threshold, calibrated_on="validation split, each robot's decisions one window apart",
            val_accuracy_exit=pc.accuracy_exit, val_accuracy_full_with_prior=pc.accuracy_full_with_prior,
            val_mean_steps=pc.mean_steps)
        metrics["prior"] = prior_metrics(test_logits, test, pc.threshold, cal.threshold, prior, head, window_us,
                                         measure)
    return early_exit, metrics


def recalibrate(weights: Path, max_loss: float, measure: str = "max_softmax") -> Dict[str, Any]:
    """Re-derive a model's early-exit threshold for another allowed accuracy loss (or confidence
    measure) on its world's validation split, re-measure the test split, and rewrite the manifest.
    The weights are untouched, so their hash still matches."""
    from .model_io import write_manifest

    model, manifest = load_model(weights)
    world = manifest.get("training", {}).get("datasets", {}).get("val", {}).get("world", "default")
    world = "" if world == "default" else world
    label_cfg = LabelConfig(**manifest["labels"])
    data = generate_all({s: split_spec(s, world, inputs=input_spec_of(manifest)) for s in ("val", "test")})
    val, test = data["val"], data["test"]
    early_exit, metrics = calibrate_and_test(model, val, test, label_cfg, max_loss, measure, head=Head.of(manifest),
                                             bin_us=input_spec_of(manifest).bin_us)
    manifest["early_exit"] = early_exit
    manifest.setdefault("metrics", {})["test"] = metrics
    write_manifest(weights, manifest)
    return manifest


def run_training(cfg: TrainConfig, out: Path, world: str = "", duration_s: Optional[float] = None,
                 inputs: Optional[InputSpec] = None, command: str = "", progress=None,
                 log: Callable[[str], None] = print, init: Optional[Path] = None,
                 vary_movers: bool = True) -> Dict[str, Any]:
    """Generate data, train (from `init`'s weights when given: its input spec and architecture,
    a fresh readout where the world's camera has another sector count), calibrate, evaluate on
    the test split, write the model. `vary_movers`: the training and validation seeds draw their
    moving obstacles (dataset.MoverVariety); otherwise every split has the world file's."""
    overrides: Dict[str, Any] = {} if duration_s is None else {"duration_s": duration_s}
    if not vary_movers:
        overrides["movers"] = None
    start, base = (None, None) if init is None else load_model(Path(init))
    if base is not None:
        inputs = input_spec_of(base)
    if inputs is not None:
        overrides["inputs"] = inputs
    specs = {s: split_spec(s, world, **overrides) for s in ("train", "val", "test")}
    t0 = time.monotonic()
    data = generate_all(specs)
    for name in specs:
        log(f"{name}: {len(data[name])} samples {data[name].class_balance()}")
    log(f"data: {time.monotonic() - t0:.0f} s")
    inputs = specs["train"].inputs
    head = head_of(cfg, data["train"].sector_m.shape[1], load_world_config(world or None).camera.hfov_deg)
    t0 = time.monotonic()
    model, history = train_model(cfg, data["train"], data["val"], inputs, head,
                                 checkpoint=checkpoint_of(out), progress=progress, init=start)
    train_s = time.monotonic() - t0
    label_cfg = specs["train"].label
    early_exit, test_metrics = calibrate_and_test(model, data["val"], data["test"], label_cfg, cfg.max_exit_loss,
                                                  device=pick_device(cfg.device), head=head, bin_us=inputs.bin_us)
    manifest = {
        **head.manifest(),
        "input": asdict(inputs),
        "t_max": inputs.t_max,
        "early_exit": early_exit,
        "labels": asdict(specs["train"].label),
        "metrics": {"test": test_metrics},
        "training": {"command": command, "config": trained_config(cfg, base), "device": str(pick_device(cfg.device)),
                     "seconds": round(train_s, 1), "history": history, "init": str(init) if init else None,
                     "datasets": {k: {"seeds": list(v.seeds), "duration_s": v.duration_s, "world": v.world or "default",
                                      "movers": asdict(v.movers) if v.movers else "the world's",
                                      "samples": len(data[k]), "generator": v.generator_version}
                                  for k, v in specs.items()},
                     "torch": torch.__version__},
    }
    save_trained(model, out, manifest)
    return manifest
