"""A convolutional spiking network of leaky integrate-and-fire neurons, with a stepping API.

Time is discrete: one step is one input bin (`bin_us`, 6 ms by default). Per step:

    in   (B, 2, H, W) event counts (OFF, ON) of one bin, compressed with log1p
    c1   conv 3x3 stride 2, 2 -> C1 channels         -> LIF
    c2   conv 3x3 stride 2, C1 -> C2 channels        -> LIF
    fc   linear C2*H2*W2 -> hidden                   -> LIF
         (H2 = ceil(H/4), W2 = ceil(W/4); with learnable delays of 0..D-1 steps when D > 1)
    out  linear hidden -> n_classes + 1 approaching logit, accumulated over steps

(C1, C2) = `ModelConfig.channels`, hidden = `ModelConfig.hidden`, D = `ModelConfig.delay_steps`.
The defaults are (8, 16), 64 and no delays; the shipped model (models/perception_default.json)
has (16, 32), 128 and D = 4, on a 48 x 64 grid with 4 classes and reset="zero".

LIF (per step, dimensionless membrane):  v <- beta * v + I;  s = [v > theta];  then reset,
either to zero (v <- (1 - s) * v, `reset="zero"`: the LIF of Loihi 2 / Lava and of NIR, so
the network maps onto them unchanged) or by subtraction (v <- v - s * theta, `reset="subtract"`,
which keeps the overshoot). beta = exp(-bin / tau): 0.9 is tau of about 9.5 bins. Spikes are
Heaviside forward and a fast-sigmoid derivative backward (SuperSpike, slope 10).
The readout is the running mean of the output layer over the steps taken so far,
so logits exist after every step: that is what early exit reads.

`step(x, state) -> (logits, state)` is a pure function of explicit state (a dict of
tensors) like Norse's functional steps; `forward(x)` over a whole sequence is the
same steps in a loop; backends (ONNX Runtime, Lava, NIR) re-implement `step`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..backends.torch_backend import synaptic_ops as synaptic_ops  # public here too

State = Dict[str, torch.Tensor]
RESETS = ("zero", "subtract")


@dataclass(frozen=True)
class ModelConfig:
    in_hw: Tuple[int, int] = (48, 64)     # input grid (H, W)
    channels: Tuple[int, int] = (8, 16)
    hidden: int = 64
    n_classes: int = 4
    beta: float = 0.9
    threshold: float = 1.0
    delay_steps: int = 0                  # 0 = no synaptic delays; else max delay of the fc layer, in steps
    surrogate_slope: float = 10.0
    reset: str = "subtract"               # "zero" or "subtract" (see the module docstring)

    def __post_init__(self) -> None:
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, not {self.reset!r}")

    def as_dict(self) -> dict:
        return asdict(self)


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad / (ctx.slope * x.abs() + 1.0) ** 2, None


def spike(x: torch.Tensor, slope: float = 10.0) -> torch.Tensor:
    """Heaviside with a surrogate gradient; plain comparison when no gradient is needed
    (so the exported graph has no custom op)."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _SpikeFn.apply(x, slope)
    return (x > 0).to(x.dtype)


def lif_step(current: torch.Tensor, v: torch.Tensor, beta: float, threshold: float,
             slope: float = 10.0, reset: str = "subtract") -> Tuple[torch.Tensor, torch.Tensor]:
    """One LIF update; returns (spikes, new membrane)."""
    v = beta * v + current
    s = spike(v - threshold, slope)
    if reset == "zero":
        return s, v * (1.0 - s)
    return s, v - s * threshold


class DelayedLinear(nn.Module):
    """Linear layer whose synapses each have a learnable delay in [0, delay_steps - 1].

    In the spirit of DCLS: each synapse's delay is a continuous position in a temporal
    kernel of `delay_steps` taps; the kernel is its weight spread by a Gaussian (sigma
    0.5 step) around that position, so positions receive gradients. State: the last
    `delay_steps` inputs."""

    def __init__(self, n_in: int, n_out: int, delay_steps: int, sigma: float = 0.5) -> None:
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)
        self.delay_steps = delay_steps
        self.sigma = sigma
        self.pos = nn.Parameter(torch.rand(n_out, n_in) * (delay_steps - 1))

    def matrix(self) -> torch.Tensor:
        """The kernel as one (out, D*in) matrix, tap-major along the columns. Inference reuses
        it until a parameter changes (tensor version counters)."""
        key = (self.pos._version, self.linear.weight._version, self.pos.device)
        if not torch.is_grad_enabled() and getattr(self, "_cache_key", None) == key:
            return self._cache
        k = self.kernel()
        w = k.permute(1, 0, 2).reshape(k.shape[1], -1)
        if not torch.is_grad_enabled():
            self._cache_key, self._cache = key, w.contiguous()
        return w

    def kernel(self) -> torch.Tensor:
        taps = torch.arange(self.delay_steps, dtype=self.pos.dtype, device=self.pos.device)
        pos = self.pos.clamp(0, self.delay_steps - 1)
        g = torch.exp(-0.5 * ((taps[:, None, None] - pos[None]) / self.sigma) ** 2)
        g = g / g.sum(0, keepdim=True)
        return g * self.linear.weight[None]          # (D, out, in)

    def forward_buffer(self, buf: torch.Tensor) -> torch.Tensor:
        """buf (D, B, in): buf[k] is the input k steps ago. One matrix product over all taps."""
        d, b, n_in = buf.shape
        return F.linear(buf.permute(1, 0, 2).reshape(b, d * n_in), self.matrix(), self.linear.bias)


