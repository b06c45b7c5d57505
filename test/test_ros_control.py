"""Control and attention nodes over real DDS, in the built-in world.

The probe plays perception here, so the decisions are exactly what each check needs;
the last test runs the whole split-mode chain with the real perception node."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from event_camera_msgs.msg import EventPacket
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from sensor_msgs.msg import PointCloud2
from snn_autonomy_msgs.msg import AgentState, AttentionCommand, Collision, Perception

from ros_helpers import ATTENTION, CONTROL, PROBE_QOS, SENSOR, WORLD, NodeProcess, Probe, diag_values, roi_window_ns
from snn_autonomy.events.packet import PacketStreamDecoder
from snn_autonomy.perception.labels import CENTER, CLASSES, CLEAR, LEFT
from snn_autonomy.perception.sectors import SectorSpec
from snn_autonomy.ros import qos
from snn_autonomy.ros.convert import msg_to_packet, stamp_to_ns
from snn_autonomy.ros.coordinator_node import STATE_TOPIC


def _perception(label: int, confidence: float = 0.99, approaching: bool = False, free_m=()) -> Perception:
    """A decision; with `free_m`, a sector model's: the range each sector is free to, left to right,
    over the built-in camera's 140 degrees."""
    m = Perception()
    m.agent_id = "robot_0"
    m.class_names = list(CLASSES)
    m.label, m.confidence, m.approaching = label, confidence, approaching
    if len(free_m):
        spec = SectorSpec.for_camera(140.0)
        m.fov_rad = math.radians(140.0)
        m.sector_free_m = [float(r) for r in free_m]
        m.sector_classes = [int(c) for c in spec.grade(np.asarray(free_m, dtype=float) + 0.01)]
    return m


@pytest.fixture(scope="module")
def loop(open_floor_world):
    probe = Probe("control_probe")
    n = probe.node
    rec = {"cmd": [], "odom": [], "att": [], "packets": [], "diag": [], "collisions": []}
    n.create_subscription(Twist, "/robot_0/cmd_vel", lambda m: rec["cmd"].append((time.monotonic(), m)),
                          qos.COMMAND)
    n.create_subscription(Odometry, "/robot_0/ground_truth", rec["odom"].append, qos.COMMAND)
    n.create_subscription(AttentionCommand, "/robot_0/attention", rec["att"].append, qos.COMMAND)
    n.create_subscription(EventPacket, "/robot_0/events", rec["packets"].append, PROBE_QOS)
    n.create_subscription(DiagnosticArray, "/diagnostics", rec["diag"].append, 50)
    n.create_subscription(Collision, "/robot_0/collisions", rec["collisions"].append, qos.COMMAND)
    rec["map"] = []
    n.create_subscription(PointCloud2, "/robot_0/local_map", rec["map"].append, PROBE_QOS)
    rec["perception"] = n.create_publisher(Perception, "/robot_0/perception", qos.COMMAND)
    params = {"world_config": open_floor_world}
    procs = [NodeProcess(SENSOR, params, namespace="/robot_0").start(),
             NodeProcess(CONTROL, params, namespace="/robot_0").start(),
             # no periodic refresh of an unchanged command within a test: only changes and joins send one;
             # the controller veers 20 deg off a side obstacle at 0.7 rad/s: a turn for attention here
             NodeProcess(ATTENTION, {**params, "republish_s": 60.0, "calm_turn_rps": 0.5},
                         namespace="/robot_0").start()]
    probe.spin_until(lambda: n.count_subscribers("/robot_0/perception") >= 2
                     and n.count_publishers("/robot_0/events") > 0, 60, "control, attention and sensor")
    procs.append(NodeProcess(WORLD, {"world_config": open_floor_world, "wait_for_subscribers": 1}).start())
    probe.spin_until(lambda: len(rec["odom"]) > 5, 30, "the world to run")
    rec["probe"], rec["procs"] = probe, procs
    yield rec
    codes = [p.stop() for p in reversed(procs)]
    probe.close()
    assert codes == [0] * len(procs), "\n".join(p.log()[-3000:] for p in procs)


