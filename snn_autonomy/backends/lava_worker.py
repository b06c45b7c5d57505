"""The perception SNN as a network of standard Lava processes, served over stdin/stdout.

Runs in the Python 3.10 Lava environment (`.venv-lava/bin/python -m snn_autonomy.backends.lava_worker
BUNDLE --tag floating_pt|fixed_pt`); imports only numpy, Lava (lazily, when the network is built) and
`network_arrays`, never torch. `lava_backend.LavaStepper` starts it and speaks to it.

Processes (all from lava-nc 0.10; layouts are Lava's (X, Y, C) = (W, H, C)):

    Injector x (W, H, 2) -> Conv conv1 -> LIFReset l1 -> Conv conv2 -> LIFReset l2 -> taps -> LIFReset l3 -> Extractor
    Injector gate (1,)   -> Dense b1 -> l1;   DelayDense b2 (delay 1) -> l2;   DelayDense b3 (delay 2) -> l3

- Input: `lava.proc.io.injector.Injector`, the process Lava 0.10 offers for feeding data into a
  running network from the host. Each step it sends one graded frame, log1p(event counts) (as a
  float in floating_pt; in fixed_pt an integer payload <= 89, see below), which conv1 reads as
  graded spikes (num_message_bits=8). The host decides what the network sees at every step, and
  the network keeps running between requests, so nothing is rebuilt or recompiled per sequence.
- Convolutions: `lava.proc.conv.process.Conv`. Lava convolves (the kernel is flipped) in (X, Y, C)
  order; torch correlates in (C, H, W): the kernels are flipped and transposed accordingly.
- Delay taps: `taps="relay"` (default) or `taps="delaydense"`. Tap k acts on the layer-2 spikes of
  k steps ago. `delaydense` is one `DelayDense` (lava.proc.dense) per tap with delay k. Its Lava
  0.10 model rebuilds a (k+1)-times stacked weight matrix every step (about 38 ms of CPU per step
  for the four 128 x 6144 taps here), so the default builds the same delays as an axonal delay
  line instead: relay LIF populations r1..r3 (memoryless: du = dv = 1) fed from the previous
  stage through an identity `Sparse` connection, so r_k emits the layer-2 spikes of k steps ago,
  and one `Dense` per tap (tap 0 from l2, tap k from r_k). Both give tap k a latency of k + 1
  steps and the same currents (bit-identical spikes in fixed_pt); `relay` runs about twice as
  fast in the simulator (17 against 35 ms per step here).
- Biases: the conv / fc biases enter as synaptic input from the `gate` injector (1 while the
  sequence's frames are being injected, else 0) through Dense / DelayDense connections whose
  delays match the pipeline, not as the LIF's `bias_mant`. A neuron bias acts at every step,
  including the pipeline-fill steps before a layer's first input arrives and the steps between
  sequences; then layer 2 fires spontaneously (biases up to 0.17 against a leak of 0.1 per
  step), and the delayed taps k >= 1 carry those spikes into the first steps of layer 3,
  which torch starts from an empty spike history. Gated, every layer is silent outside its
  window of the sequence, so the delay lines are empty when the next sequence starts.
- Neurons: `lava.proc.lif.process.LIFReset`, the standard LIF (u <- u (1 - du) + a_in;
  v <- v (1 - dv) + u + bias; spike if v > vth; v <- 0) that also zeroes u and v every
  `reset_interval` steps at `reset_offset`. du = 1 (u is this step's input), dv = 1 - beta,
  vth = threshold, bias 0; the network's reset is to zero, as Lava's (reset by subtraction is
  refused).
- Readout: not in Lava. The worker returns the hidden-layer (l3) spikes of every step; the host
  computes logits = running mean of out_w @ s3 + out_b (`lava_backend.readout`).

Pipeline depth and alignment. Every connection process sends at step j what it received at step
j - 1 (Lava's Conv/Dense buffer one step), so frame t, injected at local step t, reaches l1 at
t + 1, l2 at t + 2 and l3 (tap 0) at t + 3: PIPELINE_DEPTH = 3, and the l3 spikes of local step
t + 3 belong to frame t. Each sequence gets a fixed period of P = max_steps + 3 Lava steps
(frames 0..T-1, then zero frames with the gate off); l_i is reset at local step i, right before its
first input, so its first update is exactly torch's first step from zero state. Sequences of up
to max_steps frames run back to back in one persistent network; a request of N sequences runs
N * P steps.

Why not reset by `Var.set`: Lava 0.10 sends a set Var to the process model one element per
channel message (`PyLoihiProcessModel._set_var`): 0.22 s for the 12 288 voltages of l1 alone
(measured here), and this network's state is ~80 000 numbers (u, v, conv and dense buffers),
so a reset that way would take several times longer than running the sequence (~0.3 s). The
periodic reset of LIFReset plus the gated biases makes every sequence start from an exact zero
state without a message from the host.

fixed_pt (bit-accurate Loihi models of Lava: integer weights, 12-bit decays, 24-bit u/v, 17-bit
vth): Lava adds a_in << 6 to u and compares v against vth << 6, so with a per-layer integer vth_l
one model unit of current is vth_l units of a_in. Per layer:
  input   graded payload p = rint(log1p(count) * IN_SCALE) (IN_SCALE = 16, clipped to 0..255);
  conv1   w = rint(w * vth1 / IN_SCALE), int8, weight_exp 0 (Lava 0.10's fixed-point Conv model
          ignores weight_exp, so none is used);  vth1 = min(127 * IN_SCALE / max|w1|, A_IN / 24);
  conv2   w = rint(w * vth2), int8, weight_exp 0;  vth2 = min(127 / max|w2|, A_IN / 64);
  fc      vth3 = A_IN / 64; each tap a Dense with an 8-bit signed mantissa (stored as even
          9-bit weights, Lava's mixed-sign format) and its own weight_exp;
  biases  the gate's Dense weights, same format, weight_exp >= -1 (a single spike: exact);
  LIF     du = 4095 (+1 offset = full decay), dv = rint((1 - beta) * 4096) = 410 (beta 0.8999),
          bias 0.
A_IN = 2**15 - 1 keeps a_in within the 16 bits Lava declares for it for model currents up to
24 / 64 / 64 (the largest seen on 60 test samples: 17 / 43 / 51). Relays: identity weight 1, vth 0.

Protocol (binary, on stdin/stdout; the real stdout is reserved for it and fd 1 points at stderr,
so prints from Lava cannot corrupt it). A message is a 4-byte big-endian length, a JSON header
of that length and, when the header has "nbytes", that many payload bytes (np.save / np.savez).
After start-up the worker sends {"op": "ready", ...info}. Requests:
  {"op": "info"}                       -> info (tag, period, max_steps, quantisation, ...)
  {"op": "run", "nbytes": n} + npy     frames (N, T, 2, H, W) or (T, 2, H, W), T <= max_steps
                                       -> {"ok": true, "nbytes": m, ...timings} + npz with
                                          s3 (N, T, hidden) uint8 and, with trace, packed s1, s2
  {"op": "close"}                      -> {"ok": true}; the Lava runtime is stopped.
Errors answer {"ok": false, "error": "..."}.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Dict, List, Optional, Tuple

import numpy as np

from .network_arrays import Network, load_network

PIPELINE_DEPTH = 3
LATENCY = {"s1": 1, "s2": 2, "s3": PIPELINE_DEPTH}   # local step at which each layer emits frame 0
IN_SCALE = 16          # fixed_pt: graded input payload per unit of log1p(count)
A_IN_MAX = 2 ** 15 - 1  # fixed_pt: |a_in| bound (Lava declares a_in 16 bits wide)
CURRENT_RANGE = (24.0, 64.0, 64.0)  # fixed_pt: model currents per layer that must fit A_IN_MAX
TAGS = ("floating_pt", "fixed_pt")
TAPS = ("relay", "delaydense")


# ---------------------------------------------------------------------------- framing
def send_message(out: BinaryIO, header: Dict[str, Any], payload: bytes = b"") -> None:
    if payload:
        header = dict(header, nbytes=len(payload))
    head = json.dumps(header).encode()
    out.write(struct.pack(">I", len(head)) + head + payload)
    out.flush()


def _read_exact(inp: BinaryIO, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        b = inp.read(n - got)
        if not b:
            raise EOFError
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def read_message(inp: BinaryIO) -> Tuple[Dict[str, Any], bytes]:
    (n,) = struct.unpack(">I", _read_exact(inp, 4))
    header = json.loads(_read_exact(inp, n))
    payload = _read_exact(inp, int(header["nbytes"])) if header.get("nbytes") else b""
    return header, payload


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


# ---------------------------------------------------------------------------- layouts
def lava_kernel(w: np.ndarray) -> np.ndarray:
    """torch (O, C, kh, kw) cross-correlation kernel -> Lava Conv (O, kx, ky, C) convolution kernel."""
    return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def lava_fc_columns(taps: np.ndarray, chw: Tuple[int, int, int]) -> np.ndarray:
    """fc taps (D, hidden, C*H*W in torch order) -> columns in Lava's flat (X, Y, C) order."""
    c, h, w = chw
    d, hidden, _ = taps.shape
    return np.ascontiguousarray(taps.reshape(d, hidden, c, h, w).transpose(0, 1, 4, 3, 2).reshape(d, hidden, -1))


