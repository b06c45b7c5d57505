"""Energy of every decision: estimated from operation counts, measured by a meter.

`EnergyAccountant` is what a perception loop uses:

    acct = EnergyAccountant.create(profile="", meter="auto", dense_macs_per_step=macs)
    acct.begin(); decisions = engine.push(...); acct.end()     # meter brackets the compute
    for d, e in zip(decisions, acct.assign(decisions)): ...    # DecisionEnergy per decision
    acct.diagnostics()                                          # key/values for /diagnostics

The measured energy of a decision is the meter's delta over the compute that fed it (all
bracketed calls since the previous decision), so time spent waiting for events is not
charged. It is the whole domain's energy (CPU package, GPU, board), not this process's
alone. A call that completes several decisions shares its energy among them in proportion
to their steps. Meters, profiles and the estimator are re-exported from here.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Union

from ..config import spec

from .estimator import (EnergyEstimate, EnergyEstimator, EnergyProfile, EnergyProfiles,  # noqa: F401
                        load_profiles)
from .meters import (CHOICES, METER_NAMES, Detection, EnergyMeter, Ina3221Meter, MeterError,  # noqa: F401
                     NvmlMeter, RaplMeter, counter_delta, detect_meters, make_meter, select_meter)


@dataclass(frozen=True)
class EnergyConfig:
    """A perception loop's energy settings (node parameters of perception and robot)."""
    energy_profile: str = spec("", help="hardware profile of the energy estimate ('' = the default of "
                                        "config/energy_profiles.yaml)")
    energy_meter: Literal["auto", "none", "rapl", "nvml", "ina3221"] = spec(
        "auto", help="energy meter measuring each decision's compute (auto: the first one found)")


@dataclass(frozen=True)
class DecisionEnergy:
    """Energy of one decision in microjoules; measured_uj is NaN without a meter."""

    estimated_uj: float
    ann_uj: float
    measured_uj: float
    estimate: EnergyEstimate


def _fmt(v: float) -> str:
    return "nan" if math.isnan(v) else f"{v:.4g}"


class EnergyAccountant:
    """Gives each decision its estimated, ANN-equivalent and measured energy, and keeps totals."""

    def __init__(self, estimator: EnergyEstimator, meter: Optional[EnergyMeter] = None,
                 meter_reason: str = "") -> None:
        self.estimator = estimator
        self.meter = meter
        self.meter_reason = "" if meter is not None else (meter_reason or "no meter")
        self.meter_failures = 0
        self._start: Optional[int] = None
        self._pending_uj = 0.0
        self.decisions = 0
        self.measured_decisions = 0
        self.sum_estimated_uj = self.sum_ann_uj = self.sum_measured_uj = 0.0
        self.last: Optional[DecisionEnergy] = None

    @classmethod
    def from_config(cls, cfg: EnergyConfig, dense_macs_per_step: Optional[int] = None) -> "EnergyAccountant":
        return cls.create(cfg.energy_profile, cfg.energy_meter, dense_macs_per_step)

    @classmethod
    def create(cls, profile: str = "", meter: str = "auto", dense_macs_per_step: Optional[int] = None,
               profiles_path: Union[str, Path, None] = None, root: Union[str, Path] = "/") -> "EnergyAccountant":
        """From the profiles file and a meter choice (auto | none | rapl | nvml | ina3221);
        raises ConfigError for an unknown profile or meter choice."""
        estimator = EnergyEstimator.from_config(profile, dense_macs_per_step, profiles_path)
        m, reason = select_meter(meter, root)
        return cls(estimator, m, reason)

    # ------------------------------------------------------------------ measuring
    def _read(self) -> Optional[int]:
        if self.meter is None:
            return None
        try:
            return self.meter.read_uj()
        except MeterError as exc:  # the meter went away: stop measuring, say why, keep running
            self.meter_failures += 1
            self.meter_reason = f"{self.meter.name} stopped working: {exc}"
            self.meter.close()
            self.meter = None
            return None

    def begin(self) -> None:
        """Start of a stretch of compute."""
        self._start = self._read()

    def end(self) -> None:
        """End of a stretch of compute: its energy is kept for the decisions it feeds."""
        start, self._start = self._start, None
        if start is None or self.meter is None:
            return
        now = self._read()
        if now is not None:
            self._pending_uj += self.meter.joules(start, now) * 1e6

    def assign(self, decisions: Sequence[object]) -> List[DecisionEnergy]:
        """Energies of the decisions completed since the last call (each with synaptic_ops,
        neuron_updates and steps)."""
        if not decisions:
            return []
        measuring = self.meter is not None
        steps = [max(1, int(d.steps)) for d in decisions]
        out = []
        for d, s in zip(decisions, steps):
            est = self.estimator.estimate_decision(d)
            measured = self._pending_uj * s / sum(steps) if measuring else math.nan
            e = DecisionEnergy(est.total_uj, est.ann_uj, measured, est)
            self.decisions += 1
            self.sum_estimated_uj += e.estimated_uj
            self.sum_ann_uj += e.ann_uj
            if measuring:
                self.measured_decisions += 1
                self.sum_measured_uj += measured
            self.last = e
            out.append(e)
        self._pending_uj = 0.0
        return out

    # ------------------------------------------------------------------ reporting
    def meter_description(self) -> str:
        return self.meter.describe() if self.meter is not None else "none"

    def diagnostics(self) -> Dict[str, str]:
        """Key/values for /diagnostics: per-decision energies (last and mean), profile, meter."""
        n, nm = max(self.decisions, 1), max(self.measured_decisions, 1)
        last = self.last
        est = self.estimator
        values = {
            "energy_profile": est.profile_name,
            "energy_profile_source": est.profile.source,
            "estimated_uj_per_decision": _fmt(self.sum_estimated_uj / n) if self.decisions else "nan",
            "estimated_uj_last": _fmt(last.estimated_uj) if last else "nan",
            "ann_equivalent_uj_per_decision": _fmt(self.sum_ann_uj / n) if self.decisions else "nan",
            "ann_equivalent_uj_last": _fmt(last.ann_uj) if last else "nan",
            "ann_equivalent_profile": est.ann_profile_name,
            "measured_uj_per_decision": _fmt(self.sum_measured_uj / nm) if self.measured_decisions else "nan",
            "measured_uj_last": _fmt(last.measured_uj) if last else "nan",
            "energy_meter": self.meter_description(),
        }
        if self.meter is None:
            values["energy_meter_unavailable"] = self.meter_reason
        return values

    def close(self) -> None:
        if self.meter is not None:
            self.meter.close()
            self.meter = None
            self.meter_reason = "closed"
