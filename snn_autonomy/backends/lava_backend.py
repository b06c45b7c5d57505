"""The Lava back end: the perception SNN simulated as a Loihi 2 network by Lava 0.10.

Lava 0.10 needs Python 3.10 and numpy < 2 and has no torch, so it cannot run in this
environment. `LavaStepper` exports the model as plain arrays (`network_arrays`,
`save_network`) into a temporary directory and starts `lava_worker` under the Lava
interpreter: `SNN_AUTONOMY_LAVA_PYTHON` when set, else `.venv-lava/bin/python` of the source
tree (made by `tools/setup_env.py`, step "lava", where a Python 3.10 exists). The worker
builds the network from standard Lava processes (Injector, Conv, LIFReset, Dense /
DelayDense / Sparse, Extractor; see its docstring for the mapping, the pipeline alignment
and the fixed-point scheme) and runs it under `Loihi2SimCfg(select_tag=tag)`:

    tag="floating_pt"   Lava's floating-point models: the same spikes as torch (computed in float64)
    tag="fixed_pt"      Lava's bit-accurate Loihi models: 8-bit weights with exponents,
                        12-bit decays, 24-bit states, per-layer integer thresholds

The worker returns the hidden-layer spikes of every step (and the spikes of both convolution
layers, for the synaptic-operation count); the non-spiking readout, the running mean of
out_w @ s3 + out_b, runs here (`readout`), as do the early-exit rule (`base.run_until_exit`,
the one every back end uses) and the synaptic-op count.

Costs. Lava's Python models run every process as an OS process that synchronises at every
step: about 17 ms per Lava step here (2 CPU cores), i.e. ~0.3 s per 16-step sequence (each
sequence takes a period of max_steps + 3 steps: 3 is the pipeline depth). `run_until_exit`
runs the whole sequence in one request (`step_sequence`) and applies the exit rule to its
per-step logits.
`step(frame)` is truthful but expensive: the logits of frame t leave the pipeline 3 steps
later, and stepping further would feed the network frames it has not seen yet, so every
`step` re-runs the sequence since `reset()` from a fresh state (one full period per call).
Sequences are limited to `max_steps` (default: the model's t_max) frames.

On real Loihi 2 hardware (described, not done here: it needs Intel's lava-loihi extension, given
to members of the Intel Neuromorphic Research Community, and a Loihi 2 system):
- build the same processes and run them with `Loihi2HwCfg(select_tag="fixed_pt", ...)` instead of
  `Loihi2SimCfg`: it prefers NeuroCore process models (from lava-loihi), then C models for the
  chip's embedded cores, then Python models on the host. Only fixed-point semantics exist on the
  chip; the fixed_pt simulation here is the bit-level reference for what it computes, with the
  same integer weights, exponents, decays and thresholds (`info["quant"]`).
- check which of the processes used here have NeuroCore models in the installed lava-loihi
  (LIF and Dense do; check Conv, LIFReset, DelayDense and Sparse): one without falls back to a
  host Python model and moves its traffic off the chip at every step. `taps="delaydense"`
  (synaptic delays, no relay neurons) is then the natural choice for the fc taps; the relay line
  costs 3 x 6144 extra neurons. If LIFReset has no chip model, the sequences must be separated
  another way (e.g. host-side resets between sequences, which cost I/O).
- the Injector / Extractor are host processes: on the chip, spikes go in and out through the
  embedded cores (lava-loihi's spike I/O), which limits the graded input's message width: the
  payload here is <= 89 (7 bits); the hidden spikes come back for the readout on the host.
- Conv weights must stay 8 bit (the worker keeps them there and uses weight_exp 0, which
  Lava 0.10's fixed-point Conv model ignores anyway), Dense weights 8-bit mantissas, delays <= 63.
- the time per step becomes the chip's step time plus the host I/O, not the ~17 ms of the
  Python simulation; measure it there rather than extrapolating from this simulator.
"""
from __future__ import annotations

import io
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from ..config import ConfigError
from .base import Measure, StepResult, run_until_exit
from .network_arrays import network_arrays, save_network

