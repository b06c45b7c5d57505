"""The fault catalogue, each run against a live fleet (`LiveFleet`) and judged on what the
probe recorded. Every fault returns a dict: `survived` (bool), its measured figures, and
`what_happened` (one line). Faults leave the fleet running for the next one.

Signals stand in for the faults they cause: SIGSTOP of a node freezes it as a hung driver
or a host that stopped scheduling it would (its peers see silence; for the coordinator, an
agent silenced this way is one whose link was cut); SIGKILL is a crash.
"""
from __future__ import annotations

import math
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ..control.limits import LimitsConfig
from ..control.watchdog import WatchdogConfig
from ..monitor.latency import LatencyBudgets
from ..sensors.dvs import DvsConfig
from .live import CONTROL, PERCEPTION, STREAM, LiveFleet

# Allowances on top of the watchdog deadline for a stop to count as in time: one control tick
# (50 Hz) and one /clock period (200 Hz) of the world's time, and DDS delivery and scheduling with
# every node of the fleet on two cores (wall time).
TICK_S = 0.02 + 0.005
DELIVERY_S = 0.2
BURST = 20                     # x the nominal event rate
BURST_S = 8.0                  # long enough for a few hundred decisions: a p99 of fewer is one outlier
STANDSTILL_MPS = 0.02
REPLAN_BUDGET_S = 2.0          # a lost agent's region re-planned within this, on the fleet's clock
REPLAN_SLACK_S = 1.0           # on top, in wall time: scheduling with every node of the fleet on two cores
HOSTILE_MARK = -12345.0        # linear.z of the hostile fault's own Twists (the probe records apart)


def _stop_allowance_s(f: LiveFleet) -> float:
    """How long after a fault the robot's stop may come, in the world's time (the watchdog runs on
    its clock): the deadline, one tick and one /clock period, and delivery (wall time)."""
    return WatchdogConfig().deadline_s + TICK_S + DELIVERY_S / f.wall_per_sim_s


def _now() -> float:
    return time.time()           # the clock of the probe's message times (DDS source timestamps)


def _stop_after(f: LiveFleet, robot: str, t0: float, t_end: float) -> Optional[float]:
    """When, after t0, the robot's commands became zero and stayed zero up to t_end."""
    cmds = [c for c in f.cmd[robot] if t0 <= c[0] <= t_end]
    moving = [t for t, v, w in cmds if v != 0.0 or w != 0.0]
    after = moving[-1] if moving else t0
    zeros = [t for t, v, w in cmds if t >= after and v == 0.0 and w == 0.0]
    return zeros[0] if zeros else None


def _standstill(f: LiveFleet, robot: str, t0: float) -> Optional[float]:
    """When, after t0, the robot's ground truth first said it stood still."""
    return next((t for t, s in f.speed[robot] if t > t0 and s < STANDSTILL_MPS), None)


def _deciding(f: LiveFleet, robot: str, since: float) -> Optional[float]:
    """When the robot's first decision after `since` was published."""
    return next((t for t in f.decisions[robot] if t > since), None)


def _await(f: LiveFleet, when: Callable[[], Optional[float]], timeout_s: float) -> Optional[float]:
    """Wait (at most `timeout_s`) until `when()` gives a time; that time, or None."""
    f.wait_until(lambda: when() is not None, timeout_s)
    return when()


def _secs(t: Optional[float], t0: float) -> Optional[float]:
    """Seconds from t0 to t, to the millisecond (None when t never came)."""
    return None if t is None else round(t - t0, 3)


def settle(f: LiveFleet, timeout_s: float = 20.0) -> bool:
    """Every robot decided in the last half second (the fleet is back to normal)."""
    return f.wait_until(lambda: all(_deciding(f, r, _now() - 0.5) is not None for r in f.robots),
                        timeout_s) is not None


