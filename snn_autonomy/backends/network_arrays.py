"""The trained network as plain arrays: what the NIR export and the Lava worker build from.

`network_arrays(model)` (needs torch) turns a ConvSNN into a `Network` of numpy arrays with the
learnable delays expanded into one weight matrix per delay tap (tap k acts on the spikes of k
steps ago). `save_network` / `load_network` write and read it as .npz + .json without torch or
pickle, so the Python 3.10 Lava environment, which has no torch, can load it.

Per step t (dt = the model's bin), as `ConvSNN.step` computes it:

    a      = log1p(event counts)                                  (2, H, W)
    s1     = LIF(conv(a;  conv1_w, conv1_b, stride, padding))     (C1, H1, W1)
    s2     = LIF(conv(s1; conv2_w, conv2_b, stride, padding))     (C2, H2, W2)
    s3     = LIF(sum_k fc_taps[k] @ flat(s2[t - k]) + fc_b)       (hidden,)
    acc   += out_w @ s3 + out_b;   logits = acc / (t + 1)         (classes + 1,)

LIF: v <- beta * v + I; s = [v > threshold]; reset to zero or by subtraction (`reset`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict

import numpy as np

FORMAT = "snn_autonomy.network/1"
ARRAYS = ("conv1_w", "conv1_b", "conv2_w", "conv2_b", "fc_taps", "fc_b", "out_w", "out_b")


@dataclass
class Network:
    conv1_w: np.ndarray   # (C1, 2, 3, 3)
    conv1_b: np.ndarray   # (C1,)
    conv2_w: np.ndarray   # (C2, C1, 3, 3)
    conv2_b: np.ndarray   # (C2,)
    fc_taps: np.ndarray   # (D, hidden, C2*H2*W2): D = 1 without delays
    fc_b: np.ndarray      # (hidden,)
    out_w: np.ndarray     # (classes + 1, hidden)
    out_b: np.ndarray     # (classes + 1,)
    in_hw: tuple          # (H, W)
    stride: int
    padding: int
    beta: float
    threshold: float
    reset: str            # "zero" or "subtract"
    dt_s: float           # one step (the input bin)
    classes: tuple
    early_exit: Dict[str, Any]

    @property
    def delay_taps(self) -> int:
        return int(self.fc_taps.shape[0])

    def shapes(self) -> Dict[str, tuple]:
        """Feature-map shapes (C, H, W) of the input and both convolution layers."""
        h, w = self.in_hw
        h1, w1 = (h + 2 * self.padding - 3) // self.stride + 1, (w + 2 * self.padding - 3) // self.stride + 1
        h2, w2 = (h1 + 2 * self.padding - 3) // self.stride + 1, (w1 + 2 * self.padding - 3) // self.stride + 1
        return {"input": (2, h, w), "conv1": (self.conv1_w.shape[0], h1, w1),
                "conv2": (self.conv2_w.shape[0], h2, w2)}


def network_arrays(model, manifest: Dict[str, Any]) -> Network:
    """The arrays of a trained ConvSNN (torch) and its manifest."""
    import torch

    cfg = model.cfg
    with torch.no_grad():
        if cfg.delay_steps > 1:      # fc is a DelayedLinear (ConvSNN builds one from its config)
            taps, fc_b = model.fc.kernel(), model.fc.linear.bias
        else:
            taps, fc_b = model.fc.weight[None], model.fc.bias
        arr = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
        return Network(
            conv1_w=arr(model.conv1.weight), conv1_b=arr(model.conv1.bias),
            conv2_w=arr(model.conv2.weight), conv2_b=arr(model.conv2.bias),
            fc_taps=arr(taps), fc_b=arr(fc_b), out_w=arr(model.out.weight), out_b=arr(model.out.bias),
            in_hw=tuple(cfg.in_hw), stride=int(model.conv1.stride[0]), padding=int(model.conv1.padding[0]),
            beta=float(cfg.beta), threshold=float(cfg.threshold), reset=cfg.reset,
            dt_s=manifest["input"]["bin_us"] * 1e-6, classes=tuple(manifest["classes"]),
            early_exit=dict(manifest["early_exit"]))


def save_network(net: Network, path: Path) -> None:
    """`path` (.npz) with the arrays and `path`.json with the rest."""
    path = Path(path)
    np.savez(path, **{k: getattr(net, k) for k in ARRAYS})
    meta = {"format": FORMAT, "in_hw": list(net.in_hw), "stride": net.stride, "padding": net.padding,
            "beta": net.beta, "threshold": net.threshold, "reset": net.reset, "dt_s": net.dt_s,
            "classes": list(net.classes), "early_exit": net.early_exit}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def load_network(path: Path) -> Network:
    """Read what `save_network` wrote (numpy only). Raises ValueError on a file of another format."""
    path = Path(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in ARRAYS}
    return Network(**arrays, in_hw=tuple(meta["in_hw"]), stride=meta["stride"], padding=meta["padding"],
                   beta=meta["beta"], threshold=meta["threshold"], reset=meta["reset"], dt_s=meta["dt_s"],
                   classes=tuple(meta["classes"]), early_exit=meta["early_exit"])


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: int) -> np.ndarray:
    """Cross-correlation of x (C, H, W) with w (O, C, k, k), as torch's Conv2d."""
    c, h, wd = x.shape
    o, _, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    ho, wo = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    cols = np.empty((c, k, k, ho, wo), dtype=np.result_type(x.dtype, w.dtype))
    for i in range(k):
        for j in range(k):
            cols[:, i, j] = xp[:, i:i + stride * ho:stride, j:j + stride * wo:stride]
    return (w.reshape(o, -1) @ cols.reshape(c * k * k, -1)).reshape(o, ho, wo) + b[:, None, None]


def simulate(net: Network, frames: np.ndarray) -> np.ndarray:
    """Per-step logits (T, classes + 1) of event-count frames (T, 2, H, W): a plain numpy
    reference of the equations above, from a fresh state."""
    shapes = net.shapes()
    v1, v2 = np.zeros(shapes["conv1"], np.float32), np.zeros(shapes["conv2"], np.float32)
    v3 = np.zeros(net.fc_b.shape, np.float32)
    history = np.zeros((net.delay_taps, net.fc_taps.shape[2]), np.float32)
    acc = np.zeros(net.out_b.shape, np.float32)

    def lif(i, v):
        v = net.beta * v + i
        s = (v > net.threshold).astype(np.float32)
        return s, (v * (1 - s) if net.reset == "zero" else v - s * net.threshold)

    out = []
    for t, frame in enumerate(frames):
        s1, v1 = lif(conv2d(np.log1p(frame.astype(np.float32)), net.conv1_w, net.conv1_b, net.stride, net.padding), v1)
        s2, v2 = lif(conv2d(s1, net.conv2_w, net.conv2_b, net.stride, net.padding), v2)
        history = np.concatenate([s2.reshape(1, -1), history[:-1]])
        s3, v3 = lif(np.einsum("kon,kn->o", net.fc_taps, history) + net.fc_b, v3)
        acc = acc + net.out_w @ s3 + net.out_b
        out.append(acc / (t + 1))
    return np.stack(out)
