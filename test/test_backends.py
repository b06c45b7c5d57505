"""Back ends agree: ONNX Runtime (event-driven and dense graphs) against torch on the test split
of the shipped model; the scatter-form convolution against torch's Conv2d."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from snn_autonomy.config import ConfigError
from snn_autonomy.paths import model_path
from snn_autonomy.perception.early_exit import confidence, predict
from snn_autonomy.perception.model_io import load_model
from snn_autonomy.perception.runtime import load_stepper

LOGIT_TOL = 1e-4


def _decisions(stepper, x, threshold):
    """(prediction, steps, logits) per sample; the prediction is a class per sector of a sector
    model (the stepper's groups), so == compares them sector by sector."""
    out = []
    for sample in x:
        r, steps, _ = stepper.run_until_exit(sample.astype(np.float32), threshold)
        out.append((predict(r.logits[:-1], stepper.groups), steps, r.logits))
    return out


def test_onnxruntime_agrees_with_torch_on_the_test_split(test_split_sample):
    torch_s, manifest = load_stepper(model_path("perception_default.npz"), "torch")
    ort_s, _ = load_stepper(model_path("perception_default.npz"), "onnxruntime")
    data = test_split_sample
    idx = np.random.default_rng(0).choice(len(data), 300, replace=False)
    th = manifest["early_exit"]["threshold"]
    a = _decisions(torch_s, data.x[idx], th)
    b = _decisions(ort_s, data.x[idx], th)
    assert ort_s.name == "onnxruntime"            # the default: the event-driven graph
    assert torch_s.groups == ort_s.groups == 14    # the shipped sector head, from the manifest
    same = np.mean([np.array_equal(p[0], q[0]) and p[1] == q[1] for p, q in zip(a, b)])
    diff = max(float(np.abs(p[2] - q[2]).max()) for p, q in zip(a, b) if p[1] == q[1])
    print(f"sparse ONNX vs torch: same decision and step on {same:.4f}, max logit diff {diff:.2e}")
    assert same >= 0.999
    assert diff < LOGIT_TOL
    assert float(confidence(a[0][2][None, :-1], groups=torch_s.groups)[0]) > 0


def _scatter_conv_session(conv, hw, binary):
    import onnxruntime as ort

    from snn_autonomy.backends.onnx_backend import scatter_conv_onnx

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1          # ScatterND with reduction races with more (module docstring)
    return ort.InferenceSession(scatter_conv_onnx(conv, hw, binary), opts, providers=["CPUExecutionProvider"])


def test_scatter_form_convolution_matches_torch_conv2d():
    """The sparse graph's convolutions (active inputs, Gather of precomputed rows, ScatterND with
    reduction add) equal torch's Conv2d, stride 2 padding 1, at any activity, even and odd sizes."""
    model, _ = load_model(model_path("perception_default.npz"))
    torch.manual_seed(0)
    cases = [(model.conv1, (48, 64), False), (model.conv2, (24, 32), True),
             (torch.nn.Conv2d(3, 5, 3, stride=2, padding=1), (7, 9), False)]
    rng = np.random.default_rng(0)
    for conv, hw, binary in cases:
        sess = _scatter_conv_session(conv, hw, binary)
        for density in (0.0, 0.005, 0.05, 0.3, 1.0):
            a = (rng.random((conv.in_channels, *hw)) < density).astype(np.float32)
            if not binary:
                a *= np.log1p(rng.poisson(2.0, a.shape) + 1).astype(np.float32)
            got = sess.run(None, {"a": a})[0]
            with torch.no_grad():
                want = conv(torch.from_numpy(a)[None])[0].numpy()
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5, err_msg=f"{hw} density {density}")