def _decide(loop, label, seconds, **kw):
    for _ in range(int(seconds / 0.02)):
        loop["perception"].publish(_perception(label, **kw))
        loop["probe"].spin_for(0.02)


def test_watchdog_stops_the_robot_when_perception_goes_stale(loop):
    probe = loop["probe"]
    # clear decisions until the robot cruises: 1.5 s normally, longer where DDS discovery between
    # control and the world (started after it) is slow on a busy machine
    deadline = time.monotonic() + 10.0
    _decide(loop, CLEAR, 1.5)
    while loop["odom"][-1].twist.twist.linear.x <= 0.2 and time.monotonic() < deadline:
        _decide(loop, CLEAR, 0.2)
    speed = loop["odom"][-1].twist.twist.linear.x
    assert speed > 0.2, (f"the robot should be cruising on clear decisions, odometry says {speed}; "
                         f"last commands {[round(m.linear.x, 3) for _, m in loop['cmd'][-5:]]} of "
                         f"{len(loop['cmd'])}; control: {diag_values(loop['diag'], 'control: control')}")
    loop["cmd"].clear()
    t_last = time.monotonic()
    # perception falls silent: control stops the robot, and the world brings it to rest
    zeros = lambda: [t for t, m in loop["cmd"] if m.linear.x == 0.0 and m.angular.z == 0.0]  # noqa: E731
    probe.spin_until(lambda: zeros() and abs(loop["odom"][-1].twist.twist.linear.x) < 1e-6, 10,
                     "a stop command and the robot at rest after perception went stale")
    # the deadline is 100 ms (+ a 20 ms tick); a generous ceiling here, the figure is `chaos`'s
    # (fault sensor_stall: time_to_stop_s)
    assert zeros()[0] - t_last < 1.0, f"stop came {zeros()[0] - t_last:.3f} s after the last decision"
    assert not loop["collisions"], "a collision while perception was stale"
    n_diag = len(loop["diag"])
    probe.spin_until(lambda: any(s.name.endswith("control: control") and "no perception" in s.message
                                 for m in loop["diag"][n_diag:] for s in m.status), 10,
                     "/diagnostics to say why the robot stopped")
    assert int(diag_values(loop["diag"], "control: control")["stops_stale"]) >= 1
    # no decisions for over a second: the latency status turns STALE, not OK
    probe.spin_until(lambda: any(s.name.endswith("control: latency") and s.level == DiagnosticStatus.STALE
                                 for m in loop["diag"][-5:] for s in m.status), 5, "latency STALE on /diagnostics")


def test_imminent_collision_halts_forward_motion(loop):
    _decide(loop, CLEAR, 1.0)
    loop["cmd"].clear()
    # commands the controller made from the clear decisions may still be on their way (on a busy
    # machine, several): from the first stop on, no command may move the robot forward
    deadline = time.monotonic() + 10.0
    while not any(m.linear.x == 0.0 for _, m in loop["cmd"]) and time.monotonic() < deadline:
        _decide(loop, CENTER, 0.1, approaching=True)
    _decide(loop, CENTER, 0.3, approaching=True)
    speeds = [m.linear.x for _, m in loop["cmd"]]
    assert 0.0 in speeds, f"no stop on imminent decisions; commands {speeds[-5:]}"
    assert all(v == 0.0 for v in speeds[speeds.index(0.0):]), speeds
    loop["probe"].spin_until(lambda: int(diag_values(loop["diag"], "control: control").get("stops_imminent", 0)) >= 1,
                             10, "the imminent stop counted on /diagnostics")