def to_xyc(a: np.ndarray) -> np.ndarray:
    """(..., C, H, W) -> (..., W, H, C)."""
    return np.swapaxes(a, -1, -3)


# ---------------------------------------------------------------------------- quantisation
def _dense_fixed(w: np.ndarray, min_exp: int = -8) -> Tuple[np.ndarray, int]:
    """Weights in a_in units -> (even int weights in [-256, 254], weight_exp): Lava's mixed-sign
    8-bit format, effective weight = int * 2**weight_exp, an 8-bit mantissa and a shared exponent."""
    amax = float(np.abs(w).max())
    if amax == 0.0:
        return np.zeros(w.shape, np.int32), 0
    exp = max(int(math.ceil(math.log2(amax / 127.0))) - 1, min_exp)
    mant = np.clip(np.rint(w / 2.0 ** (exp + 1)), -128, 127)
    return (2 * mant).astype(np.int32), exp


@dataclass
class Plan:
    """Everything the Lava network is built from, for one tag."""
    tag: str
    in_xyc: Tuple[int, int, int]
    shapes: Dict[str, Tuple[int, int, int]]       # Lava (X, Y, C) of l1 and l2
    stride: int
    padding: int
    conv_w: List[np.ndarray]                      # Lava layout, float or int
    taps: List[np.ndarray]                        # (hidden, n2) per tap, Lava column order
    tap_exp: List[int]
    bias: List[np.ndarray]                        # (n_l, 1) per layer, Lava flat order
    bias_exp: List[int]
    du: float
    dv: float
    vth: List[float]
    relay: Dict[str, float]                       # weight, vth of the delay-line relays
    in_scale: float                               # fixed_pt payload scale (0: float log1p)
    quant: Dict[str, Any] = field(default_factory=dict)

    def payload(self, frames: np.ndarray) -> np.ndarray:
        """Event-count frames (..., 2, H, W) -> the graded values injected, (..., W, H, 2)."""
        a = np.log1p(np.asarray(frames, np.float64))
        if self.in_scale:
            a = np.clip(np.rint(a * self.in_scale), 0, 255)
        return to_xyc(a)