def test_sparse_and_dense_graphs_agree_step_for_step(test_split_sample):
    """Event-driven and dense ONNX graphs: same logits, synops and state after every step, on
    real test-split frames, on all-zero frames from a fresh state (nothing active anywhere: empty
    index lists) and on a dense random frame."""
    path = model_path("perception_default.npz")
    sparse, _ = load_stepper(path, "onnxruntime", dense_fallback=False)
    dense, _ = load_stepper(path, "onnxruntime", sparse=False)
    assert dense.name == "onnxruntime-dense"
    data = test_split_sample
    idx = np.random.default_rng(2).choice(len(data), 4, replace=False)
    zero = np.zeros_like(data.x[0, 0], dtype=np.float32)
    busy = np.random.default_rng(3).poisson(3.0, zero.shape).astype(np.float32)
    real = data.x[idx].reshape(-1, *zero.shape).astype(np.float32)
    frames = [zero, zero] + list(real[:32]) + [busy, zero] + list(real[32:]) + [zero]
    for s in (sparse, dense):
        s.reset()
    worst = 0.0
    for t, f in enumerate(frames):
        a, b = sparse.step(f), dense.step(f)
        worst = max(worst, float(np.abs(a.logits - b.logits).max()))
        assert np.abs(a.logits - b.logits).max() < LOGIT_TOL, t
        assert a.synops == b.synops, t
        np.testing.assert_array_equal(sparse.state["buf"], dense.state["buf"])   # layer-2 spikes
        np.testing.assert_array_equal(sparse.state["t"], dense.state["t"])
        for k in ("v1", "v2", "v3", "acc"):
            np.testing.assert_allclose(sparse.state[k], dense.state[k], rtol=1e-5, atol=1e-4, err_msg=f"{k} step {t}")
    print(f"sparse vs dense over {len(frames)} steps: max logit diff {worst:.2e}")


def test_busy_frames_take_the_dense_graph_and_the_state_carries_over(test_split_sample):
    """A burst (scattered noise on most pixels) in the middle of real frames: the default stepper
    runs those steps in the dense graph and continues in the event-driven one from the same state."""
    from snn_autonomy.backends.ort_stepper import DENSE_ABOVE

    path = model_path("perception_default.npz")
    mixed, _ = load_stepper(path, "onnxruntime")
    torch_s, _ = load_stepper(path, "torch")
    real = test_split_sample.x[:2].reshape(-1, 2, 48, 64).astype(np.float32)
    noise = np.random.default_rng(5).poisson(0.3, (6, 2, 48, 64)).astype(np.float32)
    assert all(np.count_nonzero(f) > DENSE_ABOVE for f in noise)
    assert all(np.count_nonzero(f) <= DENSE_ABOVE for f in real[:10])
    frames = list(real[:10]) + list(noise) + list(real[10:20])
    mixed.reset()
    torch_s.reset()
    for t, f in enumerate(frames):
        a, b = mixed.step(f), torch_s.step(f)
        assert np.abs(a.logits - b.logits).max() < LOGIT_TOL, t
    assert mixed.dense_steps == len(noise)


def test_sparse_graph_is_the_default_and_int8_is_dense():
    from snn_autonomy.backends.onnx_backend import OrtStepper, export_onnx

    model, _ = load_model(model_path("perception_default.npz"))
    ops = {n.op_type for n in onnx.load_from_string(export_onnx(model)).graph.node}
    assert {"Compress", "ScatterND", "Gather"} <= ops and "Conv" not in ops
    assert "Conv" in {n.op_type for n in onnx.load_from_string(export_onnx(model, sparse=False)).graph.node}
    with pytest.raises(ValueError, match="dense graph"):
        export_onnx(model, int8=True, sparse=True)
    # more than one thread: the dense graph by default, the sparse one refused
    assert OrtStepper.from_model(model, threads=2).name == "onnxruntime-dense"
    with pytest.raises(ValueError, match="one intra-op thread"):
        OrtStepper.from_model(model, threads=2, sparse=True)


def test_unavailable_provider_is_a_clear_error():
    with pytest.raises(ConfigError, match="not available here"):
        load_stepper(model_path("perception_default.npz"), "onnxruntime", providers=["NoSuchExecutionProvider"])
    with pytest.raises(ValueError, match="unknown back end"):
        load_stepper(model_path("perception_default.npz"), "tpu")


