"""Clock jumps of simulation time, with real nodes over DDS.

The probe plays the simulator here: it publishes /clock (simulation time running with the wall
clock from a start value, moved at will) and the messages the nodes under test need. Measured:
how soon the control node stops after /clock jumps back while perception falls silent, that a
jump forward stops the robot until the next decision, that the coordinator keeps its plan
across jumps yet still loses a dead agent, and how soon the event sensor publishes again after
the world node is restarted (its simulation time starting at 0 again).
"""
from __future__ import annotations

import math
import time

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from event_camera_msgs.msg import EventPacket
from geometry_msgs.msg import Twist
from rosgraph_msgs.msg import Clock
from snn_autonomy_msgs.msg import AgentState, FleetPlan, Perception, WorldState

from ros_helpers import CONTROL, PROBE_QOS, SENSOR, WORLD, NodeProcess, Probe, diag_values
from snn_autonomy.control.limits import LimitsConfig
from snn_autonomy.control.watchdog import WatchdogConfig
from snn_autonomy.fleet.state import AgentReport
from snn_autonomy.perception.labels import CLASSES, CLEAR
from snn_autonomy.ros import qos
from snn_autonomy.ros.convert import stamp_to_ns
from snn_autonomy.ros.coordinator_node import STATE_TOPIC
from snn_autonomy.ros.fleet_agent_node import report_to_msg
from snn_autonomy.sensors.world_follower import WorldFollower
from snn_autonomy.sim.config import load_world_config
from snn_autonomy.sim.world import World

COORDINATOR = "snn_autonomy.ros.coordinator_node"
DEADLINE_S = WatchdogConfig().deadline_s
# How late a stop may come here: a generous ceiling over the watchdog's deadline (the stop's
# latency is a figure of this machine, measured by `snn-autonomy chaos`, not a behaviour)
CEILING_S = 1.0
LIMITS = LimitsConfig()


class SimProbe(Probe):
    """A probe that is also the simulator's clock: simulation time = `start_s` + wall time since,
    published on /clock every 10 ms while the probe spins; `jump_to` moves it."""

    def __init__(self, name: str, start_s: float) -> None:
        super().__init__(name)
        self._clock = self.node.create_publisher(Clock, "/clock", qos.SENSOR)
        self._jobs = []   # [period_s, next wall time, fn]
        self.jump_to(start_s)
        self.every(0.01, lambda: self._clock.publish(Clock(clock=self._stamp(self.sim_s()))))

    @staticmethod
    def _stamp(t_s: float) -> Time:
        ns = int(round(t_s * 1e9))
        return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)

    def sim_s(self) -> float:
        return self._base_s + time.monotonic() - self._base_wall

    def jump_to(self, t_s: float) -> float:
        """Move simulation time to `t_s` now (published at once); returns the wall time of the jump."""
        self._base_s, self._base_wall = t_s, time.monotonic()
        if hasattr(self, "_clock"):
            self._clock.publish(Clock(clock=self._stamp(t_s)))
        return self._base_wall

    def every(self, period_s: float, fn) -> list:
        job = [period_s, time.monotonic(), fn]
        self._jobs.append(job)
        return job

    def cancel(self, job: list) -> None:
        self._jobs.remove(job)

    def spin_until(self, cond, timeout: float, what: str = "condition") -> None:
        super().spin_until(lambda: self._run_jobs() or cond(), timeout, what)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._run_jobs()
            self.executor.spin_once(timeout_sec=0.002)

    def _run_jobs(self) -> bool:
        now = time.monotonic()
        for job in list(self._jobs):
            if now >= job[1]:
                job[2]()
                job[1] = max(job[1] + job[0], now)
        return False


# ---------------------------------------------------------------- control


def _clear_decision() -> Perception:
    m = Perception()
    m.agent_id = "robot_0"
    m.class_names = list(CLASSES)
    m.label, m.confidence, m.approaching = CLEAR, 0.99, False
    return m


def _first_zero_after(cmds, t0: float):
    return next((t for t, m in cmds if t >= t0 and m.linear.x == 0.0 and m.angular.z == 0.0), None)


