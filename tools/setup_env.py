#!/usr/bin/env python3
"""Create and update the project's virtual environments (stdlib only).

Run by `make setup` (and so by `make demo` / `make test`). Idempotent: every
step fingerprints its inputs and is skipped when they have not changed, so a
second run takes about a second. On failure the step and its cause are named
and the exit status is non-zero.

Steps:
  1. interpreter   find Python 3.11 (or another of 3.10-3.12) for .venv
  2. venv          create .venv
  3. packages      pip install requirements/{runtime,build,dev}.txt
  4. cmake-paths   point the ROS wheels' exported cmake include dirs at this
                   interpreter (the wheels name their build machine's paths)
  5. interfaces    build interfaces/event_camera_msgs (only where the system
                   has no event_camera_msgs) and interfaces/snn_autonomy_msgs
                   into .venv with cmake + rosidl
  6. package       pip install -e . (the snn_autonomy package and its CLI)
  7. bench-extras  peer SNN libraries for `snn-autonomy bench backends` (requirements/bench.txt)
  8. lava          when a Python 3.10 exists: .venv-lava with lava-nc 0.10
  9. prepare       `snn-autonomy prepare`: compile the numba kernels, cache the shipped model's
                   ONNX graphs (else the first node start of each does it)
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterable, List, Optional

ROOT = Path(__file__).resolve().parent.parent
SUPPORTED = ((3, 10), (3, 11), (3, 12))


class StepFailed(RuntimeError):
    pass


def log(msg: str) -> None:
    print(msg, flush=True)


def run(cmd: List[str], *, env: Optional[dict] = None, quiet_log: Optional[Path] = None) -> None:
    """Run a command; on failure raise StepFailed with the tail of its output."""
    if quiet_log is None:
        proc = subprocess.run(cmd, env=env, cwd=ROOT)
        if proc.returncode != 0:
            raise StepFailed(f"`{' '.join(cmd)}` exited with {proc.returncode}")
        return
    quiet_log.parent.mkdir(parents=True, exist_ok=True)
    with open(quiet_log, "w") as fh:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = quiet_log.read_text(errors="replace").splitlines()[-25:]
        raise StepFailed(
            f"`{' '.join(cmd)}` exited with {proc.returncode}; last lines of {quiet_log}:\n"
            + "\n".join("    " + line for line in tail)
        )


def pip_install(python: Path, *args: str, log: Path) -> None:
    """`pip install` into the environment of `python`. --no-compile: pip would byte-compile every
    module of every wheel (torch alone: 25 s instead of 9 s here); Python compiles the modules a
    process imports on their first import instead, and keeps them in the environment."""
    run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile", *args],
        quiet_log=log)


def fingerprint(paths: Iterable[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in sorted(paths):
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                h.update(str(f.relative_to(ROOT)).encode())
                h.update(f.read_bytes())
        elif p.exists():
            h.update(str(p.relative_to(ROOT)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


class Steps:
    def __init__(self, venv: Path, lava_venv: Path, force: bool) -> None:
        self.venv = venv
        self.lava_venv = lava_venv
        self.force = force
        self.stamps = venv / ".snn-setup"
        self.logs = venv / ".snn-setup" / "logs"

    @property
    def py(self) -> Path:
        return self.venv / "bin" / "python"

    def done(self, name: str, fp: str) -> bool:
        stamp = self.stamps / f"{name}.sha256"
        return not self.force and stamp.exists() and stamp.read_text() == fp

    def mark(self, name: str, fp: str) -> None:
        self.stamps.mkdir(parents=True, exist_ok=True)
        (self.stamps / f"{name}.sha256").write_text(fp)

    def venv_python(self, code: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.py), "-c", code], capture_output=True, text=True)


def python_version(exe: str) -> Optional[tuple]:
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print(sys.version_info[0], sys.version_info[1])"],
            capture_output=True, text=True, timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_python(preferred: Iterable[str]) -> Optional[str]:
    for name in preferred:
        exe = shutil.which(name) if os.sep not in name else name
        if exe and python_version(exe) in SUPPORTED:
            return exe
    return None


def find_python310() -> Optional[str]:
    candidates = ["python3.10"]
    pyenv = shutil.which("pyenv")
    if pyenv:
        out = subprocess.run([pyenv, "root"], capture_output=True, text=True)
        if out.returncode == 0:
            root = Path(out.stdout.strip()) / "versions"
            candidates += [str(p / "bin" / "python3.10") for p in sorted(root.glob("3.10*"), reverse=True)]
    for exe in candidates:
        path = shutil.which(exe) if os.sep not in exe else exe
        if path and Path(path).exists() and python_version(path) == (3, 10):
            return path
    return None


# --------------------------------------------------------------------------- steps

def step_venv(s: Steps) -> str:
    if s.py.exists() and python_version(str(s.py)) in SUPPORTED:
        return f"{s.venv.name} exists (Python {'.'.join(map(str, python_version(str(s.py))))})"
    override = os.environ.get("SNN_PYTHON")
    exe = find_python([override] if override else ["python3.11", "python3.12", "python3.10", "python3"])
    if exe is None:
        raise StepFailed(
            "no Python 3.10-3.12 found (tried " + (override or "python3.11, python3.12, python3.10, python3")
            + "); install one or set SNN_PYTHON=/path/to/python3.11"
        )
    run([exe, "-m", "venv", str(s.venv)])
    return f"created {s.venv.name} with {exe}"


def step_packages(s: Steps) -> str:
    reqs = [ROOT / "requirements" / n for n in ("runtime.txt", "build.txt", "dev.txt")]
    fp = fingerprint(reqs)
    if s.done("packages", fp):
        return "up to date"
    args: List[str] = []
    for r in reqs:
        args += ["-r", str(r)]
    pip_install(s.py, *args, log=s.logs / "pip.log")
    s.mark("packages", fp)
    s.mark("cmake-paths", "")  # new wheels bring new export files
    return "installed " + ", ".join(r.name for r in reqs)


def step_cmake_paths(s: Steps) -> str:
    """The ROS wheels' *__rosidl_generator_pyExport.cmake files name the wheel
    build machine's Python and numpy include dirs; cmake refuses to configure a
    dependent package until they name this interpreter's."""
    out = s.venv_python(
        "import sysconfig, numpy; print(sysconfig.get_paths()['include']); print(numpy.get_include())"
    )
    if out.returncode != 0:
        raise StepFailed("cannot query include dirs: " + out.stderr.strip()[-500:])
    py_inc, np_inc = out.stdout.split("\n")[:2]
    wanted = f'INTERFACE_INCLUDE_DIRECTORIES "{py_inc};{np_inc}"'
    files = sorted((s.venv / "share").glob("*/cmake/*__rosidl_generator_pyExport.cmake"))
    fp = hashlib.sha256((wanted + "|" + "|".join(str(f) for f in files)).encode()).hexdigest()
    if s.done("cmake-paths", fp):
        return "up to date"
    pattern = re.compile(r'INTERFACE_INCLUDE_DIRECTORIES "[^"]*"')
    changed = 0
    for f in files:
        text = f.read_text()
        new = pattern.sub(wanted.replace("\\", "\\\\"), text)
        if new != text:
            f.write_text(new)
            changed += 1
    s.mark("cmake-paths", fp)
    return f"rewrote {changed} of {len(files)} export files"


