"""Perception core: LIF stepping, early exit, calibration, labels, model files."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from snn_autonomy.perception.early_exit import calibrate, confidence, exit_at, oracle_steps
from snn_autonomy.perception.errors import ModelFileError
from snn_autonomy.perception.labels import CENTER, CLEAR, LEFT, RIGHT, LabelConfig, ambiguous, class_of
from snn_autonomy.perception.model import ConvSNN, ModelConfig, make_model, synaptic_ops
from snn_autonomy.perception.model_io import load_model, manifest_path, save_model


@pytest.mark.parametrize("delays", [0, 4])
def test_stepping_equals_whole_sequence_forward(delays):
    model = make_model(ModelConfig(delay_steps=delays), seed=3).eval()
    x = torch.poisson(torch.full((12, 3, 2, 48, 64), 0.3))
    with torch.no_grad():
        whole = model(x)
        state = model.init_state(3)
        steps = []
        for t in range(12):
            logits, state = model.step(x[t], state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps), whole, rtol=0, atol=0)


def test_surrogate_gradient_flows_and_spikes_are_binary():
    model = make_model(ModelConfig(), seed=0)
    x = torch.poisson(torch.full((6, 2, 2, 48, 64), 0.5))
    state = model.init_state(2)
    _, _, spikes = model.step(x[0], state, trace=True)
    for s in spikes[1:]:
        assert set(torch.unique(s).tolist()) <= {0.0, 1.0}
    model(x).sum().backward()
    assert model.conv1.weight.grad.abs().sum() > 0


def test_synaptic_ops_count_fanout():
    model = make_model(ModelConfig(), seed=0)
    fan = model.fanout_maps()
    assert fan[0].shape == (2, 48, 64)
    # an interior input pixel reaches 8 channels x (2x2 output positions of a stride-2 3x3 conv)
    assert fan[0][0, 10, 10] == 8 * 4 or fan[0][0, 11, 11] == 8 * 4
    one = [torch.zeros(1, *f.shape) for f in fan]
    one[2][0, 0, 0, 0] = 1.0   # a single spike in layer 2 drives every hidden neuron
    assert float(synaptic_ops(one, fan)[0]) == model.cfg.hidden


def test_confidence_measures():
    logits = np.array([[10.0, 0, 0, 0], [0.0, 0, 0, 0]])
    mx = confidence(logits, "max_softmax")
    en = confidence(logits, "entropy")
    assert mx[0] > 0.99 and mx[1] == pytest.approx(0.25)
    assert en[0] > 0.99 and en[1] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        confidence(logits, "magic")


def test_exit_and_oracle_on_a_hand_made_sequence():
    # sample 0: confident and right from step 2; sample 1: wrong at first, right from step 3
    T = 4
    logits = np.zeros((T, 2, 4))
    logits[1:, 0, 2] = 5.0
    logits[:2, 1, 1] = 1.0
    logits[2:, 1, 3] = 1.0
    labels = np.array([2, 3])
    r = exit_at(logits, threshold=0.9)
    assert r.steps.tolist() == [2, 4] and r.prediction.tolist() == [2, 3]
    assert oracle_steps(logits, labels).tolist() == [2, 3]


def test_calibration_meets_its_target():
    rng = np.random.default_rng(0)
    T, N = 16, 2000
    labels = rng.integers(0, 4, N)
    drift = np.linspace(0.2, 3.0, T)[:, None, None]
    logits = rng.normal(0, 1, (T, N, 4)) * 0.8
    logits[np.arange(T)[:, None], np.arange(N)[None], labels[None]] += drift[:, :, 0]
    cal = calibrate(logits, labels, max_loss=0.01)
    assert cal.accuracy_exit >= cal.accuracy_full - 0.01
    assert cal.mean_steps < T
    lower = exit_at(logits, cal.threshold - 0.02)
    assert (lower.prediction == labels).mean() < cal.accuracy_full - 0.01 or cal.threshold <= 0.27


def test_labels_and_ambiguity():
    cfg = LabelConfig()
    assert class_of((0.5, 2.0, 3.0), cfg.near_m) == LEFT
    assert class_of((2.0, 0.4, 0.8), cfg.near_m) == CENTER
    assert class_of((5.0, 5.0, 0.3), cfg.near_m) == RIGHT
    assert class_of((5.0, 1.2, 3.0), cfg.near_m) == CLEAR
    assert ambiguous((0.85, 3.0, 3.0), cfg)        # at the distance boundary
    assert ambiguous((0.40, 3.0, 0.45), cfg)       # two sides about as near
    assert not ambiguous((0.40, 3.0, 0.70), cfg)


def test_model_file_round_trip_and_refusals(tmp_path):
    model = make_model(ModelConfig(), seed=1)
    path = tmp_path / "m.npz"
    save_model(model, path, {"classes": ["a", "b", "c", "d"], "t_max": 16})
    loaded, manifest = load_model(path)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    assert manifest["dense_macs_per_step"] == model.dense_macs_per_step()
    # a flipped byte: the hash no longer matches
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="sha256"):
        load_model(path)
    # a manifest claiming other shapes
    save_model(model, path, {})
    m = json.loads(manifest_path(path).read_text())
    m["architecture"]["hidden"] = 32
    manifest_path(path).write_text(json.dumps(m))
    with pytest.raises(ModelFileError, match="shapes"):
        load_model(path)
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.npz")
    assert isinstance(loaded, ConvSNN)


def test_run_until_exit_agrees_with_exit_on_the_whole_sequence():
    from snn_autonomy.backends.torch_backend import TorchStepper
    from snn_autonomy.perception.early_exit import exit_at

    model = make_model(ModelConfig(), seed=2).eval()
    frames = torch.poisson(torch.full((16, 2, 48, 64), 0.4))
    with torch.no_grad():
        logits = model(frames[:, None]).numpy()[:, :, :-1]
    stepper = TorchStepper(model)
    for threshold in (0.3, 0.5, 0.9, 1.01):
        result, steps, conf = stepper.run_until_exit(frames.numpy(), threshold)
        ref = exit_at(logits, threshold)
        assert steps == int(ref.steps[0])
        assert int(result.logits[:-1].argmax()) == int(ref.prediction[0])
        assert result.synops > 0 and result.neuron_updates == model.neurons()


def test_per_step_confidence_equals_the_vectorised_one():
    from snn_autonomy.perception.early_exit import confidence, confidence_of

    rng = np.random.default_rng(0)
    for logits in rng.normal(0.0, 5.0, (500, 4)):
        for measure in ("max_softmax", "entropy"):
            assert abs(confidence(logits[None], measure)[0] - confidence_of(logits, measure)) < 1e-9
    for logits in rng.normal(0.0, 5.0, (500, 14 * 6)).astype(np.float32):    # a sector head's joint confidence
        for measure in ("max_softmax", "entropy"):
            assert abs(confidence(logits[None], measure, 14)[0] - confidence_of(logits, measure, 14)) < 1e-6
    with pytest.raises(ValueError, match="unknown confidence measure"):
        confidence_of([0.0, 1.0], "margin")


def test_newest_wins_drops_a_backlog_but_not_every_packet_of_a_slow_transport():
    from snn_autonomy.perception.admission import PacketAdmission

    a = PacketAdmission(max_age_ms=10.0, queue_depth=5)
    assert a.admit(2.0) and a.admit(9.9)
    # behind: a queue's worth of old packets is shed, the next one in time is stepped
    assert [a.admit(25.0) for _ in range(5)] == [False] * 5 and a.admit(3.0)
    # every packet late, longer than the queue could hold: the delay is the transport's
    taken = [a.admit(40.0) for _ in range(20)]
    assert taken[:5] == [False] * 5 and all(taken[5:]) and a.transport_late
    assert (a.dropped_stale, a.taken_late) == (10, 15)
    assert a.admit(1.0) and not a.transport_late          # in time again: newest wins as before
    assert not a.admit(30.0)
    assert all(PacketAdmission(0.0, 5).admit(1e6) for _ in range(3))   # 0: every packet taken


def test_grouped_outputs_exit_on_the_least_certain_sector():
    """Sector heads: one softmax per group; the confidence is the smallest group's, predictions
    and labels are per group, and the oracle waits until every group is and stays right."""
    from snn_autonomy.perception.early_exit import confidence_of

    T, G, K = 4, 3, 2
    logits = np.zeros((T, 1, G * K))
    logits[:, 0, 1] = 6.0                 # group 0: class 1, sure from step 1
    logits[:, 0, 2] = 6.0                 # group 1: class 0, sure from step 1
    logits[2:, 0, 5] = 6.0                # group 2: undecided until step 3, then class 1
    conf = confidence(logits, "max_softmax", groups=G)
    assert conf[:2, 0] == pytest.approx([0.5, 0.5]) and conf[2, 0] > 0.99
    assert confidence_of(logits[0, 0], "max_softmax", G) == pytest.approx(0.5)
    r = exit_at(logits, 0.9, groups=G)
    assert r.steps.tolist() == [3] and r.prediction.tolist() == [[1, 0, 1]]
    assert oracle_steps(logits, np.array([[1, 0, 1]]), groups=G).tolist() == [3]
    cal = calibrate(logits, np.array([[1, 0, 1]]), max_loss=0.0, groups=G)
    assert cal.accuracy_full == 1.0 and cal.mean_steps == 3


def test_sector_summary_scan_and_view():
    from snn_autonomy.perception.heads import Head
    from snn_autonomy.perception.sectors import SectorSpec, SectorView, summary_label

    spec = SectorSpec()                   # 9 sectors; edges 0.35 0.6 0.9 1.4 2.2 m
    free = [5, 5, 5, 5, 5, 5, 5, 5, 5]
    assert summary_label(spec, free, 0.9) == CLEAR
    assert summary_label(spec, [5, 5, 5, 5, 2, 5, 5, 5, 5], 0.9) == CENTER
    assert summary_label(spec, [5, 2, 5, 5, 3, 5, 5, 5, 1], 0.9) == RIGHT    # the nearer side
    assert summary_label(spec, [3, 3, 3, 3, 3, 3, 3, 3, 3], 0.9) == CLEAR    # 0.9 m and beyond is clear
    np.testing.assert_allclose(spec.scan_ranges([0, 1, 4, 5]), [0.175, 0.35, 1.4, np.inf])
    head = Head.of({"sectors": spec.as_manifest()})
    assert head.sectors == spec and head.logits == 54 and head.groups == 9
    assert head.mirrored(np.array([[0, 1, 2, 3, 4, 5, 5, 5, 5]])).tolist() == [[5, 5, 5, 5, 4, 3, 2, 1, 0]]
    assert Head.of({}).sectors is None and Head.of({}).logits == 4
    view = spec.view([0, 1, 2, 3, 4, 5, 5, 5, 5])
    assert view.problem() == "" and view.free_m[:3] == (0.0, 0.35, 0.6)
    p = view.percept(approaching=True, confidence=0.8)
    np.testing.assert_allclose(p.angles, spec.angles())
    assert not p.imminent                  # centre sectors 3..5 are at 0.9 m and beyond
    assert spec.view([5, 5, 5, 0, 0, 0, 5, 5, 5]).percept(True, 0.8).imminent
    assert "sector classes" in SectorView((1, 2), (0.3,), 1.5).problem()
    assert "field of view" in SectorView((1, 2, 3), (0.3, 0.3, 0.3), 4.0).problem()
    assert "not finite" in SectorView((1, 2, 3), (0.3, float("nan"), 0.3), 1.5).problem()


def test_evaluation_tells_errors_at_a_class_edge_from_the_rest():
    from snn_autonomy.perception.dataset import Dataset
    from snn_autonomy.perception.heads import Head
    from snn_autonomy.perception.sectors import SectorSpec
    from snn_autonomy.perception.train import evaluate_logits

    spec = SectorSpec(count=3)                       # edges 0.35 0.6 0.9 1.4 2.2 m
    np.testing.assert_allclose(spec.edge_gap([0.9, 0.99, 3.3, 0.1]), [0.0, 0.1, 0.5, (0.35 - 0.1) / 0.35])
    ranges = np.array([[0.88, 1.1, 3.0], [0.5, 1.8, 3.0]], dtype=np.float32)   # 0.88 m: 2 % below the 0.9 m edge
    truth = spec.grade(ranges)                                                # [[2, 3, 5], [1, 4, 5]]
    called = truth.copy()
    called[0, 0] = 3                                 # one error, at the edge: 0.88 m called 0.9-1.4 m
    scores = np.zeros((2, 3, 6), dtype=np.float32)
    scores[np.arange(2)[:, None], np.arange(3), called] = 5.0
    logits = np.zeros((1, 2, 3 * 6 + 1), dtype=np.float32)
    logits[0, :, :-1] = scores.reshape(2, -1)
    data = Dataset(np.zeros((2, 1, 2, 4, 4), np.uint8), np.zeros(2, np.int64), np.zeros(2, np.uint8),
                   np.zeros((2, 1)), ranges)
    r = evaluate_logits(logits, data, 0.5, LabelConfig(), head=Head(spec))
    assert r["accuracy_full"] == pytest.approx(5 / 6)
    assert r["near_edge_fraction"] == pytest.approx(1 / 6) and r["errors_near_edge_full"] == 1.0
    assert r["accuracy_away_from_edges_full"] == 1.0


def test_shipped_model_decides_sectors_and_derives_its_label():
    """The shipped model has a sector head: its decisions carry a range class per sector, and
    the four-class label (for attention and the fleet) is the one the sectors give."""
    from snn_autonomy.events.batch import EVENT_DTYPE, EventBatch
    from snn_autonomy.paths import model_path
    from snn_autonomy.perception.runtime import StreamingPerception
    from snn_autonomy.perception.sectors import summary_label

    eng = StreamingPerception.from_file(model_path("perception_default.npz"), "torch")
    assert eng.head.sectors is not None and eng.head.groups == 14
    rng = np.random.default_rng(3)
    ev = np.zeros(20000, EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 128, ev.size), rng.integers(0, 96, ev.size), rng.integers(0, 2, ev.size)
    ev["t"] = np.sort(rng.integers(0, 200_000, ev.size))
    decisions = eng.push(EventBatch(ev, 128, 96), 200_000)
    # one packet completed several decisions, each with its own id, in order
    assert len(decisions) > 1 and [d.decision_id for d in decisions] == list(range(1, len(decisions) + 1))
    for d in decisions:
        assert len(d.sectors) == 14 and all(0 <= c < 6 for c in d.sectors) and d.scores.size == 0
        assert d.label == summary_label(eng.head.sectors, d.sectors, eng.near_m)
    # a camera of another size: refused with the reason and counted, the stream goes on after it
    before = eng.decisions
    big = EventBatch(np.zeros(0, EVENT_DTYPE), 346, 260)
    assert eng.push(big, 210_000) == [] and eng.geometry_refused == 1
    assert "346x260" in eng.geometry_problem and "128x96" in eng.geometry_problem
    assert "train --bag" in eng.geometry_problem and eng.decisions == before
    ev["t"] += 200_000
    later = eng.push(EventBatch(ev, 128, 96), 400_000)
    assert later and later[0].decision_id == decisions[-1].decision_id + 1


def test_sector_labels_follow_the_camera_field_of_view():
    """One sector per 10 deg: 9 for a 90 deg camera, 14 for the built-in worlds' 140 deg
    wide-angle lens, whose data the generator then labels with 14 sectors."""
    from dataclasses import replace

    from snn_autonomy.config import to_dict
    from snn_autonomy.paths import config_path
    from snn_autonomy.perception.dataset import generate, split_spec
    from snn_autonomy.perception.sectors import SectorSpec
    from snn_autonomy.sim.config import load_world_config

    assert SectorSpec.for_camera(90.0).count == 9 and SectorSpec.for_camera(140.0).count == 14
    # a model's range classes over another camera (a fine-tune onto a robot's own rig): 10 deg sectors
    wide = replace(SectorSpec.for_camera(140.0), edges_m=(0.5, 1.0))
    assert wide.for_view(140.2) is wide
    assert wide.for_view(90.0) == replace(wide, count=9, hfov_deg=90.0)
    default, unseen = (to_dict(load_world_config(str(config_path(f))).camera)
                       for f in ("world_default.yaml", "world_unseen.yaml"))
    assert (default["hfov_deg"], default["projection"], default["vfov_deg"]) == (140.0, "cylindrical", 74.0)
    assert default == unseen                      # the unseen world differs in all but the robot's camera
    data = generate(replace(split_spec("test"), seeds=(301,), duration_s=0.8, robots=1), use_cache=False)
    assert len(data) > 0 and data.sector_m.shape[1] == 14


def test_data_is_cached_by_the_world_it_was_made_in_not_by_the_file_name(tmp_path):
    from snn_autonomy.paths import config_path
    from snn_autonomy.perception.dataset import split_spec

    base = tmp_path / "base.yaml"
    base.write_text(config_path("world_default.yaml").read_text())
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: base.yaml\nworld: {camera: {hfov_deg: 120.0}}\n")
    spec = split_spec("test", str(mine))
    before = spec.key()
    assert spec.key() == before
    base.write_text(base.read_text().replace("wall_height_m: 1.0", "wall_height_m: 1.5"))
    assert spec.key() != before


def test_samples_record_the_robots_odometry(test_split_sample):
    """Each sample carries its robot's heading and forward speed at its window's start and end, as
    odometry would give them (the temporal prior turns and holds with them): the scripted drivers
    cruise at 0.25-0.6 m/s, slow and turn on the spot, within the base's 0.6 m/s."""
    from snn_autonomy.perception.dataset import META_SPEED_END, META_SPEED_START, META_YAW_END, META_YAW_START

    meta = test_split_sample.meta
    yaw, speed = meta[:, [META_YAW_START, META_YAW_END]], meta[:, [META_SPEED_START, META_SPEED_END]]
    assert np.isfinite(yaw).all() and np.isfinite(speed).all()
    assert np.abs(speed).max() <= 0.6 + 1e-9 and np.median(speed) > 0.2
    spin = (np.abs(speed) < 0.03).all(1) & (np.abs(yaw[:, 1] - yaw[:, 0]) > 0.02)
    assert spin.any(), "no sample of a robot turning on the spot"


