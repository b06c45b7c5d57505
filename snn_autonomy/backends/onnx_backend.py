"""The ONNX Runtime back end: the SNN's step function exported with explicit state.

Graph inputs:  x (1, 2, H, W) event counts, then the state tensors (v1, v2, v3, acc, t[, buf]).
Graph outputs: logits (1, C+1), synops (1,), then the new state in the same order.
The early-exit loop runs around it in Python (`run_until_exit`), as with torch. The
execution provider is a parameter: CPU here; CUDA or TensorRT where onnxruntime-gpu
is installed (e.g. on a Jetson).
"""
from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..perception.model import ConvSNN, DelayedLinear, synaptic_ops
from ..perception.runtime import StepResult, Stepper


class _FrozenDelayedLinear(torch.nn.Module):
    """A trained DelayedLinear with its kernel materialised as one constant matrix, so that
    the exported graph holds it as an initializer (quantisable, no per-step kernel math)."""

    def __init__(self, layer: DelayedLinear) -> None:
        super().__init__()
        with torch.no_grad():
            self.register_buffer("matrix", layer.matrix().detach().clone())
            self.register_buffer("bias", layer.linear.bias.detach().clone())

    def forward_buffer(self, buf: torch.Tensor) -> torch.Tensor:
        d, b, n_in = buf.shape
        return F.linear(buf.permute(1, 0, 2).reshape(b, d * n_in), self.matrix, self.bias)


class _StepGraph(torch.nn.Module):
    """step(x, *state) -> (logits, synops, *new_state) with a fixed state order."""

    def __init__(self, model: ConvSNN) -> None:
        super().__init__()
        model = copy.deepcopy(model).eval()
        if isinstance(model.fc, DelayedLinear):
            model.fc = _FrozenDelayedLinear(model.fc)
        self.model = model
        self.names = list(model.init_state(1).keys())
        for i, f in enumerate(model.fanout_maps()):
            self.register_buffer(f"fanout{i}", f)

    def forward(self, x, *state):
        st = dict(zip(self.names, state))
        logits, new, spikes = self.model.step(x, st, trace=True)
        fan = [getattr(self, f"fanout{i}") for i in range(4)]
        return (logits, synaptic_ops(spikes, fan)) + tuple(new[k] for k in self.names)


def export_onnx(model: ConvSNN, out: Optional[Path] = None, opset: int = 17, int8: bool = False) -> bytes:
    """The step function as an ONNX model (bytes; also written to `out` when given).

    int8: weights of the convolutions and the fully connected layers quantised to int8
    (ONNX Runtime dynamic quantisation; activations are quantised per step at run time)."""
    model = model.eval()
    graph = _StepGraph(model)
    h, w = model.cfg.in_hw
    state = model.init_state(1)
    x = torch.zeros(1, 2, h, w)
    names = graph.names
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(graph, (x, *state.values()), buf, opset_version=opset, dynamo=False,
                          input_names=["x"] + names, output_names=["logits", "synops"] + [f"{n}_out" for n in names])
    data = buf.getvalue()
    if int8:
        data = _quantize_int8(data)
    if out is not None:
        Path(out).write_bytes(data)
    return data


def _quantize_int8(data: bytes) -> bytes:
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "f32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(data)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["Conv", "Gemm", "MatMul"])
        return dst.read_bytes()


class OrtStepper:
    """Same interface as the torch Stepper: reset(), step(frame) -> StepResult, run_until_exit()."""

    name = "onnxruntime"

    def __init__(self, onnx_model: bytes, state_names: Sequence[str], state_shapes: Dict[str, tuple],
                 neurons: int, providers: Optional[List[str]] = None, threads: int = 1) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        available = ort.get_available_providers()
        wanted = providers or ["CPUExecutionProvider"]
        missing = [p for p in wanted if p not in available]
        if missing:
            raise RuntimeError(f"execution provider(s) {missing} not available here (available: {available})")
        self.session = ort.InferenceSession(onnx_model, opts, providers=wanted)
        self.providers = self.session.get_providers()
        self.state_names = list(state_names)
        self.state_shapes = dict(state_shapes)
        self.neurons = neurons
        self.output_names = ["logits", "synops"] + [f"{n}_out" for n in self.state_names]
        self.reset()

    @classmethod
    def from_model(cls, model: ConvSNN, providers: Optional[List[str]] = None, threads: int = 1,
                   int8: bool = False) -> "OrtStepper":
        state = model.init_state(1)
        stepper = cls(export_onnx(model, int8=int8), list(state.keys()),
                      {k: tuple(v.shape) for k, v in state.items()}, model.neurons(), providers, threads)
        if int8:
            stepper.name = "onnxruntime-int8"
        return stepper

    def reset(self) -> None:
        self.state = {k: np.zeros(s, dtype=np.float32) for k, s in self.state_shapes.items()}

    def step(self, frame: np.ndarray) -> StepResult:
        feeds = {"x": np.ascontiguousarray(frame, dtype=np.float32)[None], **self.state}
        out = self.session.run(self.output_names, feeds)
        self.state = dict(zip(self.state_names, out[2:]))
        return StepResult(out[0][0], float(out[1][0]), self.neurons)

    run_until_exit = Stepper.run_until_exit
