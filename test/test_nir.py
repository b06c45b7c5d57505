"""NIR export: the graph read back from the file reproduces torch, run by a numpy interpreter
and, for the delay-free model, imported by snnTorch and by Norse."""
from __future__ import annotations

import copy

import nir
import numpy as np
import pytest
import torch

from snn_autonomy.backends.network_arrays import network_arrays
from snn_autonomy.backends.nir_export import export_nir, to_nir
from snn_autonomy.backends.nir_sim import NirSim
from snn_autonomy.paths import DEFAULT_MODEL, NODELAY_MODEL, model_path
from snn_autonomy.perception.model import ModelConfig, make_model
from snn_autonomy.perception.model_io import load_model

LOGIT_TOL = 1e-4
SAMPLES = 25
PEER_SAMPLES = 10
SNNTORCH_DT = 1e-4      # snnTorch's import_from_nir steps every LIF at 0.1 ms, whatever the graph says


def _export(tmp_path_factory, name: str, dt_s=None):
    model, manifest = load_model(model_path(name))
    path = tmp_path_factory.mktemp("nir") / "perception.nir"
    export_nir(model, manifest, path, dt_s=dt_s)
    return model, manifest, nir.read(path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return _export(tmp_path_factory, DEFAULT_MODEL)


def _samples(data, n: int):
    return [data.x[i].astype(np.float32) for i in np.random.default_rng(0).choice(len(data), n, replace=False)]


def _torch_logits(model, counts: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(counts)[:, None])[:, 0].numpy()


def _float64(model):
    """A float64 copy of a torch model: the reference against which no spike hangs on rounding."""
    return copy.deepcopy(model).double()


def _running_mean(per_step) -> np.ndarray:
    """The logits the host reads: the graph's per-step readout averaged over the steps so far."""
    out = np.asarray(per_step, dtype=np.float32)
    return np.cumsum(out, axis=0) / np.arange(1, len(out) + 1, dtype=np.float32)[:, None]


def test_graph_structure_and_parameters(exported):
    model, manifest, graph = exported
    taps = model.cfg.delay_steps
    assert taps > 1
    kinds = {name: type(node).__name__ for name, node in graph.nodes.items()}
    expected = {"input": "Input", "conv1": "Conv2d", "lif1": "LIF", "conv2": "Conv2d", "lif2": "LIF",
                "flatten": "Flatten", "fc_tap0": "Affine", "lif3": "LIF", "readout": "Affine", "output": "Output"}
    expected.update({f"delay_tap{k}": "Delay" for k in range(1, taps)})
    expected.update({f"fc_tap{k}": "Linear" for k in range(1, taps)})
    assert kinds == expected
    edges = {("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"), ("conv2", "lif2"), ("lif2", "flatten"),
             ("flatten", "fc_tap0"), ("fc_tap0", "lif3"), ("lif3", "readout"), ("readout", "output")}
    for k in range(1, taps):
        edges |= {("flatten", f"delay_tap{k}"), (f"delay_tap{k}", f"fc_tap{k}"), (f"fc_tap{k}", "lif3")}
    assert set(graph.edges) == edges and len(graph.edges) == len(edges)

    dt = manifest["input"]["bin_us"] * 1e-6
    assert float(graph.metadata["dt"]) == pytest.approx(dt) and float(graph.metadata["bin_s"]) == pytest.approx(dt)
    beta, theta = model.cfg.beta, model.cfg.threshold
    for name in ("lif1", "lif2", "lif3"):
        lif = graph.nodes[name]
        np.testing.assert_allclose(lif.tau, dt / (1 - beta))
        assert np.all(lif.r == 1) and np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0)
        assert np.all(lif.v_threshold == theta)
    # the input gain 1 / (1 - beta) is folded into the weights and biases into each LIF, not the readout's
    gain = 1 / (1 - beta)
    np.testing.assert_allclose(graph.nodes["conv1"].weight, model.conv1.weight.detach().numpy() * gain, rtol=1e-6)
    np.testing.assert_allclose(graph.nodes["conv2"].bias, model.conv2.bias.detach().numpy() * gain, rtol=1e-6)
    np.testing.assert_allclose(graph.nodes["readout"].weight, model.out.weight.detach().numpy(), rtol=1e-6)
    for k in range(1, taps):
        np.testing.assert_allclose(graph.nodes[f"delay_tap{k}"].delay, k * dt)
    conv = graph.nodes["conv1"]
    assert tuple(conv.stride) == (2, 2) and tuple(conv.padding) == (1, 1) and int(conv.groups) == 1
    np.testing.assert_array_equal(graph.nodes["input"].input_type["input"], [2, *model.cfg.in_hw])


def test_nir_graph_reproduces_torch_on_the_test_split(exported, test_split_sample):
    """Both in float64: in float32 a membrane within rounding of its threshold spikes in one and
    not the other, depending on the order of the sums (torch's thread count changes it), and one
    such spike moves a logit by about 0.1."""
    model, _, graph = exported
    sim, ref_model = NirSim(graph, dtype=np.float64), _float64(model)
    worst = 0.0
    for counts in _samples(test_split_sample, SAMPLES):
        counts = counts.astype(np.float64)
        logits = _running_mean(sim.run(np.log1p(counts)))          # log1p is host preprocessing
        ref = _torch_logits(ref_model, counts)
        worst = max(worst, float(np.abs(logits - ref).max()))
    print(f"NIR vs torch: max logit difference {worst:.2e} over {SAMPLES} samples")
    assert worst < LOGIT_TOL


