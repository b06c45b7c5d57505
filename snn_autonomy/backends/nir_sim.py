"""A small numpy interpreter of NIR graphs such as `nir_export.to_nir` writes.

Works from the graph alone (e.g. as `nir.read` returns it). Each step of dt seconds it
evaluates the nodes in topological order; edges into one node add up. Continuous nodes are
forward-Euler discretised at dt:

    LIF  v <- v + dt/tau (v_leak - v + r x); s = [v > v_threshold]; v <- v_reset where s
    I    v <- v + dt r x   (the output is v)

Delay holds whole steps in a ring buffer (delays must be multiples of dt). Supported nodes:
Input, Output, Conv2d (groups 1, dilation 1, equal integer stride and padding), Flatten,
Affine, Linear, Delay, LIF, I. One Input and one Output; no cycles.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import nir
import numpy as np
from numpy.typing import DTypeLike

from .network_arrays import conv2d


def _order(graph: nir.NIRGraph) -> List[str]:
    """Node names in topological order; ValueError on a cycle."""
    preds = {name: 0 for name in graph.nodes}
    for _, dst in graph.edges:
        preds[dst] += 1
    ready = [n for n in graph.nodes if preds[n] == 0]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for src, dst in graph.edges:
            if src == name:
                preds[dst] -= 1
                if preds[dst] == 0:
                    ready.append(dst)
    if len(order) != len(graph.nodes):
        raise ValueError("the NIR graph has a cycle; this interpreter runs feed-forward graphs only")
    return order


def _pair(value, what: str) -> int:
    a, b = np.broadcast_to(np.asarray(value), (2,))
    if isinstance(value, str) or a != b:
        raise ValueError(f"Conv2d {what} {value!r}: only one integer for both axes is supported")
    return int(a)


class NirSim:
    """Steps a NIR graph at dt seconds: `reset()`, `step(x) -> output`, `run(inputs) -> outputs`.
    Arithmetic in float32, as a deployed network runs, or in `dtype` (float64 for reference
    checks: in float32, a membrane within rounding of its threshold spikes or not depending on
    the order of the sums, and one such spike moves a logit by a readout weight)."""

    def __init__(self, graph: nir.NIRGraph, dt: Optional[float] = None, dtype: DTypeLike = np.float32) -> None:
        self.graph = graph
        self.dtype = np.dtype(dtype)
        self.dt = float(graph.metadata["dt"] if dt is None else dt)
        self.order = _order(graph)
        self.inputs = {n: [s for s, d in graph.edges if d == n] for n in graph.nodes}
        kinds = [type(node).__name__ for node in graph.nodes.values()]
        if kinds.count("Input") != 1 or kinds.count("Output") != 1:
            raise ValueError("the NIR graph must have exactly one Input and one Output node")
        self.params: Dict[str, dict] = {}
        for name, node in graph.nodes.items():
            self.params[name] = self._prepare(name, node)
        self.reset()

    def _prepare(self, name: str, node: nir.NIRNode) -> dict:
        dt = self.dt
        arr = lambda a: np.asarray(a, dtype=self.dtype)  # noqa: E731
        if isinstance(node, nir.Conv2d):
            if int(node.groups) != 1 or np.any(np.asarray(node.dilation) != 1):
                raise ValueError(f"{name}: Conv2d with groups or dilation other than 1 is not supported")
            return {"w": arr(node.weight), "b": arr(node.bias), "stride": _pair(node.stride, "stride"),
                    "padding": _pair(node.padding, "padding")}
        if isinstance(node, nir.LIF):
            k = dt / np.asarray(node.tau, dtype=np.float64)
            return {"a": arr(1 - k), "g": arr(k * node.r), "c": arr(k * node.v_leak),
                    "th": arr(node.v_threshold), "v_reset": arr(node.v_reset)}
        if isinstance(node, nir.I):
            return {"g": arr(dt * np.asarray(node.r, dtype=np.float64))}
        if isinstance(node, nir.Delay):
            steps = np.asarray(node.delay, dtype=np.float64) / dt
            whole = np.rint(steps)
            if np.any(np.abs(steps - whole) > 1e-6) or np.any(whole < 0):
                raise ValueError(f"{name}: delays must be whole multiples of dt = {dt} s, got {node.delay}")
            return {"steps": whole.astype(np.int64).ravel()}
        if isinstance(node, (nir.Affine, nir.Linear)):
            return {"w": arr(node.weight), "b": arr(getattr(node, "bias", 0.0))}
        if isinstance(node, nir.Flatten):
            return {"shape": tuple(int(n) for n in node.output_type["output"])}
        if isinstance(node, (nir.Input, nir.Output)):
            return {}
        raise ValueError(f"{name}: NIR node type {type(node).__name__} is not supported by this interpreter")

    def reset(self) -> None:
        """Fresh state: membranes and integrators at zero, delay lines empty."""
        self.t = 0
        self.state: Dict[str, np.ndarray] = {}
        for name, node in self.graph.nodes.items():
            if isinstance(node, (nir.LIF, nir.I)):
                self.state[name] = np.zeros(node.output_type["output"], self.dtype)
            elif isinstance(node, nir.Delay):
                depth = int(self.params[name]["steps"].max()) + 1
                self.state[name] = np.zeros((depth, self.params[name]["steps"].size), self.dtype)

    def step(self, x: np.ndarray) -> np.ndarray:
        """One step of dt with graph input x; returns the Output node's value."""
        values: Dict[str, np.ndarray] = {}
        for name in self.order:
            node, p = self.graph.nodes[name], self.params[name]
            if isinstance(node, nir.Input):
                values[name] = np.asarray(x, dtype=self.dtype)
                continue
            u = sum(values[src] for src in self.inputs[name])
            if isinstance(node, nir.Conv2d):
                y = conv2d(u, p["w"], p["b"], p["stride"], p["padding"])
            elif isinstance(node, (nir.Affine, nir.Linear)):
                y = p["w"] @ u + p["b"]
            elif isinstance(node, nir.Flatten):
                y = u.reshape(p["shape"])
            elif isinstance(node, nir.LIF):
                v = p["a"] * self.state[name] + p["g"] * u + p["c"]
                spikes = v > p["th"]
                self.state[name] = np.where(spikes, p["v_reset"], v)
                y = spikes.astype(self.dtype)
            elif isinstance(node, nir.I):
                self.state[name] = y = self.state[name] + p["g"] * u
            elif isinstance(node, nir.Delay):
                buf, steps = self.state[name], p["steps"]
                buf[self.t % len(buf)] = u.ravel()
                y = buf[(self.t - steps) % len(buf), np.arange(steps.size)].reshape(u.shape)
            else:  # Output
                y = u
            values[name] = y
        self.t += 1
        return values[next(n for n in self.order if isinstance(self.graph.nodes[n], nir.Output))]

    def run(self, inputs: np.ndarray) -> np.ndarray:
        """Outputs (T, ...) of inputs (T, ...) from a fresh state."""
        self.reset()
        return np.stack([self.step(x) for x in inputs])
