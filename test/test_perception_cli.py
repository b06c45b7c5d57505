"""Training, evaluation and calibration of the perception SNN, as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import torch

from snn_autonomy.paths import model_path
from snn_autonomy.perception.dataset import generate, split_spec
from snn_autonomy.perception.model_io import load_model, read_manifest
from snn_autonomy.perception.train import calibrate_model


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "snn_autonomy.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_shipped_threshold_meets_its_calibration_target_on_the_validation_split():
    model, manifest = load_model(model_path("perception_default.npz"))
    spec = split_spec("val")
    cal = calibrate_model(model, generate(spec), spec.label, manifest["early_exit"]["max_loss"])
    assert cal.accuracy_exit >= cal.accuracy_full - manifest["early_exit"]["max_loss"] - 1e-9
    assert cal.mean_steps < manifest["t_max"]
    # the manifest's threshold is what calibration gives on this code and data
    assert abs(cal.threshold - manifest["early_exit"]["threshold"]) < 1e-3


def test_train_on_cpu_then_eval(tmp_path):
    out = tmp_path / "tiny.npz"
    p = _cli("train", "--epochs", "1", "--duration", "1.5", "--device", "cpu", "--out", out, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout)
    assert 0.0 <= summary["accuracy_full"] <= 1.0 and summary["t_max"] == 16
    model, manifest = load_model(out)
    assert manifest["training"]["command"].startswith("snn-autonomy train")
    assert manifest["classes"] == ["clear", "obstacle_left", "obstacle_center", "obstacle_right"]
    assert len(manifest["training"]["history"]) == 1
    x = torch.zeros(3, 1, 2, 48, 64)
    assert model(x).shape == (3, 1, 5)
    png = tmp_path / "curve.png"
    p = _cli("eval", "--model", out, "--episodes", "1", "--duration", "1.5", "--plot", png, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    for key in ("accuracy_full", "accuracy_exit", "mean_steps_exit", "t_max", "oracle_mean_steps",
                "per_class_accuracy", "threshold"):
        assert key in r
    assert r["oracle_mean_steps"] <= r["t_max"] and png.stat().st_size > 1000
    steps = [c["mean_steps"] for c in r["curve"]]
    assert np.all(np.diff(steps) >= -1e-9)  # higher thresholds never exit sooner


def test_eval_refuses_a_corrupt_model(tmp_path):
    import shutil

    bad = tmp_path / "m.npz"
    shutil.copy(model_path("perception_default.npz"), bad)
    shutil.copy(model_path("perception_default.json"), tmp_path / "m.json")
    bad.write_bytes(bad.read_bytes()[:-10])
    p = _cli("eval", "--model", bad, "--json")
    assert p.returncode == 2 and "sha256" in p.stderr and "Traceback" not in p.stderr
    assert read_manifest(bad)["weights"]["file"] == "perception_default.npz"
