"""`snn-autonomy bench energy`: energy per perception decision, measured by this machine's meters
(RAPL, NVML, INA3221) next to the operation-count estimate.

The default model decides on recorded frames of the built-in world (one seed of its test
split) with early exit, one decision at a time (batch 1, as on a robot), then all at once
(batch 256, all T_max steps: the throughput case). At batch 1 each robot's decisions follow
one another (`temporal_prior.decision_chains`) and carry the model's temporal prior, turned with
the robot's heading, as in the running loop. A meter measures a whole device (CPU
package, GPU board), idle power included, so the idle power is measured first (2 s of
sleep) and the energy above idle is reported beside the total.

A meter's counter advances in steps of its own (NVML's every few tens of milliseconds), so a
workload is repeated until it has run for at least `min_s` (2 s): 500 decisions at batch 256
take 40-75 ms on an H100 GPU, shorter than a step of the counter, and were once read as 0 J.
A meter whose reading still did not advance over a run reports no figure for it, and says why.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np
import torch

from ..backends.base import output_groups
from ..monitor.energy import EnergyEstimator, detect_meters, load_profiles
from ..monitor.meters import EnergyMeter
from ..paths import resolve_model
from ..perception.dataset import (META_SPEED_END, META_SPEED_START, META_YAW_END, META_YAW_START, generate,
                                  input_spec_of, split_spec)
from ..perception.early_exit import confidence
from ..perception.heads import Head
from ..perception.model import ConvSNN, synaptic_ops
from ..perception.model_io import load_model
from ..perception.temporal_prior import CarriedBelief, decision_chains, exit_heading, exit_speed, exit_threshold, prior_of


MIN_METERED_S = 2.0   # long against a meter counter's update period (NVML: tens of ms)


def _measure(meters: Sequence[EnergyMeter], fn: Callable[[], None], min_s: float) -> Dict[str, float]:
    """Run `fn` once, and again until `min_s` has passed; the wall time, passes and each meter's joules."""
    before = {m.name: m.read_uj() for m in meters}
    t0 = time.perf_counter()
    passes = 0
    while passes == 0 or time.perf_counter() - t0 < min_s:
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        passes += 1
    out = {"wall_s": time.perf_counter() - t0, "passes": passes}
    for m in meters:
        out[f"{m.name}_j"] = m.joules(before[m.name], m.read_uj())
    return out


def bench_energy(device: str = "auto", samples: int = 500, model_file: Optional[str] = None) -> Dict[str, Any]:
    """`measure_energy` of the model in `model_file` (default: the shipped one) on the first
    `samples` decisions of one test seed of the built-in world, in the model's input geometry."""
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    path = resolve_model(model_file)
    model, manifest = load_model(path)
    data = generate(split_spec("test", seeds=(301,), duration_s=10.0, inputs=input_spec_of(manifest)))
    found = detect_meters()
    try:
        result = measure_energy(model, manifest, data.x[:samples], dev, found.meters, meta=data.meta[:samples])
    finally:
        for m in found.meters:
            m.close()
    result["unavailable"] = found.unavailable
    result["model"] = str(path)
    return result