LAVA_PYTHON_ENV = "SNN_AUTONOMY_LAVA_PYTHON"
SETUP_HINT = ("create it with `python3 tools/setup_env.py` (`make setup`), step \"lava\" (needs a Python 3.10), "
              f"or set {LAVA_PYTHON_ENV} to a Python with lava-nc 0.10")
TAGS = ("floating_pt", "fixed_pt")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def lava_python(python: Optional[Path] = None) -> Path:
    """The interpreter of the Lava environment (`python` when given); RuntimeError naming the
    set-up step when it does not exist."""
    env = os.environ.get(LAVA_PYTHON_ENV)
    exe = Path(python) if python else Path(env) if env else repo_root() / ".venv-lava" / "bin" / "python"
    if not exe.exists():
        where = f"{LAVA_PYTHON_ENV}={env}" if env and not python else str(exe)
        raise ConfigError(f"Lava back end unavailable: no Lava interpreter at {where}; {SETUP_HINT}")
    return exe


def export_lava(model, manifest: Dict[str, Any], path: Path) -> Path:
    """Write the network bundle the Lava worker loads: `path` (.npz, suffix added when missing)
    with `path`.json beside it. Returns the .npz path."""
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_network(network_arrays(model, manifest), path)
    return path


def readout(s3: np.ndarray, out_w: np.ndarray, out_b: np.ndarray) -> np.ndarray:
    """Per-step logits (..., T, C+1) from hidden spikes (..., T, hidden): running mean of out_w @ s3 + out_b."""
    z = s3.astype(np.float32) @ out_w.T.astype(np.float32) + out_b.astype(np.float32)
    t = np.arange(1, s3.shape[-2] + 1, dtype=np.float32)[:, None]
    return np.cumsum(z, axis=-2) / t


class LavaWorkerError(RuntimeError):
    pass


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the worker and the Lava processes it forked (its own process group)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _shutdown(proc: subprocess.Popen, log, tmp: str) -> None:
    try:
        if proc.poll() is None:
            try:
                head = json.dumps({"op": "close"}).encode()
                proc.stdin.write(struct.pack(">I", len(head)) + head)
                proc.stdin.flush()
                proc.stdin.close()
                proc.wait(timeout=20)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        _kill_group(proc)   # also reaps Lava children left behind
    finally:
        for f in (proc.stdout, log):
            try:
                f.close()
            except Exception:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


