"""Back ends agree: ONNX Runtime against torch on the test split of the shipped model."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from snn_autonomy.backends import make_stepper
from snn_autonomy.paths import model_path
from snn_autonomy.perception.dataset import generate, split_spec
from snn_autonomy.perception.early_exit import confidence
from snn_autonomy.perception.model_io import load_model

LOGIT_TOL = 1e-4


def _decisions(stepper, x, threshold):
    out = []
    for sample in x:
        r, steps, _ = stepper.run_until_exit(sample.astype(np.float32), threshold)
        out.append((int(r.logits[:-1].argmax()), steps, r.logits))
    return out


def test_onnxruntime_agrees_with_torch_on_the_test_split():
    torch_s, manifest = make_stepper("torch", model_path("perception_default.npz"))
    ort_s, _ = make_stepper("onnxruntime", model_path("perception_default.npz"))
    data = generate(split_spec("test"))
    idx = np.random.default_rng(0).choice(len(data), 300, replace=False)
    th = manifest["early_exit"]["threshold"]
    a = _decisions(torch_s, data.x[idx], th)
    b = _decisions(ort_s, data.x[idx], th)
    same = np.mean([p[0] == q[0] and p[1] == q[1] for p, q in zip(a, b)])
    assert same >= 0.999
    diff = max(float(np.abs(p[2] - q[2]).max()) for p, q in zip(a, b) if p[1] == q[1])
    assert diff < LOGIT_TOL
    assert float(confidence(a[0][2][None, :-1])[0]) > 0


def test_unavailable_provider_is_a_clear_error():
    with pytest.raises(RuntimeError, match="not available here"):
        make_stepper("onnxruntime", model_path("perception_default.npz"), providers=["NoSuchExecutionProvider"])
    with pytest.raises(ValueError, match="unknown back end"):
        make_stepper("tpu", model_path("perception_default.npz"))


def test_export_cli_writes_a_valid_onnx_step_graph(tmp_path):
    out = tmp_path / "step.onnx"
    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "export", "--format", "onnx", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    m = onnx.load(str(out))
    onnx.checker.check_model(m)
    assert [i.name for i in m.graph.input][:2] == ["x", "v1"]
    assert [o.name for o in m.graph.output][:2] == ["logits", "synops"]
    for fmt, name in (("nir", "net.nir"), ("lava", "bundle.npz")):
        p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "export", "--format", fmt, "--out",
                            str(tmp_path / name)], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0 and (tmp_path / name).stat().st_size > 1_000_000, p.stderr
    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "export", "--format", "nir", "--int8", "--out",
                        str(tmp_path / "x.nir")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "onnx only" in p.stderr


def test_int8_quantisation_cost_is_small_and_measured():
    from snn_autonomy.perception.labels import LabelConfig

    f32, manifest = make_stepper("onnxruntime", model_path("perception_default.npz"))
    i8, _ = make_stepper("onnxruntime", model_path("perception_default.npz"), int8=True)
    assert i8.name == "onnxruntime-int8"
    data = generate(split_spec("test"))
    sure = np.flatnonzero(~data.ambiguous(LabelConfig(**manifest["labels"])))
    idx = np.random.default_rng(1).choice(sure, 300, replace=False)
    th = manifest["early_exit"]["threshold"]
    a = _decisions(f32, data.x[idx], th)
    b = _decisions(i8, data.x[idx], th)
    acc32 = np.mean([p[0] == y for p, y in zip(a, data.y[idx])])
    acc8 = np.mean([q[0] == y for q, y in zip(b, data.y[idx])])
    agree = np.mean([p[0] == q[0] for p, q in zip(a, b)])
    print(f"int8: accuracy {acc8:.3f} vs float {acc32:.3f}, same decision on {agree:.3f}")
    assert agree >= 0.95 and acc8 >= acc32 - 0.03


def test_bench_backends_json_keys():
    import json

    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "bench", "backends", "--steps", "100", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    for name in ("torch", "onnxruntime", "onnxruntime_int8", "snntorch", "norse", "spikingjelly"):
        assert r[name]["step_p50_us"] > 0 and r[name]["step_p99_us"] >= r[name]["step_p50_us"], name
    assert "early_exit_overhead_pct" in r and r["dense_bound"]["dense_macs_per_step"] > 0


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
