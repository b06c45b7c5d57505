"""`snn-autonomy bench backends`: one SNN time step at batch 1, every back end and peer library.

The shipped model's network with its weights is run step by step by this project's
back ends (torch; ONNX Runtime with the event-driven graph, the default, with the dense
graph, and the dense graph quantised to int8) and written again with the LIF neurons of
snnTorch, Norse and SpikingJelly (installed as benchmark extras from requirements/bench.txt):
conv -> LIF -> conv -> LIF -> (delay taps) -> linear -> LIF -> readout, same weights,
same input. All on one thread, in one run.

Input: real event frames, those of `SAMPLES` samples drawn from the test split's layouts, the
first `INPUT_DURATION_S` of each (generated once, about 12 s on two cores, then read from the
on-disk cache), stepped in order
without a reset between samples and cycled; every back end and peer sees the same frames.
Real frames matter here: the event-driven graph's work follows the activity (about 0.5 %
of input pixels, 1-2 % of the convolution layers' neurons fire per step on this data), so
random dense frames would misstate it. The JSON says how active the network was on these
frames and how many multiply-accumulates the event-driven graph did per step.

Also measured: the cost of the early-exit loop over bare steps, and the dense-MAC bound
(the model's multiply-accumulates per step at this CPU's measured single-thread float32
matrix-product rate).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..backends import make_stepper
from ..backends.onnx_backend import conv_scatter_tables
from ..config import ConfigError
from ..paths import resolve_model
from ..perception.dataset import generate, input_spec_of, split_spec
from ..perception.model import ConvSNN, DelayedLinear
from ..perception.model_io import load_model

SAMPLES = 200          # test-split samples whose frames the bench cycles through (16 steps each)
INPUT_DURATION_S = 6.0  # simulated seconds of each test-split seed drawn from: ~1,800 samples


def _latency(step: Callable[[int], Any], n: int, warmup: int = 50) -> Dict[str, float]:
    for i in range(warmup):
        step(i)
    ts = np.empty(n)
    for i in range(n):
        t0 = time.perf_counter()
        step(i)
        ts[i] = time.perf_counter() - t0
    ts *= 1e6
    return {"step_p50_us": round(float(np.percentile(ts, 50)), 1), "step_p99_us": round(float(np.percentile(ts, 99)), 1),
            "steps_per_s": round(float(1e6 / ts.mean()), 1)}


def _peer_step(library: str, model, frames: torch.Tensor) -> Callable[[int], Any]:
    """A step function of the same network written with `library`'s LIF neurons."""
    cfg = model.cfg
    beta, theta = cfg.beta, cfg.threshold
    zero_reset = cfg.reset == "zero"
    if isinstance(model.fc, DelayedLinear):
        fc_w, fc_b, taps = model.fc.matrix().detach(), model.fc.linear.bias.detach(), cfg.delay_steps
    else:
        fc_w, fc_b, taps = model.fc.weight.detach(), model.fc.bias.detach(), 1
    c1, c2, out = model.conv1, model.conv2, model.out
    buf = torch.zeros(taps, 1, model.flat)
    acc = torch.zeros(1, cfg.n_classes + 1)

    if library == "snntorch":
        import snntorch as snn

        lifs = [snn.Leaky(beta=beta, threshold=theta, reset_mechanism="zero" if zero_reset else "subtract")
                for _ in range(3)]
        mems = [lif.init_leaky() for lif in lifs]

        def fire(k, cur):
            spk, mems[k] = lifs[k](cur, mems[k])
            return spk
    elif library == "norse":
        from norse.torch import LIFBoxCell, LIFBoxParameters

        if not zero_reset:
            raise ValueError("Norse's LIF resets to v_reset; it cannot express reset by subtraction")
        # v <- v + dt * tau_mem_inv * (-v + i): with dt * tau_mem_inv = 1 - beta, inputs scaled by 1 / (1 - beta)
        p = LIFBoxParameters(tau_mem_inv=torch.tensor((1 - beta) / 1e-3), v_th=torch.tensor(theta),
                             v_leak=torch.tensor(0.0), v_reset=torch.tensor(0.0))
        cells = [LIFBoxCell(p, dt=1e-3) for _ in range(3)]
        states = [None, None, None]
        scale = 1.0 / (1.0 - beta)

        def fire(k, cur):
            spk, states[k] = cells[k](cur * scale, states[k])
            return spk
    elif library == "spikingjelly":
        from spikingjelly.activation_based import neuron

        nodes = [neuron.LIFNode(tau=1.0 / (1.0 - beta), v_threshold=theta, v_reset=0.0 if zero_reset else None,
                                decay_input=False,
                                step_mode="s") for _ in range(3)]

        def fire(k, cur):
            return nodes[k](cur)
    else:
        raise ValueError(library)

    def step(i: int):
        nonlocal buf, acc
        with torch.no_grad():
            s1 = fire(0, c1(torch.log1p(frames[i % len(frames)])))
            s2 = fire(1, c2(s1))
            buf = torch.cat([s2.flatten(1)[None], buf[:-1]], 0)
            s3 = fire(2, F.linear(buf.permute(1, 0, 2).reshape(1, -1), fc_w, fc_b))
            acc = acc + out(s3)
        return acc

    return step