def _silenced_robot(f: LiveFleet, robot: str, node: str, sig: int, hold_s: float) -> Dict[str, Any]:
    """Stop or kill `robot`'s `node` (sensing or perception): the robot must come to a stop
    within the watchdog deadline and stay stopped until decisions resume."""
    allowed = _stop_allowance_s(f)
    label = f"{robot}/{node}"
    respawns = f.launcher.node(label).respawns
    t0 = _now()
    f.launcher.signal_node(label, sig)
    try:
        f.wait(hold_s)
        # and until the world's clock is past the stop's allowance (a starved world runs late)
        f.wait_until(lambda: f.world_s(_now()) - f.world_s(t0) > allowed, 10.0)
        stop = _stop_after(f, robot, t0, _now())
        stand = _await(f, lambda: _standstill(f, robot, t0), 3.0)
    finally:
        if sig == signal.SIGSTOP:
            f.launcher.signal_node(label, signal.SIGCONT)
    t_release = _now()
    recover = _await(f, lambda: _deciding(f, robot, t_release), 30.0)
    t_back = _now()
    moved = blind_moves(f, robot, t0, t_back)
    out: Dict[str, Any] = {
        "time_to_stop_s": _secs(stop, t0),
        # what the watchdog's deadline is on: the world's clock (slower than the wall's, and slower
        # still while the world runs late)
        "time_to_stop_world_s": None if stop is None else round(f.world_s(stop) - f.world_s(t0), 3),
        "time_to_standstill_s": _secs(stand, t0),
        "time_to_recover_s": _secs(recover, t0),
        "moved_while_blind": moved,
        "collisions": sum(1 for t in f.collisions[robot] if t0 <= t <= t_back),
    }
    if sig == signal.SIGKILL:
        out["respawned"] = f.launcher.node(label).respawns > respawns
    if recover is None:      # what the chain said of itself last, for whoever reads the report
        out["last_diagnostics"] = {name: (f.diag_values(f"{robot}/{name}") or [(0.0, {})])[-1][1]
                                   for name in (STREAM, PERCEPTION, CONTROL)}
    in_time = stop is not None and out["time_to_stop_world_s"] <= allowed
    out["survived"] = bool(in_time and not moved and recover is not None and out["collisions"] == 0
                           and out.get("respawned", True))
    return out


REORDER_S = 0.05               # the probe may hear a command before the decision that caused it


def blind_moves(f: LiveFleet, robot: str, t0: float, t1: float) -> int:
    """Commands to move in [t0, t1] that no decision of the last deadline (plus slack) backed:
    neither one the probe received nor one control's DecisionTrace names."""
    window = _stop_allowance_s(f) * f.wall_per_sim_s     # in the probe's (wall) time
    decided = np.asarray(f.decisions[robot] + f.traced_decisions[robot])
    n = 0
    for t, v, _ in f.cmd[robot]:
        if t0 <= t <= t1 and v != 0.0 and not np.any((decided > t - window) & (decided <= t + REORDER_S)):
            n += 1
    return n


def sensor_stall(f: LiveFleet, robot: str) -> Dict[str, Any]:
    out = _silenced_robot(f, robot, "event_sensor", signal.SIGSTOP, hold_s=1.5)
    out["what_happened"] = (f"{robot}'s event sensor frozen 1.5 s: commands zero after {out['time_to_stop_s']} s, "
                            f"{out['time_to_stop_world_s']} s of the world's time (watchdog deadline "
                            f"{WatchdogConfig().deadline_s} s), deciding again "
                            f"{out['time_to_recover_s']} s after the stall began")
    return out


def perception_killed(f: LiveFleet, robot: str) -> Dict[str, Any]:
    out = _silenced_robot(f, robot, "perception", signal.SIGKILL, hold_s=0.8)
    out["what_happened"] = (f"{robot}'s perception killed: commands zero after {out['time_to_stop_s']} s "
                            f"({out['time_to_stop_world_s']} s of the world's), "
                            f"respawned, deciding again after {out['time_to_recover_s']} s; "
                            f"{out['moved_while_blind']} commands to move while blind")
    return out


