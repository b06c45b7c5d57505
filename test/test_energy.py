"""Energy meters on fake sysfs trees with the real file layouts, and the estimator's arithmetic."""
from __future__ import annotations

import math
import time
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from snn_autonomy.config import ConfigError
from snn_autonomy.monitor import meters
from snn_autonomy.monitor.energy import (EnergyAccountant, EnergyEstimator, Ina3221Meter, NvmlMeter, RaplMeter,
                                         counter_delta, detect_meters, load_profiles, select_meter)
from snn_autonomy.paths import config_path


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


def _rapl_zone(root: Path, zone: str, name: str, energy: int, wrap: int = 262143328850) -> Path:
    d = root / "sys/class/powercap" / zone
    _write(d / "name", name)
    _write(d / "energy_uj", str(energy))
    _write(d / "max_energy_range_uj", str(wrap))
    return d


def _rapl_tree(root: Path) -> tuple:
    """Two packages (the second near its wrap), their core sub-domains and a psys domain, as
    /sys/class/powercap shows them."""
    p0 = _rapl_zone(root, "intel-rapl:0", "package-0", 1_000_000)
    p1 = _rapl_zone(root, "intel-rapl:1", "package-1", 999_000, wrap=1_000_000)
    _rapl_zone(root, "intel-rapl:0:0", "core", 500)
    _rapl_zone(root, "intel-rapl:1:0", "core", 500)
    _rapl_zone(root, "intel-rapl:2", "psys", 7_000_000)
    return p0, p1


def test_counter_delta_handles_wraparound_and_resets():
    assert counter_delta(100, 250, 1000) == 150
    assert counter_delta(900, 50, 1000) == 150           # 100 to the wrap, 50 after it
    assert counter_delta(900, 50, None) == 0             # range unknown: a reset, not energy


def test_rapl_sums_packages_through_a_wraparound(tmp_path):
    p0, p1 = _rapl_tree(tmp_path)
    m = RaplMeter(tmp_path)
    assert m.available(), m.reason
    assert [z.label for z in m.zones] == ["package-0", "package-1"]   # no core, no psys
    before = m.read_uj()
    _write(p0 / "energy_uj", "3000000")    # +2 J
    _write(p1 / "energy_uj", "500000")     # 1000 uJ to the wrap + 500000 uJ after it
    after = m.read_uj()
    assert m.joules(before, after) == pytest.approx(2.0 + 0.501)
    assert "package-0 + package-1" in m.describe()


def test_rapl_mmio_layout(tmp_path):
    _rapl_zone(tmp_path, "intel-rapl-mmio:0", "package-0", 10)
    m = RaplMeter(tmp_path)
    assert m.available(), m.reason
    assert m.layout == "intel-rapl-mmio"


def test_rapl_present_but_unreadable_says_why(tmp_path, monkeypatch):
    p0, _ = _rapl_tree(tmp_path)
    os.chmod(p0 / "energy_uj", 0o000)
    if os.geteuid() == 0:  # root reads a chmod-000 file anyway: stand in the kernel's refusal
        real = meters.read_sysfs

        def refuse(path: Path) -> str:
            if path.name == "energy_uj":
                raise PermissionError(13, "Permission denied", str(path))
            return real(path)
        monkeypatch.setattr(meters, "read_sysfs", refuse)
    m = RaplMeter(tmp_path)
    assert not m.available()
    assert str(p0 / "energy_uj") in m.reason and "not readable" in m.reason
    assert "root" in m.reason and "udev" in m.reason


def test_rapl_absent(tmp_path):
    m = RaplMeter(tmp_path)
    assert not m.available() and "powercap" in m.reason


def _clock(times):
    it = iter(times)
    return lambda: next(it)


