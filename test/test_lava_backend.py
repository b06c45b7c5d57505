"""The Lava back end against torch on the test split of the shipped model.

floating_pt must reproduce torch (same decisions, logits equal to float rounding); fixed_pt
(Lava's bit-accurate Loihi models, 8-bit weights) must keep the accuracy on unambiguous samples.
Runs the Lava worker in .venv-lava; skipped where set-up could not create it (no Python 3.10).
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch

from conftest import ROOT
from snn_autonomy.config import ConfigError
from snn_autonomy.paths import model_path
from snn_autonomy.perception.early_exit import exit_at, predict
from snn_autonomy.perception.heads import Head
from snn_autonomy.perception.runtime import load_stepper

LAVA_PY = ROOT / ".venv-lava" / "bin" / "python"
needs_lava = pytest.mark.skipif(not LAVA_PY.exists(),
                                reason="no .venv-lava (set-up creates it only where a Python 3.10 exists)")
MODEL = model_path("perception_default.npz")
N_FLOAT, N_FIXED = 12, 12    # ~0.4 s per 16-step sequence in the Lava simulator here


@pytest.fixture(scope="module")
def torch_and_data(test_split_sample):
    stepper, manifest = load_stepper(MODEL, "torch")
    return stepper, manifest, test_split_sample


def _torch_logits(stepper, x: np.ndarray) -> np.ndarray:
    """Per-step logits (N, T, C+1) of the torch model, from a fresh state per sample."""
    with torch.no_grad():
        return stepper.model(torch.from_numpy(x.astype(np.float32)).transpose(0, 1)).numpy().transpose(1, 0, 2)


def _decisions(logits: np.ndarray, threshold: float, groups: int):
    """(class after all steps, class at exit, exit step) per sample of (N, T, C+1) logits; the
    classes per sector of a sector model (`groups` of them)."""
    r = exit_at(logits[:, :, :-1].transpose(1, 0, 2), threshold, groups=groups)
    return predict(logits[:, -1, :-1], groups), r.prediction, r.steps


def _alike(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per sample: the same decision (every sector alike)."""
    same = a == b
    return same.all(-1) if same.ndim > 1 else same


@needs_lava
def test_lava_floating_pt_agrees_with_torch(torch_and_data):
    torch_s, manifest, data = torch_and_data
    idx = np.random.default_rng(0).choice(len(data), N_FLOAT, replace=False)
    x = data.x[idx]
    th = manifest["early_exit"]["threshold"]
    ref = _torch_logits(torch_s, x)
    lava, _ = load_stepper(MODEL, "lava", tag="floating_pt")
    try:
        assert lava.name == "lava-floating_pt" and lava.neurons == torch_s.neurons
        t0 = time.perf_counter()
        logits, synops = lava.run_sequences(x)
        wall = time.perf_counter() - t0
        a, b = _decisions(ref, th, torch_s.groups), _decisions(logits, th, torch_s.groups)
        same_full = float(np.mean(_alike(a[0], b[0])))
        same_exit = float(np.mean(_alike(a[1], b[1]) & (a[2] == b[2])))
        diff = np.abs(ref - logits).max((1, 2))
        print(f"lava floating_pt on {N_FLOAT} samples: same decision {same_full:.3f} (16 steps), "
              f"{same_exit:.3f} (early exit at {th:.4f}); max |logit diff| {diff.max():.2e}; "
              f"{lava.last_step_us / 1e3:.1f} ms per Lava step, {wall:.1f} s")
        assert same_full >= 1 - 1.5 / N_FLOAT and same_exit >= 1 - 1.5 / N_FLOAT     # one sample may differ
        assert np.quantile(diff, 0.9) < 1e-4
        assert np.all(synops > 0)
        # the stepping API itself, against the torch Stepper
        for i in range(2):
            r, steps, conf = lava.run_until_exit(x[i], th)
            q, steps_t, conf_t = torch_s.run_until_exit(x[i].astype(np.float32), th)
            assert steps == steps_t and abs(conf - conf_t) < 1e-4
            assert np.abs(r.logits - q.logits).max() < 1e-4 and r.synops == pytest.approx(q.synops)
        lava.reset()
        torch_s.reset()
        for t in range(3):
            r, q = lava.step(x[2, t]), torch_s.step(x[2, t].astype(np.float32))
            assert np.abs(r.logits - q.logits).max() < 1e-4 and r.synops == pytest.approx(q.synops)
    finally:
        lava.close()
    assert not lava.worker.alive


