"""Run a launch plan without launch_ros: one process per node, in its own process group.

`snn-autonomy launch` uses this on the pip-installed ROS 2 (no `ros2 launch` there);
full installs use launch/*.launch.py, which read the same plan.

Each node runs as `python -m snn_autonomy.ros.<module> --ros-args -r __node:=<name>
-r __ns:=<ns> --params-file <file>` (nodes of other packages from the ament prefix,
`lib/<package>/<executable>`), its parameters written to a ROS 2 params file under
`/<ns>/<name>: ros__parameters:`. Output goes to one log file per node; the console gets
the lines prefixed by the node's name (or a live table of node states).

Respawn: a node with `respawn` that exits is started again after `respawn_delay_s`
(doubled for each further exit within `QUICK_EXIT_S` of its start, up to `MAX_RESPAWN_DELAY_S`),
never while shutting down, and never after exit status 2 (a configuration error: it
would fail the same way again), which is reported instead.
Shutdown (Ctrl-C, SIGTERM or SIGHUP to the runner, `duration` reached, or every node
gone): SIGINT to every node's group, then SIGTERM, then SIGKILL; a second signal to the
runner skips the wait. Before the SIGKILL, a node of this package is asked to write every
thread's Python stack to its log (STACK_DUMP_SIGNAL, `ros/spin.py`), so that a node that would
not stop says where it was stuck. Every node gets SIGTERM from the kernel if the runner itself dies
(PR_SET_PDEATHSIG, Linux), so even a runner killed with SIGKILL leaves no orphan nodes.
Exit status: 0 after a clean shutdown, 1 if a node failed (exited with an error before
the shutdown and was not respawned, or did not stop on SIGINT/SIGTERM and was killed).
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from .config import ConfigError
from .launch_plan import NodeSpec
from .realtime import NICE_AFTER_START_ENV, boost_startup

CONFIG_ERROR_EXIT = 2          # spin.py: bad parameter, missing file or package
QUICK_EXIT_S = 5.0             # a node that dies sooner than this after its start backs off
MAX_RESPAWN_DELAY_S = 30.0
# exit statuses of a node asked to stop: its own clean 0, or the signal (as -N or 128+N)
_STOP_STATUSES = {0, -signal.SIGINT, -signal.SIGTERM, 128 + signal.SIGINT, 128 + signal.SIGTERM}
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PR_SET_PDEATHSIG = 1
STACK_DUMP_SIGNAL = signal.SIGUSR1   # a node of this package writes its threads' stacks to its log
STACK_DUMP_WAIT_S = 0.5


# ---------------------------------------------------------------------------- params files
def _scalar(path: str, v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return ".nan"
        if math.isinf(v):
            return ".inf" if v > 0 else "-.inf"
        text = repr(v)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(v, str):
        # always double-quoted: the rcl parser would read y, on, 1.0 ... as bool or number
        return json.dumps(v, ensure_ascii=True)
    raise ConfigError(f"{path}: {v!r} is not a ROS parameter value (bool, int, float, string or a list of one)")


def _sequence(path: str, values: Sequence[Any]) -> str:
    kinds = {bool if isinstance(v, bool) else int if isinstance(v, int) else type(v) for v in values}
    if kinds == {int, float}:          # [1, 2.5] is a double array
        values = [float(v) for v in values]
    elif len(kinds) > 1:
        names = ", ".join(sorted(k.__name__ for k in kinds))
        raise ConfigError(f"{path}: {list(values)!r} mixes {names}; a ROS array parameter has one type")
    return "[" + ", ".join(_scalar(f"{path}[{i}]", v) for i, v in enumerate(values)) + "]"


def _emit(lines: List[str], params: Dict[str, Any], indent: int, path: str) -> None:
    for key, value in params.items():
        key = str(key)
        where = f"{path}.{key}" if path else key
        if not _PARAM_NAME.match(key):
            raise ConfigError(f"{where}: not a valid parameter name (letters, digits, _)")
        pad = " " * indent
        if isinstance(value, dict):
            lines.append(f"{pad}{key}:")
            _emit(lines, value, indent + 2, where)
        elif isinstance(value, (list, tuple)):
            if not value:               # an empty list has no type in ROS: keep the node's default
                continue
            lines.append(f"{pad}{key}: {_sequence(where, value)}")
        elif value is None:
            continue
        else:
            lines.append(f"{pad}{key}: {_scalar(where, value)}")


def fully_qualified_name(spec: NodeSpec) -> str:
    ns = "/" + spec.namespace.strip("/") if spec.namespace.strip("/") else ""
    return f"{ns}/{spec.name}"


def params_yaml(spec: NodeSpec) -> str:
    """The node's parameters as a ROS 2 params file, keyed by its fully qualified name.
    Nested mappings become dotted names (`patrol: {speed: 1.0}` is `patrol.speed`); empty
    lists and None are left out (the node keeps its default)."""
    lines = [f"{fully_qualified_name(spec)}:", "  ros__parameters:"]
    _emit(lines, spec.parameters, 4, fully_qualified_name(spec))
    if len(lines) == 2:
        lines[-1] += " {}"
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- commands
def _entry_points() -> Dict[str, str]:
    """console script -> module of this package's nodes (from the installed metadata)."""
    from importlib.metadata import entry_points

    out = {}
    for ep in entry_points(group="console_scripts"):
        if ep.value.startswith("snn_autonomy.ros."):
            out[ep.name] = ep.value.split(":")[0]
    return out


