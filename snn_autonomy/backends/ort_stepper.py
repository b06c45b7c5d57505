"""The ONNX Runtime stepper: exported step graphs run with their state bound in place.

Nothing here imports torch: the graphs come either from the on-disk graph cache
(`graph_cache.py`, keyed by the model file's sha256 and the exporter's code) or, on a cache
miss, from `onnx_backend.export_graphs`, which needs the model and torch. A perception node
whose graphs are cached therefore starts without loading torch at all (about 2 s less on a
2-core machine, and a respawned node decides sooner). The graphs and why there are two of
them: `onnx_backend.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..config import ConfigError
from .base import Measure, StepResult, run_until_exit

SINGLE_THREAD_KEY = "snn_autonomy.intra_op_threads"   # metadata of graphs that need one intra-op thread

# Active input entries above which a step costs less in the dense graph: the event-driven step
# grows with the input's activity and passes the dense one's ~195 us at about 230 active entries
# (scattered noise, one thread, measured as for onnx_backend's docstring; real frames, about
# 0.5 % of 6,144 entries active, take ~90 us). Bursts (flicker, low-light noise) take the dense graph.
DENSE_ABOVE = 230


@dataclass(frozen=True)
class OrtGraphs:
    """What an OrtStepper runs: the step graph, the dense graph for busy frames (or None), the
    state tensors' names (in graph order) and shapes, neuron updates per step, the stepper's name."""
    step: bytes
    dense: Optional[bytes]
    state_shapes: Dict[str, Tuple[int, ...]]
    neurons: int
    name: str


def choose_graph(providers: Optional[List[str]] = None, threads: int = 1, int8: bool = False,
                 sparse: Optional[bool] = None) -> bool:
    """Whether the event-driven graph runs: by default where it is exact, one intra-op thread on
    the CPU provider (see onnx_backend's docstring); never with int8, which quantises the dense one."""
    if sparse is None:
        return not int8 and threads == 1 and list(providers or ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    return sparse


class OrtStepper:
    """The stepping API (see `base.Stepper`) on ONNX Runtime."""

    groups = 1          # make_stepper sets it from the manifest

    def __init__(self, graphs: OrtGraphs, providers: Optional[List[str]] = None, threads: int = 1,
                 dense_above: int = DENSE_ABOVE) -> None:
        """graphs.dense: the dense graph of the same network, run instead of the event-driven step
        graph on frames with more than `dense_above` active inputs (see DENSE_ABOVE)."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        wanted = providers or ["CPUExecutionProvider"]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise ConfigError(f"execution provider(s) {missing} not available here (available: {available})")
        self.name = graphs.name
        self.session = ort.InferenceSession(graphs.step, opts, providers=wanted)
        if self.session.get_modelmeta().custom_metadata_map.get(SINGLE_THREAD_KEY) == "1" and threads != 1:
            raise ConfigError(f"this graph must run on one intra-op thread, not {threads} (ONNX Runtime's "
                              "ScatterND races on repeated indices); use the dense graph (sparse=False) for more")
        self.dense_session = None if graphs.dense is None else ort.InferenceSession(graphs.dense, opts,
                                                                                    providers=wanted)
        self.dense_above = int(dense_above)
        self.dense_steps = 0          # steps that the dense graph computed
        self.graphs_from_cache = False
        self.providers = self.session.get_providers()
        self.state_names = list(graphs.state_shapes)
        self.state_shapes = dict(graphs.state_shapes)
        self.neurons = graphs.neurons
        self.output_names = ["logits", "synops"] + [f"{n}_out" for n in self.state_names]
        # The state ping-pongs between two sets of arrays bound in place (IOBinding): no per-step
        # conversion of feeds or allocation of outputs, ~10 us of a ~90 us step at batch 1.
        shapes = {o.name: tuple(o.shape) for o in list(self.session.get_inputs()) + list(self.session.get_outputs())}
        self._x = np.zeros(shapes["x"], np.float32)
        self._logits = np.zeros(shapes["logits"], np.float32)
        self._synops = np.zeros(shapes["synops"], np.float32)
        self._sets = [{k: np.zeros(s, np.float32) for k, s in self.state_shapes.items()} for _ in range(2)]
        self._bindings = [self._bind(self.session, self._sets[i], self._sets[1 - i]) for i in range(2)]
        # the dense graph is bound to the same arrays: either graph continues the other's state
        self._dense_bindings = None if self.dense_session is None else \
            [self._bind(self.dense_session, self._sets[i], self._sets[1 - i]) for i in range(2)]
        self.reset()

    def _bind(self, session, src: Dict[str, np.ndarray], dst: Dict[str, np.ndarray]):
        b = session.io_binding()
        b.bind_cpu_input("x", self._x)
        for k in self.state_names:
            b.bind_cpu_input(k, src[k])
        for name, arr in [("logits", self._logits), ("synops", self._synops)] + \
                [(f"{k}_out", dst[k]) for k in self.state_names]:
            b.bind_output(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)
        return b

    @classmethod
    def from_model(cls, model: Any, providers: Optional[List[str]] = None, threads: int = 1,
                   int8: bool = False, sparse: Optional[bool] = None, dense_fallback: bool = True) -> "OrtStepper":
        """Export `model` (a perception ConvSNN) and run it, without the cache. sparse / int8:
        which graph (see `choose_graph`, `onnx_backend.export_onnx`); dense_fallback: with the
        event-driven graph, also load the dense one for busy frames (DENSE_ABOVE)."""
        from .onnx_backend import export_graphs

        graphs = export_graphs(model, choose_graph(providers, threads, int8, sparse), int8, dense_fallback)
        return cls(graphs, providers, threads)

    @classmethod
    def open(cls, manifest: Dict[str, Any], load: Callable[[], Any], providers: Optional[List[str]] = None,
             threads: int = 1, int8: bool = False, sparse: Optional[bool] = None, dense_fallback: bool = True,
             cache: Any = "default") -> "OrtStepper":
        """The model of `manifest` (its weights' sha256 names it), with its graphs from the graph
        cache where they are; otherwise `load()` gives the model, its graphs are exported and
        cached for the next start. cache: a GraphCache, "default", or None (no cache)."""
        from .graph_cache import GraphCache

        if cache == "default":
            cache = GraphCache()
        sparse = choose_graph(providers, threads, int8, sparse)
        key = None
        sha = manifest.get("weights", {}).get("sha256")
        if cache is not None and sha:
            key = cache.key(sha, sparse=sparse, int8=int8, dense=sparse and dense_fallback)
            graphs = cache.load(key)
            if graphs is not None:
                try:
                    stepper = cls(graphs, providers, threads)
                except ConfigError:
                    raise
                except Exception:          # an unreadable entry: drop it and export afresh
                    cache.drop(key)
                else:
                    stepper.graphs_from_cache = True
                    return stepper
        from .onnx_backend import export_graphs

        graphs = export_graphs(load(), sparse, int8, dense_fallback)
        stepper = cls(graphs, providers, threads)
        if key is not None:
            cache.store(key, graphs)
        return stepper

    def reset(self) -> None:
        for arrays in self._sets:       # in place: the bindings hold these buffers
            for a in arrays.values():
                a.fill(0.0)
        self._cur = 0
        self.state = self._sets[0]

    def step(self, frame: np.ndarray) -> StepResult:
        self._x[0] = frame              # casts event counts to float32
        if self._dense_bindings is not None and np.count_nonzero(self._x) > self.dense_above:
            self.dense_steps += 1
            self.dense_session.run_with_iobinding(self._dense_bindings[self._cur])
        else:
            self.session.run_with_iobinding(self._bindings[self._cur])
        self._cur = 1 - self._cur
        self.state = self._sets[self._cur]
        return StepResult(self._logits[0].copy(), float(self._synops[0]), self.neurons)

    def run_until_exit(self, frames: np.ndarray, threshold: float, t_max: Optional[int] = None,
                       measure: Measure = "max_softmax", groups: Optional[int] = None) -> Tuple[StepResult, int, float]:
        return run_until_exit(self, frames, threshold, t_max, measure, groups)