def test_attention_takes_effect_on_the_sensor(loop):
    """Calm after confident clear decisions on a straight run: the small budget; turning: the
    ROI drops the side the robot turns away from, and the sensor's events obey it."""
    # clear decisions until attention is calm (the controller may still be turning away from what
    # an earlier test showed it: it remembers obstacles out of view for a few seconds)
    loop["att"].clear()
    deadline = time.monotonic() + 15.0
    while not any(a.reason.startswith("calm") for a in loop["att"]) and time.monotonic() < deadline:
        _decide(loop, CLEAR, 0.2, confidence=0.99)
    calm = [a for a in loop["att"] if a.reason.startswith("calm")]
    assert calm and calm[-1].t_max == 4 and abs(calm[-1].confidence_threshold - 0.85) < 1e-6
    # the controller turns away from a left obstacle (w < 0): attention drops the left edge
    loop["att"].clear()
    _decide(loop, LEFT, 0.6, confidence=0.99)
    turning = [a for a in loop["att"] if "ROI drops" in a.reason]
    assert turning, [a.reason for a in loop["att"]][-3:]
    roi = turning[-1].roi
    assert roi.x_offset > 0 and roi.x_offset + roi.width == 128
    # Attention may switch between that ROI and the full view while the robot turns; decide until
    # the command in force is the ROI, then decide no more: it stays in force.
    for _ in range(50):
        if "ROI drops" in loop["att"][-1].reason:
            break
        _decide(loop, LEFT, 0.04, confidence=0.99)
    assert "ROI drops" in loop["att"][-1].reason, [a.reason for a in loop["att"]][-3:]
    roi = loop["att"][-1].roi
    # the packets the sensor's statuses show were cut by that ROI (attention may turn it back to the
    # full view once the robot stops turning: only what was stamped while it was in force counts)
    want = f"{roi.x_offset},{roi.y_offset},{roi.width},{roi.height}"
    n_diag = len(loop["diag"])

    def cut() -> list:
        window = roi_window_ns(loop["diag"][n_diag:], want)
        return [] if window is None else \
            [m for m in loop["packets"] if window[0] < stamp_to_ns(m.header.stamp) <= window[1]]

    loop["probe"].spin_until(lambda: len(cut()) >= 50, 90, f"50 packets cut by ROI {want}")
    dec = PacketStreamDecoder()
    xs = np.concatenate([dec.decode(msg_to_packet(m)).x for m in cut()])
    assert len(xs) > 100 and xs.min() >= roi.x_offset


def test_a_subscriber_that_joins_late_gets_the_command_in_force_at_once(loop):
    """A sensor or perception that starts (or restarts) after attention settled on a budget must
    not work with the full budget until the command changes: attention sends the command in
    force with its next decision once it has matched the new subscriber."""
    _decide(loop, CLEAR, 0.6, confidence=0.99)          # settled: calm, unchanged from now on
    assert loop["att"] and loop["att"][-1].reason.startswith("calm")
    late = []
    node = loop["probe"].node
    sub = node.create_subscription(AttentionCommand, "/robot_0/attention", late.append, qos.COMMAND)
    try:
        t0 = time.monotonic()
        while not late and time.monotonic() - t0 < 5.0:
            _decide(loop, CLEAR, 0.1, confidence=0.99)
        assert late, "the late subscriber got no command in 5 s (republish_s is 60 s)"
        assert late[0].t_max == 4 and late[0].reason.startswith("calm")
        print(f"late subscriber's first command after {time.monotonic() - t0:.2f} s")
    finally:
        node.destroy_subscription(sub)


def test_attention_gives_an_unsure_decision_with_the_path_ahead_free_the_open_budget(loop):
    """A sector model's decision that is not a confident clear, its sectors within 30 degrees of the
    heading free to 1.4 m: 5 steps at the model's threshold; something 0.6 m straight ahead: 8."""
    free, blocked = [1.4] * 14, [1.4] * 6 + [0.6, 0.6] + [1.4] * 6
    loop["att"].clear()
    deadline = time.monotonic() + 15.0
    while not any(a.reason.startswith("open") for a in loop["att"]) and time.monotonic() < deadline:
        _decide(loop, CENTER, 0.2, confidence=0.5, free_m=free)
    opened = [a for a in loop["att"] if a.reason.startswith("open")]
    assert opened and opened[-1].t_max == 5, [a.reason for a in loop["att"]][-3:]
    loop["att"].clear()
    _decide(loop, CENTER, 0.2, confidence=0.5, free_m=blocked)
    assert loop["att"] and loop["att"][-1].reason.startswith("alert") and loop["att"][-1].t_max == 8, \
        [a.reason for a in loop["att"]][-3:]
    assert abs(loop["att"][-1].confidence_threshold - opened[-1].confidence_threshold) < 1e-6


