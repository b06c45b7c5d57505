"""Real-time (SCHED_FIFO) scheduling for the processes of the sensing-to-action chain.

On a robot whose cores are shared with a simulator, a recorder or a planner, the tail of
the sensing-to-action latency is set by how long a woken perception or control process
waits for a core, not by its own work. SCHED_FIFO lets it preempt every normal (CFS)
process the moment its packet arrives. Linux schedules threads, not processes, and a
thread inherits its creator's policy: so the policy is set on every thread the process
has (the DDS threads that receive the packet included), and threads started later
inherit it.

Needs CAP_SYS_NICE or an `rtprio` limit (`ulimit -r`, /etc/security/limits.conf) at least
as high as the priority; without either the kernel refuses and the process keeps its
normal policy: `set_fifo_priority` says so instead of raising, as ros2_control's
controller manager does. The kernel's RT throttling (sched_rt_runtime_us, 95 % by default)
still leaves the normal processes a share of each core if a FIFO process spins.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional

PRIORITY_MAX = 99    # SCHED_FIFO priorities are 1..99; 0 here means "normal scheduling"
SCHEDULING_TASK = "scheduling"      # each node's /diagnostics status "<node>: scheduling"


@dataclass(frozen=True)
class SchedulingResult:
    requested: int              # 0: none requested
    applied: bool               # every thread of the process runs at `requested` under SCHED_FIFO
    threads: int                # threads it was applied to
    reason: str = ""            # why not, when requested and not applied

    def describe(self) -> str:
        if not self.requested:
            return "normal (SCHED_OTHER)"
        if self.applied:
            return f"SCHED_FIFO priority {self.requested} on {self.threads} threads"
        return f"normal (SCHED_OTHER): SCHED_FIFO priority {self.requested} refused: {self.reason}"


def check_priority(priority: object, name: str = "realtime_priority") -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= PRIORITY_MAX:
        raise ValueError(f"{name} must be an integer from 0 (normal scheduling) to {PRIORITY_MAX} "
                         f"(SCHED_FIFO priority), got {priority!r}")
    return priority


def _threads(pid: int) -> List[int]:
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:     # no /proc: the calling thread only
        return [0]


def set_fifo_priority(priority: int, pid: Optional[int] = None) -> SchedulingResult:
    """SCHED_FIFO at `priority` for every thread of process `pid` (default: this one).
    0 leaves the scheduling as it is. Never raises for a refusal: the result says why."""
    priority = check_priority(priority)
    if not priority:
        return SchedulingResult(0, False, 0)
    if not hasattr(os, "sched_setscheduler"):
        return SchedulingResult(priority, False, 0, "this platform has no SCHED_FIFO")
    done = 0
    for tid in _threads(os.getpid() if pid is None else pid):
        try:
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(priority))
            done += 1
        except ProcessLookupError:      # a thread that ended meanwhile
            continue
        except OSError as exc:
            if done:        # all threads or none: no process half on FIFO
                set_normal_scheduling(pid)
            why = (f"no permission (needs CAP_SYS_NICE or an rtprio limit of at least {priority}: "
                   f"`ulimit -r` is {_rtprio_limit()})" if isinstance(exc, PermissionError) else str(exc))
            return SchedulingResult(priority, False, 0, why)
    return SchedulingResult(priority, done > 0, done, "" if done else "no thread found")


def set_normal_scheduling(pid: Optional[int] = None) -> None:
    """Back to SCHED_OTHER for every thread of `pid` (default: this process)."""
    for tid in _threads(os.getpid() if pid is None else pid):
        try:
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        except ProcessLookupError:
            continue


# A node that asks for real-time priority starts up (imports, model, warm-up) at this nice value,
# set by the launcher before exec, and takes SCHED_FIFO only once it is built. -10 weighs 9.3 times
# a normal process in the fair scheduler (1.25x per step): a respawned node gets most of a contended
# core back quickly, while the world, the sensor and the other nodes keep running. Starting at
# SCHED_FIFO instead starved them for up to 2 s on two cores.
STARTUP_NICE = -10
NICE_AFTER_START_ENV = "SNN_AUTONOMY_NICE_AFTER_START"   # the nice to return to, set by the launcher


def boost_startup() -> None:
    """In a child before exec: this process at `STARTUP_NICE` (or its own, if already lower),
    where the kernel allows (CAP_SYS_NICE or an `ulimit -e` limit); silently not otherwise."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, min(os.getpriority(os.PRIO_PROCESS, 0), STARTUP_NICE))
    except (OSError, AttributeError):
        pass


def end_startup_boost() -> None:
    """Every thread of this process back at the nice value the launcher started it from (given in
    `NICE_AFTER_START_ENV`); nothing for a process the launcher did not boost."""
    value = os.environ.get(NICE_AFTER_START_ENV)
    if value is None or not hasattr(os, "setpriority"):
        return
    for tid in _threads(os.getpid()):
        try:
            os.setpriority(os.PRIO_PROCESS, tid, int(value))
        except (OSError, ValueError):
            continue


def _rtprio_limit() -> str:
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
        return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
    except (ImportError, AttributeError, OSError):
        return "unknown"


def scheduling_reports(statuses: Iterable) -> Dict[str, str]:
    """node (its status-name prefix, no leading '/') -> message, of the `scheduling` statuses
    among DiagnosticStatus messages."""
    out = {}
    for st in statuses:
        node, _, task = st.name.rpartition(": ")
        if task == SCHEDULING_TASK:
            out[node] = st.message
    return out


def thread_policies(pid: int) -> List[tuple]:
    """(policy, priority) of every thread of `pid`: what a test or an operator checks."""
    out = []
    for tid in _threads(pid):
        try:
            out.append((os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority))
        except ProcessLookupError:
            continue
    return out


def process_age_s() -> Optional[float]:
    """Seconds since this process started (Linux procfs; None elsewhere): how long a start-up
    took from the supervisor's fork, imports included."""
    try:
        with open("/proc/self/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])   # field 22, after the command name
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None