def test_control_stops_on_a_clock_jump_and_moves_only_on_decisions_after_it(open_floor_world):
    probe = SimProbe("jump_control_probe", start_s=100.0)
    n = probe.node
    cmds, diag = [], []
    n.create_subscription(Twist, "/robot_0/cmd_vel", lambda m: cmds.append((time.monotonic(), m)), qos.COMMAND)
    n.create_subscription(DiagnosticArray, "/diagnostics", diag.append, 50)
    perception = n.create_publisher(Perception, "/robot_0/perception", qos.COMMAND)
    control = NodeProcess(CONTROL, {"world_config": open_floor_world, "use_sim_time": True},
                          namespace="/robot_0").start()
    try:
        probe.spin_until(lambda: n.count_subscribers("/robot_0/perception") >= 1
                         and n.count_publishers("/robot_0/cmd_vel") >= 1, 30, "the control node")
        # the node's /diagnostics carry its clock: stamped on simulation time, it has heard /clock
        probe.spin_until(lambda: any(m.header.stamp.sec >= 100 for m in diag), 30, "the node on simulation time")
        feeding = probe.every(0.02, lambda: perception.publish(_clear_decision()))
        probe.spin_until(lambda: cmds and cmds[-1][1].linear.x > 0.2, 10, "the robot to cruise on decisions")

        # backward (simulator reset) and perception silent from the same instant
        probe.cancel(feeding)
        t_back = probe.jump_to(10.0)
        probe.spin_until(lambda: _first_zero_after(cmds, t_back) is not None, 10,
                         "a stop after /clock jumped back and perception went silent")
        t_stop = _first_zero_after(cmds, t_back)
        stop_after_back = t_stop - t_back
        print(f"\nstop after the backward jump: {stop_after_back * 1e3:.0f} ms")
        assert stop_after_back < DEADLINE_S + CEILING_S
        assert all(m.linear.x == 0.0 for t, m in cmds if t >= t_stop), "moved again without a decision"
        probe.spin_until(lambda: int(diag_values(diag, "control: control").get("clock_jumps", 0)) >= 1, 5,
                         "/diagnostics to count the jump")
        values = diag_values(diag, "control: control")
        assert values["mode"] == "stale_perception" and float(values["last_clock_jump_s"]) < -80.0

        # decisions after the jump: moving again, from a standstill (acceleration-limited)
        t_resume = time.monotonic()
        feeding = probe.every(0.02, lambda: perception.publish(_clear_decision()))
        probe.spin_until(lambda: cmds[-1][1].linear.x > 0.2, 5, "the robot to move again")
        first = next(m for t, m in cmds if t >= t_resume and m.linear.x > 0.0)
        assert first.linear.x <= LIMITS.max_linear_accel * 0.1

        # forward (fast-forward) with decisions still coming: a stop at the jump, then moving on
        t_fwd = probe.jump_to(probe.sim_s() + 50.0)
        probe.spin_until(lambda: (t := _first_zero_after(cmds, t_fwd)) is not None
                         and any(m.linear.x > 0.0 for u, m in cmds if u > t), 10,
                         "a stop at the forward jump, then moving on")
        t_stop = _first_zero_after(cmds, t_fwd)
        print(f"stop after the forward jump: {(t_stop - t_fwd) * 1e3:.0f} ms")
        assert t_stop - t_fwd < CEILING_S
        probe.cancel(feeding)
        probe.spin_until(lambda: int(diag_values(diag, "control: control").get("clock_jumps", 0)) >= 2, 5,
                         "/diagnostics to count the second jump")
        assert int(diag_values(diag, "control: control")["clock_jumps"]) == 2   # the clock's start is no jump

        # never anything unsafe on cmd_vel
        for _, m in cmds:
            v, w = m.linear.x, m.angular.z
            assert math.isfinite(v) and math.isfinite(w)
            assert -LIMITS.max_reverse_mps <= v <= LIMITS.max_linear_mps and abs(w) <= LIMITS.max_angular_rps
    finally:
        code = control.stop()
        probe.close()
    assert code == 0, control.log()[-3000:]


# ---------------------------------------------------------------- coordinator