def test_another_time_scale_is_the_same_network(exported, test_split_sample):
    """Only dt / tau matters to the discrete network: at 0.1 ms a step, the same logits."""
    model, manifest, graph = exported
    scaled = to_nir(network_arrays(model, manifest), dt_s=SNNTORCH_DT)
    assert float(scaled.metadata["dt"]) == SNNTORCH_DT
    assert float(scaled.metadata["bin_s"]) == pytest.approx(manifest["input"]["bin_us"] * 1e-6)
    np.testing.assert_allclose(scaled.nodes["lif1"].tau, SNNTORCH_DT / (1 - model.cfg.beta))
    np.testing.assert_allclose(scaled.nodes["delay_tap1"].delay, SNNTORCH_DT)
    counts = _samples(test_split_sample, 2)
    for c in counts:
        np.testing.assert_allclose(NirSim(scaled).run(np.log1p(c)), NirSim(graph).run(np.log1p(c)), atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        to_nir(network_arrays(model, manifest), dt_s=0.0)


@pytest.fixture(scope="module")
def nodelay(tmp_path_factory):
    return _export(tmp_path_factory, NODELAY_MODEL)


def test_the_delay_free_model_is_a_plain_chain(nodelay):
    model, manifest, graph = nodelay
    assert model.cfg.delay_steps == 0 and manifest["training"]["config"]["delay_steps"] == 0
    assert not any(isinstance(node, nir.Delay) for node in graph.nodes.values())
    assert sorted(graph.edges) == sorted([("input", "conv1"), ("conv1", "lif1"), ("lif1", "conv2"),
                                          ("conv2", "lif2"), ("lif2", "flatten"), ("flatten", "fc_tap0"),
                                          ("fc_tap0", "lif3"), ("lif3", "readout"), ("readout", "output")])


def _peer_worst(model, step_module, test_split_sample) -> float:
    """Largest logit difference between torch and a peer's module over the test split's samples;
    `step_module()` returns a fresh `step(x) -> readout` for one sequence. Unbatched input: NIR's
    shapes carry no batch dimension (Flatten from dimension 0)."""
    worst = 0.0
    for counts in _samples(test_split_sample, PEER_SAMPLES):
        step = step_module()
        with torch.no_grad():
            out = [step(torch.from_numpy(x)).numpy() for x in np.log1p(counts)]
        ref = _torch_logits(model, counts)
        worst = max(worst, float(np.abs(_running_mean(out) - ref).max()))
        assert np.ptp(ref, axis=0).max() > 0.01     # the hidden layer spikes: the readout is not its bias
    return worst


def test_snntorch_imports_the_delay_free_model(nodelay, tmp_path, test_split_sample):
    from snntorch import utils as snn_utils
    from snntorch.import_nir import import_from_nir

    model, manifest, _ = nodelay
    path = tmp_path / "for_snntorch.nir"
    export_nir(model, manifest, path, dt_s=SNNTORCH_DT)
    net = import_from_nir(nir.read(path))

    def fresh():
        snn_utils.reset(net)
        return lambda x: net(x)[0]
    worst = _peer_worst(model, fresh, test_split_sample)
    print(f"snnTorch vs torch: max logit difference {worst:.2e} over {PEER_SAMPLES} samples")
    assert worst < LOGIT_TOL


def test_norse_imports_the_delay_free_model(nodelay, test_split_sample):
    import norse.torch as norse

    model, _, graph = nodelay
    net = norse.from_nir(graph, dt=float(graph.metadata["dt"]))

    def fresh():
        state = [None]

        def step(x):
            out, state[0] = net(x, state[0])
            return out
        return step
    worst = _peer_worst(model, fresh, test_split_sample)
    print(f"Norse vs torch: max logit difference {worst:.2e} over {PEER_SAMPLES} samples")
    assert worst < LOGIT_TOL


def test_delays_that_are_not_whole_steps_are_refused(exported):
    _, _, graph = exported
    with pytest.raises(ValueError, match="whole multiples of dt"):
        NirSim(graph, dt=float(graph.metadata["dt"]) * 1.5)


def test_subtract_reset_is_refused():
    _, manifest = load_model(model_path(DEFAULT_MODEL))
    net = network_arrays(make_model(ModelConfig(reset="subtract")), manifest)
    with pytest.raises(ValueError, match="resets by 'subtract'.*reset='zero'"):
        to_nir(net)


def test_export_command_names_the_model_for_peers_and_refuses_a_bad_step(tmp_path, capsys):
    from snn_autonomy.cli import main

    assert main(["export", "--format", "nir", "--out", str(tmp_path / "a.nir")]) == 0
    assert f"for them export models/{NODELAY_MODEL}" in capsys.readouterr().err
    assert main(["export", "--format", "nir", "--model", str(model_path(NODELAY_MODEL)), "--nir-dt", "1e-4",
                 "--out", str(tmp_path / "b.nir")]) == 0
    out = capsys.readouterr()
    assert "one step = 0.0001 s" in out.out and "Delay" not in out.err
    assert float(nir.read(tmp_path / "b.nir").metadata["dt"]) == SNNTORCH_DT
    assert main(["export", "--format", "nir", "--nir-dt", "-1", "--out", str(tmp_path / "c.nir")]) == 2
    assert "positive number of seconds" in capsys.readouterr().err
    assert not (tmp_path / "c.nir").exists()