def test_export_cli_writes_a_valid_onnx_step_graph(tmp_path):
    out = tmp_path / "step.onnx"
    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "export", "--format", "onnx", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    m = onnx.load(str(out))
    onnx.checker.check_model(m)
    assert [i.name for i in m.graph.input][:2] == ["x", "v1"]
    assert [o.name for o in m.graph.output][:2] == ["logits", "synops"]
    # the other formats through the same command, in this process (it has torch loaded already)
    from snn_autonomy.cli import main

    for fmt, name in (("nir", "net.nir"), ("lava", "bundle.npz")):
        assert main(["export", "--format", fmt, "--out", str(tmp_path / name)]) == 0
        assert (tmp_path / name).stat().st_size > 1_000_000
    assert main(["export", "--format", "nir", "--int8", "--out", str(tmp_path / "x.nir")]) == 2


def test_int8_quantisation_cost_is_small_and_measured(test_split_sample):
    from snn_autonomy.perception.heads import Head

    f32, manifest = load_stepper(model_path("perception_default.npz"), "onnxruntime")
    i8, _ = load_stepper(model_path("perception_default.npz"), "onnxruntime", int8=True)
    assert i8.name == "onnxruntime-int8"
    data = test_split_sample
    idx = np.random.default_rng(1).choice(len(data), 300, replace=False)
    y = Head.of(manifest).targets(data.y, data.sector_m)[idx]
    th = manifest["early_exit"]["threshold"]
    a = _decisions(f32, data.x[idx], th)
    b = _decisions(i8, data.x[idx], th)
    acc32 = np.mean([p[0] == t for p, t in zip(a, y)])        # sectors right
    acc8 = np.mean([q[0] == t for q, t in zip(b, y)])
    agree = np.mean([p[0] == q[0] for p, q in zip(a, b)])     # sectors alike
    print(f"int8: accuracy {acc8:.3f} vs float {acc32:.3f}, same sector class on {agree:.3f}")
    assert agree >= 0.9 and acc8 >= acc32 - 0.03


def test_bench_backends_json_keys():
    import json

    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "bench", "backends", "--steps", "100", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    for name in ("torch", "onnxruntime", "onnxruntime_dense", "onnxruntime_int8", "snntorch", "norse", "spikingjelly"):
        assert r[name]["step_p50_us"] > 0 and r[name]["step_p99_us"] >= r[name]["step_p50_us"], name
    assert "early_exit_overhead_pct" in r and r["dense_bound"]["dense_macs_per_step"] > 0
    assert r["input"]["source"] == "test split"
    sp = r["sparse"]
    assert 0 < sp["active_fraction"]["input_pixels"] < 0.05 and 0 < sp["macs_per_step"] < r["dense_bound"]["dense_macs_per_step"]
    assert sp["useful_macs_per_step"] <= sp["macs_per_step"]


def test_bench_backends_refuses_an_execution_provider_it_does_not_have():
    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "bench", "backends", "--steps", "100",
                        "--provider", "NoSuchExecutionProvider", "--json"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 2 and p.stdout == ""
    assert "NoSuchExecutionProvider" in p.stderr and "CPUExecutionProvider" in p.stderr, p.stderr[-2000:]


def test_bench_backends_provider_entry_times_the_session_it_got_and_checks_its_logits():
    """What `bench backends --provider P` reports for P, shown with the CPU provider (the one here):
    the providers the session really got, and its logits against the CPU dense graph's."""
    from snn_autonomy.backends import make_stepper
    from snn_autonomy.bench.backends import _provider_entry, bench_frames, provider_key

    model, manifest = load_model(model_path("perception_default.npz"))
    frames = bench_frames(manifest, 10)
    ref = make_stepper("onnxruntime", model, manifest, sparse=False)
    e = _provider_entry(model, manifest, "CPUExecutionProvider", frames, 50, ref)
    assert provider_key("CUDAExecutionProvider") == "onnxruntime_cuda"
    assert e["session_providers"] == ["CPUExecutionProvider"] and e["compared_steps"] == len(frames)
    assert e["max_logit_diff_vs_cpu_dense"] < 1e-4 and e["step_p50_us"] > 0
    # the check compares: a stepper of other weights is far from the reference
    other, _ = load_model(model_path("perception_default.npz"))
    with torch.no_grad():
        for prm in other.parameters():
            prm.mul_(0.5)
    unnamed = {**manifest, "weights": {}}     # not the shipped weights: not their cached graphs
    far = _provider_entry(other, unnamed, "CPUExecutionProvider", frames, 10, ref)
    assert far["max_logit_diff_vs_cpu_dense"] > 1e-2