def _event_rate(f: LiveFleet, stream: str, since: float) -> Optional[float]:
    """Events per second of the sensor's own time (simulation time for the world: the rate the
    network sees, whatever the real-time factor) from its /diagnostics after `since`."""
    pts = [(float(v["stamp_s"]), float(v["events_in"])) for _, v in f.diag_values(stream, since) if "stamp_s" in v]
    if len(pts) < 2 or pts[-1][0] <= pts[0][0]:
        return None
    (t0, a), (t1, b) = pts[0], pts[-1]
    return (b - a) / (t1 - t0)


def _per_world_s(f: LiveFleet, n: int, t0: float, t1: float) -> float:
    """`n` things between probe times t0 and t1, per second of the world's time between them."""
    return n / max(f.world_s(t1) - f.world_s(t0), 1e-9)


def event_burst(f: LiveFleet, robot: str) -> Dict[str, Any]:
    """The sensor's shot noise raised to give 20x the nominal event rate for BURST_S seconds."""
    sensor, stream, perc = f"/{robot}/event_sensor", f"{robot}/{STREAM}", f"{robot}/{PERCEPTION}"
    t0 = _now()
    # three of the sensor's reports: once a second of the world's time (its /diagnostics period)
    f.wait_until(lambda: len([v for _, v in f.diag_values(stream, t0) if "stamp_s" in v]) >= 3,
                 3.2 * f.wall_per_sim_s + 2.0)
    nominal = _event_rate(f, stream, t0)
    if not nominal:
        return {"survived": False, "what_happened": "no sensor diagnostics to measure the nominal rate"}
    base = DvsConfig().shot_noise_rate_hz
    w, h = (int(v) for v in f.diag_values(stream)[-1][1]["sensor"].split("x"))
    lost0, cap0 = f.counter(perc, "lost_packets"), f.counter(stream, "dropped_rate_cap")
    stale0 = f.counter(perc, "stale_packets")
    ok, why = f.set_parameter(sensor, "dvs.shot_noise_rate_hz", base + (BURST - 1) * nominal / (w * h))
    if not ok:
        return {"survived": False, "what_happened": f"the sensor refused the noise setting: {why}"}
    tb = _now()
    f.wait(BURST_S + 0.2)
    te = _now()
    f.set_parameter(sensor, "dvs.shot_noise_rate_hz", base)
    burst = _event_rate(f, stream, tb + 0.2) or 0.0
    e2e = [ms for t, ms in f.e2e[robot] if tb + 0.5 <= t <= te]
    p99 = float(np.percentile(e2e, 99)) if e2e else math.inf
    before = [ms for t, ms in f.e2e[robot] if t0 <= t <= tb]
    rate, rate_before = _per_world_s(f, len(e2e), tb + 0.5, te), _per_world_s(f, len(before), t0, tb)
    budget = 2 * LatencyBudgets().error_p99_ms
    # the sensor's books balance at every report: what came in went out, waits, or was dropped (counted)
    last = f.diag_values(stream, te)[-1][1] if f.diag_values(stream, te) else f.diag_values(stream)[-1][1]
    balanced = int(last["events_in"]) == sum(int(last[k]) for k in ("events_out", "events_pending", "dropped_roi",
                                                                    "dropped_subsample", "dropped_rate_cap",
                                                                    "dropped_time_reset"))
    during = f.diag_values(perc, tb)
    out = {"nominal_ev_s": round(nominal), "burst_ev_s": round(burst), "ratio": round(burst / nominal, 1),
           # per second of the world's time: a decision covers a window of the world's events, so
           # how many come in a wall second depends on the real-time factor and the model's time step
           "decisions_per_world_s": round(rate, 1), "decisions_per_world_s_before": round(rate_before, 1),
           "e2e_p99_ms": round(p99, 2), "e2e_budget_ms": budget,
           "e2e_p99_before_ms": round(float(np.percentile(before, 99)), 2) if before else None,
           "dropped_rate_cap": (f.counter(stream, "dropped_rate_cap") or 0) - (cap0 or 0),
           "lost_packets": (f.counter(perc, "lost_packets") or 0) - (lost0 or 0),
           "stale_packets": (f.counter(perc, "stale_packets") or 0) - (stale0 or 0),
           "sensor_counts_balance": balanced,
           # the caps in force during the burst: the sensor's, and what perception's measured cost admits
           "rate_cap_ev_s": f.counter(stream, "rate_cap_ev_s", tb + 0.5),
           "admitted_ev_s": f.counter(perc, "admitted_ev_s", tb),
           "perception_cost": {k: v for k, v in (during[-1][1] if during else {}).items()
                               if k.startswith("cost_") or k == "fixed_load"}}
    # decisions go on: often enough for the watchdog (one per deadline) and at half the rate before at least
    keeps_deciding = rate >= 1.0 / WatchdogConfig().deadline_s and rate >= 0.5 * rate_before
    out["survived"] = bool(burst >= 0.75 * BURST * nominal and p99 <= budget and keeps_deciding and balanced)
    out["what_happened"] = (f"{out['ratio']}x the nominal {out['nominal_ev_s']} ev/s for {BURST_S:g} s: "
                            f"{out['decisions_per_world_s']} decisions per second of the world's time "
                            f"({out['decisions_per_world_s_before']} before), e2e p99 {out['e2e_p99_ms']} ms (budget {budget}), "
                            f"{out['dropped_rate_cap']} events over the rate cap of {out['rate_cap_ev_s']} ev/s "
                            f"(perception admits {out['admitted_ev_s']}), {out['lost_packets']} packets lost and "
                            f"{out['stale_packets']} dropped as stale, all counted")
    return out