def test_training_splits_draw_their_movers_per_seed_and_the_test_split_keeps_the_worlds():
    """The model trains on crossings faster and more crowded than the built-in world's (up to
    1 m/s); its test figures are still the world's own movers."""
    from snn_autonomy.perception.dataset import layout_for_seed, split_spec
    from snn_autonomy.sim.config import load_world_config
    from snn_autonomy.sim.world import World

    base = load_world_config(None)
    train, test = split_spec("train"), split_spec("test")
    assert test.movers is None and split_spec("val").movers == train.movers
    assert train.key() != test.key()
    drawn = [layout_for_seed(base, s, 4, True, train.movers).arena.moving_obstacles for s in train.seeds]
    assert len({m.count for m in drawn}) > 1 and all(3 <= m.count <= 9 for m in drawn)
    assert all(m.speed_mps == (0.1, 1.0) and m.textures == base.arena.moving_obstacles.textures for m in drawn)
    assert layout_for_seed(base, 101, 4, True, train.movers) == layout_for_seed(base, 101, 4, True, train.movers)
    assert layout_for_seed(base, 301, 4, True, test.movers).arena.moving_obstacles == base.arena.moving_obstacles
    worlds = [World(layout_for_seed(base, s, 4, True, train.movers)) for s in train.seeds]
    speeds = np.concatenate([np.hypot(*w.obs_vel[w.obs_moving].T) for w in worlds])
    assert max(speeds) > 0.8 and min(speeds) < 0.3


