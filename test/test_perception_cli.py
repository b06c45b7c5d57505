"""Training, evaluation and calibration of the perception SNN, as a user runs them."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys

import numpy as np
import pytest
import torch

from snn_autonomy.paths import model_path
from snn_autonomy.perception.labels import LabelConfig
from snn_autonomy.perception.model_io import load_model, read_manifest
from snn_autonomy.perception.early_exit import calibrate
from snn_autonomy.perception.train import evaluate_logits, step_logits


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "snn_autonomy.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def test_shipped_threshold_keeps_its_calibration_target_on_unseen_layouts(test_split_sample):
    """The manifest's threshold, calibrated on the validation split, on layouts it was neither
    trained nor calibrated on: early exit costs at most the calibrated loss (plus this sample's
    own noise) and saves steps; calibrating on these samples lands near the shipped threshold."""
    from snn_autonomy.perception.heads import Head
    from snn_autonomy.perception.temporal_prior import exit_threshold, prior_of
    from snn_autonomy.perception.train import exit_targets, prior_metrics

    data = test_split_sample
    model, manifest = load_model(model_path("perception_default.npz"))
    label, head = LabelConfig(**manifest["labels"]), Head.of(manifest)
    th, max_loss = manifest["early_exit"]["threshold"], manifest["early_exit"]["max_loss"]
    logits = step_logits(model, data.x, torch.device("cpu"))
    m = evaluate_logits(logits, data, th, label, head=head)
    noise = 2.0 / np.sqrt(len(data))            # about two standard errors of an accuracy
    assert m["accuracy_exit"] >= m["accuracy_full"] - max_loss - noise, m
    assert m["mean_steps_exit"] < 0.9 * manifest["t_max"], m
    mask, targets = exit_targets(head, data, label)   # as calibrate_and_test calibrates
    cal = calibrate(logits[:, mask, :-1], targets, max_loss, groups=head.groups)
    assert abs(cal.threshold - th) < 0.05, (cal.threshold, th)
    # with the temporal prior (these samples as the robots' runs of decisions): its own threshold
    # keeps the same target against a single window's full accuracy, in fewer steps
    p = prior_metrics(logits, data, exit_threshold(manifest), th, prior_of(manifest), head,
                      manifest["input"]["bin_us"] * manifest["t_max"])
    assert p["chains"] >= 2 * len(set(data.meta[:, 0])) and p["mean_decision_gap_ms"] < 10
    assert p["accuracy_exit"] >= m["accuracy_full"] - max_loss - noise, p
    assert p["mean_steps_exit"] < m["mean_steps_exit"], (p, m)
    for budget in p["by_t_max"].values():   # at attention's caps as well
        assert budget["mean_steps_with_prior"] <= budget["mean_steps_single_window"]


def test_train_with_no_options_is_the_shipped_models_recipe():
    from dataclasses import asdict

    from snn_autonomy.cli import build_parser, config_from_args
    from snn_autonomy.perception.train_config import TrainConfig

    manifest = read_manifest(model_path("perception_default.npz"))
    args = build_parser().parse_args(["train"])
    recipe = asdict(config_from_args(args, TrainConfig))
    shipped = manifest["training"]["config"]
    assert {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.items()} == shipped
    assert list(args.grid) == manifest["input"]["grid"] and args.bin_us == manifest["input"]["bin_us"]
    assert all(d["duration_s"] == args.duration_s for d in manifest["training"]["datasets"].values())
    # trained on the built-in world by the command a user would run (no other world file)
    assert all(d["world"] == "default" for d in manifest["training"]["datasets"].values())
    # the command it was trained by, given again, is this recipe and writes the shipped file
    program, *recorded = shlex.split(manifest["training"]["command"])
    again = build_parser().parse_args(recorded)
    assert program == "snn-autonomy" and recorded[0] == "train"
    assert asdict(config_from_args(again, TrainConfig)) == asdict(config_from_args(args, TrainConfig))
    assert again.out == args.out == "models/perception_default.npz"
    # its training and validation seeds drew their movers as the recipe does; its test split is the world's
    from snn_autonomy.perception.dataset import MoverVariety
    data = manifest["training"]["datasets"]
    assert args.movers == "varied" and data["test"]["movers"] == "the world's"
    assert data["train"]["movers"] == data["val"]["movers"] == json.loads(json.dumps(asdict(MoverVariety())))
    # made by this code's data generator (a change to the world's physics or rendering bumps it)
    from snn_autonomy.perception.dataset import DatasetSpec
    assert all(d["generator"] == DatasetSpec().generator_version for d in data.values())
    # and a value outside the recipe's ranges is refused by name, exit 2
    p = _cli("train", "--epochs", "0", "--json")
    assert p.returncode == 2 and "epochs" in p.stderr and "Traceback" not in p.stderr, p.stderr[-2000:]


def test_train_on_cpu_then_eval(tmp_path):
    out = tmp_path / "tiny.npz"
    # a smoke run: a tiny network on a coarser grid and longer bins than the shipped one, which eval must then use
    p = _cli("train", "--epochs", "1", "--duration", "0.6", "--grid", "32", "24", "--bin-us", "3000", "--channels", "8", "16",
             "--hidden", "64", "--delays", "0", "--device", "cpu", "--movers", "world", "--out", out, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    summary = json.loads(p.stdout)
    assert 0.0 <= summary["accuracy_full"] <= 1.0 and summary["t_max"] == 16
    model, manifest = load_model(out)
    assert manifest["training"]["command"].startswith("snn-autonomy train")
    # --movers world: every split has the world file's moving obstacles, and the manifest says so
    assert {d["movers"] for d in manifest["training"]["datasets"].values()} == {"the world's"}
    assert not out.with_suffix(".ckpt").exists()       # the per-epoch checkpoint goes once the model is saved
    # the recipe's head: a range class per sector, the four-class label derived from them
    assert manifest["head"] == "sectors" and manifest["early_exit"]["groups"] == manifest["sectors"]["count"] == 14
    assert manifest["classes"] == ["clear", "obstacle_left", "obstacle_center", "obstacle_right"]
    assert len(manifest["sectors"]["range_classes"]) == len(manifest["sectors"]["edges_m"]) + 1 == 6
    assert len(manifest["training"]["history"]) == 1
    prior = manifest["early_exit"]["prior"]        # calibrated with the temporal prior as well
    assert 0.0 < prior["threshold"] <= 1.0 + 1e-6 and 1 <= prior["val_mean_steps"] <= 16
    assert manifest["input"]["grid"] == [32, 24] and manifest["input"]["bin_us"] == 3000
    x = torch.zeros(3, 1, 2, 24, 32)
    assert model(x).shape == (3, 1, 14 * 6 + 1)    # the built-in 140 deg camera: 14 sectors
    png = tmp_path / "curve.png"
    p = _cli("eval", "--model", out, "--episodes", "1", "--duration", "0.6", "--plot", png, "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    r = json.loads(p.stdout)
    for key in ("accuracy_full", "accuracy_exit", "mean_steps_exit", "t_max", "oracle_mean_steps",
                "per_class_accuracy", "within_one_class_full", "summary_accuracy_full", "threshold"):
        assert key in r
    assert r["head"] == "sectors" and r["accuracy_full"] <= r["within_one_class_full"]
    assert set(r["prior"]["by_t_max"]) == {"2", "4", "5", "8", "16"} and r["prior"]["threshold"] == prior["threshold"]
    assert all(0.0 <= r[k] <= 1.0 for k in ("near_edge_fraction", "errors_near_edge_full"))
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


def test_the_shipped_model_is_for_the_built_in_lens_and_another_camera_refuses_it(tmp_path):
    """models/perception_default.npz was trained on the built-in world through its 140-degree lens,
    14 sectors; a world with a 90-degree camera refuses it before any run starts."""
    from snn_autonomy.loop.closed_loop import run_closed_loop
    from snn_autonomy.paths import config_path
    from snn_autonomy.perception.errors import ModelFileError
    from snn_autonomy.sim.config import load_world_config

    shipped = read_manifest(model_path("perception_default.npz"))
    assert (shipped["sectors"]["count"], shipped["sectors"]["hfov_deg"], shipped["early_exit"]["groups"]) == (14, 140.0, 14)
    assert load_world_config(str(config_path("world_default.yaml"))).camera.hfov_deg == 140.0
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(f"extends: {config_path('world_default.yaml')}\n"
                      "world: {camera: {hfov_deg: 90.0, projection: pinhole}}\n")
    with pytest.raises(ModelFileError, match="14 sectors span a 140 deg field of view, the camera's is 90 deg"):
        run_closed_loop(agents=1, duration_s=0.1, seed=3, world=str(narrow))