def odometry_lost(f: LiveFleet, robot: str, stopped_s: float = 1.0) -> Dict[str, Any]:
    """The world withholds `robot`'s odometry (a base whose odometry died; its perception goes
    on) until `stopped_s` of the world's time past the stop's allowance: control must stop the
    robot within its odometry deadline, keep it stopped while decisions go on, and drive again
    once odometry is back."""
    allowed = WatchdogConfig().odom_deadline_s + TICK_S + DELIVERY_S / f.wall_per_sim_s
    t0 = _now()
    ok, why = f.set_parameter("/world", "odom_muted", robot)
    if not ok:
        return {"survived": False, "what_happened": f"the world refused to withhold {robot}'s odometry: {why}"}
    try:
        f.wait_until(lambda: f.world_s(_now()) - f.world_s(t0) > allowed + stopped_s,
                     (allowed + stopped_s) * f.wall_per_sim_s + 10.0)
        t_end = _now()
        stop = _stop_after(f, robot, t0, t_end)
        stand = _await(f, lambda: _standstill(f, robot, t0), 3.0)
        decided = sum(1 for t in f.decisions[robot] if stop is not None and stop <= t <= t_end)
    finally:
        f.set_parameter("/world", "odom_muted", "")
    t_release = _now()
    drives = _await(f, lambda: next((t for t, v, _ in f.cmd[robot] if t > t_release and v != 0.0), None), 30.0)
    out: Dict[str, Any] = {
        "time_to_stop_s": _secs(stop, t0),
        "time_to_stop_world_s": None if stop is None else round(f.world_s(stop) - f.world_s(t0), 3),
        "stop_allowance_world_s": round(allowed, 3),
        "time_to_standstill_s": _secs(stand, t0),
        "decisions_while_stopped": decided,
        "time_to_drive_again_s": _secs(drives, t_release),
        "collisions": sum(1 for t in f.collisions[robot] if t0 <= t <= _now()),
    }
    in_time = stop is not None and out["time_to_stop_world_s"] <= allowed
    out["survived"] = bool(in_time and decided > 0 and drives is not None and out["collisions"] == 0)
    out["withheld_world_s"] = round(f.world_s(t_release) - f.world_s(t0), 3)
    out["what_happened"] = (f"{robot}'s odometry withheld {out['withheld_world_s']} s of the world's time: "
                            f"commands zero after {out['time_to_stop_world_s']} s of it (deadline "
                            f"{WatchdogConfig().odom_deadline_s} s), {decided} decisions meanwhile, driving "
                            f"again {out['time_to_drive_again_s']} s after odometry came back")
    return out