def test_sector_ranges_take_each_ray_in_the_sector_its_bearing_falls_in():
    """45 label rays over 14 sectors of 140 deg: a thing at +35 deg is in the fourth sector from
    the left (40-30 deg), where the sectors' bearings put it; split by index it was the third."""
    from snn_autonomy.perception.labels import sector_minima
    from snn_autonomy.perception.sectors import SectorSpec
    from snn_autonomy.sim.ground_truth import HIT_NONE, HIT_OBSTACLE, RangeScan

    angles = np.radians(np.linspace(70.0, -70.0, 45))
    hit = np.abs(angles - np.radians(35.0)) < np.radians(1.0)
    assert hit.sum() == 1
    scan = RangeScan(angles, np.where(hit, 0.5, 20.0), np.where(hit, HIT_OBSTACLE, HIT_NONE),
                     np.zeros(45, dtype=int), np.zeros(45))
    ranges = sector_minima(scan, 14)
    assert ranges[3] == 0.5 and all(r == np.inf for k, r in enumerate(ranges) if k != 3)
    assert SectorSpec.for_camera(140.0).angles()[3] == pytest.approx(np.radians(35.0))


def test_a_model_is_refused_for_a_camera_of_another_field_of_view():
    from snn_autonomy.perception.errors import ModelFileError
    from snn_autonomy.perception.heads import Head, check_field_of_view
    from snn_autonomy.perception.model_io import read_manifest
    from snn_autonomy.paths import resolve_model

    head = Head.of(read_manifest(resolve_model(None)))
    check_field_of_view(head, 140.0)      # the shipped model, for the built-in lens
    check_field_of_view(Head(), 90.0)     # a four-class model has no sectors to lay over the view
    with pytest.raises(ModelFileError, match="14 sectors span a 140 deg field of view, the camera's is 90 deg"):
        check_field_of_view(head, 90.0)
    # the robot's loop (closed-loop runs, the fused robot node) asks before it drives
    from snn_autonomy.loop.fused import FusedAgent
    from snn_autonomy.perception.runtime import StreamingPerception

    engine = StreamingPerception.from_file(resolve_model(None), backend="torch")
    assert FusedAgent(engine, 128, 96, 140.0).perception is engine
    with pytest.raises(ModelFileError, match="train a model for this camera"):
        FusedAgent(engine, 128, 96, 90.0)