class LavaWorker:
    """The worker subprocess and its protocol (see lava_worker), with deadlines: a crash or a
    silent worker raises LavaWorkerError (and the worker is killed), never a hang."""

    def __init__(self, bundle: Path, tag: str, max_steps: int, taps: str = "relay", trace: bool = True,
                 python: Optional[Path] = None, start_timeout_s: float = 300.0, tmp: Optional[str] = None) -> None:
        exe = lava_python(python)
        self.tmp = tmp or tempfile.mkdtemp(prefix="snn-lava-")
        self.log_path = Path(self.tmp) / "worker.log"
        log = open(self.log_path, "wb")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(repo_root())] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        cmd = [str(exe), "-m", "snn_autonomy.backends.lava_worker", str(bundle), "--tag", tag,
               "--max-steps", str(max_steps), "--taps", taps] + ([] if trace else ["--no-trace"])
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env,
                                     cwd=self.tmp, start_new_session=True)
        self._finalizer = weakref.finalize(self, _shutdown, self.proc, log, self.tmp)
        self._buf = b""
        header, _ = self._receive(time.monotonic() + start_timeout_s, "start-up")
        if not header.get("ok"):
            self.close()
            raise LavaWorkerError(f"Lava worker failed to build the network: {header.get('error')}\n"
                                  f"{header.get('traceback', '')}")
        self.info = header

    # ------------------------------------------------------------------ plumbing
    def _fail(self, what: str) -> None:
        _kill_group(self.proc)
        tail = ""
        try:
            tail = self.log_path.read_bytes()[-3000:].decode(errors="replace")
        except OSError:
            pass
        rc = self.proc.poll()
        self._finalizer()
        raise LavaWorkerError(f"Lava worker {what} (exit status {rc}); its stderr ends with:\n{tail}")

    def _write(self, data: bytes, deadline: float, what: str) -> None:
        fd = self.proc.stdin.fileno()
        view = memoryview(data)
        while view:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"did not take the {what} request in time")
            _, w, _ = select.select([], [fd], [], min(left, 1.0))
            if self.proc.poll() is not None:
                self._fail(f"exited during the {what} request")
            if w:
                try:
                    n = os.write(fd, view[:1 << 16])
                except BrokenPipeError:
                    self._fail(f"closed its input during the {what} request")
                view = view[n:]

    def _read_exact(self, n: int, deadline: float, what: str) -> bytes:
        fd = self.proc.stdout.fileno()
        chunks, have = [self._buf], len(self._buf)
        while have < n:
            left = deadline - time.monotonic()
            if left <= 0:
                self._fail(f"did not answer the {what} request within the time limit")
            r, _, _ = select.select([fd], [], [], min(left, 1.0))
            if r:
                b = os.read(fd, max(n - have, 1 << 16))
                if not b:   # end of its output: it exited or is about to
                    try:
                        self.proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        pass
                    self._fail(f"closed its output during the {what} request")
                chunks.append(b)
                have += len(b)
            elif self.proc.poll() is not None:
                self._fail(f"exited during the {what} request")
        data = b"".join(chunks)
        self._buf = data[n:]
        return data[:n]

    def _receive(self, deadline: float, what: str) -> Tuple[Dict[str, Any], bytes]:
        (n,) = struct.unpack(">I", self._read_exact(4, deadline, what))
        header = json.loads(self._read_exact(n, deadline, what))
        payload = self._read_exact(int(header["nbytes"]), deadline, what) if header.get("nbytes") else b""
        return header, payload

    def request(self, header: Dict[str, Any], payload: bytes = b"", timeout_s: float = 60.0
                ) -> Tuple[Dict[str, Any], bytes]:
        what = header.get("op", "?")
        if not self._finalizer.alive:
            raise LavaWorkerError("the Lava worker is not running (closed, or it failed earlier)")
        if self.proc.poll() is not None:
            self._fail(f"exited before the {what} request")
        deadline = time.monotonic() + timeout_s
        if payload:
            header = dict(header, nbytes=len(payload))
        head = json.dumps(header).encode()
        self._write(struct.pack(">I", len(head)) + head + payload, deadline, what)
        reply, data = self._receive(deadline, what)
        if not reply.get("ok"):
            raise LavaWorkerError(f"Lava worker: {reply.get('error')}")
        return reply, data

    @property
    def alive(self) -> bool:
        return self._finalizer.alive and self.proc.poll() is None

    def close(self) -> None:
        self._finalizer()


