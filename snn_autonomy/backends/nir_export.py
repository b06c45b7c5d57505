"""Export of the perception SNN to NIR (Neuromorphic Intermediate Representation, nir 1.0).

Graph (node names in brackets; D = number of delay taps, tap 0 has no Delay node):

    input -> [conv1] Conv2d -> [lif1] LIF -> [conv2] Conv2d -> [lif2] LIF -> [flatten] Flatten
    flatten -> [fc_tap0] Affine (tap-0 weights and the bias)                      -> [lif3] LIF
    flatten -> [delay_tapk] Delay (k * dt) -> [fc_tapk] Linear (tap-k weights)    -> [lif3]   (k = 1 .. D-1)
    lif3 -> [readout] Affine -> output

Edges into one node add up. Shapes carry no batch dimension: the input is (2, H, W). A model
trained without delays (`train --delays 0`) has no Delay node: a plain chain, which snnTorch and
Norse import (they know no Delay node).

Time discretisation. The network is trained in discrete steps (one input bin each):
LIF v <- beta * v + I, spike s = [v > threshold], then v <- 0 where s. NIR's LIF is
continuous, tau dv/dt = (v_leak - v) + r * I with reset to v_reset; forward Euler at a step
of dt gives v <- (1 - dt/tau) v + (dt/tau) (v_leak + r I). The export picks
    tau = dt / (1 - beta),   r = 1,   v_leak = 0,   v_threshold = threshold,   v_reset = 0,
and multiplies the weights and biases into each LIF by g = 1 / (1 - beta) (the input gain
folded into the weights, as importers that want r = 1 expect), so that the Euler step is
exactly the trained update: v <- beta v + (1 - beta) g I = beta v + I.

dt is the model's bin (6 ms for the shipped model) unless asked otherwise: only the ratio dt / tau matters to the
discrete network, so a graph for a peer with a fixed step (snnTorch's importer steps at
0.1 ms) is the same network on that time scale. The metadata holds dt and the model's bin.

Outside the graph, on the host: the input to `input` is log1p of one bin's event counts
(OFF, ON); the output is the readout of one step, and the logits are its running mean over
the steps taken (what early exit reads). A network with reset by subtraction is refused:
NIR's LIF resets to v_reset and cannot express it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

import nir
import numpy as np

from .network_arrays import Network, network_arrays

if TYPE_CHECKING:
    from ..perception.model import ConvSNN


def _lif(shape: tuple, net: Network, dt: float) -> nir.LIF:
    full = lambda value: np.full(shape, value, dtype=np.float64)  # noqa: E731
    return nir.LIF(tau=full(dt / (1.0 - net.beta)), r=full(1.0), v_leak=full(0.0),
                   v_threshold=full(net.threshold), v_reset=full(0.0))


def _conv(w: np.ndarray, b: np.ndarray, in_hw: tuple, net: Network) -> nir.Conv2d:
    return nir.Conv2d(input_shape=tuple(int(n) for n in in_hw), weight=w, stride=net.stride,
                      padding=net.padding, dilation=1, groups=1, bias=b)


def to_nir(net: Network, dt_s: Optional[float] = None) -> nir.NIRGraph:
    """The NIR graph of `net` (see the module docstring), one step standing for `dt_s` seconds
    (default: the model's bin). Raises ValueError for reset="subtract" or a step that is not positive."""
    if net.reset != "zero":
        raise ValueError(f"cannot export to NIR: the network resets by {net.reset!r}, but NIR's LIF resets "
                         "the membrane to v_reset after a spike; train with reset='zero' to export")
    dt = float(net.dt_s if dt_s is None else dt_s)
    if not dt > 0.0:
        raise ValueError(f"cannot export to NIR: the step must be a positive number of seconds, got {dt_s!r}")
    gain = np.float32(1.0 / (1.0 - net.beta))        # folded into every LIF's incoming weights (r = 1)
    shapes = net.shapes()
    n_flat = int(np.prod(shapes["conv2"]))
    nodes: Dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type={"input": np.array(shapes["input"])}),
        "conv1": _conv(net.conv1_w * gain, net.conv1_b * gain, shapes["input"][1:], net),
        "lif1": _lif(shapes["conv1"], net, dt),
        "conv2": _conv(net.conv2_w * gain, net.conv2_b * gain, shapes["conv1"][1:], net),
        "lif2": _lif(shapes["conv2"], net, dt),
        "flatten": nir.Flatten(input_type={"input": np.array(shapes["conv2"])}, start_dim=0, end_dim=-1),
        "fc_tap0": nir.Affine(weight=net.fc_taps[0] * gain, bias=net.fc_b * gain),
        "lif3": _lif(net.fc_b.shape, net, dt),
        "readout": nir.Affine(weight=net.out_w, bias=net.out_b),
        "output": nir.Output(output_type={"output": np.array(net.out_b.shape)}),
    }
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "lif2"), ("lif2", "flatten"),
             ("flatten", "fc_tap0"), ("fc_tap0", "lif3")]
    for k in range(1, net.delay_taps):
        nodes[f"delay_tap{k}"] = nir.Delay(delay=np.full(n_flat, k * dt))
        nodes[f"fc_tap{k}"] = nir.Linear(weight=net.fc_taps[k] * gain)
        edges += [("flatten", f"delay_tap{k}"), (f"delay_tap{k}", f"fc_tap{k}"), (f"fc_tap{k}", "lif3")]
    edges += [("lif3", "readout"), ("readout", "output")]
    metadata: Dict[str, Any] = {
        "dt": dt, "bin_s": float(net.dt_s), "delay_taps": int(net.delay_taps), "classes": ",".join(net.classes),
        "input": "log1p of the event counts (OFF, ON) of one input bin (bin_s seconds; one step of dt)",
        "output": "the readout of one step; the logits are its running mean over the steps taken "
                  "(classes + approaching)"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_nir(model: "ConvSNN", manifest: Dict[str, Any], path: Union[str, Path],
               dt_s: Optional[float] = None) -> nir.NIRGraph:
    """Write the NIR graph of a trained ConvSNN (torch) and its manifest to `path`; returns the graph."""
    graph = to_nir(network_arrays(model, manifest), dt_s)
    nir.write(path, graph)
    return graph