def _peak_gmacs() -> float:
    """Single-thread float32 matrix-product rate of this CPU, in G multiply-accumulates/s."""
    a = torch.randn(512, 512)
    b = torch.randn(512, 512)
    best = float("inf")
    for _ in range(10):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 512 ** 3 / best / 1e9


def _check_providers(providers: Sequence[str]) -> None:
    import onnxruntime as ort

    available = ort.get_available_providers()
    missing = [p for p in providers if p not in available]
    if missing:
        raise ConfigError(f"execution provider(s) {missing} not available here (available: {available}); "
                          "CUDA and TensorRT come with onnxruntime-gpu")


def bench_frames(manifest: dict, samples: int = SAMPLES, seed: int = 0) -> np.ndarray:
    """Event frames (samples * T, 2, H, W) float32 of `samples` test-split samples, in order, binned
    as the model's input (its grid and time step)."""
    data = generate(split_spec("test", duration_s=INPUT_DURATION_S, inputs=input_spec_of(manifest)))
    idx = np.sort(np.random.default_rng(seed).choice(len(data), min(samples, len(data)), replace=False))
    x = data.x[idx]
    del data
    return np.ascontiguousarray(x.reshape(-1, *x.shape[2:]), dtype=np.float32)


@torch.no_grad()
def sparse_activity(model: ConvSNN, frames: np.ndarray) -> Dict[str, Any]:
    """Mean activity per step of `model` stepped through `frames` from a fresh state, and the
    multiply-accumulates of the event-driven ONNX graph: each active input pixel / layer-1 spike
    costs its padded scatter row (slots x output channels), each active delay-buffer entry one
    tap-matrix row (hidden), plus the dense readout. `useful` counts real synapses only."""
    cfg = model.cfg
    slots = [conv_scatter_tables(conv.weight.detach().numpy(), hw, conv.stride[0], conv.padding[0])[0].shape[1]
             for conv, hw in ((model.conv1, cfg.in_hw), (model.conv2, (model.h1, model.w1)))]
    fan_in, fan_1 = (f.flatten().numpy() for f in model.fanout_maps()[:2])
    readout = cfg.hidden * (cfg.n_classes + 1)
    state = model.init_state(1)
    rows = []
    for f in frames:
        _, state, (x, s1, s2, s3) = model.step(torch.from_numpy(f)[None], state, trace=True)
        buf = state["buf"] if "buf" in state else s2
        xa, s1a = x.flatten() != 0, s1.flatten() != 0
        n_x, n_1, n_b = int(xa.sum()), int(s1a.sum()), int((buf != 0).sum())
        done = n_x * slots[0] * cfg.channels[0] + n_1 * slots[1] * cfg.channels[1] + n_b * cfg.hidden + readout
        useful = float(fan_in[xa.numpy()].sum() + fan_1[s1a.numpy()].sum()) + n_b * cfg.hidden + readout
        rows.append([float(xa.float().mean()), float(s1a.float().mean()), float(s2.mean()),
                     float((buf != 0).float().mean()), float(s3.mean()), n_x, done, useful])
    m = np.asarray(rows, dtype=np.float64).mean(0)
    dense = model.dense_macs_per_step()
    return {"active_fraction": {"input_pixels": round(m[0], 4), "layer1": round(m[1], 4), "layer2": round(m[2], 4),
                                "delay_buffer": round(m[3], 4), "layer3": round(m[4], 4)},
            "input_events_per_step": round(m[5], 1), "macs_per_step": int(m[6]), "useful_macs_per_step": int(m[7]),
            "macs_fraction_of_dense": round(m[6] / dense, 4), "steps": len(frames)}


def provider_key(provider: str) -> str:
    """The result's key for ONNX Runtime on `provider`: CUDAExecutionProvider -> onnxruntime_cuda."""
    return "onnxruntime_" + provider.removesuffix("ExecutionProvider").lower()


def _provider_entry(model, manifest: dict, provider: str, frames_np: np.ndarray, steps: int,
                    reference) -> Dict[str, Any]:
    """ONNX Runtime on `provider` (the CPU provider behind it for what it cannot run): its step
    latency, the providers the session really got, and how far its logits are from `reference`'s
    (the CPU dense graph's) over the same frames from the same state."""
    behind = [] if provider == "CPUExecutionProvider" else ["CPUExecutionProvider"]
    s = make_stepper("onnxruntime", model, manifest, providers=[provider, *behind])
    n = len(frames_np)
    check = min(n, 500)
    s.reset()
    reference.reset()
    diff = max(float(np.abs(s.step(frames_np[i]).logits - reference.step(frames_np[i]).logits).max())
               for i in range(check))
    s.reset()
    entry = _latency(lambda i: s.step(frames_np[i % n]), steps)
    entry.update({"session_providers": list(s.providers), "graph": s.name,
                  "max_logit_diff_vs_cpu_dense": float(f"{diff:.3g}"), "compared_steps": check})
    return entry