def test_coordinator_keeps_its_plan_across_clock_jumps_and_still_loses_a_dead_agent():
    timeout_s = 1.0
    probe = SimProbe("jump_fleet_probe", start_s=100.0)
    n = probe.node
    plans, diag = [], []
    n.create_subscription(FleetPlan, "/fleet/plan", lambda m: plans.append((time.monotonic(), m)), qos.LATCHED)
    n.create_subscription(DiagnosticArray, "/diagnostics", diag.append, 50)
    states = n.create_publisher(AgentState, STATE_TOPIC, qos.COMMAND)
    seq = {"robot_0": 0, "robot_1": 0}
    where = {"robot_0": (1.0, 1.0), "robot_1": (9.0, 7.0)}
    last_beat = {}

    def beat(aid):
        seq[aid] += 1
        states.publish(report_to_msg(AgentReport(aid, seq[aid], *where[aid], stamp_s=probe.sim_s())))
        last_beat[aid] = time.monotonic()

    coord = NodeProcess(COORDINATOR, {"use_sim_time": True, "heartbeat_timeout_s": timeout_s}).start()
    try:
        probe.spin_until(lambda: n.count_subscribers(STATE_TOPIC) >= 1, 30, "the coordinator")
        probe.spin_for(0.3)
        jobs = {aid: probe.every(0.2, lambda aid=aid: beat(aid)) for aid in seq}
        probe.spin_until(lambda: plans and len(plans[-1][1].assignments) == 2, 10, "a plan for both agents")
        plan = plans[-1][1]
        mapping = {a.agent_id: a.region.region_id for a in plan.assignments}

        for target in (probe.sim_s() + 100.0, 20.0):          # fast-forward, then a reset
            probe.jump_to(target)
            probe.spin_for(timeout_s + 0.8)
            assert plans[-1][1].plan_id == plan.plan_id, \
                f"re-planned after a jump to {target:.0f} s: {plans[-1][1].reason}, lost {plans[-1][1].lost_agent_ids}"
        values = diag_values(diag, "coordinator")
        assert values["agents"] == "robot_0,robot_1" and values["rejected_total"] == "0"
        assert {a.agent_id: a.region.region_id for a in plans[-1][1].assignments} == mapping

        # a really dead agent is still lost, within the timeout and a tick after its last heartbeat
        probe.cancel(jobs["robot_1"])
        probe.spin_until(lambda: plans[-1][1].lost_agent_ids, timeout_s + 2.0, "robot_1 to be lost")
        t_plan, lost = plans[-1]
        assert list(lost.lost_agent_ids) == ["robot_1"] and [a.agent_id for a in lost.assignments] == ["robot_0"]
        silence = t_plan - last_beat["robot_1"]
        print(f"\nloss planned {silence:.2f} s after the last heartbeat (timeout {timeout_s} s)")
        assert timeout_s <= silence + 0.05 and silence < timeout_s + 0.5
        probe.spin_until(lambda: diag_values(diag, "coordinator").get("clock_jumps") == "2", 5,
                         "/diagnostics to count both jumps")
    finally:
        code = coord.stop()
        probe.close()
    assert code == 0, coord.log()[-3000:]


# ---------------------------------------------------------------- world restart


def _follow(follower: WorldFollower, world: World, steps: int) -> list:
    """Step `world` and hand each state to `follower` as the nodes do; the camera's batches (time, events)."""
    out = []
    for _ in range(steps):
        world.step()
        batch = follower.on_state(len(world.robot_ids), world.step_count, lambda w: w.set_dynamic_state(
            world.time_us, world.pose.copy(), world.obs_pos.copy(), world.vel.copy(), world.obs_vel.copy()))
        if batch is not None:
            out.append((world.time_us, batch.events.copy()))
    return out