def node_module(executable: str) -> Optional[str]:
    """The module of one of this package's node executables, or None."""
    import importlib.util

    module = _entry_points().get(executable) or f"snn_autonomy.ros.{executable}_node"
    try:
        return module if importlib.util.find_spec(module) is not None else None
    except (ImportError, ValueError):
        return None


def find_ament_executable(package: str, executable: str) -> Optional[str]:
    """`lib/<package>/<executable>` in the first AMENT_PREFIX_PATH entry that has it (as `ros2 run`)."""
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        path = Path(prefix) / "lib" / package / executable
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def node_command(spec: NodeSpec, params_file: Optional[str]) -> List[str]:
    """The command line that runs one plan node (raises ConfigError if it cannot be found)."""
    if spec.ours:
        module = node_module(spec.executable)
        if module is None:
            raise ConfigError(f"node {fully_qualified_name(spec)}: no snn_autonomy executable {spec.executable!r}")
        cmd = [sys.executable, "-m", module]
    else:
        exe = find_ament_executable(spec.package, spec.executable)
        if exe is None:
            raise ConfigError(f"node {fully_qualified_name(spec)}: {spec.package}/{spec.executable} is not "
                              "installed (not in AMENT_PREFIX_PATH); install it or use ros2 launch")
        cmd = [exe]
    cmd += ["--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace.strip("/"):
        cmd += ["-r", f"__ns:=/{spec.namespace.strip('/')}"]
    for src, dst in spec.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    if params_file:
        cmd += ["--params-file", params_file]
    if spec.enclave:   # DDS Security: this node's enclave in the keystore
        cmd += ["--enclave", spec.enclave]
    return cmd


def default_log_dir() -> Path:
    """`$ROS_LOG_DIR` (else `$ROS_HOME/log`, else ~/.ros/log) / snn_launch_<time>_<pid>."""
    base = os.environ.get("ROS_LOG_DIR") or os.path.join(
        os.environ.get("ROS_HOME") or os.path.join(os.path.expanduser("~"), ".ros"), "log")
    return Path(base) / time.strftime(f"snn_launch_%Y-%m-%d-%H-%M-%S_{os.getpid()}")


def _child_setup(parent: int, cpus: Optional[set] = None, boost: bool = False) -> Callable[[], None]:
    """preexec_fn: SIGTERM to the child when the runner dies (even by SIGKILL), and the CPU
    affinity `cpus`, set before exec so that every thread the node starts inherits it. A node
    with a `realtime_priority` (`boost`) starts up at a raised weight (`realtime.boost_startup`):
    its imports, model and warm-up are not starved by the very load its priority protects its
    decisions from, which matters most when it is respawned, yet they do not starve the rest; the
    node takes SCHED_FIFO once built."""
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def setup() -> None:
        if libc is not None:
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if os.getppid() != parent:      # the runner died before prctl took effect
                os.kill(os.getpid(), signal.SIGTERM)
        if cpus:
            os.sched_setaffinity(0, cpus)
        if boost:
            boost_startup()
    return setup


def live_groups(pgids: Sequence[int]) -> set:
    """Those of `pgids` that still have a live (non-zombie) process."""
    wanted = set(pgids)
    if not wanted:
        return set()
    if not os.path.isdir("/proc/self"):
        alive = set()
        for g in wanted:
            try:
                os.killpg(g, 0)
                alive.add(g)
            except ProcessLookupError:
                pass
            except PermissionError:
                alive.add(g)
        return alive
    found = set()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp in wanted and state not in (b"Z", b"X"):
            found.add(pgrp)
    return found


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------------------- the runner
@dataclass
class NodeRun:
    """One plan node and its current process."""

    spec: NodeSpec
    label: str
    cmd: List[str]
    log_path: Path
    proc: Optional[subprocess.Popen] = None
    state: str = "pending"       # pending | running | respawning | exited | failed | stopped | killed
    rc: Optional[int] = None
    respawns: int = 0
    pids: List[int] = field(default_factory=list)   # every process it ran (each one a group leader)
    started_at: float = 0.0
    respawn_at: float = 0.0
    quick_exits: int = 0
    note: str = ""
    unclean_stop: bool = False   # stopped when asked, but with an unusual status (see shutdown())
    _log_pos: int = 0
    _partial: str = ""


class Launcher:
    """Runs plan nodes as process groups; see the module docstring for the rules."""

    def __init__(self, plan: Sequence[NodeSpec], log_dir: Path, *, grace_s: float = 10.0, term_s: float = 3.0,
                 echo: Optional[Callable[[str], None]] = None, node_output: bool = True,
                 command: Callable[[NodeSpec, Optional[str]], List[str]] = node_command,
                 env: Optional[Dict[str, str]] = None) -> None:
        self.log_dir = Path(log_dir)
        self.grace_s = grace_s      # SIGINT -> SIGTERM
        self.term_s = term_s        # SIGTERM -> SIGKILL
        self.echo = echo or (lambda line: print(line, flush=True))
        self.node_output = node_output
        self.nodes: List[NodeRun] = []
        self.stopping = False
        self.stop_reason = ""
        self._signals = 0
        labels = set()
        (self.log_dir / "params").mkdir(parents=True, exist_ok=True)
        for spec in plan:
            label = fully_qualified_name(spec).lstrip("/")
            if label in labels:
                raise ConfigError(f"node {label}: two nodes of the plan have this name")
            labels.add(label)
            stem = label.replace("/", "__")
            params_file = self.log_dir / "params" / f"{stem}.yaml"
            params_file.write_text(params_yaml(spec))
            self.nodes.append(NodeRun(spec, label, command(spec, str(params_file)), self.log_dir / f"{stem}.log"))
        self._events = open(self.log_dir / "launch.log", "a", buffering=1)
        self._env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))   # env: e.g. ROS_SECURITY_*
        self._env.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")
        self._env.setdefault("ROS_LOG_DIR", str(self.log_dir / "ros"))

    # ------------------------------------------------------------------ output
    def say(self, text: str) -> None:
        """A runner event: console and launch.log."""
        self._events.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        self.echo(f"[launch] {text}")

    def _pump_output(self, final: bool = False) -> None:
        """New lines of every node's log, prefixed with the node's name."""
        if not self.node_output:
            return
        for n in self.nodes:
            try:
                with open(n.log_path, "rb") as fh:
                    fh.seek(n._log_pos)
                    chunk = fh.read(1 << 16)
            except FileNotFoundError:
                continue
            n._log_pos += len(chunk)
            text = n._partial + chunk.decode("utf-8", "replace")
            lines = text.split("\n")
            n._partial = "" if final else lines.pop()
            for line in lines:
                if line.strip():
                    self.echo(f"[{n.label}] {line.rstrip()}")

    def states(self) -> List[Dict[str, Any]]:
        """Every node: name, state, current pid, last exit status, respawns, all pids, log file."""
        return [{"node": "/" + n.label, "executable": n.spec.executable, "package": n.spec.package,
                 "state": n.state, "pid": n.proc.pid if n.state == "running" else None, "rc": n.rc,
                 "respawns": n.respawns, "pids": list(n.pids), "note": n.note, "log": str(n.log_path)}
                for n in self.nodes]

    def _write_state(self) -> None:
        """nodes.json in the log directory: every node's state, pid and respawn count."""
        path = self.log_dir / "nodes.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"runner_pid": os.getpid(), "stopping": self.stopping,
                                   "nodes": self.states()}, indent=1))
        os.replace(tmp, path)

    # ------------------------------------------------------------------ processes
    def _start(self, n: NodeRun) -> None:
        cpus = set(n.spec.cpus)
        if cpus and not cpus <= os.sched_getaffinity(0):
            n.state, n.rc = "failed", None
            n.note = (f"cannot start: cpu_affinity {sorted(cpus)} is not within the CPUs this runner may use "
                      f"({sorted(os.sched_getaffinity(0))})")
            self.say(f"{n.label}: {n.note}")
            return
        boost = bool(n.spec.parameters.get("realtime_priority", 0))
        env = dict(self._env, **{NICE_AFTER_START_ENV: str(os.getpriority(os.PRIO_PROCESS, 0))}) if boost else self._env
        log = open(n.log_path, "ab")
        try:
            n.proc = subprocess.Popen(n.cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                      env=env, start_new_session=True,
                                      preexec_fn=_child_setup(os.getpid(), cpus, boost))
        except OSError as exc:
            n.state, n.rc, n.note = "failed", None, f"cannot start: {exc}"
            self.say(f"{n.label}: cannot start: {exc}")
            return
        finally:
            log.close()
        n.pids.append(n.proc.pid)
        n.state, n.rc, n.started_at = "running", None, time.monotonic()
        self.say(f"{n.label}: started, pid {n.proc.pid}" + (f" (respawn {n.respawns})" if n.respawns else ""))

    def _on_exit(self, n: NodeRun, now: float) -> None:
        rc = n.proc.returncode
        _signal_group(n.proc.pid, signal.SIGKILL)       # whatever the node left behind in its group
        n.rc = rc
        lived = now - n.started_at
        if rc == CONFIG_ERROR_EXIT:
            n.state, n.note = "failed", "configuration error (exit 2), not respawned; see its log"
            self.say(f"{n.label}: exited 2 (configuration error); not respawned, see {n.log_path}")
        elif n.spec.respawn:
            n.quick_exits = n.quick_exits + 1 if lived < QUICK_EXIT_S else 0
            delay = min(MAX_RESPAWN_DELAY_S, n.spec.respawn_delay_s * (2 ** max(0, n.quick_exits - 1)))
            n.state, n.respawn_at = "respawning", now + delay
            self.say(f"{n.label}: exited {rc} after {lived:.1f} s; respawn in {delay:.1f} s")
        elif rc == 0:
            n.state = "exited"
            self.say(f"{n.label}: exited 0")
        else:
            n.state, n.note = "failed", f"exited {rc}"
            self.say(f"{n.label}: FAILED, exit status {rc}; see {n.log_path}")

    def poll(self) -> bool:
        """Reap exits, respawn what is due; False when no node is running or waiting to respawn."""
        now = time.monotonic()
        changed = False
        for n in self.nodes:
            if n.state == "running" and n.proc.poll() is not None:
                self._on_exit(n, now)
                changed = True
            elif n.state == "respawning" and now >= n.respawn_at and not self.stopping:
                n.respawns += 1
                self._start(n)
                changed = True
        if changed:
            self._write_state()
        self._pump_output()
        return any(n.state in ("running", "respawning") for n in self.nodes)

    # ------------------------------------------------------------------ signals
    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        if not self.stop_reason:
            self.stop_reason = signal.Signals(signum).name

    def _install_signals(self) -> Dict[int, Any]:
        old = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            old[sig] = signal.signal(sig, self._on_signal)
        return old

    # ------------------------------------------------------------------ run / stop
    def start(self) -> None:
        """Start every node of the plan (in plan order); then `poll()` supervises and `shutdown()` stops."""
        self.say(f"{len(self.nodes)} nodes, logs in {self.log_dir}")
        for n in self.nodes:
            if self.stop_reason:
                break
            self._start(n)
        self._write_state()

    def node(self, label: str) -> NodeRun:
        """The node run of `label` (its fully qualified name without the leading slash)."""
        for n in self.nodes:
            if n.label == label.lstrip("/"):
                return n
        raise KeyError(f"no node {label!r} in the plan (nodes: {', '.join(n.label for n in self.nodes)})")

    def signal_node(self, label: str, sig: int) -> None:
        """Send `sig` to the running node's whole process group (SIGSTOP / SIGCONT / SIGKILL for faults)."""
        n = self.node(label)
        if n.state != "running":
            raise RuntimeError(f"{label} is {n.state}, not running")
        _signal_group(n.proc.pid, sig)

    def run(self, duration_s: Optional[float] = None, on_tick: Optional[Callable[[], None]] = None,
            tick_s: float = 0.1) -> int:
        """Start every node, supervise until a signal, `duration_s` or no node left; stop; exit status."""
        old = self._install_signals()
        try:
            self.start()
            t_end = None if duration_s is None else time.monotonic() + duration_s
            while not self.stop_reason:
                if not self.poll():
                    self.stop_reason = "every node has exited"
                    break
                if t_end is not None and time.monotonic() >= t_end:
                    self.stop_reason = f"duration {duration_s:g} s reached"
                    break
                if on_tick is not None:
                    on_tick()
                time.sleep(tick_s)
        finally:
            try:
                self.shutdown()         # also after an error in the runner itself: no node is left behind
            finally:
                for sig, handler in old.items():
                    signal.signal(sig, handler)
        if on_tick is not None:
            on_tick()
        return self.exit_status()

    def _wait(self, groups: Sequence[int], seconds: float, signals_seen: int) -> None:
        """Until no process of `groups` is left, `seconds` pass, or another signal asks to hurry."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._signals == signals_seen and live_groups(groups):
            time.sleep(0.05)

    def shutdown(self) -> None:
        """SIGINT to every running node's group, wait, SIGTERM, wait, SIGKILL: no process is left."""
        self.stopping = True
        self.say(f"shutting down ({self.stop_reason or 'requested'})")
        for n in self.nodes:
            if n.state == "respawning":
                n.state = "stopped"
        self._write_state()
        # The leaders are not reaped before the end, so their group ids stay theirs.
        running = [n for n in self.nodes if n.state == "running"]
        t0 = time.monotonic()
        for sig, wait in ((signal.SIGINT, self.grace_s), (signal.SIGTERM, self.term_s), (signal.SIGKILL, 3.0)):
            left = live_groups([n.proc.pid for n in running])
            if not left:
                break
            targets = [n for n in running if n.proc.pid in left]
            if sig != signal.SIGINT:
                self.say(f"{sig.name} to {', '.join(n.label for n in targets)}")
            if sig == signal.SIGKILL:
                self._dump_stacks(targets)
                for n in targets:
                    n.note = "did not stop on SIGINT/SIGTERM; killed"
            for n in targets:
                _signal_group(n.proc.pid, sig)
            self._wait(list(left), wait, self._signals)
        for n in running:
            n.proc.wait()
            n.rc = n.proc.returncode
            if n.note.startswith("did not stop"):
                n.state = "killed"
                self.say(f"{n.label}: {n.note}")
            else:
                # It stopped when asked. An unusual status is noted, not a failure: a node
                # interrupted while still starting may end with any status (2 included).
                n.state = "stopped"
                if n.rc not in _STOP_STATUSES:
                    n.unclean_stop = True
                    n.note = f"exit status {n.rc} while stopping"
                    self.say(f"{n.label}: exit status {n.rc} while stopping; see {n.log_path}")
        self._pump_output(final=True)
        self.say(f"{len(running)} nodes stopped in {time.monotonic() - t0:.1f} s")
        self._write_state()
        self._events.close()

    def _dump_stacks(self, nodes: Sequence[NodeRun]) -> None:
        """Ask each node of this package among `nodes` (its leader only: another program in its
        group would die of the signal) for its threads' stacks in its log, and give them
        STACK_DUMP_WAIT_S to be written."""
        ours = [n for n in nodes if n.spec.ours]
        for n in ours:
            try:
                os.kill(n.proc.pid, STACK_DUMP_SIGNAL)
            except (ProcessLookupError, PermissionError):
                continue
            self.say(f"{n.label}: its threads' stacks go to {n.log_path}")
        if ours:
            time.sleep(STACK_DUMP_WAIT_S)

    def exit_status(self) -> int:
        return 1 if any(n.state in ("failed", "killed") for n in self.nodes) else 0

    def summary(self) -> Dict[str, Any]:
        failed = {n.label: str(n.log_path) for n in self.nodes if n.state in ("failed", "killed")}
        # stopped when asked, but with an unusual status: one that hit its shutdown deadline has its stacks there
        unclean = {n.label: str(n.log_path) for n in self.nodes if n.unclean_stop}
        return {"exit_status": self.exit_status(), "stopped_by": self.stop_reason, "log_dir": str(self.log_dir),
                "nodes": len(self.nodes), "failed": list(failed), "failed_logs": failed, "unclean_stop_logs": unclean,
                "respawns": {n.label: n.respawns for n in self.nodes if n.respawns},
                "states": {n.label: n.state + (f" ({n.note})" if n.note else "") for n in self.nodes}}


