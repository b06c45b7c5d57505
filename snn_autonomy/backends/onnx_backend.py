"""The ONNX Runtime back end: the SNN's step function exported with explicit state.

Graph inputs:  x (1, 2, H, W) event counts, then the state tensors (v1, v2, v3, acc, t[, buf]).
Graph outputs: logits (1, C+1), synops (1,), then the new state in the same order.
The early-exit loop runs around it in Python (`run_until_exit`), as with torch. The
execution provider is a parameter: CPU here; CUDA or TensorRT where onnxruntime-gpu
is installed (e.g. on a Jetson).

Two graphs compute the same step (`export_onnx(sparse=...)`):
  sparse (default): event-driven, batch 1. Each convolution is in scatter form (the active
      inputs, Gather of their precomputed output positions and weight rows, ScatterND with
      reduction="add" into the bias), the delayed fully connected layer gathers the rows of its
      (D*in, hidden) tap matrix at the non-zero entries of the delay buffer and sums them.
      Work follows the events and spikes, not the layer sizes.
      Run it with ONE intra-op thread: ONNX Runtime's CPU ScatterND parallelises over updates
      without guarding repeated indices, so with reduction="add" and several threads it races
      and returns wrong sums (onnxruntime issues 18048, 23396; measured here: errors of ~5 on a
      dense conv1 input with 2 threads, exact with 1). The graph says so in its metadata
      (`snn_autonomy.intra_op_threads` = 1) and OrtStepper refuses it with threads > 1.
  dense: torch's export of `ConvSNN.step` (Conv, Gemm over all taps); any thread count; what
      int8 quantises.
By default OrtStepper loads both and runs a frame with more than DENSE_ABOVE active inputs in
the dense graph (bursts cost the event-driven graph more than the dense one); the two share
the bound state arrays, so either continues where the other left off.
"""
from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .ort_stepper import SINGLE_THREAD_KEY, OrtGraphs, OrtStepper  # noqa: F401  (OrtStepper: re-exported)
from .torch_backend import synaptic_ops

if TYPE_CHECKING:
    from ..perception.model import ConvSNN, DelayedLinear



def _has_delays(model: ConvSNN) -> bool:
    """Whether the fc layer is a DelayedLinear fed a buffer of past inputs: ConvSNN decides so
    from its config, when it builds the layer and when it steps."""
    return model.cfg.delay_steps > 1


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
        if _has_delays(model):
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


# ---------------------------------------------------------------------------------------------
# Event-driven (sparse) step graph, written node by node with onnx.helper.
#
# Work per step follows the activity instead of the layer sizes:
#   conv (scatter form): the active inputs (Compress, see below) -> Gather their precomputed
#        output positions and weight rows -> ScatterND(reduction="add") into the bias, laid out
#        (Ho, Wo, O) -> one Transpose to the state's channel-major layout;
#   fc (delay taps):     the active entries of the flattened delay buffer -> Gather the matching
#        rows of the (D*in, hidden) tap matrix -> (K,) @ (K, hidden) + bias;
#   LIF, readout, synops: as the dense graph, on the same state tensors.
# Choices measured with ONNX Runtime 1.32 on one CPU thread (real test-split frames):
#   - the scatter adds whole channel vectors (one output position, all O channels), not single
#     elements: ScatterElements costs ~2 ns per element (44 us for conv2's ~20k updates of one
#     step), ScatterND ~4 us for the same updates as ~640 rows of 32 channels;
#   - active entries: Compress instead of NonZero (~20 % faster), in two levels (blocks with a
#     maximum above the threshold, then their elements: ~10 us less per step). Compress is still
#     the dearest search step: ~0.2 ns per element scanned plus up to ~25 ns per element selected
#     (~6 us for the ~400 active delay-buffer entries of a step);
#   - layer-1 spikes are found from the membrane (v > theta) before the reset, so that layer 1
#     needs no dense spike tensor;
#   - sums over gathered rows as a matrix product: 3x faster than ReduceSum over axis 0;
#   - per node ONNX Runtime spends ~0.2 us besides the kernel (the graph has ~75), and a run
#     through OrtStepper costs ~6 us with no work at all (identity graph, same inputs/outputs);
#   - ops with scalar broadcasting can be slow: Where(s, 0, v) takes ~6 us on layer 1's 12,288
#     neurons, v - ThresholdedRelu(v) ~2 us for the same reset; Sum ~2 us when its inputs need
#     broadcasting.
# ---------------------------------------------------------------------------------------------