def run_backends_bench(steps: int = 3000, peers: bool = True, samples: int = SAMPLES,
                       providers: Sequence[str] = ()) -> Dict[str, Any]:
    """providers: ONNX Runtime execution providers to time besides the CPU one (e.g.
    CUDAExecutionProvider, where onnxruntime-gpu is installed); one not available here is a
    ConfigError that lists those that are, before anything is timed."""
    torch.set_num_threads(1)
    _check_providers(providers)
    path = resolve_model()
    model, manifest = load_model(path)
    frames_np = bench_frames(manifest, samples)
    n = len(frames_np)
    frames = torch.from_numpy(frames_np)[:, None]
    result: Dict[str, Any] = {"input": {"source": "test split", "samples": n // int(manifest["t_max"]), "frames": n,
                                        "events_per_frame": round(float(frames_np.sum((1, 2, 3)).mean()), 1)}}
    steppers = {"torch": make_stepper("torch", model, manifest),
                "onnxruntime": make_stepper("onnxruntime", model, manifest),
                "onnxruntime_dense": make_stepper("onnxruntime", model, manifest, sparse=False),
                "onnxruntime_int8": make_stepper("onnxruntime", model, manifest, int8=True)}
    for name, s in steppers.items():
        s.reset()
        result[name] = _latency(lambda i, s=s: s.step(frames_np[i % n]), steps)
    for provider in providers:
        result[provider_key(provider)] = _provider_entry(model, manifest, provider, frames_np, steps,
                                                         steppers["onnxruntime_dense"])
    if peers:
        for lib in ("snntorch", "norse", "spikingjelly"):
            try:
                result[lib] = _latency(_peer_step(lib, model, frames), steps)
            except ImportError as exc:
                result[lib] = {"error": f"not installed ({exc}); pip install -r requirements/bench.txt"}
    # early-exit loop vs bare steps, threshold above 1 so that nothing exits early: the median
    # over ten samples' frames of the ratio of the two p50s (one sample's ratio swings by a few
    # points from run to run on a shared machine)
    ort = steppers["onnxruntime"]
    t_max = int(manifest["t_max"])
    ratios = []
    for start in np.linspace(0, max(n - t_max, 0), 10).astype(int):
        sample = frames_np[start:start + t_max]

        def bare(_, sample=sample):
            ort.reset()
            for f in sample:
                ort.step(f)

        loop = _latency(lambda _, sample=sample: ort.run_until_exit(sample, 1.01), max(25, steps // 160), warmup=3)
        plain = _latency(bare, max(25, steps // 160), warmup=3)
        ratios.append(loop["step_p50_us"] / plain["step_p50_us"])
    result["early_exit_overhead_pct"] = round(100.0 * (float(np.median(ratios)) - 1.0), 2)
    # activity on the frames the timed steps used (warm-up included), from a fresh state
    result["sparse"] = sparse_activity(model, frames_np[:min(n, steps + 50)])
    macs = model.dense_macs_per_step()
    peak = _peak_gmacs()
    bound_us = macs / (peak * 1e3)
    result["dense_bound"] = {"dense_macs_per_step": macs, "peak_gmacs_s_one_thread": round(peak, 1),
                             "bound_us": round(bound_us, 1),
                             "onnxruntime_over_bound": round(result["onnxruntime"]["step_p50_us"] / bound_us, 2),
                             "onnxruntime_dense_over_bound":
                                 round(result["onnxruntime_dense"]["step_p50_us"] / bound_us, 2)}
    peer_p50 = [v["step_p50_us"] for k, v in result.items() if k in ("snntorch", "norse", "spikingjelly")
                and isinstance(v, dict) and "step_p50_us" in v]
    for name in ("onnxruntime", "onnxruntime_dense"):
        if peer_p50:
            result[f"{name}_speedup_vs_fastest_peer"] = round(min(peer_p50) / result[name]["step_p50_us"], 2)
        if "step_p50_us" in result.get("snntorch", {}):
            result[f"{name}_speedup_vs_snntorch"] = round(
                result["snntorch"]["step_p50_us"] / result[name]["step_p50_us"], 2)
    result["onnxruntime_sparse_over_dense_p50"] = round(
        result["onnxruntime"]["step_p50_us"] / result["onnxruntime_dense"]["step_p50_us"], 3)
    result["threads"] = 1
    result["model"] = str(path)
    return result