def test_attention_gives_a_turn_on_the_spot_the_spin_budget(loop):
    """Every sector blocked within the body's pass range: the controller turns on the spot, and
    attention spends 2 steps per decision on it and thins the turn's events; /diagnostics counts
    those decisions."""
    loop["att"].clear()
    deadline = time.monotonic() + 15.0
    while not any(a.reason.startswith("spin") for a in loop["att"]) and time.monotonic() < deadline:
        _decide(loop, CENTER, 0.2, confidence=0.5, free_m=[0.45] * 14)
    spun = [a for a in loop["att"] if a.reason.startswith("spin")]
    turns = [(round(m.linear.x, 3), round(m.angular.z, 2)) for _, m in loop["cmd"][-5:]]
    assert spun and spun[-1].t_max == 2, ([a.reason for a in loop["att"]][-3:], turns)
    # the sensor is told to thin the turn's events (or to the lower rate this machine's perception takes)
    assert 0 < spun[-1].event_rate_cap <= 80_000, (spun[-1].event_rate_cap, spun[-1].reason)
    n_diag = len(loop["diag"])
    loop["probe"].spin_until(lambda: float(diag_values(loop["diag"][n_diag:], "attention: attention").get("spin_fraction", 0)) > 0,
                             10, "spin_fraction on /diagnostics")


def test_the_local_map_is_published_with_what_was_seen_near_and_forgets_it(loop):
    """Something 0.45 m away on the left: the local map the controller steers by holds it, in the
    map frame, beside the robot. Seen free for longer than the map's memory: empty."""
    near_left = [0.45] * 3 + [2.2] * 11
    loop["map"].clear()
    _decide(loop, CLEAR, 0.3, free_m=near_left)
    loop["probe"].spin_until(lambda: loop["map"] and loop["map"][-1].width > 0, 10, "a local map with marks")
    cloud = loop["map"][-1]
    assert cloud.header.frame_id == "map" and cloud.point_step == 12 and [f.name for f in cloud.fields] == list("xyz")
    pts = np.frombuffer(bytes(cloud.data), dtype="<f4").reshape(-1, 3)
    pose = loop["odom"][-1].pose.pose.position
    assert len(pts) == cloud.width and np.all(np.hypot(pts[:, 0] - pose.x, pts[:, 1] - pose.y) < 1.6)
    marks = int(diag_values(loop["diag"], "control: control").get("local_map_marks", -1))
    assert marks >= 0, "local_map_marks missing from /diagnostics"
    deadline = time.monotonic() + 15.0
    while (not loop["map"] or loop["map"][-1].width) and time.monotonic() < deadline:
        _decide(loop, CLEAR, 0.2, free_m=[2.2] * 14)
    assert loop["map"][-1].width == 0


