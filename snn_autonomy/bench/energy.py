"""`snn-autonomy bench energy`: energy per perception decision, measured by this machine's meters
(RAPL, NVML, INA3221) next to the operation-count estimate.

The default model decides on recorded frames of the built-in world (one seed of its test
split) with early exit, one decision at a time (batch 1, as on a robot), then all at once
(batch 256, all T_max steps: the throughput case). A meter measures a whole device (CPU
package, GPU board), idle power included, so the idle power is measured first (2 s of
sleep) and the energy above idle is reported beside the total.
"""
from __future__ import annotations

import time
from typing import Any, Dict

import torch

from ..backends.base import output_groups
from ..monitor.energy import EnergyEstimator, detect_meters, load_profiles
from ..paths import resolve_model
from ..perception.dataset import generate, split_spec
from ..perception.early_exit import confidence
from ..perception.model import synaptic_ops
from ..perception.model_io import load_model


def _measure(meters, fn) -> Dict[str, float]:
    before = {m.name: m.read_uj() for m in meters}
    t0 = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    out = {"wall_s": wall}
    for m in meters:
        out[f"{m.name}_j"] = m.joules(before[m.name], m.read_uj())
    return out


def bench_energy(device: str = "auto", samples: int = 500) -> Dict[str, Any]:
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                       ("cpu" if device == "auto" else device))
    model, manifest = load_model(resolve_model())
    model = model.to(dev).eval()
    data = generate(split_spec("test", seeds=(301,), duration_s=10.0))
    x = torch.from_numpy(data.x[:samples]).float()
    th = float(manifest["early_exit"]["threshold"])
    measure, groups = manifest["early_exit"]["measure"], output_groups(manifest)   # a sector head's joint confidence
    fan = [f.to(dev) for f in model.fanout_maps()]
    found = detect_meters()
    meters = found.meters
    est = EnergyEstimator(load_profiles(), dense_macs_per_step=manifest.get("dense_macs_per_step"))
    counts = {"decisions": 0, "steps": 0, "synops": 0.0, "neurons": 0.0}

    @torch.no_grad()
    def one_by_one() -> None:
        for i in range(len(x)):
            st = model.init_state(1, dev)
            frames = x[i].to(dev)
            for t in range(frames.shape[0]):
                logits, st, spikes = model.step(frames[t][None], st, trace=True)
                counts["synops"] += float(synaptic_ops(spikes, fan)[0])
                conf = float(confidence(logits[:, :-1].cpu().numpy(), measure, groups)[0])
                if conf >= th or t == frames.shape[0] - 1:
                    break
            counts["decisions"] += 1
            counts["steps"] += t + 1
            counts["neurons"] += model.neurons() * (t + 1)

    @torch.no_grad()
    def batched() -> None:
        for i in range(0, len(x), 256):
            model(x[i:i + 256].to(dev).transpose(0, 1))

    idle = _measure(meters, lambda: time.sleep(2.0))
    b1 = _measure(meters, one_by_one)
    bb = _measure(meters, batched)
    n = counts["decisions"]
    e = est.estimate(counts["synops"] / n, counts["neurons"] / n, round(counts["steps"] / n))
    result: Dict[str, Any] = {
        "device": str(dev) + (f" ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else ""),
        "decisions": n, "steps_per_decision": round(counts["steps"] / n, 2),
        "estimated_uj_per_decision": {"profile": e.profile, "snn": round(e.total_uj, 3),
                                      "ann_equivalent": round(e.ann_uj, 3)},
        "meters": [m.describe() for m in meters], "unavailable": found.unavailable,
        "batch1_decisions_per_s": round(n / b1["wall_s"], 1),
        "batch256_decisions_per_s": round(len(x) / bb["wall_s"], 1),
    }
    for m in meters:
        idle_w = idle[f"{m.name}_j"] / idle["wall_s"]
        for key, run in (("batch1", b1), ("batch256", bb)):
            total = run[f"{m.name}_j"]
            above = total - idle_w * run["wall_s"]
            result[f"{m.name}_{key}_uj_per_decision"] = {"total": round(total / n * 1e6, 1),
                                                         "above_idle": round(above / n * 1e6, 1)}
        result[f"{m.name}_idle_w"] = round(idle_w, 2)
    for m in meters:
        m.close()
    return result