class ConvSNN(nn.Module):
    def __init__(self, cfg: ModelConfig = ModelConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        c1, c2 = cfg.channels
        self.conv1 = nn.Conv2d(2, c1, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        h, w = cfg.in_hw
        self.h1, self.w1 = (h + 1) // 2, (w + 1) // 2
        self.h2, self.w2 = (self.h1 + 1) // 2, (self.w1 + 1) // 2
        self.flat = c2 * self.h2 * self.w2
        self.fc = (DelayedLinear(self.flat, cfg.hidden, cfg.delay_steps) if cfg.delay_steps > 1
                   else nn.Linear(self.flat, cfg.hidden))
        self.out = nn.Linear(cfg.hidden, cfg.n_classes + 1)

    # ------------------------------------------------------------------ state
    def init_state(self, batch: int = 1, device=None) -> State:
        c1, c2 = self.cfg.channels
        z = lambda *shape: torch.zeros(*shape, device=device)  # noqa: E731
        st = {"v1": z(batch, c1, self.h1, self.w1), "v2": z(batch, c2, self.h2, self.w2),
              "v3": z(batch, self.cfg.hidden), "acc": z(batch, self.cfg.n_classes + 1), "t": z(1)}
        if self.cfg.delay_steps > 1:
            st["buf"] = z(self.cfg.delay_steps, batch, self.flat)
        return st

    # ------------------------------------------------------------------ dynamics
    def step(self, x: torch.Tensor, state: State, trace: bool = False):
        """One time step. x (B, 2, H, W) event counts. Returns (logits (B, C+1), new state),
        or with trace=True (logits, state, [spikes of each layer])."""
        cfg = self.cfg
        a = torch.log1p(x)
        lif = lambda i, v: lif_step(i, v, cfg.beta, cfg.threshold, cfg.surrogate_slope, cfg.reset)  # noqa: E731
        s1, v1 = lif(self.conv1(a), state["v1"])
        s2, v2 = lif(self.conv2(s1), state["v2"])
        flat = s2.flatten(1)
        new: State = {"v1": v1, "v2": v2}
        if cfg.delay_steps > 1:
            buf = torch.cat([flat[None], state["buf"][:-1]], 0)
            i3 = self.fc.forward_buffer(buf)
            new["buf"] = buf
        else:
            i3 = self.fc(flat)
        s3, v3 = lif(i3, state["v3"])
        t = state["t"] + 1
        acc = state["acc"] + self.out(s3)
        new.update(v3=v3, acc=acc, t=t)
        logits = acc / t
        if trace:
            return logits, new, [x, s1, s2, s3]
        return logits, new

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (T, B, 2, H, W) -> per-step logits (T, B, C+1)."""
        return self._run(x, None)[0]

    def forward_counting(self, x: torch.Tensor, fanouts: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        """forward, and the synaptic operations the spiking layers send at each step (T, B), with
        `fanouts` = fanout_maps() on x's device. Input events are not counted: what the network
        learns cannot change them, attention and the sensor do."""
        return self._run(x, fanouts)

    def _run(self, x: torch.Tensor,
             fanouts: Optional[Sequence[torch.Tensor]]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        state = self.init_state(x.shape[1], x.device)
        out, ops = [], []
        for t in range(x.shape[0]):
            logits, state, spikes = self.step(x[t], state, trace=True)
            out.append(logits)
            if fanouts is not None:
                ops.append(synaptic_ops(spikes[1:], fanouts[1:]))
        return torch.stack(out), (torch.stack(ops) if ops else None)

    # ------------------------------------------------------------------ costs
    def dense_macs_per_step(self) -> int:
        c1, c2 = self.cfg.channels
        taps = max(1, self.cfg.delay_steps)
        return (self.h1 * self.w1 * c1 * 2 * 9 + self.h2 * self.w2 * c2 * c1 * 9
                + self.flat * self.cfg.hidden * taps + self.cfg.hidden * (self.cfg.n_classes + 1))

    def neurons(self) -> int:
        c1, c2 = self.cfg.channels
        return c1 * self.h1 * self.w1 + c2 * self.h2 * self.w2 + self.cfg.hidden

    @torch.no_grad()
    def fanout_maps(self) -> List[torch.Tensor]:
        """Synapses leaving each element of [input, s1, s2, s3] (for counting synaptic ops)."""
        c1, c2 = self.cfg.channels
        h, w = self.cfg.in_hw
        f_in = F.conv_transpose2d(torch.ones(1, c1, self.h1, self.w1), torch.ones(c1, 2, 3, 3),
                                  stride=2, padding=1, output_padding=(1 - h % 2, 1 - w % 2))[0]
        f1 = F.conv_transpose2d(torch.ones(1, c2, self.h2, self.w2), torch.ones(c2, c1, 3, 3),
                                stride=2, padding=1,
                                output_padding=(1 - self.h1 % 2, 1 - self.w1 % 2))[0]
        f2 = torch.full((c2, self.h2, self.w2), float(self.cfg.hidden))
        f3 = torch.full((self.cfg.hidden,), float(self.cfg.n_classes + 1))
        return [f_in, f1, f2, f3]


def make_model(cfg: ModelConfig, seed: int = 0) -> ConvSNN:
    torch.manual_seed(seed)
    model = ConvSNN(cfg)
    # Larger initial weights into spiking layers so the untrained net fires at all.
    with torch.no_grad():
        for layer in (model.conv1, model.conv2):
            layer.weight.mul_(2.0)
        fc = model.fc.linear if isinstance(model.fc, DelayedLinear) else model.fc
        fc.weight.mul_(math.sqrt(3.0))
    return model