def test_ina3221_hwmon_integrates_power(tmp_path):
    h = tmp_path / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    for k, label, mv, ma in ((1, "VDD_IN", 5000, 1000), (2, "VDD_CPU_GPU_CV", 5000, 400), (3, "NC", 0, 0)):
        _write(h / f"in{k}_label", label)
        _write(h / f"in{k}_input", str(mv))
        _write(h / f"curr{k}_input", str(ma))
    m = Ina3221Meter(tmp_path, clock=_clock([10.0, 10.5, 11.5]))
    assert m.available(), m.reason
    assert [r.label for r in m.rails] == ["VDD_IN"]     # the board input, not input + its sub-rails
    e0 = m.read_uj()                                     # 5 W at t = 10 s
    _write(h / "curr1_input", "2000")
    e1 = m.read_uj()                                     # 10 W at 10.5 s: (5 + 10) / 2 x 0.5 = 3.75 J
    e2 = m.read_uj()                                     # 10 W at 11.5 s: 10 J more
    assert m.joules(e0, e1) == pytest.approx(3.75)
    assert m.joules(e0, e2) == pytest.approx(13.75)
    # named rails are summed
    m2 = Ina3221Meter(tmp_path, rails=["VDD_IN", "VDD_CPU_GPU_CV"], clock=_clock([0.0, 2.0]))
    assert m2.available(), m2.reason
    assert m2.joules(m2.read_uj(), m2.read_uj()) == pytest.approx((10.0 + 2.0) * 2.0)
    bad = Ina3221Meter(tmp_path, rails=["VDD_GPU"])
    assert not bad.available() and "VDD_GPU" in bad.reason


def test_ina3221_iio_layout(tmp_path):
    d = tmp_path / "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    for k, label, mw in ((0, "POM_5V_IN", 3000), (1, "POM_5V_GPU", 800), (2, "POM_5V_CPU", 900)):
        _write(d / f"rail_name_{k}", label)
        _write(d / f"in_power{k}_input", str(mw))
    m = Ina3221Meter(tmp_path, clock=_clock([0.0, 0.1, 0.3]))
    assert m.available(), m.reason
    assert m.layout == "iio" and [r.label for r in m.rails] == ["POM_5V_IN"]
    e0 = m.read_uj()
    _write(d / "in_power0_input", "5000")
    e1 = m.read_uj()
    _write(d / "in_power0_input", "1000")
    e2 = m.read_uj()
    assert m.joules(e0, e1) == pytest.approx(0.4)                 # (3 + 5) / 2 W x 0.1 s
    assert m.joules(e1, e2) == pytest.approx(0.6)                 # (5 + 1) / 2 W x 0.2 s


def test_nvml_without_the_module_says_why(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)   # as on a machine without nvidia-ml-py
    m = NvmlMeter()
    assert not m.available()
    assert "pynvml" in m.reason and "requirements/gpu.txt" in m.reason


def test_nvml_counts_millijoules_of_every_gpu():
    state = {"mj": [1000, 2000]}
    fake = SimpleNamespace(
        nvmlInit=lambda: None, nvmlShutdown=lambda: None, nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetTotalEnergyConsumption=lambda h: state["mj"][h])
    m = NvmlMeter(nvml=fake)
    assert m.available(), m.reason
    before = m.read_uj()
    state["mj"] = [1500, 2250]
    assert m.joules(before, m.read_uj()) == pytest.approx(0.75)

    def no_driver():
        raise RuntimeError("Driver Not Loaded")
    broken = NvmlMeter(nvml=SimpleNamespace(nvmlInit=no_driver))
    assert not broken.available() and "Driver Not Loaded" in broken.reason


def test_detect_meters_on_an_empty_tree_reports_every_reason(tmp_path):
    found = detect_meters(tmp_path, names=("rapl", "ina3221"))
    assert found.first() is None
    assert set(found.unavailable) == {"rapl", "ina3221"}
    _rapl_tree(tmp_path)
    found = detect_meters(tmp_path, names=("rapl", "ina3221"))
    assert found.first().name == "rapl" and "ina3221" in found.unavailable
    meter, reason = select_meter("none", tmp_path)
    assert meter is None and "none" in reason
    with pytest.raises(ConfigError, match="energy_meter"):
        select_meter("joulemeter", tmp_path)


