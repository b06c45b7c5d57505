"""NIR export: the graph read back from the file, run by a numpy interpreter, reproduces torch."""
from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snn_autonomy.backends.network_arrays import network_arrays
from snn_autonomy.backends.nir_export import export_nir, to_nir
from snn_autonomy.backends.nir_sim import NirSim
from snn_autonomy.paths import model_path
from snn_autonomy.perception.model import ModelConfig, make_model
from snn_autonomy.perception.model_io import load_model

LOGIT_TOL = 1e-4
SAMPLES = 25


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model, manifest = load_model(model_path("perception_default.npz"))
    path = tmp_path_factory.mktemp("nir") / "perception.nir"
    export_nir(model, manifest, path)
    return model, manifest, nir.read(path)


def test_graph_structure_and_parameters(exported):
    model, manifest, graph = exported
    taps = model.cfg.delay_steps
    assert taps > 1
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    expected = {"input": "Input", "conv1": "Conv2d", "lif1": "LIF", "conv2": "Conv2d", "lif2": "LIF",
                "flatten": "Flatten", "fc_tap0": "Affine", "lif3": "LIF", "readout": "Affine", "integrator": "I",
                "output": "Output"}
    expected.update({f"delay_tap{k}": "Delay" for k in range(1, taps)})
    expected.update({f"fc_tap{k}": "Linear" for k in range(1, taps)})
    assert kinds == expected
    edges = {("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "lif2"), ("lif2", "flatten"),
             ("flatten", "fc_tap0"), ("fc_tap0", "lif3"), ("lif3", "readout"), ("readout", "integrator"),
             ("integrator", "output")}
    for k in range(1, taps):
        edges |= {("flatten", f"delay_tap{k}"), (f"delay_tap{k}", f"fc_tap{k}"), (f"fc_tap{k}", "lif3")}
    assert set(graph.edges) == edges and len(graph.edges) == len(edges)

    dt = manifest["input"]["bin_us"] * 1e-6
    assert float(graph.metadata["dt"]) == pytest.approx(dt)
    beta, theta = model.cfg.beta, model.cfg.threshold
    for name in ("lif1", "lif2", "lif3"):
        lif = graph.nodes[name]
        np.testing.assert_allclose(lif.tau, dt / (1 - beta))
        np.testing.assert_allclose(lif.r, 1 / (1 - beta))
        assert np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0) and np.all(lif.v_threshold == theta)
    np.testing.assert_allclose(graph.nodes["integrator"].r, 1 / dt)
    for k in range(1, taps):
        np.testing.assert_allclose(graph.nodes[f"delay_tap{k}"].delay, k * dt)
    conv = graph.nodes["conv1"]
    assert tuple(conv.stride) == (2, 2) and tuple(conv.padding) == (1, 1) and int(conv.groups) == 1
    np.testing.assert_array_equal(graph.nodes["input"].input_type["input"], [2, *model.cfg.in_hw])


def test_nir_graph_reproduces_torch_on_the_test_split(exported, test_split_sample):
    model, _, graph = exported
    sim = NirSim(graph)
    data = test_split_sample
    idx = np.random.default_rng(0).choice(len(data), SAMPLES, replace=False)
    worst = 0.0
    for i in idx:
        counts = data.x[i].astype(np.float32)                      # (T, 2, H, W)
        acc = sim.run(np.log1p(counts))                            # log1p is host preprocessing
        logits = acc / np.arange(1, len(acc) + 1, dtype=np.float32)[:, None]
        with torch.no_grad():
            ref = model(torch.from_numpy(counts)[:, None])[:, 0].numpy()
        worst = max(worst, float(np.abs(logits - ref).max()))
        assert logits[-1, :-1].argmax() == ref[-1, :-1].argmax()
    print(f"NIR vs torch: max logit difference {worst:.2e} over {SAMPLES} samples")
    assert worst < LOGIT_TOL


def test_delays_that_are_not_whole_steps_are_refused(exported):
    _, _, graph = exported
    with pytest.raises(ValueError, match="whole multiples of dt"):
        NirSim(graph, dt=float(graph.metadata["dt"]) * 1.5)


def test_subtract_reset_is_refused():
    _, manifest = load_model(model_path("perception_default.npz"))
    net = network_arrays(make_model(ModelConfig(reset="subtract")), manifest)
    with pytest.raises(ValueError, match="resets by 'subtract'.*reset='zero'"):
        to_nir(net)
