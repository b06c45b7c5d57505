"""The fleet over a real (virtual) network: the coordinator and each agent in its own Linux network
namespace, as on separate hosts; cutting one agent's link loses it and its area is re-assigned.

Topology (names unique per run, all removed at the end, also on failure or after a killed run):
  <run>-hub                 a bridge (one L2 segment, like a switch), multicast snooping off
  <run>-coord, -obs, -a0..2 one veth each into the bridge, 10.61.0.N/24, loopback up and a
                            multicast route (224.0.0.0/4) on the veth
The root namespace is not attached, so nothing else on this machine sees this traffic.
What Fast DDS needs across namespaces: the same ROS_DOMAIN_ID; ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET
(LOCALHOST confines it to the loopback, which namespaces do not share); a multicast route for
SPDP discovery (239.255.0.1); and UDP only (FASTDDS_BUILTIN_TRANSPORTS=UDPv4), because namespaces
share /dev/shm, so the shared-memory transport could carry data past a cut link.
The observer (this file run as a script in <run>-obs) prints plans and heartbeats with their
CLOCK_MONOTONIC arrival times — the clock the test times the cut with.
Skipped (with the reason) only when not root or `ip netns` is unavailable.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

PREFIX = "snnfleet"
SUBNET = "10.61.0"
ROOT = Path(__file__).resolve().parent.parent
COORDINATOR = "snn_autonomy.ros.coordinator_node"
AGENT = "snn_autonomy.ros.fleet_agent_node"
ROBOTS = ("robot_0", "robot_1", "robot_2")
CUT = "robot_1"
TIMEOUT_S = 1.0


# ---------------------------------------------------------------- network namespaces

def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and p.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {p.stderr.strip()}")
    return p


def _netns_unavailable() -> Optional[str]:
    if os.geteuid() != 0:
        return "needs root to create Linux network namespaces (ip netns)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    name = f"{PREFIX}-{os.getpid()}-check"
    p = _ip("netns", "add", name, check=False)
    if p.returncode:
        return f"`ip netns add` fails here: {p.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _destroy(ns: str) -> None:
    """Stop what still runs in `ns` (processes this test started), then remove it."""
    pids = _ip("netns", "pids", ns, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    _ip("netns", "del", ns, check=False)


def _remove_stale() -> None:
    """Namespaces of earlier runs of this test whose pytest process is gone (killed before cleanup)."""
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        m = re.match(rf"({PREFIX}-(\d+)-\S+)", line)
        if m and not _alive(int(m.group(2))):
            _destroy(m.group(1))


class Lan:
    """A bridge in a hub namespace and one namespace per host, each with one veth into the bridge."""

    def __init__(self) -> None:
        self.run = f"{PREFIX}-{os.getpid()}-{secrets.token_hex(2)}"
        self.made: List[str] = []
        self.ports: Dict[str, str] = {}
        self.hub = self._add("hub")
        _ip("-n", self.hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", self.hub, "link", "set", "br0", "up")

    def _add(self, role: str) -> str:
        ns = f"{self.run}-{role}"
        _ip("netns", "add", ns)
        self.made.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        return ns

    def host(self, role: str) -> str:
        k = len(self.ports) + 1
        ns, port = self._add(role), f"p{k}"
        _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", self.hub)
        _ip("-n", self.hub, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{SUBNET}.{k}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
        self.ports[role] = port
        return ns

    def link(self, role: str, up: bool) -> None:
        _ip("-n", self.hub, "link", "set", self.ports[role], "up" if up else "down")

    def destroy(self) -> None:
        for ns in reversed(self.made):
            _destroy(ns)


# ---------------------------------------------------------------- processes

class Proc:
    """A command in a namespace, in its own process group; output to a log (or parsed, for the observer)."""

    def __init__(self, ns: str, argv: List[str], parse: bool = False) -> None:
        self.lines: List[dict] = []
        self.log = []
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, *argv], cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self._reader = threading.Thread(target=self._read, args=(parse,), daemon=True)
        self._reader.start()

    def _read(self, parse: bool) -> None:
        for line in self.p.stdout:
            if parse and line.startswith("{"):
                self.lines.append(json.loads(line))
            else:
                self.log.append(line)

    def stop(self) -> Optional[int]:
        for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGKILL, 3.0)):
            if self.p.poll() is not None:
                break
            try:
                os.killpg(self.p.pid, sig)
                self.p.wait(wait)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
        self._reader.join(2.0)
        return self.p.returncode


def _node(ns: str, module: str, namespace: str = "", **params) -> Proc:
    argv = [sys.executable, "-m", module, "--ros-args"]
    if namespace:
        argv += ["-r", f"__ns:={namespace}"]
    for k, v in params.items():
        argv += ["-p", f"{k}:={v}"]
    return Proc(ns, argv)


# ---------------------------------------------------------------- the test

@pytest.fixture(scope="module")
def lan():
    why = _netns_unavailable()
    if why:
        pytest.skip(why)
    _remove_stale()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "SUBNET")
        mp.setenv("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")
        net = Lan()
        procs: Dict[str, Proc] = {}
        try:
            hosts = {role: net.host(role) for role in ("obs", "coord", "a0", "a1", "a2")}
            procs["observer"] = Proc(hosts["obs"], [sys.executable, __file__, "--observe"], parse=True)
            procs["coordinator"] = _node(hosts["coord"], COORDINATOR, heartbeat_timeout_s=TIMEOUT_S)
            for k, robot in enumerate(ROBOTS):
                procs[robot] = _node(hosts[f"a{k}"], AGENT, f"/{robot}", heartbeat_period_s=0.2)
            yield net, procs, {robot: f"a{k}" for k, robot in enumerate(ROBOTS)}
        finally:
            codes = {name: p.stop() for name, p in procs.items()}
            net.destroy()
            leftovers = [line for line in _ip("netns", "list", check=False).stdout.splitlines() if net.run in line]
            assert not leftovers, f"namespaces left behind: {leftovers}"
        bad = {name: c for name, c in codes.items() if c != 0}
        assert not bad, "\n".join(f"{n} exited {c}:\n{''.join(procs[n].log[-40:])}" for n, c in bad.items())


def _wait(what: str, cond, timeout: float, procs: Dict[str, Proc]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.02)
    logs = "\n".join(f"--- {n}\n{''.join(p.log[-15:])}" for n, p in procs.items())
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")


def _plans(obs: Proc) -> List[dict]:
    return [x for x in list(obs.lines) if x["kind"] == "plan"]


def _contains(boundary, x: float, y: float) -> bool:
    from snn_autonomy.fleet.regions import PatrolRegion

    return PatrolRegion("", tuple(map(tuple, boundary)), ()).contains(x, y)


def test_agents_on_separate_hosts_are_planned_and_a_cut_link_is_replanned(lan):
    net, procs, role_of = lan
    obs = procs["observer"]
    full = _wait("a plan assigning three regions across namespaces",
                 lambda: next((p for p in reversed(_plans(obs)) if len(p["mapping"]) == 3), None), 60, procs)
    assert sorted(full["mapping"]) == list(ROBOTS) and len(set(full["mapping"].values())) == 3
    _wait("the observer to hear every agent", lambda: {x["agent"] for x in obs.lines if x["kind"] == "hb"}
          == set(ROBOTS), 30, procs)

    # cut robot_1's link: to the coordinator (and everyone else) it falls silent
    time.sleep(0.5)
    t_cut = time.monotonic()
    net.link(role_of[CUT], up=False)
    lost = _wait(f"a plan without {CUT}",
                 lambda: next((p for p in _plans(obs) if CUT in p["lost"]), None), 2.0 + TIMEOUT_S + 2.0, procs)
    t_last = max(x["t"] for x in obs.lines if x["kind"] == "hb" and x["agent"] == CUT and x["t"] <= lost["t"])
    silence, after_cut = lost["t"] - t_last, lost["t"] - t_cut
    print(f"\nlink cut: plan {silence:.3f} s after the last heartbeat heard, {after_cut:.3f} s after the cut")
    assert silence <= 2.0, f"re-plan {silence:.2f} s after {CUT}'s last heartbeat (budget 2 s)"
    assert after_cut <= TIMEOUT_S + 0.5
    assert lost["reason"] == "agent_lost" and sorted(lost["mapping"]) == ["robot_0", "robot_2"]
    bx, by = zip(*full["boundaries"][CUT])
    centre = (sum(bx) / len(bx), sum(by) / len(by))
    assert any(_contains(b, *centre) for b in lost["boundaries"].values()), f"{CUT}'s area left uncovered"

    # mend the link: the agent (still running, sequence still counting up) joins again
    t_mend = time.monotonic()
    net.link(role_of[CUT], up=True)
    back = _wait(f"{CUT} back in the plan",
                 lambda: next((p for p in _plans(obs) if p["t"] > t_mend and CUT in p["mapping"]), None), 30, procs)
    print(f"link mended: {CUT} re-planned in after {back['t'] - t_mend:.2f} s")
    leaked = [x for x in obs.lines if x["kind"] == "hb" and x["agent"] == CUT and t_cut + 0.5 < x["t"] < t_mend]
    assert not leaked, "heartbeats got through the cut link"
    assert len(back["mapping"]) == 3 and back["reason"] == "agent_joined"


# ---------------------------------------------------------------- the observer (run in its namespace)

def _observe() -> None:
    import rclpy
    from snn_autonomy_msgs.msg import AgentState, FleetPlan

    from snn_autonomy.ros import qos
    from snn_autonomy.ros.fleet_agent_node import plan_from_msg
    from snn_autonomy.ros.spin import spin_node

    def emit(**kw) -> None:
        print(json.dumps({"t": time.monotonic(), **kw}), flush=True)

    def on_plan(m: FleetPlan) -> None:
        p = plan_from_msg(m)
        emit(kind="plan", plan_id=p.plan_id, reason=p.reason, mapping=p.mapping(), lost=list(p.lost_agent_ids),
             boundaries={a.agent_id: a.region.boundary for a in p.assignments})

    def build():
        node = rclpy.create_node("netns_observer")
        node.create_subscription(FleetPlan, "/fleet/plan", on_plan, qos.LATCHED)
        node.create_subscription(AgentState, "/fleet/agent_state",
                                 lambda m: emit(kind="hb", agent=m.agent_id, seq=m.heartbeat_seq), qos.COMMAND)
        return node

    # the nodes' own main loop: a SIGINT then ends it with status 0 (plain rclpy.spin once exited
    # 1 when the stop shut the context down before the executor's next wait)
    sys.exit(spin_node(build, []))


if __name__ == "__main__" and sys.argv[1:] == ["--observe"]:
    _observe()