def conv_scatter_tables(weight: np.ndarray, in_hw: Tuple[int, int], stride: int,
                        padding: int) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int]]:
    """Scatter form of a Conv2d (cross-correlation, as torch) with `weight` (O, C, k, k).

    Returns (position, value, (Ho, Wo)). For input element e = (c, y, x) (flattened C-major),
    position[e] (P,) lists the output positions yo * Wo + xo that e feeds and value[e] (P, O)
    the weights to all O channels there, so that, with out as (Ho * Wo, O) rows,
    conv(a) = bias + sum_e a[e] * (value[e] scattered to the rows position[e]).
    P is the largest number of positions any input feeds (4 for 3x3 stride 2); shorter lists
    are padded with position 0 and zero weights (they add nothing and need no slicing)."""
    o_ch, c_ch, kh, kw = weight.shape
    h, w = in_hw
    ho, wo = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1

    def taps(n: int, k: int, n_out: int) -> List[List[Tuple[int, int]]]:
        # for every input coordinate: the (kernel tap, output coordinate) pairs with out*stride - pad + tap = in
        return [[(t, (i + padding - t) // stride) for t in range(k)
                 if (i + padding - t) % stride == 0 and 0 <= (i + padding - t) // stride < n_out] for i in range(n)]

    ty, tx = taps(h, kh, ho), taps(w, kw, wo)
    slots = max(len(a) for a in ty) * max(len(b) for b in tx)
    position = np.zeros((c_ch, h, w, slots), np.int64)
    value = np.zeros((c_ch, h, w, slots, o_ch), np.float32)
    for y in range(h):
        for x in range(w):
            for s, ((ky, yo), (kx, xo)) in enumerate((a, b) for a in ty[y] for b in tx[x]):
                position[:, y, x, s] = yo * wo + xo
                value[:, y, x, s] = weight[:, :, ky, kx].T      # (C, O)
    n = c_ch * h * w
    return position.reshape(n, slots), value.reshape(n, slots, o_ch), (ho, wo)


class _GraphBuilder:
    """Minimal helper: nodes with generated output names, initializers from numpy arrays."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list = []
        self.inits: list = []
        self._n = 0
        self._consts: set = set()

    def const(self, name: str, value) -> str:
        if name in self._consts:       # shared constants are declared where first needed
            return name
        self._consts.add(name)
        arr = np.asarray(value)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
        self.inits.append(self.numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, *inputs: str, out: Optional[str] = None, **attrs) -> str:
        self._n += 1
        name = out or f"{op_type.lower()}_{self._n}"
        self.nodes.append(self.helper.make_node(op_type, list(inputs), [name], name=f"n{self._n}_{op_type}", **attrs))
        return name

    def active(self, x: str, n: int, above: str = "zero", block: int = 32) -> Tuple[str, str, str]:
        """The elements of `x` (any shape, n elements) greater than the scalar `above`, in two
        levels: the blocks of `block` consecutive elements whose maximum is greater, then the
        elements of those blocks only (Compress costs per element scanned; activity is sparse and
        clustered, so most blocks are skipped). Returns (positions: 1-D int64, ascending, as
        NonZero's; the selected blocks (B, block); their flattened condition (B * block,) bool),
        so that `Compress(selected, condition)` gives the active values in the same order.
        n not a multiple of `block`: one block of n."""
        if n % block:
            block = n
        nb = n // block
        blocks = self.op("Reshape", x, self.const(f"blocks_{n}_{block}", np.array([nb, block], np.int64)))
        busy = self.op("Greater", self.op("ReduceMax", blocks, axes=[1], keepdims=0), above)
        sel = self.op("Compress", blocks, busy, axis=0)
        cond = self.op("Reshape", self.op("Greater", sel, above), "shape_flat")
        table = self.const(f"arange_{n}_{block}", np.arange(n, dtype=np.int64).reshape(nb, block))
        cand = self.op("Compress", table, busy, axis=0)
        return self.op("Compress", cand, cond), sel, cond      # no axis: Compress flattens `cand`

    def scatter_conv(self, prefix: str, idx: str, values: Optional[str], position: np.ndarray,
                     value: np.ndarray, bias: np.ndarray, out_hw: Tuple[int, int]) -> str:
        """Conv output (O, Ho, Wo) from the active inputs: their positions `idx` (K,) and values
        (K, 1, 1), or values=None for binary (spike) inputs, whose gathered weights need no
        scaling. Tables as `conv_scatter_tables`. The scatter writes rows of O channels into a
        (Ho, Wo, O) copy of the bias (one index per update, not one per element), then one
        Transpose makes it channel-major."""
        ho, wo = out_hw
        yx = np.stack([position // wo, position % wo], -1)          # (N, P, 2): output (yo, xo)
        rows_i = self.op("Gather", self.const(f"{prefix}_position", yx), idx, axis=0)
        # the weight rows depend on the input channel and on which kernel taps reach the outputs
        # (parity, border), not on the position: a few distinct rows (KBs, cache-resident)
        # instead of one per input element (6 MB for conv2)
        rows, kind = np.unique(value.reshape(len(value), -1), axis=0, return_inverse=True)
        kind = self.op("Gather", self.const(f"{prefix}_kind", kind.reshape(-1).astype(np.int64)), idx, axis=0)
        rows_w = self.op("Gather", self.const(f"{prefix}_value", rows.reshape(-1, *value.shape[1:])), kind, axis=0)
        if values is not None:
            rows_w = self.op("Mul", rows_w, values)
        # repeated positions accumulate (reduction="add"); padding adds zeros to position (0, 0)
        bias_rows = self.const(f"{prefix}_bias_rows", np.ascontiguousarray(np.broadcast_to(bias, (ho, wo, len(bias)))))
        out = self.op("ScatterND", bias_rows, rows_i, rows_w, reduction="add")
        return self.op("Transpose", out, perm=[2, 0, 1])

    def common_consts(self) -> None:
        self.const("shape_flat", np.array([-1], np.int64))
        self.const("shape_val", np.array([-1, 1, 1], np.int64))
        self.const("zero", np.float32(0.0))

    def model_bytes(self, name: str, inputs: list, outputs: list, opset: int) -> bytes:
        h = self.helper
        used = {i for n in self.nodes for i in n.input}
        graph = h.make_graph(self.nodes, name, inputs, outputs, [t for t in self.inits if t.name in used])
        m = h.make_model(graph, opset_imports=[h.make_opsetid("", opset)], producer_name="snn_autonomy")
        m.ir_version = 8     # the IR of opset 17; loadable by older ONNX Runtime builds too
        m.doc_string = ("Event-driven graph: run with intra_op_num_threads=1 (ONNX Runtime's CPU ScatterND "
                        "with reduction races on repeated indices with more threads).")
        h.set_model_props(m, {SINGLE_THREAD_KEY: "1"})
        return m.SerializeToString()


def _f32(p: torch.Tensor) -> np.ndarray:
    return p.detach().cpu().numpy().astype(np.float32)


def _conv_tables(conv: torch.nn.Conv2d, in_hw: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """(position, value, bias, (Ho, Wo)) of a torch Conv2d in scatter form."""
    if conv.groups != 1 or tuple(conv.dilation) != (1, 1) or conv.stride[0] != conv.stride[1] \
            or conv.padding[0] != conv.padding[1] or not isinstance(conv.padding[0], int):
        raise ValueError("scatter form supports square integer stride/padding, no groups, no dilation")
    position, value, hw = conv_scatter_tables(_f32(conv.weight), in_hw, conv.stride[0], conv.padding[0])
    bias = _f32(conv.bias) if conv.bias is not None else np.zeros(conv.out_channels, np.float32)
    return position, value, bias, hw


def scatter_conv_onnx(conv: torch.nn.Conv2d, in_hw: Tuple[int, int], binary: bool = False,
                      opset: int = 17) -> bytes:
    """A one-layer ONNX model: input a (C, H, W) >= 0 -> the conv output (O, Ho, Wo) computed in
    scatter form exactly as the sparse step graph does (for checking it against torch)."""
    from onnx import TensorProto, helper

    g = _GraphBuilder()
    g.common_consts()
    position, value, bias, (ho, wo) = _conv_tables(conv, in_hw)
    idx, sel, cond = g.active("a", conv.in_channels * in_hw[0] * in_hw[1])
    vals = None if binary else g.op("Reshape", g.op("Compress", sel, cond), "shape_val")
    g.op("Identity", g.scatter_conv("conv", idx, vals, position, value, bias, (ho, wo)), out="y")
    h, w = in_hw
    return g.model_bytes("scatter_conv",
                         [helper.make_tensor_value_info("a", TensorProto.FLOAT, [conv.in_channels, h, w])],
                         [helper.make_tensor_value_info("y", TensorProto.FLOAT, [conv.out_channels, ho, wo])],
                         opset)


def _sparse_step_onnx(model: ConvSNN, opset: int = 17, block: int = 32) -> bytes:
    """The event-driven step graph of `model` at batch 1: same inputs, outputs and state as the
    dense export (see the module docstring). block: of the two-level searches for active entries
    (`_GraphBuilder.active`); 16, 32 and 64 measured alike, 8 slower. x must hold event counts
    (>= 0), as it always does."""
    from onnx import TensorProto, helper

    cfg = model.cfg
    state = model.init_state(1)
    names = list(state.keys())
    g = _GraphBuilder()
    g.common_consts()
    g.const("beta", np.float32(cfg.beta))
    g.const("theta", np.float32(cfg.threshold))
    g.const("one", np.float32(1.0))

    def lif(current: str, key: str, spikes: bool = True) -> Tuple[str, Optional[str]]:
        """LIF of the input current (broadcastable to the state `key`); writes `key`_out and returns
        (membrane before the reset, spikes as float32 or None if not asked for). Both resets are
        torch's exactly: v * (1 - s) is v or 0, here v - ThresholdedRelu(v) = v - v or v - 0;
        v - s * theta as torch writes it."""
        v = g.op("Add", g.op("Mul", key, "beta"), current)
        s = None
        if spikes or cfg.reset != "zero":
            s = g.op("Cast", g.op("Greater", v, "theta"), to=TensorProto.FLOAT)  # v - theta > 0 <=> v > theta
        if cfg.reset == "zero":
            g.op("Sub", v, g.op("ThresholdedRelu", v, alpha=float(cfg.threshold)), out=f"{key}_out")
        else:
            g.op("Sub", v, g.op("Mul", s, "theta"), out=f"{key}_out")
        return v, s

    # conv1 on log1p(x): only the active pixels are gathered and compressed
    position, value, bias, hw1 = _conv_tables(model.conv1, cfg.in_hw)
    x_idx, x_sel, x_cond = g.active("x", 2 * cfg.in_hw[0] * cfg.in_hw[1], block=block)
    x_val = g.op("Compress", x_sel, x_cond)
    a_val = g.op("Reshape", g.op("Log", g.op("Add", x_val, "one")), "shape_val")   # log1p, as torch exports it
    v1, _ = lif(g.scatter_conv("conv1", x_idx, a_val, position, value, bias, hw1), "v1", spikes=False)

    # conv2 on the layer-1 spikes: found from the membrane (v > theta), as the spikes are
    position, value, bias, hw2 = _conv_tables(model.conv2, hw1)
    s1_idx, _, _ = g.active(v1, model.cfg.channels[0] * hw1[0] * hw1[1], "theta", block)
    _, s2 = lif(g.scatter_conv("conv2", s1_idx, None, position, value, bias, hw2), "v2")

    # fc: rows of the tap matrix (D*in, hidden) at the active entries of the delay buffer
    if _has_delays(model):
        fc_wt, fc_b = _f32(model.fc.matrix()).T, _f32(model.fc.linear.bias)
        kept = g.op("Slice", "buf", g.const("start0", np.array([0], np.int64)),
                    g.const("buf_keep", np.array([cfg.delay_steps - 1], np.int64)))
        s2_row = g.op("Reshape", s2, g.const("buf_row", np.array([1, 1, model.flat], np.int64)))
        fc_in = g.op("Concat", s2_row, kept, axis=0, out="buf_out")
    else:
        fc_wt, fc_b = _f32(model.fc.weight).T, _f32(model.fc.bias)
        fc_in = s2
    fc_idx, _, _ = g.active(fc_in, fc_wt.shape[0], block=block)
    fc_rows = g.op("Gather", g.const("fc_wt", np.ascontiguousarray(fc_wt)), fc_idx, axis=0)
    # (K,) @ (K, hidden): the active buffer entries (all 1: spikes) weight their rows; a matrix
    # product sums them 3x faster than ReduceSum over axis 0 does in ONNX Runtime
    fc_val = g.op("Gather", g.op("Reshape", fc_in, "shape_flat"), fc_idx, axis=0)
    _, s3 = lif(g.op("Add", g.op("MatMul", fc_val, fc_rows), g.const("fc_b", fc_b)), "v3")

    # readout: running sum, mean over the steps taken
    acc = g.op("Add", "acc", g.op("Gemm", s3, g.const("out_w", _f32(model.out.weight)),
                                  g.const("out_b", _f32(model.out.bias)), transB=1), out="acc_out")
    g.op("Div", acc, g.op("Add", "t", "one", out="t_out"), out="logits")

    # synops: sum over layers of spikes x fan-out; input events count with their multiplicity
    fan = model.fanout_maps()
    syn_in = g.op("MatMul", x_val, g.op("Gather", g.const("fan_in", _f32(fan[0]).reshape(-1)), x_idx, axis=0))
    syn_1 = g.op("ReduceSum", g.op("Gather", g.const("fan_1", _f32(fan[1]).reshape(-1)), s1_idx, axis=0),
                 keepdims=0)
    # layers 2 and 3 have one fan-out for all neurons (hidden, classes + 1): count x fan-out
    # (a 1-D MatMul with a fan-out vector takes ONNX Runtime ~8 us for layer 2's 6144 entries)
    syn_2 = g.op("Mul", g.op("ReduceSum", s2, keepdims=0), g.const("fan_2", np.float32(fan[2].flatten()[0])))
    syn_3 = g.op("MatMul", s3, g.const("fan_3", _f32(fan[3]).reshape(-1)))
    # Sum over same-shape (scalar) inputs: with broadcasting ONNX Runtime's Sum takes ~2 us
    g.op("Add", g.op("Sum", syn_in, syn_1, syn_2), syn_3, out="synops")

    io = lambda n, shape: helper.make_tensor_value_info(n, TensorProto.FLOAT, list(shape))  # noqa: E731
    h, w = cfg.in_hw
    inputs = [io("x", (1, 2, h, w))] + [io(k, state[k].shape) for k in names]
    outputs = ([io("logits", (1, cfg.n_classes + 1)), io("synops", (1,))]
               + [io(f"{k}_out", state[k].shape) for k in names])
    return g.model_bytes("snn_step_sparse", inputs, outputs, opset)


def export_onnx(model: ConvSNN, out: Optional[Path] = None, opset: int = 17, int8: bool = False,
                sparse: Optional[bool] = None) -> bytes:
    """The step function as an ONNX model (bytes; also written to `out` when given).

    sparse: the event-driven graph (default for float32), whose work follows the spikes;
    sparse=False: the dense graph (convolutions and one matrix product over all taps).
    int8: the dense graph with the weights of the convolutions and the fully connected layers
    quantised to int8 (ONNX Runtime dynamic quantisation; activations are quantised per step at
    run time). The sparse graph has no Conv/MatMul to quantise, so int8 implies sparse=False.
    The sparse graph must run on one intra-op thread (see the module docstring)."""
    if sparse is None:
        sparse = not int8
    if sparse and int8:
        raise ValueError("int8 quantises the dense graph; use sparse=False (or leave it unset) with int8")
    model = model.eval()
    if sparse:
        with torch.no_grad():
            data = _sparse_step_onnx(model, opset)
    else:
        data = _dense_step_onnx(model, opset)
    if int8:
        data = _quantize_int8(data)
    if out is not None:
        Path(out).write_bytes(data)
    return data


def _dense_step_onnx(model: ConvSNN, opset: int) -> bytes:
    graph = _StepGraph(model)
    h, w = model.cfg.in_hw
    state = model.init_state(1)
    x = torch.zeros(1, 2, h, w)
    names = graph.names
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(graph, (x, *state.values()), buf, opset_version=opset, dynamo=False,
                          input_names=["x"] + names, output_names=["logits", "synops"] + [f"{n}_out" for n in names])
    return buf.getvalue()


def _quantize_int8(data: bytes) -> bytes:
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "f32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(data)
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["Conv", "Gemm", "MatMul"])
        return dst.read_bytes()


def export_graphs(model: ConvSNN, sparse: bool, int8: bool = False, dense_fallback: bool = True) -> OrtGraphs:
    """What an OrtStepper runs, exported from `model` (see `export_onnx` and OrtStepper)."""
    state = model.init_state(1)
    name = "onnxruntime-int8" if int8 else "onnxruntime" if sparse else "onnxruntime-dense"
    return OrtGraphs(step=export_onnx(model, int8=int8, sparse=sparse),
                     dense=export_onnx(model, sparse=False) if sparse and dense_fallback else None,
                     state_shapes={k: tuple(v.shape) for k, v in state.items()},
                     neurons=model.neurons(), name=name)