@needs_lava
def test_lava_fixed_pt_keeps_the_accuracy(torch_and_data):
    torch_s, manifest, data = torch_and_data
    idx = np.random.default_rng(1).choice(len(data), N_FIXED, replace=False)
    x, y = data.x[idx], Head.of(manifest).targets(data.y, data.sector_m)[idx]
    th = manifest["early_exit"]["threshold"]
    ref = _torch_logits(torch_s, x)
    with load_stepper(MODEL, "lava", tag="fixed_pt")[0] as lava:
        assert lava.name == "lava-fixed_pt"
        logits, _ = lava.run_sequences(x)
        quant = lava.info["quant"]
    a, b = _decisions(ref, th, torch_s.groups), _decisions(logits, th, torch_s.groups)
    acc_t, acc_l = float(np.mean(a[0] == y)), float(np.mean(b[0] == y))
    exit_t, exit_l = float(np.mean(a[1] == y)), float(np.mean(b[1] == y))
    agree = float(np.mean(a[0] == b[0]))
    print(f"lava fixed_pt on {N_FIXED} samples: sectors right {acc_l:.3f} vs torch {acc_t:.3f} (16 steps), "
          f"{exit_l:.3f} vs {exit_t:.3f} (early exit, mean steps {b[2].mean():.2f} vs {a[2].mean():.2f}); "
          f"same sector class {agree:.3f}; thresholds {quant['vth']}")
    assert acc_l >= acc_t - 0.05 and exit_l >= exit_t - 0.05 and agree >= 0.9
    assert 0 < quant["dv"] < 4096 and all(0 < v < 2 ** 17 for v in quant["vth"])


@needs_lava
def test_worker_timeout_and_crash_are_clear_errors(torch_and_data):
    from snn_autonomy.backends.lava_backend import LavaWorkerError

    x = torch_and_data[2].x[0]
    lava, _ = load_stepper(MODEL, "lava", tag="floating_pt", timeout_s=0.05)
    t0 = time.perf_counter()
    with pytest.raises(LavaWorkerError, match="did not answer"):
        lava.run_until_exit(x, 0.99)
    assert time.perf_counter() - t0 < 30 and not lava.worker.alive
    with pytest.raises(LavaWorkerError, match="failed earlier"):
        lava.step(x[0])
    lava, _ = load_stepper(MODEL, "lava", tag="floating_pt")
    os.killpg(lava.worker.proc.pid, signal.SIGKILL)   # the worker and the Lava processes it started
    with pytest.raises(LavaWorkerError, match="exit status -9"):
        lava.step(x[0])
    lava.close()


def test_missing_lava_interpreter_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_AUTONOMY_LAVA_PYTHON", str(tmp_path / "no-such-python"))
    with pytest.raises(ConfigError, match=r"no Lava interpreter.*setup_env\.py.*\"lava\""):
        load_stepper(MODEL, "lava")


def test_export_lava_writes_a_bundle_numpy_can_load(tmp_path):
    from snn_autonomy.backends.lava_backend import export_lava
    from snn_autonomy.backends.network_arrays import load_network, simulate
    from snn_autonomy.perception.model_io import load_model

    model, manifest = load_model(MODEL)
    path = export_lava(model, manifest, tmp_path / "perception.lava")
    assert path.name == "perception.lava.npz" and path.with_suffix(".json").exists()
    net = load_network(path)
    assert net.delay_taps == manifest["architecture"]["delay_steps"] and net.reset == "zero"
    frames = np.random.default_rng(0).poisson(0.3, (4, 2) + net.in_hw).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(frames)[:, None])[:, 0].numpy()
    assert np.abs(simulate(net, frames) - ref).max() < 1e-4