def _system_has(s: Steps, pkg: str) -> bool:
    """True when `pkg` is importable and was not built by this set-up."""
    ours = s.stamps / f"built-{pkg}"
    if ours.exists():
        return False
    out = s.venv_python(f"import {pkg}.msg")
    return out.returncode == 0


def _build_interface(s: Steps, pkg: str) -> str:
    src = ROOT / "interfaces" / pkg
    fp = fingerprint([src], extra=str(s.venv))
    if s.done(f"iface-{pkg}", fp) and s.venv_python(f"import {pkg}.msg").returncode == 0:
        return f"{pkg} up to date"
    build = s.venv / ".snn-setup" / "build" / pkg
    if build.exists():
        shutil.rmtree(build)
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = str(s.venv)
    env["PATH"] = f"{s.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    if shutil.which("cmake", path=env["PATH"]) is None:
        raise StepFailed("cmake not found; install cmake (>= 3.16) and a C/C++ compiler")
    logf = s.logs / f"build-{pkg}.log"
    run(["cmake", "-S", str(src), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={s.venv}",
         f"-DPython3_EXECUTABLE={s.py}", "-DBUILD_TESTING=OFF"], env=env, quiet_log=logf)
    run(["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2)], env=env, quiet_log=logf)
    run(["cmake", "--install", str(build)], env=env, quiet_log=logf)
    check = s.venv_python(f"import {pkg}.msg")
    if check.returncode != 0:
        raise StepFailed(f"{pkg} built but does not import: {check.stderr.strip()[-500:]}")
    (s.stamps / f"built-{pkg}").write_text("built by tools/setup_env.py\n")
    s.mark(f"iface-{pkg}", fp)
    return f"built {pkg}"


def step_interfaces(s: Steps) -> str:
    notes = []
    if _system_has(s, "event_camera_msgs"):
        notes.append("event_camera_msgs provided by the system")
    else:
        notes.append(_build_interface(s, "event_camera_msgs"))
    notes.append(_build_interface(s, "snn_autonomy_msgs"))
    return "; ".join(notes)


def step_package(s: Steps) -> str:
    fp = fingerprint([ROOT / "setup.py", ROOT / "setup.cfg", ROOT / "package.xml"], extra=str(s.venv))
    if s.done("package", fp) and s.venv_python("import snn_autonomy").returncode == 0:
        return "up to date"
    pip_install(s.py, "--no-deps", "--no-build-isolation", "-e", str(ROOT), log=s.logs / "package.log")
    s.mark("package", fp)
    return "installed snn_autonomy (editable) and the snn-autonomy command"


def step_bench_extras(s: Steps) -> str:
    req = ROOT / "requirements" / "bench.txt"
    fp = fingerprint([req])
    if s.done("bench-extras", fp):
        return "up to date"
    pip_install(s.py, "-r", str(req), log=s.logs / "bench-pip.log")
    s.mark("bench-extras", fp)
    return "installed snnTorch, Norse, SpikingJelly"


def step_lava(s: Steps) -> str:
    if os.environ.get("SNN_SKIP_LAVA"):
        return "skipped (SNN_SKIP_LAVA is set)"
    exe = find_python310()
    if exe is None:
        return "skipped: no Python 3.10 found (Lava 0.10 needs 3.10); the lava backend will be unavailable"
    req = ROOT / "requirements" / "lava.txt"
    lava_py = s.lava_venv / "bin" / "python"
    fp = fingerprint([req, ROOT / "setup.py"], extra=exe)
    stamp = s.lava_venv / ".snn-setup-lava.sha256"
    if not s.force and lava_py.exists() and stamp.exists() and stamp.read_text() == fp:
        return f"{s.lava_venv.name} up to date"
    if not lava_py.exists():
        run([exe, "-m", "venv", str(s.lava_venv)])
    pip_install(lava_py, "-r", str(req), log=s.logs / "lava-pip.log")
    pip_install(lava_py, "--no-deps", "--no-build-isolation", "-e", str(ROOT), log=s.logs / "lava-package.log")
    check = subprocess.run([str(lava_py), "-c", "import lava.magma.core, rclpy, snn_autonomy.events"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise StepFailed("lava-nc installed but does not import: " + check.stderr.strip()[-500:])
    stamp.write_text(fp)
    return f"{s.lava_venv.name} ready with {exe}"


def step_prepare(s: Steps) -> str:
    pkg = ROOT / "snn_autonomy"
    fp = fingerprint(sorted(pkg.rglob("*.py")) + sorted((ROOT / "models").glob("*")),
                     extra=os.environ.get("SNN_AUTONOMY_CACHE", ""))
    if s.done("prepare", fp):
        return "up to date"
    exe = s.venv / "bin" / "snn-autonomy"
    run([str(exe), "prepare", "--json"], quiet_log=s.logs / "prepare.log")
    s.mark("prepare", fp)
    return "numba kernels compiled, the shipped model's ONNX graphs cached"


STEPS: List[tuple] = [
    ("venv", step_venv),
    ("packages", step_packages),
    ("cmake-paths", step_cmake_paths),
    ("interfaces", step_interfaces),
    ("package", step_package),
    ("bench-extras", step_bench_extras),
    ("lava", step_lava),
    ("prepare", step_prepare),
]


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--venv", default=str(ROOT / ".venv"))
    ap.add_argument("--lava-venv", default=str(ROOT / ".venv-lava"))
    ap.add_argument("--force", action="store_true", help="redo every step")
    ap.add_argument("--no-lava", action="store_true", help="skip the Lava side environment")
    args = ap.parse_args(argv)
    if args.no_lava:
        os.environ["SNN_SKIP_LAVA"] = "1"
    s = Steps(Path(args.venv).resolve(), Path(args.lava_venv).resolve(), args.force)
    t_all = time.monotonic()
    for i, (name, fn) in enumerate(STEPS, 1):
        t0 = time.monotonic()
        try:
            note = fn(s)
        except StepFailed as exc:
            log(f"[setup {i}/{len(STEPS)}] {name}: FAILED\n  cause: {exc}")
            return 1
        except Exception as exc:  # an unexpected error still names the step
            log(f"[setup {i}/{len(STEPS)}] {name}: FAILED\n  cause: {type(exc).__name__}: {exc}")
            return 1
        log(f"[setup {i}/{len(STEPS)}] {name}: {note} ({time.monotonic() - t0:.1f} s)")
    log(f"[setup] ready in {time.monotonic() - t_all:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
