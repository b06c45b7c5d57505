"""Export of the perception SNN to NIR (Neuromorphic Intermediate Representation, nir 1.0).

Graph (node names in brackets; D = number of delay taps, tap 0 has no Delay node):

    input -> [conv1] Conv2d -> [lif1] LIF -> [conv2] Conv2d -> [lif2] LIF -> [flatten] Flatten
    flatten -> [fc_tap0] Affine (tap-0 weights and the bias)                      -> [lif3] LIF
    flatten -> [delay_tapk] Delay (k * dt) -> [fc_tapk] Linear (tap-k weights)    -> [lif3]   (k = 1 .. D-1)
    lif3 -> [readout] Affine -> [integrator] I -> output

Edges into one node add up. Shapes carry no batch dimension: the input is (2, H, W).

Time discretisation. The network is trained in discrete steps of dt = one input bin:
LIF v <- beta * v + I, spike s = [v > threshold], then v <- 0 where s. NIR's LIF is
continuous, tau dv/dt = (v_leak - v) + r * I with reset to v_reset; forward Euler at dt gives
v <- (1 - dt/tau) v + (dt/tau) (v_leak + r I). The export picks
    tau = dt / (1 - beta),   r = tau / dt = 1 / (1 - beta),   v_leak = 0,
    v_threshold = threshold, v_reset = 0,
so that the Euler step is exactly the trained update (leak beta, input gain 1). The readout
is an integrator I with r = 1 / dt, whose Euler step v <- v + dt r I accumulates the output
layer once per step; the host divides its state by the number of steps taken (the running
mean that early exit reads). Delay tap k is a Delay of k * dt: whole steps. Time constants
and delays are in seconds (float64), weights float32; dt is also in the graph's metadata.

Outside the graph: the input to `input` is log1p of one bin's event counts (OFF, ON), a
preprocessing step on the host. A network with reset by subtraction is refused: NIR's LIF
resets to v_reset and cannot express it.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Union

import nir
import numpy as np

from .network_arrays import Network, network_arrays

if TYPE_CHECKING:
    from ..perception.model import ConvSNN


def _lif(shape: tuple, net: Network) -> nir.LIF:
    tau = net.dt_s / (1.0 - net.beta)
    full = lambda value: np.full(shape, value, dtype=np.float64)  # noqa: E731
    return nir.LIF(tau=full(tau), r=full(tau / net.dt_s), v_leak=full(0.0),
                   v_threshold=full(net.threshold), v_reset=full(0.0))


def _conv(w: np.ndarray, b: np.ndarray, in_hw: tuple, net: Network) -> nir.Conv2d:
    return nir.Conv2d(input_shape=tuple(int(n) for n in in_hw), weight=w, stride=net.stride,
                      padding=net.padding, dilation=1, groups=1, bias=b)


def to_nir(net: Network) -> nir.NIRGraph:
    """The NIR graph of `net` (see the module docstring). Raises ValueError for reset="subtract"."""
    if net.reset != "zero":
        raise ValueError(f"cannot export to NIR: the network resets by {net.reset!r}, but NIR's LIF resets "
                         "the membrane to v_reset after a spike; train with reset='zero' to export")
    shapes = net.shapes()
    n_flat = int(np.prod(shapes["conv2"]))
    nodes: Dict[str, nir.NIRNode] = {
        "input": nir.Input(input_type={"input": np.array(shapes["input"])}),
        "conv1": _conv(net.conv1_w, net.conv1_b, shapes["input"][1:], net),
        "lif1": _lif(shapes["conv1"], net),
        "conv2": _conv(net.conv2_w, net.conv2_b, shapes["conv1"][1:], net),
        "lif2": _lif(shapes["conv2"], net),
        "flatten": nir.Flatten(input_type={"input": np.array(shapes["conv2"])}, start_dim=0, end_dim=-1),
        "fc_tap0": nir.Affine(weight=net.fc_taps[0], bias=net.fc_b),
        "lif3": _lif(net.fc_b.shape, net),
        "readout": nir.Affine(weight=net.out_w, bias=net.out_b),
        "integrator": nir.I(r=np.full(net.out_b.shape, 1.0 / net.dt_s)),
        "output": nir.Output(output_type={"output": np.array(net.out_b.shape)}),
    }
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "lif2"), ("lif2", "flatten"),
             ("flatten", "fc_tap0"), ("fc_tap0", "lif3")]
    for k in range(1, net.delay_taps):
        nodes[f"delay_tap{k}"] = nir.Delay(delay=np.full(n_flat, k * net.dt_s))
        nodes[f"fc_tap{k}"] = nir.Linear(weight=net.fc_taps[k])
        edges += [("flatten", f"delay_tap{k}"), (f"delay_tap{k}", f"fc_tap{k}"), (f"fc_tap{k}", "lif3")]
    edges += [("lif3", "readout"), ("readout", "integrator"), ("integrator", "output")]
    metadata: Dict[str, Any] = {
        "dt": float(net.dt_s), "classes": ",".join(net.classes),
        "input": "log1p of the event counts (OFF, ON) of one bin of dt seconds",
        "output": "integrated readout; divide by the number of steps for the logits (classes + approaching)"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_nir(model: "ConvSNN", manifest: Dict[str, Any], path: Union[str, Path]) -> nir.NIRGraph:
    """Write the NIR graph of a trained ConvSNN (torch) and its manifest to `path`; returns the graph."""
    graph = to_nir(network_arrays(model, manifest))
    nir.write(path, graph)
    return graph