class LavaStepper:
    """The stepping API (see `base.Stepper`) on a Lava network; also `step_sequence` for the
    steps of a sequence in one request and `run_sequences` for many sequences in one request."""

    groups = 1          # make_stepper sets it from the manifest

    def __init__(self, model, manifest: Dict[str, Any], tag: str = "floating_pt", max_steps: Optional[int] = None,
                 taps: str = "relay", trace: bool = True, python: Optional[Path] = None,
                 timeout_s: Optional[float] = None, start_timeout_s: float = 300.0, chunk: int = 64) -> None:
        if tag not in TAGS:
            raise ValueError(f"unknown Lava tag {tag!r}; use one of {TAGS}")
        exe = lava_python(python)   # fail early, before exporting anything
        self.name = f"lava-{tag}"
        self.tag = tag
        self.max_steps = int(max_steps or manifest["t_max"])
        self.neurons = model.neurons()
        self.fanouts = [f.detach().cpu().numpy().astype(np.float64) for f in model.fanout_maps()]
        net = network_arrays(model, manifest)
        self.out_w, self.out_b = net.out_w, net.out_b
        self.timeout_s = timeout_s
        self.chunk = int(chunk)
        tmp = tempfile.mkdtemp(prefix="snn-lava-")
        try:
            bundle = Path(tmp) / "network.npz"
            save_network(net, bundle)
            self.worker = LavaWorker(bundle, tag, self.max_steps, taps, trace, exe, start_timeout_s, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.info = self.worker.info
        self.last_step_us = float("nan")
        self.reset()

    @classmethod
    def from_model(cls, model, manifest: Dict[str, Any], **options) -> "LavaStepper":
        return cls(model, manifest, **options)

    # ------------------------------------------------------------------ sequences
    def _timeout(self, lava_steps: int) -> float:
        return self.timeout_s if self.timeout_s is not None else 60.0 + 0.5 * lava_steps

    def run_sequences(self, frames: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Event-count frames (N, T, 2, H, W), each sequence from a fresh state -> per-step
        logits (N, T, C+1) and synaptic ops (N, T)."""
        frames = np.asarray(frames)
        if frames.ndim != 5:
            raise ValueError(f"frames of shape {frames.shape}; expected (N, T, 2, H, W)")
        n, T = frames.shape[:2]
        if n == 0 or T == 0:
            raise ValueError("no frames")
        if T > self.max_steps:
            raise ValueError(f"{T} steps: this Lava network was built for sequences of up to {self.max_steps} "
                             "(option max_steps)")
        integral = np.issubdtype(frames.dtype, np.integer) or bool(np.all(np.mod(frames, 1) == 0))
        small = integral and frames.min() >= 0 and frames.max() <= 255
        wire = frames.astype(np.uint8 if small else np.float32)
        logits, synops = [], []
        for i in range(0, n, self.chunk):
            part = wire[i:i + self.chunk]
            buf = io.BytesIO()
            np.save(buf, part, allow_pickle=False)
            reply, data = self.worker.request({"op": "run"}, buf.getvalue(),
                                              self._timeout(len(part) * self.info["period"]))
            self.last_step_us = float(reply["step_us"])
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                res = {k: z[k] for k in z.files}
            logits.append(readout(res["s3"], self.out_w, self.out_b))
            synops.append(self._synops(part, res))
        return np.concatenate(logits), np.concatenate(synops)

    def _synops(self, frames: np.ndarray, res: Dict[str, np.ndarray]) -> np.ndarray:
        """Synaptic ops per step, counted as the torch back end does (input events and spikes x fan-out)."""
        f_in, f1, f2, f3 = self.fanouts
        n, T = frames.shape[:2]
        ops = frames.reshape(n, T, -1).astype(np.float64) @ f_in.ravel() + res["s3"].astype(np.float64) @ f3
        if "s1" not in res:
            return np.full((n, T), np.nan)
        for k, f in (("s1", f1), ("s2", f2)):
            bits = np.unpackbits(res[k], axis=-1, count=f.size)
            ops = ops + bits.astype(np.float64) @ f.ravel()
        return ops

    # ------------------------------------------------------------------ stepping API
    def reset(self) -> None:
        self.history: List[np.ndarray] = []

    def step(self, frame: np.ndarray) -> StepResult:
        """The logits after `frame`, continuing the sequence since reset(). Re-runs that sequence in
        the worker (see the module docstring); sequences are limited to max_steps frames."""
        if len(self.history) >= self.max_steps:
            raise RuntimeError(f"the Lava network was built for sequences of up to {self.max_steps} steps; "
                               "reset() first, or create the stepper with a larger max_steps")
        (r,) = self.step_sequence(np.asarray(frame)[None])
        return r

    def step_sequence(self, frames: np.ndarray) -> Iterator[StepResult]:
        """The results of `step` on each of frames (T, 2, H, W) in turn, all computed in one request
        (the sequence since reset() included). A frame joins the sequence when its result is taken,
        so a caller that stops early (the early-exit loop) leaves the sequence where it stopped."""
        frames = np.asarray(frames)
        seq = np.concatenate([np.stack(self.history), frames]) if self.history else frames
        logits, synops = self.run_sequences(seq[None])
        for t in range(len(self.history), len(seq)):
            self.history.append(seq[t])
            yield StepResult(logits[0, t], float(synops[0, t]), self.neurons)

    def run_until_exit(self, frames: np.ndarray, threshold: float, t_max: Optional[int] = None,
                       measure: Measure = "max_softmax", groups: Optional[int] = None) -> Tuple[StepResult, int, float]:
        return run_until_exit(self, frames, threshold, t_max, measure, groups)

    def close(self) -> None:
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> "LavaStepper":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