def make_plan(net: Network, tag: str) -> Plan:
    if tag not in TAGS:
        raise ValueError(f"unknown tag {tag!r}; use one of {TAGS}")
    if net.reset != "zero":
        raise ValueError(f"Lava's LIF resets to zero; this network resets by {net.reset!r}")
    if net.conv1_w.shape[2:] != (3, 3) or net.conv2_w.shape[2:] != (3, 3):
        raise ValueError("expected 3x3 convolutions")
    sh = net.shapes()
    xyc = {k: (s[2], s[1], s[0]) for k, s in sh.items()}
    taps = lava_fc_columns(net.fc_taps.astype(np.float64), sh["conv2"])
    flat_bias = [np.broadcast_to(net.conv1_b.astype(np.float64), xyc["conv1"]).reshape(-1, 1),
                 np.broadcast_to(net.conv2_b.astype(np.float64), xyc["conv2"]).reshape(-1, 1),
                 net.fc_b.astype(np.float64).reshape(-1, 1)]
    kernels = [lava_kernel(net.conv1_w.astype(np.float64)), lava_kernel(net.conv2_w.astype(np.float64))]
    common = dict(tag=tag, in_xyc=xyc["input"], shapes={"l1": xyc["conv1"], "l2": xyc["conv2"]},
                  stride=net.stride, padding=net.padding)
    if tag == "floating_pt":
        return Plan(**common, conv_w=kernels, taps=list(taps), tap_exp=[0] * len(taps), bias=flat_bias,
                    bias_exp=[0, 0, 0], du=1.0, dv=1.0 - net.beta, vth=[net.threshold] * 3,
                    relay={"weight": 1.0, "vth": 0.5}, in_scale=0.0)
    # fixed_pt: one model unit of current = vth_l units of a_in (see the module docstring)
    th = net.threshold
    vth1 = int(min(127 * IN_SCALE / np.abs(kernels[0]).max(), A_IN_MAX / CURRENT_RANGE[0]) * th)
    vth2 = int(min(127 / np.abs(kernels[1]).max(), A_IN_MAX / CURRENT_RANGE[1]) * th)
    vth3 = int(A_IN_MAX / CURRENT_RANGE[2] * th)
    vth = [vth1, vth2, vth3]
    scale = [v / th for v in vth]             # a_in units per model unit of current
    conv_w = [np.clip(np.rint(kernels[0] * scale[0] / IN_SCALE), -127, 127).astype(np.int32),
              np.clip(np.rint(kernels[1] * scale[1]), -127, 127).astype(np.int32)]
    q_taps, tap_exp = zip(*[_dense_fixed(t * scale[2]) for t in taps])
    q_bias, bias_exp = zip(*[_dense_fixed(b * s, min_exp=-1) for b, s in zip(flat_bias, scale)])
    dv = int(round((1.0 - net.beta) * 4096))
    quant = {"vth": vth, "in_scale": IN_SCALE, "du": 4095, "dv": dv, "beta_effective": (4096 - dv) / 4096,
             "conv_weight_max": [int(np.abs(w).max()) for w in conv_w], "tap_exp": list(tap_exp),
             "bias_exp": list(bias_exp)}
    return Plan(**common, conv_w=conv_w, taps=list(q_taps), tap_exp=list(tap_exp), bias=list(q_bias),
                bias_exp=list(bias_exp), du=4095, dv=dv, vth=vth, relay={"weight": 1, "vth": 0},
                in_scale=float(IN_SCALE), quant=quant)