def test_splits_generated_in_one_pool_are_those_generated_one_by_one_and_are_cached(tmp_path, monkeypatch):
    from dataclasses import replace

    from snn_autonomy.perception.dataset import generate, generate_all, split_spec

    monkeypatch.setenv("SNN_AUTONOMY_CACHE", str(tmp_path))
    specs = {s: replace(split_spec(s), seeds=split_spec(s).seeds[:2], duration_s=0.8, robots=1) for s in ("val", "test")}
    together = generate_all(specs, workers=2)
    for name, ds in specs.items():
        alone = generate(ds, use_cache=False)
        assert len(alone) > 0 and np.array_equal(together[name].x, alone.x) and np.array_equal(together[name].y, alone.y)
    assert len(list((tmp_path / "datasets").glob("*.npz"))) == 2
    again = generate_all(specs, progress=lambda *_: pytest.fail("cached datasets were generated again"))
    assert all(np.array_equal(again[n].sector_m, together[n].sector_m) for n in specs)


def test_a_process_that_wants_a_dataset_being_made_waits_and_loads_it(tmp_path, monkeypatch):
    """Two processes (two test workers, two CLI runs) that want one uncached dataset: the second
    waits on the first one's lock and loads what it made, without generating it again."""
    import threading
    from dataclasses import replace

    from snn_autonomy.perception.dataset import cache_dir, cache_locks, generate, split_spec

    monkeypatch.setenv("SNN_AUTONOMY_CACHE", str(tmp_path))
    ds = replace(split_spec("test"), seeds=split_spec("test").seeds[:1], duration_s=0.8, robots=1)
    path = cache_dir() / f"{ds.key()}.npz"
    generated, got = [], []
    second = threading.Thread(target=lambda: got.append(generate(ds, workers=1, progress=lambda *a: generated.append(a))))
    with cache_locks([path]):             # the first process, making it
        second.start()
        made = generate(ds, workers=1, use_cache=False)
        np.savez_compressed(path, x=made.x, y=made.y, approaching=made.approaching, meta=made.meta,
                            sector_m=made.sector_m)
        assert second.is_alive() and not got, "the second went on while the first held the lock"
    second.join(60)
    assert got and generated == [], "the second generated the dataset again"
    assert np.array_equal(got[0].x, made.x) and np.array_equal(got[0].sector_m, made.sector_m)