def _plan_after(f: LiveFleet, t0: float, cond) -> Optional[float]:
    for t, m in f.plans:
        if t > t0 and cond(m):
            return t
    return None


def agent_link_cut(f: LiveFleet, robot: str) -> Dict[str, Any]:
    """`robot`'s fleet agent silenced (as a cut link looks to the coordinator) for as long as the
    re-plan may take, then back."""
    hold_s = REPLAN_BUDGET_S * f.wall_per_sim_s + REPLAN_SLACK_S
    label = f"{robot}/fleet_agent"
    t0 = _now()
    f.launcher.signal_node(label, signal.SIGSTOP)
    without = lambda m: robot in m.lost_agent_ids  # noqa: E731
    with_it = lambda m: robot in [a.agent_id for a in m.assignments]  # noqa: E731
    try:
        _await(f, lambda: _plan_after(f, t0, without), hold_s + 5)
        f.wait(max(0.0, hold_s - (_now() - t0)))
    finally:
        f.launcher.signal_node(label, signal.SIGCONT)
    t1 = _now()
    back = _await(f, lambda: _plan_after(f, t1, with_it), 10.0)
    lost = _plan_after(f, t0, without)
    others = [r for r in f.robots if r != robot]
    covered = bool(_plan_after(f, t0, lambda m: robot in m.lost_agent_ids and
                               {a.agent_id for a in m.assignments} >= set(others)))
    out = {"time_to_replan_s": _secs(lost, t0), "time_to_rejoin_s": _secs(back, t1), "others_reassigned": covered}
    out["survived"] = bool(lost is not None and lost - t0 <= hold_s and back is not None and covered)
    out["what_happened"] = (f"{robot}'s agent silent {hold_s:.0f} s: the coordinator re-planned without it after "
                            f"{out['time_to_replan_s']} s and took it back {out['time_to_rejoin_s']} s after it "
                            "spoke again")
    return out


def coordinator_restart(f: LiveFleet) -> Dict[str, Any]:
    respawns = f.launcher.node("coordinator").respawns
    t0 = _now()
    f.launcher.signal_node("coordinator", signal.SIGKILL)
    everyone = set(f.robots)
    complete = lambda m: {a.agent_id for a in m.assignments} >= everyone  # noqa: E731
    replan = _await(f, lambda: _plan_after(f, t0, complete), 30.0)
    t1 = _now()
    kept_deciding = all(_deciding(f, r, t0) is not None for r in f.robots)
    out = {"time_to_replan_s": _secs(replan, t0),
           "respawned": f.launcher.node("coordinator").respawns > respawns,
           "robots_kept_deciding": kept_deciding,
           "collisions": sum(1 for r in f.robots for t in f.collisions[r] if t0 <= t <= t1)}
    out["survived"] = bool(replan is not None and out["respawned"] and kept_deciding)
    out["what_happened"] = (f"coordinator killed: robots kept driving on their last assignments; the respawned "
                            f"coordinator assigned every robot {out['time_to_replan_s']} s after the kill")
    return out