# ---------------------------------------------------------------------- estimator
def test_estimator_arithmetic():
    profiles = load_profiles()
    assert profiles.default == "cmos45nm"
    # 45 nm CMOS: 1e6 ACs x 0.9 pJ = 0.9 uJ; 2e5 updates x 4.6 pJ = 0.92 uJ; ANN 1e6 MACs x 3 x 4.6 pJ = 13.8 uJ
    e = EnergyEstimator(profiles, "", dense_macs_per_step=1_000_000).estimate(1e6, 2e5, 3)
    assert (e.profile, e.synaptic_uj, e.neuron_uj) == ("cmos45nm", pytest.approx(0.9), pytest.approx(0.92))
    assert e.total_uj == pytest.approx(1.82) and e.ann_uj == pytest.approx(13.8)
    # Loihi: 1e6 x 23.6 pJ = 23.6 uJ; 2e5 x 52 pJ = 10.4 uJ; the ANN is priced with the 45 nm reference
    e = EnergyEstimator(profiles, "loihi", dense_macs_per_step=1_000_000).estimate(1e6, 2e5, 3)
    assert e.total_uj == pytest.approx(34.0) and e.ann_uj == pytest.approx(13.8) and e.ann_profile == "cmos45nm"
    assert math.isnan(EnergyEstimator(profiles).estimate(1, 1, 1).ann_uj)   # MAC count unknown
    with pytest.raises(ConfigError, match="energy_profile"):
        EnergyEstimator(profiles, "loihi3")


def test_bad_profile_yaml_names_the_key(tmp_path):
    good = yaml.safe_load(config_path("energy_profiles.yaml").read_text())

    def check(edit, match):
        doc = yaml.safe_load(yaml.safe_dump(good))
        edit(doc["energy"])
        p = tmp_path / "profiles.yaml"
        p.write_text(yaml.safe_dump(doc))
        with pytest.raises(ConfigError, match=match):
            load_profiles(p)

    check(lambda d: d["profiles"]["loihi"].update(ac_pj=-1.0), r"energy\.profiles\.loihi\.ac_pj: -1\.0 is below")
    check(lambda d: d["profiles"]["loihi"].update(ac_pj="fast"), r"energy\.profiles\.loihi\.ac_pj")
    check(lambda d: d["profiles"]["cmos45nm"].update(mac_pf=4.6), r"energy\.profiles\.cmos45nm\.mac_pf")
    check(lambda d: d["profiles"]["loihi"].pop("source"), r"energy\.profiles\.loihi\.source: required")
    check(lambda d: d.update(default="tpu"), r"default: 'tpu' is not a profile")
    check(lambda d: d.update(ann_reference="loihi"), r"ann_reference: profile 'loihi' has no mac_pj")


# ---------------------------------------------------------------------- per decision
def test_accountant_measures_only_the_compute(tmp_path):
    p0, p1 = _rapl_tree(tmp_path)
    acct = EnergyAccountant.create(meter="rapl", dense_macs_per_step=1000, root=tmp_path)
    assert acct.meter is not None, acct.meter_reason
    acct.begin()
    _write(p0 / "energy_uj", "1000300")          # 300 uJ of compute
    acct.end()
    assert acct.assign([]) == []
    _write(p0 / "energy_uj", "1900000")          # waiting for events: not charged
    acct.begin()
    _write(p0 / "energy_uj", "1900600")          # 600 uJ more, which completes two decisions
    acct.end()
    ds = [SimpleNamespace(synaptic_ops=1e6, neuron_updates=0, steps=1),
          SimpleNamespace(synaptic_ops=0, neuron_updates=0, steps=2)]
    e = acct.assign(ds)
    assert [x.measured_uj for x in e] == pytest.approx([300.0, 600.0])   # 900 uJ shared by steps
    assert e[0].estimated_uj == pytest.approx(0.9) and e[1].ann_uj == pytest.approx(2 * 1000 * 4.6e-6)
    diag = acct.diagnostics()
    assert diag["energy_meter"].startswith("rapl") and diag["measured_uj_per_decision"] == "450"
    # the meter vanishes: NaN from then on, with the reason, and no exception
    (p0 / "energy_uj").unlink()
    acct.begin()
    acct.end()
    assert math.isnan(acct.assign(ds[:1])[0].measured_uj)
    assert "stopped working" in acct.diagnostics()["energy_meter_unavailable"]