# ---------------------------------------------------------------------------- the Lava network
class LavaNetwork:
    """The persistent Lava network of one Plan; `run(frames)` -> per-step spikes."""

    def __init__(self, plan: Plan, max_steps: int, taps: str = "relay", trace: bool = True,
                 buffer: int = 64) -> None:
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import DelayDense, Dense
        from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
        from lava.proc.io.injector import Injector, PyLoihiInjectorModel
        from lava.proc.lif.process import LIF, LIFReset
        from lava.proc.sparse.process import Sparse
        from lava.utils.weightutils import SignMode
        from scipy.sparse import identity

        if taps not in TAPS:
            raise ValueError(f"unknown taps {taps!r}; use one of {TAPS}")
        self.plan, self.max_steps, self.trace = plan, int(max_steps), trace
        self.period = self.max_steps + PIPELINE_DEPTH
        self.buffer = buffer
        fixed = plan.tag == "fixed_pt"
        P = self.period
        s1, s2 = plan.shapes["l1"], plan.shapes["l2"]
        n2 = int(np.prod(s2))
        hidden = plan.taps[0].shape[0]
        self.hidden = hidden

        def dense_kw(exp: int) -> Dict[str, Any]:
            return {"weight_exp": int(exp), "num_weight_bits": 8, "sign_mode": SignMode.MIXED} if fixed else {}

        def lif(shape, layer: int):
            # the first Lava step of a period has time_step = 1 (mod P); layer i resets at local step i
            return LIFReset(shape=shape, du=plan.du, dv=plan.dv, vth=plan.vth[layer - 1], bias_mant=0,
                            reset_interval=P, reset_offset=(layer + 1) % P, name=f"l{layer}")

        self.inj = Injector(shape=plan.in_xyc, buffer_size=buffer, name="frames")
        self.gate = Injector(shape=(1,), buffer_size=buffer, name="gate")
        conv_kw = {"weight_exp": 0, "num_weight_bits": 8} if fixed else {}
        conv1 = Conv(weight=plan.conv_w[0], input_shape=plan.in_xyc, stride=plan.stride, padding=plan.padding,
                     num_message_bits=8, name="conv1", **conv_kw)
        l1 = lif(s1, 1)
        conv2 = Conv(weight=plan.conv_w[1], input_shape=s1, stride=plan.stride, padding=plan.padding,
                     num_message_bits=0, name="conv2", **conv_kw)
        l2 = lif(s2, 2)
        l3 = lif((hidden,), 3)
        self.inj.out_port.connect(conv1.s_in)
        conv1.a_out.connect(l1.a_in)
        l1.s_out.connect(conv2.s_in)
        conv2.a_out.connect(l2.a_in)
        # biases: gate -> layer i with a latency of i steps (a Dense adds 1, its delay the rest)
        b1 = Dense(weights=plan.bias[0], name="bias1", **dense_kw(plan.bias_exp[0]))
        b2 = DelayDense(weights=plan.bias[1], delays=1, name="bias2", **dense_kw(plan.bias_exp[1]))
        b3 = DelayDense(weights=plan.bias[2], delays=2, name="bias3", **dense_kw(plan.bias_exp[2]))
        for b, target, shape in ((b1, l1, s1), (b2, l2, s2), (b3, l3, (hidden,))):
            self.gate.out_port.connect(b.s_in)
            b.a_out.reshape(shape).connect(target.a_in)
        # delay taps
        src = l2.s_out.flatten()
        if taps == "delaydense":
            for k, (w, e) in enumerate(zip(plan.taps, plan.tap_exp)):
                d = DelayDense(weights=w, delays=k, name=f"tap{k}", **dense_kw(e))
                src.connect(d.s_in)
                d.a_out.connect(l3.a_in)
        else:
            eye = identity(n2, dtype=np.int32 if fixed else np.float64, format="csr") * plan.relay["weight"]
            stage = src
            for k, (w, e) in enumerate(zip(plan.taps, plan.tap_exp)):
                if k:
                    link = Sparse(weights=eye, name=f"line{k}")
                    relay = LIF(shape=(n2,), du=plan.du, dv=4095 if fixed else 1.0, vth=plan.relay["vth"],
                                name=f"relay{k}")
                    stage.connect(link.s_in)
                    link.a_out.connect(relay.a_in)
                    stage = relay.s_out
                d = Dense(weights=w, name=f"tap{k}", **dense_kw(e))
                stage.connect(d.s_in)
                d.a_out.connect(l3.a_in)
        self.out = {"s3": Extractor(shape=(hidden,), buffer_size=buffer, name="s3")}
        l3.s_out.connect(self.out["s3"].in_port)
        if trace:
            for name, layer, shape in (("s1", l1, s1), ("s2", l2, s2)):
                self.out[name] = Extractor(shape=shape, buffer_size=buffer, name=name)
                layer.s_out.connect(self.out[name].in_port)
        self.cfg = Loihi2SimCfg(select_tag=plan.tag, exception_proc_model_map={
            Injector: PyLoihiInjectorModel, Extractor: PyLoihiExtractorModel})
        self.l3 = l3
        self.steps_run = 0
        t0 = time.perf_counter()
        l3.create_runtime(run_cfg=self.cfg)
        self.compile_s = time.perf_counter() - t0

    def run(self, frames: np.ndarray) -> Dict[str, np.ndarray]:
        """frames (N, T, 2, H, W) event counts -> s3 (N, T, hidden) uint8 (and s1, s2 maps (N, T, X, Y, C)
        with trace): each sequence from a zero state."""
        from lava.magma.core.run_conditions import RunSteps

        n, T = frames.shape[:2]
        if not 1 <= T <= self.max_steps:
            raise ValueError(f"sequence of {T} steps; this network was built for 1..{self.max_steps}")
        want = (2, self.plan.in_xyc[1], self.plan.in_xyc[0])
        if frames.ndim != 5 or tuple(frames.shape[2:]) != want:
            raise ValueError(f"frames of shape {frames.shape}; expected (N, T) + {want}")
        P = self.period
        x = self.plan.payload(frames)                       # (N, T, W, H, 2)
        zero = np.zeros(self.plan.in_xyc)
        on, off = np.ones(1), np.zeros(1)
        total = n * P
        got: Dict[str, list] = {k: [] for k in self.out}
        lag = max(1, min(self.buffer // 2, total))
        self.l3.run(condition=RunSteps(num_steps=total, blocking=False))
        try:
            for g in range(total + lag):
                if g < total:
                    i, j = divmod(g, P)
                    self.inj.send(x[i, j] if j < T else zero)
                    self.gate.send(on if j < T else off)
                if g >= lag:
                    j = (g - lag) % P
                    for k, ext in self.out.items():
                        v = ext.receive()
                        if LATENCY[k] <= j < LATENCY[k] + T:   # the steps that carry frames 0..T-1
                            got[k].append(v)
        finally:
            self.l3.wait()
        self.steps_run += total
        res = {"s3": np.asarray(got["s3"], np.uint8).reshape(n, T, self.hidden)}
        for k in ("s1", "s2"):
            if k in got:   # (N, T, X, Y, C) -> (N, T, C, H, W), bits packed per step
                a = to_xyc(np.asarray(got[k], np.uint8).reshape((n, T) + self.plan.shapes["l" + k[1]]))
                res[k] = np.packbits(a.reshape(n, T, -1), axis=-1)
        return res


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("bundle", help="network bundle (.npz with its .json) written by save_network")
    ap.add_argument("--tag", default="floating_pt", choices=TAGS)
    ap.add_argument("--max-steps", type=int, default=16)
    ap.add_argument("--taps", default="relay", choices=TAPS)
    ap.add_argument("--no-trace", action="store_true", help="do not return layer 1/2 spikes")
    args = ap.parse_args(argv)
    out = os.fdopen(os.dup(1), "wb")      # the protocol's channel
    os.dup2(2, 1)                          # anything printed goes to stderr
    sys.stdout = sys.stderr
    inp = sys.stdin.buffer
    net = None
    try:
        t0 = time.perf_counter()
        plan = make_plan(load_network(args.bundle), args.tag)
        net = LavaNetwork(plan, args.max_steps, args.taps, trace=not args.no_trace)
        info = {"tag": args.tag, "taps": args.taps, "period": net.period, "max_steps": net.max_steps,
                "pipeline_depth": PIPELINE_DEPTH, "hidden": net.hidden, "trace": net.trace, "quant": plan.quant,
                "start_s": time.perf_counter() - t0, "compile_s": net.compile_s}
        send_message(out, {"ok": True, "op": "ready", **info})
        while True:
            try:
                header, payload = read_message(inp)
            except EOFError:
                return 0
            op = header.get("op")
            try:
                if op == "close":
                    send_message(out, {"ok": True, "op": "close"})
                    return 0
                if op == "info":
                    send_message(out, {"ok": True, **info})
                elif op == "run":
                    frames = np.load(io.BytesIO(payload), allow_pickle=False)
                    if frames.ndim == 4:
                        frames = frames[None]
                    t = time.perf_counter()
                    res = net.run(frames)
                    dt = time.perf_counter() - t
                    steps = frames.shape[0] * net.period
                    send_message(out, {"ok": True, "op": "run", "seconds": dt, "lava_steps": steps,
                                       "step_us": dt / steps * 1e6}, npz_bytes(**res))
                else:
                    send_message(out, {"ok": False, "error": f"unknown op {op!r}"})
            except Exception as e:  # answer, and keep serving: the network is still consistent
                send_message(out, {"ok": False, "error": f"{type(e).__name__}: {e}",
                                   "traceback": traceback.format_exc()})
    except Exception as e:
        try:
            send_message(out, {"ok": False, "op": "ready", "error": f"{type(e).__name__}: {e}",
                               "traceback": traceback.format_exc()})
        except OSError:
            pass
        return 1
    finally:
        if net is not None:
            net.l3.stop()


if __name__ == "__main__":
    sys.exit(main())