def test_world_follower_starts_a_new_time_line_when_the_world_restarts(open_floor_world):
    """Without ROS: after a restart the camera renders at once, exactly as a freshly started one."""
    cfg = load_world_config(open_floor_world)
    follower = WorldFollower(cfg, "robot_0")
    old = World(cfg)
    old.set_command(0, 0.3, 0.5)
    assert len(_follow(follower, old, 300)) == 300
    new, fresh_world = World(cfg), World(cfg)           # the restarted world, and a twin for a fresh sensor
    got = _follow(follower, new, 50)
    want = _follow(WorldFollower(cfg, "robot_0"), fresh_world, 50)
    assert follower.time_resets == 1 and follower.missed_states == 0
    assert [t for t, _ in got] == [t for t, _ in want] and got[0][0] <= 1000   # a frame at the first step
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, want))
    assert sum(len(e) for _, e in got) > 0


def test_world_follower_that_joins_late_reports_its_first_step(open_floor_world):
    """A sensor that missed a world's first states (matched late) counts none missed, reports the
    step it started at (what a replay of its events starts from), and renders a frame at once."""
    cfg = load_world_config(open_floor_world)
    world = World(cfg)
    world.set_command(0, 0.3, 0.5)
    for _ in range(4):
        world.step()
    late = WorldFollower(cfg, "robot_0")
    assert late.first_step is None
    got = _follow(late, world, 60)
    assert late.first_step == 5 and late.missed_states == 0 and late.time_resets == 0
    assert got[0][0] == 5 * world.dt_us


def test_event_sensor_publishes_again_after_the_world_restarts(open_floor_world):
    probe = Probe("jump_world_probe")
    n = probe.node
    packets, diag = [], []
    n.create_subscription(EventPacket, "/robot_0/events", lambda m: packets.append((time.monotonic(), m)), PROBE_QOS)
    n.create_subscription(DiagnosticArray, "/diagnostics", diag.append, 50)
    first_state = []
    state_sub = None

    def sim_s(m) -> float:
        return stamp_to_ns(m.header.stamp) * 1e-9

    sensor = NodeProcess(SENSOR, {"world_config": open_floor_world}, namespace="/robot_0").start()
    worlds = []
    try:
        probe.spin_until(lambda: n.count_publishers("/robot_0/events") > 0, 30, "the event sensor")
        worlds.append(NodeProcess(WORLD, {"world_config": open_floor_world, "wait_for_subscribers": 1}).start())
        probe.spin_until(lambda: packets and sim_s(packets[-1][1]) > 3.0, 20, "3 s of simulation time")
        assert worlds[0].stop() == 0, worlds[0].log()[-3000:]
        old_end = max(sim_s(m) for _, m in packets)
        packets.clear()
        # the new world's first state: when the sensor could publish again at the earliest
        state_sub = n.create_subscription(WorldState, "/world/state",
                                          lambda m: first_state or first_state.append(time.monotonic()), qos.STATE)
        worlds.append(NodeProcess(WORLD, {"world_config": open_floor_world, "wait_for_subscribers": 2}).start())
        probe.spin_until(lambda: diag_values(diag, "event_sensor").get("world_time_resets") == "1", 10,
                         "/diagnostics to report the world's restart")
        probe.spin_until(lambda: any(sim_s(m) < old_end for _, m in packets), 5,
                         f"packets of the new world (the old one ended at {old_end:.2f} s)")
        t_again, m = next((t, m) for t, m in packets if sim_s(m) < old_end)
        # the world waited for the probe's subscription, but the probe may match the world's
        # publisher later than the world matched it (discovery runs both ways), so its first state
        # can come after the sensor's first packet: then the wall-clock interval below is negative
        probe.spin_until(lambda: first_state, 10, "the new world's state at the probe")
        print(f"\nold world ended at {old_end:.2f} s; first packet of the new world at its "
              f"{sim_s(m) * 1e3:.0f} ms, {(t_again - first_state[0]) * 1e3:.0f} ms (wall) after its first state")
        # a frame and a packet window every 1 ms: the first packets close as soon as the camera is
        # rebuilt, not when the new world reaches the old one's time (how soon in wall-clock time
        # is the machine's matter, printed above)
        assert sim_s(m) < 0.5, "the sensor waited for the old world's time before publishing"
    finally:
        if state_sub is not None:
            n.destroy_subscription(state_sub)
        codes = [w.stop() for w in worlds[1:]] + [sensor.stop()]
        probe.close()
    assert codes == [0] * len(codes), "\n".join(p.log()[-3000:] for p in (*worlds, sensor))