@pytest.mark.parametrize("library", ["snntorch", "norse", "spikingjelly"])
def test_peer_libraries_compute_the_same_network(library):
    """The bench compares like with like: each peer's version of the network, with the same
    weights, gives the shipped model's logits step for step."""
    from snn_autonomy.bench.backends import _peer_step

    model, _ = load_model(model_path("perception_default.npz"))
    frames = torch.from_numpy(np.random.default_rng(3).poisson(0.3, (12, 1, 2, 48, 64)).astype(np.float32))
    step = _peer_step(library, model, frames)
    with torch.no_grad():
        want = model(frames)[:, 0]
    for t in range(len(frames)):
        acc = step(t)
        assert torch.allclose(acc[0] / (t + 1), want[t], atol=1e-4), (library, t)


def test_exported_graphs_are_cached_on_disk_and_reused_without_torch(tmp_path, test_split_sample):
    """The second start of the same model takes its graphs from the cache and computes the same
    steps; a corrupt entry is dropped and exported afresh; an unwritable cache only costs time;
    another model or graph variant is another entry."""
    from snn_autonomy.backends.graph_cache import GraphCache
    from snn_autonomy.backends.ort_stepper import OrtStepper
    from snn_autonomy.perception.model_io import verified_manifest

    path = model_path("perception_default.npz")
    manifest = verified_manifest(path)
    loads = []

    def load():
        loads.append(1)
        return load_model(path)[0]

    cache = GraphCache(tmp_path / "onnx")
    first = OrtStepper.open(manifest, load, cache=cache)
    second = OrtStepper.open(manifest, load, cache=cache)
    assert (first.graphs_from_cache, second.graphs_from_cache, len(loads)) == (False, True, 1)
    frames = test_split_sample.x[:3].reshape(-1, 2, 48, 64).astype(np.float32)
    for f in frames:
        a, b = first.step(f), second.step(f)
        np.testing.assert_array_equal(a.logits, b.logits)
        assert a.synops == b.synops
    key = cache.key(manifest["weights"]["sha256"], sparse=True, int8=False, dense=True)
    assert key != cache.key("0" * 64, sparse=True, int8=False, dense=True)
    assert key != cache.key(manifest["weights"]["sha256"], sparse=False, int8=False, dense=False)
    (tmp_path / "onnx" / f"{key}.step.onnx").write_bytes(b"not a graph")
    third = OrtStepper.open(manifest, load, cache=cache)
    assert not third.graphs_from_cache and len(loads) == 2
    assert OrtStepper.open(manifest, load, cache=cache).graphs_from_cache        # written again, whole
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert not OrtStepper.open(manifest, load, cache=GraphCache(blocked / "onnx")).graphs_from_cache
    # a fresh interpreter opens the cached model without importing torch
    code = ("import sys\nfrom snn_autonomy.backends.graph_cache import GraphCache\n"
            "from snn_autonomy.backends.ort_stepper import OrtStepper\n"
            "from snn_autonomy.perception.model_io import verified_manifest\n"
            f"m = verified_manifest({str(path)!r})\n"
            f"s = OrtStepper.open(m, None, cache=GraphCache({str(tmp_path / 'onnx')!r}))\n"
            "print(s.graphs_from_cache, 'torch' in sys.modules)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.stdout.split() == ["True", "False"], p.stderr[-2000:]