def sim_clock_jump(f: LiveFleet) -> Dict[str, Any]:
    """The world restarted: simulation time jumps back to 0 and robots to their start poses."""
    respawns = f.launcher.node("world").respawns
    t0 = _now()
    f.launcher.signal_node("world", signal.SIGKILL)
    up = f.wait_until(lambda: f.launcher.node("world").respawns > respawns
                      and f.launcher.node("world").state == "running", 20.0)
    t_up = _now()
    def all_deciding() -> Optional[float]:      # when the last robot to decide again did
        firsts = [_deciding(f, r, t_up + 0.3) for r in f.robots]
        return None if None in firsts else max(firsts)

    back = _await(f, all_deciding, 30.0)
    t1 = _now()
    moved = sum(blind_moves(f, r, t0, t1) for r in f.robots)
    out = {"world_respawned": up is not None,
           "time_to_decide_again_s": _secs(back, t0),
           "moved_while_blind": moved}
    out["survived"] = bool(up is not None and back is not None and moved == 0)
    out["what_happened"] = (f"world killed and restarted (simulation time back to 0): every robot deciding again "
                            f"{out['time_to_decide_again_s']} s after the kill, {moved} commands to move while blind")
    return out


def hostile_input(f: LiveFleet, robot: str, seconds: float = 2.0) -> Dict[str, Any]:
    """Fuzzed EventPackets, NaN / inf in Twist, odometry and AttentionCommand on the robot's topics."""
    from ..ros import qos

    n = f.node
    rng = np.random.default_rng(1)
    types = {key: type(m) for key, m in _hostile_messages(rng)}     # the message type of each topic
    topics = {"events": ("events", qos.SENSOR), "cmd": ("cmd_vel", qos.COMMAND), "odom": ("odom", qos.COMMAND),
              "att": ("attention", qos.COMMAND)}
    pubs = {key: n.create_publisher(types[key], f"/{robot}/{leaf}", profile) for key, (leaf, profile) in topics.items()}
    names = {"perception": f"{robot}/{PERCEPTION}", "control": f"{robot}/{CONTROL}", "world": "world: simulation",
             "sensor": f"{robot}/{STREAM}"}
    keys = {"perception": ("rejected_packets", "dropped_events"), "control": ("odom_rejected",),
            "world": ("rejected_cmd_vel",), "sensor": ("commands_rejected",)}
    before = {k: sum(f.counter(names[k], key) or 0 for key in keys[k]) for k in names}
    respawns = {x.label: x.respawns for x in f.launcher.nodes}
    topics = {k: p.topic_name for k, p in pubs.items()}
    # every subscriber of the graph matched (a node restarted by an earlier fault may take a moment)
    f.wait_until(lambda: all(p.get_subscription_count() >= n.count_subscribers(topics[k]) > 0
                             for k, p in pubs.items()), 10.0)
    t0 = _now()
    sent = 0
    while _now() - t0 < seconds:
        for m in _hostile_messages(rng):
            pubs[m[0]].publish(m[1])
            sent += 1
        f.wait(0.02)
    f.wait(2.2)                                   # two rounds of /diagnostics
    after = {k: sum(f.counter(names[k], key) or 0 for key in keys[k]) for k in names}
    for p in pubs.values():
        n.destroy_publisher(p)
    crashed = [x.label for x in f.launcher.nodes if x.respawns != respawns[x.label] or x.state != "running"]
    refused = {k: after[k] - before[k] for k in names}
    out = {"messages": sent, "refused": refused, "crashed": crashed}
    out["survived"] = bool(not crashed and all(v > 0 for v in refused.values()))
    out["what_happened"] = (f"{sent} hostile messages on 4 topics of {robot}: refused and counted "
                            f"{refused}; nodes that crashed: {crashed or 'none'}")
    return out