def test_fine_tuning_onto_another_sector_count_keeps_the_layers_and_gives_a_fresh_readout():
    from snn_autonomy.perception.train import retargeted

    base = make_model(ModelConfig(in_hw=(12, 16), channels=(4, 8), hidden=16, n_classes=9 * 6, delay_steps=3), seed=1)
    same = retargeted(base, 9 * 6)
    assert same is not base and torch.equal(same.out.weight, base.out.weight)
    wide = retargeted(base, 14 * 6)
    assert wide.out.out_features == 14 * 6 + 1 and wide.cfg.n_classes == 14 * 6
    for name, value in base.state_dict().items():
        if not name.startswith("out."):
            assert torch.equal(wide.state_dict()[name], value), name


def test_a_synops_weight_trains_a_network_that_spends_fewer_synaptic_operations(test_split_sample):
    """`synops_weight` puts the spiking layers' synaptic operations into the loss: the same recipe,
    seed and data with it gives a network that spends fewer of them per step on samples it was not
    trained on, and every epoch's record says how many it spent."""
    from snn_autonomy.perception.dataset import InputSpec
    from snn_autonomy.perception.heads import Head
    from snn_autonomy.perception.sectors import SectorSpec
    from snn_autonomy.perception.train import train_model
    from snn_autonomy.perception.train_config import TrainConfig

    data = test_split_sample
    train, val = data.take(np.arange(0, 256)), data.take(np.arange(256, 320))
    head = Head(SectorSpec(count=data.sector_m.shape[1], hfov_deg=140))
    held_out = torch.from_numpy(data.x[600:664].astype(np.float32)).transpose(0, 1)
    spent = {}
    for weight in (0.0, 2.0):
        cfg = TrainConfig(epochs=3, channels=(4, 8), hidden=16, delay_steps=0, device="cpu", batch_size=64,
                          synops_weight=weight)
        model, history = train_model(cfg, train, val, InputSpec(), head)
        assert len(history) == 3 and all(row["synops_per_step"] > 0 for row in history)
        with torch.no_grad():
            logits, ops = model.forward_counting(held_out, model.fanout_maps())
        assert torch.equal(logits, model(held_out)) and ops.shape == held_out.shape[:2]
        spent[weight] = float(ops.mean())
    assert 0 < spent[2.0] < 0.75 * spent[0.0], spent