def test_accountant_without_a_meter(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pynvml", None)
    acct = EnergyAccountant.create(meter="auto", root=tmp_path)   # empty tree, no NVML
    acct.begin()
    acct.end()
    (e,) = acct.assign([SimpleNamespace(synaptic_ops=10, neuron_updates=10, steps=1)])
    assert math.isnan(e.measured_uj) and e.estimated_uj > 0
    assert "rapl" in acct.diagnostics()["energy_meter_unavailable"]


class _TickingNvml:
    """An NVML whose energy counter, like the driver's, moves in steps (100 W read every 100 ms)."""

    def __init__(self, frozen: bool = False) -> None:
        self.t0, self.frozen = time.perf_counter(), frozen
        self.nvmlInit = self.nvmlShutdown = lambda: None
        self.nvmlDeviceGetCount = lambda: 1
        self.nvmlDeviceGetHandleByIndex = lambda i: i

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        ticks = 0 if self.frozen else int((time.perf_counter() - self.t0) / 0.1)
        return ticks * 10_000                   # mJ: 10 J per 100 ms


def test_bench_energy_runs_each_workload_until_a_coarse_counter_has_advanced():
    import numpy as np
    import torch

    from snn_autonomy.bench.energy import measure_energy
    from snn_autonomy.paths import resolve_model
    from snn_autonomy.perception.model_io import load_model

    model, manifest = load_model(resolve_model())
    w, h = manifest["input"]["grid"]
    frames = (np.random.default_rng(0).random((4, manifest["t_max"], 2, h, w)) < 0.03).astype(np.uint8)
    meter = NvmlMeter(nvml=_TickingNvml())
    assert meter.available(), meter.reason
    r = measure_energy(model, manifest, frames, torch.device("cpu"), [meter], min_s=0.5)
    # four decisions at batch 256 take milliseconds: one pass would read 0 J
    assert r["metered_passes"]["batch256"] > 1
    assert r["nvml_batch256_uj_per_decision"]["total"] > 0
    assert r["nvml_idle_w"] == pytest.approx(100.0, rel=0.4)
    assert "not_metered" not in r

    frozen = NvmlMeter(nvml=_TickingNvml(frozen=True))
    assert frozen.available()
    r = measure_energy(model, manifest, frames[:1], torch.device("cpu"), [frozen], min_s=0.05)
    assert r["nvml_batch1_uj_per_decision"] is None and r["nvml_batch256_uj_per_decision"] is None
    assert "did not advance" in r["not_metered"]["nvml_batch256"]
    assert r["estimated_uj_per_decision"]["snn"] > 0     # the estimate needs no meter
    assert not r["temporal_prior"] and r["threshold"] == pytest.approx(manifest["early_exit"]["threshold"], abs=1e-4)

    # with the samples' meta, one robot's decisions 100 ms apart carry the model's temporal prior
    from snn_autonomy.perception.temporal_prior import exit_threshold

    from snn_autonomy.perception.dataset import META_COLUMNS, META_SPEED_END, META_SPEED_START, META_YAW_START

    meta = np.zeros((4, META_COLUMNS))
    meta[:, 2] = 100_000 * (np.arange(4) + 1)
    meta[:, META_YAW_START:META_YAW_START + 2] = 0.1 * np.arange(4)[:, None] + [0.0, 0.05]
    meta[:, [META_SPEED_START, META_SPEED_END]] = 0.0        # turning on the spot: the belief holds
    r = measure_energy(model, manifest, frames, torch.device("cpu"), [], min_s=0.0, meta=meta)
    assert r["temporal_prior"] and r["threshold"] == pytest.approx(exit_threshold(manifest), abs=1e-4)
    assert r["decisions"] == 4 and 1 <= r["steps_per_decision"] <= manifest["t_max"]