def _hostile_messages(rng: np.random.Generator) -> List[tuple]:
    from event_camera_msgs.msg import EventPacket
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    from snn_autonomy_msgs.msg import AttentionCommand

    bad = (math.nan, math.inf, -math.inf, 1e9)
    out = []
    for enc, (w, h) in (("evt3", (128, 96)), ("mono8", (128, 96)), ("evt3", (0, 0)), ("evt3", (1 << 20, 96))):
        p = EventPacket()
        p.encoding, p.width, p.height = enc, w, h
        p.seq = int(rng.integers(0, 1 << 40))
        p.events = rng.integers(0, 256, int(rng.integers(0, 4096)), dtype=np.uint8).tobytes()
        out.append(("events", p))
    v = float(rng.choice(bad))
    t = Twist()
    t.linear.x, t.angular.z, t.linear.z = v, v, HOSTILE_MARK
    out.append(("cmd", t))
    o = Odometry()
    o.pose.pose.position.x, o.twist.twist.linear.x = v, v
    out.append(("odom", o))
    a = AttentionCommand()
    a.event_rate_cap, a.confidence_threshold = v, v
    out.append(("att", a))
    return out


def bad_files(f: LiveFleet, work: Path) -> Dict[str, Any]:
    """A perception node given a truncated model, a control node given an invalid watchdog deadline."""
    from ..launch_plan import NodeSpec
    from ..launcher import node_command, params_yaml
    from ..paths import resolve_model
    from ..perception.model_io import manifest_path

    work.mkdir(parents=True, exist_ok=True)
    model = work / "truncated.npz"
    data = resolve_model().read_bytes()
    model.write_bytes(data[: len(data) // 2])
    shutil.copy(manifest_path(resolve_model()), work / "truncated.json")
    cases = {"corrupt_model": NodeSpec("perception", "perception", "/chaos_bad", {"model": str(model)}),
             "invalid_config": NodeSpec("control", "control", "/chaos_bad", {"watchdog": {"deadline_s": -1.0}})}
    out: Dict[str, Any] = {}
    for case, spec in cases.items():
        params = work / f"{case}.yaml"
        params.write_text(params_yaml(spec))
        log = work / f"{case}.log"
        with open(log, "wb") as fh:
            proc = subprocess.Popen(node_command(spec, str(params)), stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        said = "cannot load model" if case == "corrupt_model" else "cannot start"
        if case == "corrupt_model":       # refused at configure: the node says so and stays up
            t = f.wait_until(lambda: said in log.read_text(errors="replace") or proc.poll() is not None, 60.0)
        else:                             # refused at start: the process ends
            t = f.wait_until(lambda: proc.poll() is not None, 60.0)
        alive = proc.poll() is None
        if alive:
            proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
        text = log.read_text(errors="replace")
        line = next((ln for ln in text.splitlines() if said in ln), "")
        out[case] = {"refused": said in text, "seconds": None if t is None else round(t, 2),
                     "kept_running": alive, "exit_status": rc, "message": line.strip()[-200:]}
    # the corrupt model: the node stays up, unconfigured (a lifecycle node a supervisor can
    # configure again with a good file); the invalid value: the process ends with exit status 2
    bad_model, bad_value = out["corrupt_model"], out["invalid_config"]
    out["survived"] = bool(bad_model["refused"] and bad_model["kept_running"] and bad_value["refused"]
                           and bad_value["exit_status"] == 2)
    out["what_happened"] = (f"truncated model: refused at configure after {bad_model['seconds']} s, node "
                            f"{'up and unconfigured' if bad_model['kept_running'] else 'gone'}; "
                            f"watchdog.deadline_s -1: refused, exit status {bad_value['exit_status']}")
    return out


def unsafe_commands(f: LiveFleet) -> int:
    """Commands on any robot's cmd_vel that were non-finite or beyond the velocity limits (the
    hostile fault's own Twists, marked with HOSTILE_MARK, are not recorded)."""
    lim = LimitsConfig()
    return sum(1 for r in f.robots for _, v, w in f.cmd[r]
               if not (math.isfinite(v) and math.isfinite(w)) or v > lim.max_linear_mps + 1e-6
               or v < -lim.max_reverse_mps - 1e-6 or abs(w) > lim.max_angular_rps + 1e-6)
