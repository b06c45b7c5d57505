"""The snn-autonomy command as a user runs it (a real subprocess)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest


def run_cli(*args, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)
    return proc


def test_events_info_bag_json(evt3_bag):
    p = run_cli("events", "info", evt3_bag, "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert {k: info[k] for k in ("events", "triggers", "width", "height", "encoding")} == {
        "events": 82469, "triggers": 2, "width": 1280, "height": 720, "encoding": "evt3"}
    assert set(info) >= {"events", "triggers", "t_first_us", "t_last_us", "width", "height", "encoding"}


@pytest.mark.parametrize("name,events,span_ms", [("faery_evt2.raw", 521252, 95.9),
                                                 ("expelliarmus_evt2_sample.raw", 539481, 50.0)])
def test_events_info_raw_json(raw_files, name, events, span_ms):
    p = run_cli("events", "info", raw_files[name], "--json")
    assert p.returncode == 0, p.stderr
    info = json.loads(p.stdout)
    assert info["events"] == events
    assert round((info["t_last_us"] - info["t_first_us"]) / 1000, 1) == span_ms


def test_events_info_bad_path_is_exit_2(tmp_path):
    bogus = tmp_path / "x.raw"
    bogus.write_bytes(b"not a raw file")
    p = run_cli("events", "info", bogus, "--json")
    assert p.returncode == 2
    assert "error:" in p.stderr and "Traceback" not in p.stderr


def test_bench_codec_json_keys():
    p = run_cli("bench", "codec", "--json", "--events", "200000", "--repeats", "2")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    for k in ("evt3_decode_mev_s", "evt3_encode_mev_s", "evt2_decode_mev_s"):
        assert isinstance(r[k], float) and r[k] > 0
    assert "evt3_trigger_bag" in r["recordings"]


def test_replay_replays_the_bag():
    p = run_cli("replay")
    assert p.returncode == 0, p.stderr
    assert "82469" in p.stdout and "external triggers" in p.stdout


def test_sim_json_keys():
    p = run_cli("sim", "--agents", "2", "--duration", "0.5", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["agents"] == 2 and r["duration_s"] == 0.5
    assert r["real_time_factor"] > 0 and r["events_per_s"] > 0
    assert r["events_per_s_per_agent"] == pytest.approx(r["events_per_s"] / 2, rel=1e-3)


def test_prepare_fills_the_graph_cache_once(tmp_path):
    """`snn-autonomy prepare` (run by set-up) exports the shipped model's graphs into the cache;
    a second run finds them there."""
    import os

    env = {**os.environ, "SNN_AUTONOMY_CACHE": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "prepare", "--json"], capture_output=True,
                           text=True, timeout=300, env=env) for _ in range(2)]
    assert all(p.returncode == 0 for p in runs), runs[0].stderr[-2000:]
    first, second = (json.loads(p.stdout) for p in runs)
    assert (first["graphs_from_cache"], second["graphs_from_cache"]) == (False, True)
    assert first["cache"] == str(tmp_path) and any((tmp_path / "onnx").glob("*.step.onnx"))


def test_sim_rejects_a_bad_world_file(tmp_path):
    bad = tmp_path / "w.yaml"
    bad.write_text("world:\n  camera: {width: 0}\n")
    p = run_cli("sim", "--world", bad, "--json")
    assert p.returncode == 2
    assert "world.camera.width: 0 is below the minimum 8" in p.stderr