class _LoneControl:
    """A control node alone in namespace `ns`, started at (1, 4) facing +x; the probe plays its
    perception (everything free to 5 m), its odometry (standing at the start pose) and whatever
    else `drive_until` is given to publish each round, at about 50 Hz."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.probe = Probe(f"{ns}_probe")
        n = self.probe.node
        self.cmds, self.diags = [], []
        n.create_subscription(Twist, f"/{ns}/cmd_vel", self.cmds.append, qos.COMMAND)
        n.create_subscription(DiagnosticArray, "/diagnostics", self.diags.append, 50)
        self.perception = n.create_publisher(Perception, f"/{ns}/perception", qos.COMMAND)
        self.odom = n.create_publisher(Odometry, f"/{ns}/odom", qos.COMMAND)
        self.node = NodeProcess(CONTROL, {"start_pose": [1.0, 4.0, 0.0], "diagnostic_updater.period": 0.1},
                                namespace=f"/{ns}").start()
        self.clear = _perception(CLEAR, free_m=[5.0] * 14)
        self.clear.agent_id = ns

    def status(self) -> dict:
        return diag_values(self.diags, f"{self.ns}/control: control")

    def wait_for_topics(self, *publishers) -> None:
        self.probe.spin_until(lambda: all(p.get_subscription_count() for p in (self.perception, self.odom, *publishers))
                              and self.probe.node.count_publishers(f"/{self.ns}/cmd_vel"), 60, "the control node's topics")

    def drive_until(self, cond, what: str, odom: bool = True, also=lambda: None) -> None:
        deadline = time.monotonic() + 60
        while not cond():
            assert time.monotonic() < deadline, f"{what}: {self.status()}, last commands {self.cmds[-3:]}"
            self.perception.publish(self.clear)
            if odom:
                self.odom.publish(Odometry())          # standing at the start pose
            also()
            self.probe.spin_for(0.02)

    def close(self) -> int:
        code = self.node.stop()
        self.probe.close()
        return code


def test_odometry_gone_silent_stops_the_robot_until_it_comes_again():
    """A control node alone: the probe plays perception (clear ahead) and odometry at 50 Hz. With
    odometry silent past the watchdog's deadline the node stops the robot and says why on
    /diagnostics; with odometry back it drives again."""
    c = _LoneControl("robot_5")
    try:
        c.wait_for_topics()
        c.drive_until(lambda: c.cmds and c.cmds[-1].linear.x > 0.0 and c.status().get("odom_age_ms") not in (None, "inf"),
                      "driving with odometry")
        c.drive_until(lambda: c.status().get("mode") == "stale_odometry" and c.cmds[-1].linear.x == 0.0
                      and c.cmds[-1].angular.z == 0.0, "a stop once odometry went silent", odom=False)
        assert int(c.status()["stops_stale_odom"]) >= 1 and float(c.status()["odom_age_ms"]) > 500
        assert any("no odometry" in s.message for m in c.diags[-5:] for s in m.status if "control: control" in s.name)
        c.drive_until(lambda: c.status().get("mode") not in (None, "stale_odometry") and c.cmds[-1].linear.x > 0.0,
                      "driving again with odometry back")
    finally:
        code = c.close()
    assert code == 0, c.node.log()[-2000:]


def test_a_teammates_heartbeat_holds_the_robot_short_of_a_robot_the_camera_did_not_report():
    """A control node alone; the probe plays perception (everything free), odometry (standing at the
    start pose) and the fleet's heartbeats on /fleet/agent_state. The robot's own heartbeat 0.4 m
    ahead is not a teammate: it drives. Another robot's there: it holds its forward motion and
    /diagnostics counts one teammate. Once that robot goes silent, it drives again."""
    c = _LoneControl("robot_6")
    beats = c.probe.node.create_publisher(AgentState, STATE_TOPIC, qos.COMMAND)

    def beat(agent_id: str):
        def publish() -> None:
            m = AgentState(agent_id=agent_id)
            m.header.stamp, m.header.frame_id = c.probe.node.get_clock().now().to_msg(), "map"
            m.pose.position.x, m.pose.position.y, m.pose.orientation.w = 1.4, 4.0, 1.0
            beats.publish(m)
        return publish

    try:
        c.wait_for_topics(beats)
        c.drive_until(lambda: c.cmds and c.cmds[-1].linear.x > 0.3 and c.status().get("teammates") == "0",
                      "driving past its own heartbeat", also=beat("robot_6"))
        c.drive_until(lambda: c.cmds[-1].linear.x == 0.0 and c.status().get("teammates") == "1",
                      "held short of the teammate", also=beat("robot_7"))
        c.drive_until(lambda: c.cmds[-1].linear.x > 0.3 and c.status().get("teammates") == "0",
                      "driving again once the teammate went silent")
    finally:
        code = c.close()
    assert code == 0, c.node.log()[-2000:]