def measure_energy(model: ConvSNN, manifest: Dict[str, Any], frames: np.ndarray, dev: torch.device,
                   meters: Sequence[EnergyMeter], min_s: float = MIN_METERED_S,
                   meta: Optional[np.ndarray] = None) -> Dict[str, Any]:
    """Energy per decision of `model` on `frames` (N, T, 2, H, W): the estimate from the operations
    executed, and each meter's reading at batch 1 and batch 256 (a figure is None, with a reason,
    where the meter did not advance over the run). With the samples' `meta` (dataset.Dataset.meta)
    and a model calibrated with a temporal prior, batch 1 runs each robot's decisions in order
    with the prior; without, each sample is a decision of its own."""
    model = model.to(dev).eval()
    x = torch.from_numpy(frames).float()
    prior = prior_of(manifest) if meta is not None else None
    th = exit_threshold(manifest, prior is not None)
    measure, groups = manifest["early_exit"]["measure"], output_groups(manifest)   # a sector head's joint confidence
    bin_us, T = int(manifest["input"]["bin_us"]), x.shape[1]
    if prior is not None:
        chains, _ = decision_chains(meta, bin_us * T)
        order = np.concatenate(chains)
    else:
        chains, order = [], np.arange(len(x))
    first_of_chain = {int(c[0]) for c in chains}
    sector_rad = Head.of(manifest).sector_rad
    fan = [f.to(dev) for f in model.fanout_maps()]
    est = EnergyEstimator(load_profiles(), dense_macs_per_step=manifest.get("dense_macs_per_step"))
    counts = {"decisions": 0, "steps": 0, "synops": 0.0, "neurons": 0.0}

    @torch.no_grad()
    def one_by_one() -> None:
        belief = CarriedBelief(prior, groups, sector_rad) if prior is not None else None
        for i in order:
            st = model.init_state(1, dev)
            frames = x[i].to(dev)
            start_us = int(meta[i, 2]) - bin_us * T if prior is not None else 0
            if belief is not None:
                if i in first_of_chain:
                    belief.forget()
                belief.set_heading(float(meta[i, META_YAW_START]))
                belief.set_speed(float(meta[i, META_SPEED_START]))
                log_prior = belief.log_prior(start_us)
            for t in range(T):
                logits, st, spikes = model.step(frames[t][None], st, trace=True)
                counts["synops"] += float(synaptic_ops(spikes, fan)[0])
                cls = logits[0, :-1].cpu().numpy()
                if belief is not None and log_prior is not None:
                    cls = cls + log_prior
                conf = float(confidence(cls[None], measure, groups)[0])
                if conf >= th or t == T - 1:
                    break
            if belief is not None:
                belief.set_heading(float(exit_heading(meta[i, META_YAW_START], meta[i, META_YAW_END], t + 1, T)))
                belief.set_speed(float(exit_speed(meta[i, META_SPEED_START], meta[i, META_SPEED_END], t + 1, T)))
                belief.keep(cls, start_us + (t + 1) * bin_us)
            counts["decisions"] += 1
            counts["steps"] += t + 1
            counts["neurons"] += model.neurons() * (t + 1)

    @torch.no_grad()
    def batched() -> None:
        for i in range(0, len(x), 256):
            model(x[i:i + 256].to(dev).transpose(0, 1))

    idle = _measure(meters, lambda: time.sleep(min_s), 0.0)
    b1 = _measure(meters, one_by_one, min_s)
    bb = _measure(meters, batched, min_s)
    n = counts["decisions"]                    # over all of batch 1's passes
    n_batched = bb["passes"] * len(x)
    e = est.estimate(counts["synops"] / n, counts["neurons"] / n, round(counts["steps"] / n))
    result: Dict[str, Any] = {
        "device": str(dev) + (f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else ""),
        "decisions": len(x), "steps_per_decision": round(counts["steps"] / n, 2),
        "temporal_prior": prior is not None, "threshold": round(th, 4),
        "estimated_uj_per_decision": {"profile": e.profile, "snn": round(e.total_uj, 3),
                                      "ann_equivalent": round(e.ann_uj, 3)},
        "meters": [m.describe() for m in meters],
        "batch1_decisions_per_s": round(n / b1["wall_s"], 1),
        "batch256_decisions_per_s": round(n_batched / bb["wall_s"], 1),
        "metered_passes": {"batch1": b1["passes"], "batch256": bb["passes"]},
    }
    not_metered: Dict[str, str] = {}
    for m in meters:
        idle_w = _advanced(m.name, "idle", idle, not_metered)
        idle_w = None if idle_w is None else idle_w / idle["wall_s"]
        for key, run, decisions in (("batch1", b1, n), ("batch256", bb, n_batched)):
            total = _advanced(m.name, key, run, not_metered)
            result[f"{m.name}_{key}_uj_per_decision"] = None if total is None else {
                "total": round(total / decisions * 1e6, 1),
                "above_idle": None if idle_w is None else round((total - idle_w * run["wall_s"]) / decisions * 1e6, 1)}
        result[f"{m.name}_idle_w"] = None if idle_w is None else round(idle_w, 2)
    if not_metered:
        result["not_metered"] = not_metered
    return result


def _advanced(meter: str, key: str, run: Dict[str, float], not_metered: Dict[str, str]) -> Optional[float]:
    """The meter's joules over `run`, or None (and why, in `not_metered`) where its counter did not move."""
    joules = run[f"{meter}_j"]
    if joules > 0.0:
        return joules
    not_metered[f"{meter}_{key}"] = f"the {meter} counter did not advance over the {run['wall_s']:.2f} s of this run"
    return None
