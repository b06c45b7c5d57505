"""Energy of a decision estimated from the operations the SNN actually executed.

    SNN  = synaptic ops x energy per accumulate (AC) + neuron updates x energy per neuron update
    ANN  = dense MACs per step x steps x energy per multiply-accumulate (MAC)

The SNN figure counts only the synaptic operations that spikes triggered, so sparse
activity and early exit both show up in it; the ANN figure is what a dense network of
the same shape would spend for the same number of steps. Hardware profiles (energy per
operation, each with its published source) live in config/energy_profiles.yaml. A
profile without a MAC figure (a neuromorphic chip runs no dense MACs) takes the ANN
figure from the reference profile (`ann_reference`). Memory traffic, control and static
power are not counted: these are lower bounds that rank designs, not meter readings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

from ..config import ConfigError, load, spec
from ..paths import config_path

PROFILES_FILE = "energy_profiles.yaml"
SECTION = "energy"


@dataclass(frozen=True)
class EnergyProfile:
    source: str = spec(help="publication the figures come from")
    ac_pj: float = spec(lo=0.0, hi=1e6, help="energy per accumulate, one synaptic operation", unit="pJ")
    neuron_update_pj: float = spec(lo=0.0, hi=1e6, help="energy per neuron state update", unit="pJ")
    mac_pj: Optional[float] = spec(None, lo=0.0, hi=1e6, help="energy per multiply-accumulate of a dense "
                                   "network (none: use the reference profile's)", unit="pJ")
    description: str = spec("", help="the hardware in a few words")
    notes: str = spec("", help="how figures not read directly from the source were derived")

    def validate(self) -> None:
        if not self.source.strip():
            raise ConfigError("source: empty (every profile names the publication its figures come from)")


@dataclass(frozen=True)
class EnergyProfiles:
    profiles: Dict[str, EnergyProfile] = spec(help="hardware profiles by name")
    default: str = spec("cmos45nm", help="profile used when none is named")
    ann_reference: str = spec("cmos45nm", help="profile whose MAC energy prices the ANN equivalent when the "
                              "chosen profile has none")

    def validate(self) -> None:
        if not self.profiles:
            raise ConfigError("profiles: empty (at least one hardware profile is needed)")
        names = ", ".join(sorted(self.profiles))
        if self.default not in self.profiles:
            raise ConfigError(f"default: {self.default!r} is not a profile (profiles: {names})")
        ref = self.profiles.get(self.ann_reference)
        if ref is None:
            raise ConfigError(f"ann_reference: {self.ann_reference!r} is not a profile (profiles: {names})")
        if ref.mac_pj is None:
            raise ConfigError(f"ann_reference: profile {self.ann_reference!r} has no mac_pj")

    def get(self, name: str = "") -> EnergyProfile:
        name = name or self.default
        if name not in self.profiles:
            raise ConfigError(f"energy_profile: {name!r} is not one of {', '.join(map(repr, sorted(self.profiles)))}")
        return self.profiles[name]


def load_profiles(path: Union[str, Path, None] = None) -> EnergyProfiles:
    """The hardware profiles of `path` (default: the shipped config/energy_profiles.yaml)."""
    return load(path or config_path(PROFILES_FILE), EnergyProfiles, SECTION)


@dataclass(frozen=True)
class EnergyEstimate:
    """Estimated energy of one decision, in microjoules."""

    profile: str
    synaptic_uj: float
    neuron_uj: float
    ann_uj: float           # NaN when the model's dense MAC count is unknown
    ann_profile: str

    @property
    def total_uj(self) -> float:
        return self.synaptic_uj + self.neuron_uj

    @property
    def ann_ratio(self) -> float:
        """How many times less the SNN spends than the dense equivalent."""
        return self.ann_uj / self.total_uj if self.total_uj > 0 else math.nan


class EnergyEstimator:
    """Prices operation counts with one hardware profile."""

    def __init__(self, profiles: EnergyProfiles, profile: str = "",
                 dense_macs_per_step: Optional[int] = None) -> None:
        self.profiles = profiles
        self.profile_name = profile or profiles.default
        self.profile = profiles.get(self.profile_name)
        self.ann_profile_name = self.profile_name if self.profile.mac_pj is not None else profiles.ann_reference
        self.mac_pj = profiles.get(self.ann_profile_name).mac_pj
        self.dense_macs_per_step = dense_macs_per_step

    @classmethod
    def from_config(cls, profile: str = "", dense_macs_per_step: Optional[int] = None,
                    path: Union[str, Path, None] = None) -> "EnergyEstimator":
        return cls(load_profiles(path), profile, dense_macs_per_step)

    def estimate(self, synaptic_ops: float, neuron_updates: float, steps: int) -> EnergyEstimate:
        p = self.profile
        ann = (self.dense_macs_per_step * steps * self.mac_pj * 1e-6
               if self.dense_macs_per_step is not None else math.nan)
        return EnergyEstimate(self.profile_name, synaptic_ops * p.ac_pj * 1e-6,
                              neuron_updates * p.neuron_update_pj * 1e-6, ann, self.ann_profile_name)

    def estimate_decision(self, decision: object) -> EnergyEstimate:
        """A perception Decision (anything with synaptic_ops, neuron_updates and steps)."""
        return self.estimate(float(decision.synaptic_ops), float(decision.neuron_updates), int(decision.steps))