def log_tails(logs: Dict[str, str], chars: int = 4000) -> str:
    """The end of each log of `logs` ({node: log path}, a summary's `failed_logs`): a node killed
    for not stopping has its threads' stacks there."""
    parts = []
    for label, path in logs.items():
        try:
            text = Path(path).read_text(errors="replace")[-chars:]
        except OSError as exc:
            text = f"(unreadable: {exc})"
        parts.append(f"--- {label} ({path})\n{text}")
    return "\n".join(parts)


def state_table(launcher: Launcher):
    """A rich table of the nodes: state, pid, exit status, respawns."""
    from rich.table import Table

    colour = {"running": "green", "respawning": "yellow", "failed": "red", "killed": "red", "stopped": "dim",
              "exited": "dim"}
    table = Table(title=f"snn-autonomy launch — {launcher.log_dir}")
    for col in ("node", "state", "pid", "rc", "respawns", "note"):
        table.add_column(col)
    for s in launcher.states():
        st = s["state"]
        table.add_row(s["node"], f"[{colour.get(st, 'white')}]{st}[/]", str(s["pid"] or ""),
                      "" if s["rc"] is None else str(s["rc"]), str(s["respawns"]), s["note"])
    return table


def run_plan(plan: Sequence[NodeSpec], log_dir: Optional[Path] = None, *, duration_s: Optional[float] = None,
             grace_s: float = 10.0, console: str = "lines", stream=None,
             env: Optional[Dict[str, str]] = None) -> Launcher:
    """Run `plan` until a signal or `duration_s`; the finished Launcher (see `exit_status()`).

    console: "lines" (node output prefixed with its name), "events" (only the runner's own
    lines) or "table" (a live table of node states); all to `stream` (default stdout).
    """
    stream = stream or sys.stdout
    log_dir = Path(log_dir) if log_dir else default_log_dir()
    if log_dir.exists():          # a reused directory: this run's logs only
        for p in list(log_dir.glob("*.log")) + [log_dir / "nodes.json"]:
            p.unlink(missing_ok=True)
        shutil.rmtree(log_dir / "params", ignore_errors=True)
    if console == "table":
        from rich.console import Console
        from rich.live import Live

        rich_console = Console(file=stream)
        launcher = Launcher(plan, log_dir, grace_s=grace_s, node_output=False, echo=lambda line: None, env=env)
        last = [0.0]

        def redraw() -> None:       # from the main loop: no refresh thread (the nodes fork from it)
            if time.monotonic() - last[0] >= 0.5 or launcher.stopping:
                last[0] = time.monotonic()
                live.update(state_table(launcher), refresh=True)

        with Live(state_table(launcher), console=rich_console, auto_refresh=False) as live:
            launcher.run(duration_s, on_tick=redraw)
        if not rich_console.is_terminal:
            rich_console.line()
        return launcher
    launcher = Launcher(plan, log_dir, grace_s=grace_s, node_output=console == "lines", env=env,
                        echo=lambda line: print(line, file=stream, flush=True))
    launcher.run(duration_s)
    return launcher
