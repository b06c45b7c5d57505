"""Energy meters behind one interface, found automatically.

Every meter gives a cumulative energy count in microjoules (`read_uj()`); the energy of
a stretch of work is the difference of two readings (`joules(before, after)`). A meter
that cannot work here says why (`reason`) instead of failing, so the same code runs on
a laptop, a GPU server and a Jetson.

  rapl     Intel RAPL through powercap sysfs (also AMD Zen, whose driver uses the same
           layout): package domains, summed over packages; the `intel-rapl-mmio` layout
           where the MSR one is absent.
  nvml     NVIDIA GPUs: total energy since the driver loaded (Volta or newer), via the
           optional `pynvml` module (package nvidia-ml-py, requirements/gpu.txt).
  ina3221  Jetson power monitors: power of the board rails, integrated over time.

All of them measure a whole domain (CPU package, GPU, board rail), not one process:
on a busy machine a reading includes everyone else's work.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar, Dict, List, Optional, Sequence, Tuple, Union

from ..config import ConfigError

PathLike = Union[str, Path]
METER_NAMES = ("rapl", "nvml", "ina3221")   # the order `auto` tries them in
CHOICES = ("auto", "none") + METER_NAMES

RAPL_UDEV_RULE = ('ACTION=="add", SUBSYSTEM=="powercap", KERNEL=="intel-rapl:*", '
                  'RUN+="/bin/chmod a+r /sys%p/energy_uj"')


class MeterError(RuntimeError):
    """A meter that worked could not be read (a file vanished, the driver went away)."""


def read_sysfs(path: Path) -> str:
    """One sysfs attribute as text. Module-level so tests can stand in a kernel that refuses
    the read (a test running as root could read a chmod-000 file anyway)."""
    return path.read_text().strip()


def counter_delta(before: int, after: int, wrap: Optional[int]) -> int:
    """Increase of a counter that wraps to 0 after `wrap`; a counter that went backwards
    with no known range was reset, which is not energy, so it counts 0."""
    if after >= before:
        return after - before
    if not wrap or wrap <= 0:
        return 0
    return wrap - before + after


class EnergyMeter:
    """The interface: `name`, `available()` with a `reason`, `read_uj()`, `joules()`, `close()`."""

    name: ClassVar[str] = ""
    wrap_uj: Optional[int] = None   # range of read_uj() before it wraps; None: it never does

    def __init__(self) -> None:
        self._reason: Optional[str] = None

    def probe(self) -> str:
        """Find the hardware; '' when usable, else why not (overridden by each meter)."""
        raise NotImplementedError

    @property
    def reason(self) -> str:
        """Why this meter cannot be used here ('' when it can); probed once."""
        if self._reason is None:
            try:
                self._reason = self.probe()
            except Exception as exc:  # a meter must never take its user down
                self._reason = f"{self.name}: probing failed: {type(exc).__name__}: {exc}"
        return self._reason

    def available(self) -> bool:
        return not self.reason

    def read_uj(self) -> int:
        """Cumulative energy in microjoules (the origin is arbitrary; only differences count)."""
        raise NotImplementedError

    def joules(self, before: int, after: int) -> float:
        """Energy between two readings, through a wraparound if there was one."""
        return counter_delta(before, after, self.wrap_uj) * 1e-6

    def describe(self) -> str:
        """What is measured, for logs and /diagnostics."""
        return self.name

    def close(self) -> None:
        """Release the driver (NVML); reading after close is not supported."""


# ---------------------------------------------------------------------- RAPL
@dataclass
class _RaplZone:
    path: Path            # the zone's directory
    label: str            # its `name`, e.g. package-0
    wrap: Optional[int]   # max_energy_range_uj
    last: int             # last raw energy_uj read


def _int_or_none(path: Path) -> Optional[int]:
    try:
        return int(read_sysfs(path))
    except (OSError, ValueError):
        return None


def _zone_name(path: Path) -> str:
    try:
        return read_sysfs(path / "name")
    except OSError:
        return ""


class RaplMeter(EnergyMeter):
    """CPU package energy from powercap: sum of the `package-N` domains of `intel-rapl:N`
    (sub-domains core/uncore/dram and `psys` are left out: they overlap the packages).

    Each package counter wraps at its `max_energy_range_uj` (a few minutes to hours of full
    load); read_uj() unwraps every counter since the previous read, so reads must come more
    often than one wrap period. The total it returns never wraps.
    """

    name = "rapl"

    def __init__(self, root: PathLike = "/") -> None:
        super().__init__()
        self.base = Path(root) / "sys" / "class" / "powercap"
        self.zones: List[_RaplZone] = []
        self.layout = ""
        self._total = 0

    def probe(self) -> str:
        if not self.base.is_dir():
            return (f"no {self.base} (not Linux, the intel_rapl_msr driver is not loaded, or a VM or "
                    "container that does not expose RAPL)")
        for layout in ("intel-rapl", "intel-rapl-mmio"):
            dirs = sorted(d for d in self.base.glob(f"{layout}:*") if re.fullmatch(rf"{layout}:\d+", d.name))
            packages = [d for d in dirs if _zone_name(d).startswith("package")]
            if packages:
                break
        else:
            return f"no RAPL package domain under {self.base} (intel-rapl:N or intel-rapl-mmio:N with name package-N)"
        zones = []
        for d in packages:
            f = d / "energy_uj"
            try:
                value = int(read_sysfs(f))
            except PermissionError:
                return (f"{f} exists but is not readable by this user (root-only since Linux 5.10, "
                        f"CVE-2020-8694): run as root, `sudo chmod a+r {self.base}/{layout}:*/energy_uj` "
                        f"(until reboot), or a udev rule such as {RAPL_UDEV_RULE} in "
                        "/etc/udev/rules.d/99-rapl.rules; note that it lets every user see the package power")
            except (OSError, ValueError) as exc:
                return f"cannot read {f}: {exc}"
            zones.append(_RaplZone(d, _zone_name(d), _int_or_none(d / "max_energy_range_uj"), value))
        self.zones, self.layout = zones, layout
        return ""

    def read_uj(self) -> int:
        for z in self.zones:
            f = z.path / "energy_uj"
            try:
                value = int(read_sysfs(f))
            except (OSError, ValueError) as exc:
                raise MeterError(f"cannot read {f}: {exc}") from exc
            self._total += counter_delta(z.last, value, z.wrap)
            z.last = value
        return self._total

    def describe(self) -> str:
        return f"rapl ({self.layout}: {' + '.join(z.label for z in self.zones)})"


# ---------------------------------------------------------------------- NVML
class NvmlMeter(EnergyMeter):
    """NVIDIA GPU energy: nvmlDeviceGetTotalEnergyConsumption (millijoules since the driver
    loaded; Volta or newer), summed over the chosen GPUs (default all).

    `pynvml` is imported only here, so the package works without it; `nvml` may pass a
    module with the same functions (tests).
    """

    name = "nvml"

    def __init__(self, devices: Optional[Sequence[int]] = None, nvml: object = None) -> None:
        super().__init__()
        self.devices = None if devices is None else list(devices)
        self._nvml = nvml
        self._handles: List[object] = []
        self._labels: List[str] = []
        self._started = False

    def probe(self) -> str:
        nv = self._nvml
        if nv is None:
            try:
                import pynvml as nv
            except ImportError:
                return ("the pynvml module is not installed (pip install -r requirements/gpu.txt, "
                        "package nvidia-ml-py)")
            self._nvml = nv
        try:
            nv.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return f"NVML cannot start (no NVIDIA driver here?): {type(exc).__name__}: {exc}"
        self._started = True
        try:
            count = int(nv.nvmlDeviceGetCount())
            indices = list(range(count)) if self.devices is None else self.devices
            if not indices:
                return "NVML found no GPU"
            for i in indices:
                if not 0 <= i < count:
                    return f"GPU {i} does not exist (NVML sees {count})"
                h = nv.nvmlDeviceGetHandleByIndex(i)
                try:
                    nv.nvmlDeviceGetTotalEnergyConsumption(h)
                except Exception as exc:
                    return f"GPU {i} does not report total energy (Volta or newer needed): {exc}"
                self._handles.append(h)
                self._labels.append(f"GPU {i}")
        except Exception as exc:
            return f"NVML query failed: {type(exc).__name__}: {exc}"
        return ""

    def read_uj(self) -> int:
        try:
            mj = sum(int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles)
        except Exception as exc:
            raise MeterError(f"NVML read failed: {type(exc).__name__}: {exc}") from exc
        return mj * 1000

    def describe(self) -> str:
        return f"nvml ({', '.join(self._labels)})"

    def close(self) -> None:
        if self._started:
            self._started = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass


# ---------------------------------------------------------------------- INA3221
@dataclass
class Rail:
    """One INA3221 channel: power from a power file (mW), or from voltage (mV) x current (mA)."""

    label: str
    power_file: Optional[Path] = None
    voltage_file: Optional[Path] = None
    current_file: Optional[Path] = None

    def power_mw(self) -> float:
        if self.power_file is not None:
            return float(read_sysfs(self.power_file))
        return float(read_sysfs(self.voltage_file)) * float(read_sysfs(self.current_file)) / 1000.0

    def files(self) -> List[Path]:
        return [f for f in (self.power_file, self.voltage_file, self.current_file) if f is not None]


def _hwmon_rails(root: Path) -> List[Rail]:
    """JetPack 5+: .../ina3221/<bus-addr>/hwmon/hwmonN/in<k>_label, in<k>_input (mV), curr<k>_input (mA)."""
    rails = []
    for label in sorted((root / "sys/bus/i2c/drivers/ina3221").glob("*/hwmon/hwmon*/in*_label")):
        m = re.fullmatch(r"in(\d+)_label", label.name)
        cur = label.parent / f"curr{m.group(1)}_input" if m else None
        if cur is None or not cur.exists():
            continue
        try:
            name = read_sysfs(label)
        except OSError:
            continue
        rails.append(Rail(name, voltage_file=label.parent / f"in{m.group(1)}_input", current_file=cur))
    return rails


def _iio_rails(root: Path) -> List[Rail]:
    """JetPack 4: .../ina3221x/<bus-addr>/iio:deviceN/rail_name_<k>, in_power<k>_input (mW)."""
    rails = []
    for label in sorted((root / "sys/bus/i2c/drivers/ina3221x").glob("*/iio:device*/rail_name_*")):
        k = label.name.rsplit("_", 1)[1]
        power = label.parent / f"in_power{k}_input"
        if not power.exists():
            continue
        try:
            name = read_sysfs(label)
        except OSError:
            continue
        rails.append(Rail(name, power_file=power))
    return rails


class Ina3221Meter(EnergyMeter):
    """Jetson board energy from INA3221 power monitors, which give power, not energy.

    Every read_uj() samples the power of the chosen rails and adds the trapezoid
    (P_prev + P_now) / 2 x dt to the total. This assumes power changes linearly between two
    reads: a burst shorter than the read interval is smeared or missed, so the error of one
    interval is up to (P_max - P_min) x dt / 2 when power is monotonic in it and unbounded
    otherwise. The INA3221 itself averages over its conversion window (about 1-10 ms as
    Jetson configures it), so work shorter than that is not resolved: the energy of a short
    decision is the average board power times its duration.

    Rails: by default the board's input rail when there is one (VDD_IN, POM_5V_IN), else the
    sum of all connected rails (which double counts where rails are nested); `rails` names
    them explicitly.
    """

    name = "ina3221"
    TOTAL_RAILS = ("VDD_IN", "POM_5V_IN")

    def __init__(self, root: PathLike = "/", rails: Optional[Sequence[str]] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.root = Path(root)
        self.wanted = None if rails is None else list(rails)
        self.clock = clock
        self.rails: List[Rail] = []
        self.layout = ""
        self._uj = 0.0
        self._last: Optional[Tuple[float, float]] = None   # (time s, power mW) of the previous read

    def probe(self) -> str:
        found, self.layout = _hwmon_rails(self.root), "hwmon"
        if not found:
            found, self.layout = _iio_rails(self.root), "iio"
        if not found:
            return (f"no INA3221 rails under {self.root / 'sys/bus/i2c/drivers'} (ina3221/*/hwmon/hwmon*/in*_label "
                    "or ina3221x/*/iio:device*/rail_name_*): not a Jetson")
        connected = [r for r in found if r.label and r.label.upper() != "NC"]
        if self.wanted is not None:
            by_label = {r.label: r for r in connected}
            missing = [w for w in self.wanted if w not in by_label]
            if missing:
                return f"INA3221 rails {missing} not found; present: {sorted(by_label)}"
            chosen = [by_label[w] for w in self.wanted]
        else:
            total = [r for r in connected if r.label in self.TOTAL_RAILS]
            chosen = total[:1] or connected
        for r in chosen:
            try:
                r.power_mw()
            except PermissionError as exc:
                return f"{exc.filename or r.files()[0]} is not readable by this user: run as root or add a udev rule"
            except (OSError, ValueError) as exc:
                return f"cannot read INA3221 rail {r.label}: {exc}"
        self.rails = chosen
        return ""

    def power_mw(self) -> float:
        """Present power of the chosen rails, in milliwatts."""
        try:
            return sum(r.power_mw() for r in self.rails)
        except (OSError, ValueError) as exc:
            raise MeterError(f"cannot read INA3221 rails: {exc}") from exc

    def read_uj(self) -> int:
        p, t = self.power_mw(), self.clock()
        if self._last is not None:
            t0, p0 = self._last
            self._uj += (p0 + p) / 2.0 * max(0.0, t - t0) * 1e3   # mW x s = mJ; x 1e3 = uJ
        self._last = (t, p)
        return int(round(self._uj))

    def describe(self) -> str:
        return f"ina3221 ({self.layout}: {' + '.join(r.label for r in self.rails)}, integrated power)"


# ---------------------------------------------------------------------- detection
def make_meter(name: str, root: PathLike = "/", **options) -> EnergyMeter:
    """A meter by name (rapl, nvml, ina3221), not yet probed."""
    if name == "rapl":
        return RaplMeter(root, **options)
    if name == "nvml":
        return NvmlMeter(**options)
    if name == "ina3221":
        return Ina3221Meter(root, **options)
    raise ConfigError(f"energy_meter: {name!r} is not one of {', '.join(map(repr, METER_NAMES))}")


@dataclass
class Detection:
    """What detect_meters() found: usable meters in order, and why the others are not."""

    meters: List[EnergyMeter] = field(default_factory=list)
    unavailable: Dict[str, str] = field(default_factory=dict)

    def first(self) -> Optional[EnergyMeter]:
        return self.meters[0] if self.meters else None

    def summary(self) -> str:
        lines = [f"{m.name}: available, {m.describe()}" for m in self.meters]
        lines += [f"{n}: unavailable: {r}" for n, r in self.unavailable.items()]
        return "\n".join(lines)


def detect_meters(root: PathLike = "/", names: Sequence[str] = METER_NAMES,
                  options: Optional[Dict[str, dict]] = None) -> Detection:
    """Probe every meter in `names` under the file-system root `root` (a fake sysfs tree in tests)."""
    found = Detection()
    for n in names:
        m = make_meter(n, root, **(options or {}).get(n, {}))
        if m.available():
            found.meters.append(m)
        else:
            found.unavailable[n] = m.reason
            m.close()
    return found


def select_meter(choice: str, root: PathLike = "/",
                 options: Optional[Dict[str, dict]] = None) -> Tuple[Optional[EnergyMeter], str]:
    """The meter a user asked for (auto | none | rapl | nvml | ina3221): (meter, '') or (None, why not)."""
    if choice not in CHOICES:
        raise ConfigError(f"energy_meter: {choice!r} is not one of {', '.join(map(repr, CHOICES))}")
    if choice == "none":
        return None, "no meter (energy_meter is none)"
    found = detect_meters(root, METER_NAMES if choice == "auto" else (choice,), options)
    chosen = found.first()
    for extra in found.meters[1:]:
        extra.close()
    if chosen is not None:
        return chosen, ""
    return None, "; ".join(f"{n}: {r}" for n, r in found.unavailable.items())
