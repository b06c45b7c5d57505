"""The main job end to end: the fleet as ROS 2 node processes, the report, plots and MCAP, and
the report's figures recomputed from the recorded messages."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ros_helpers import fifo_permitted, warn_of_unclean_stops
from snn_autonomy.events.bag import read_messages

KEYS = ("agents", "duration_s", "decisions", "e2e_latency_ms", "stage_latency_ms", "steps_mean", "t_max",
        "early_exit_saving", "energy_per_decision_uj", "events_per_decision", "synops_per_decision",
        "collisions", "coverage")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    # as `make demo` runs it (live table on stderr), shorter and with two robots
    p = subprocess.run([sys.executable, "-m", "snn_autonomy.cli", "demo", "--agents", "2", "--duration", "5",
                        "--out", str(out)], capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-12000:]    # with the end of any failed node's log
    assert "report.json" in p.stdout and "decisions" in p.stdout
    report = json.loads((out / "report.json").read_text())
    warn_of_unclean_stops(report["launcher"])
    return out, report


def test_demo_writes_report_plots_recording_and_logs(demo):
    out, report = demo
    for k in KEYS:
        assert k in report, k
    assert report["agents"] == 2 and report["t_max"] == 16 and report["launcher_exit_status"] == 0
    assert report["decisions"] > 100 and report["e2e_latency_ms"]["p50"] > 0
    assert 0 < report["early_exit_saving"] < 1 and report["energy_per_decision_uj"]["estimated"] > 0
    assert report["energy_per_decision_uj"]["measured"] is None      # no meter on this machine
    assert report["plans"] >= 1 and 0 <= report["coverage"] <= 1
    for png in ("latency_per_stage", "early_exit_steps", "energy_per_decision", "trajectories"):
        assert (out / f"{png}.png").stat().st_size > 5000
    assert list((out / "recording").glob("*.mcap")) and (out / "logs" / "launch.log").exists()
    # the robots (sensing to action in one process each) run under SCHED_FIFO where allowed
    robots = {k: v for k, v in report["scheduling"].items() if k.endswith("/robot")}
    assert sorted(robots) == ["/robot_0/robot", "/robot_1/robot"], report["scheduling"]
    expected = "SCHED_FIFO priority 45" if fifo_permitted(45) else "SCHED_FIFO priority 45 refused"
    assert all(expected in v for v in robots.values()), robots
    # what was shed, why and how much, per robot: the fused loop's filter and its admission control
    for robot in ("robot_0", "robot_1"):
        shed = report["shedding"][robot]["robot"]
        assert int(shed["events_in"]) >= int(shed["events_out"]) > 0, shed
        assert int(shed["dropped_rate_cap"]) >= 0 and float(shed["admitted_ev_s"]) > 0 and shed["admitted_why"], shed


def test_report_agrees_with_the_recorded_messages(demo):
    out, report = demo
    perception, traces, collisions, scheduling, teammates = [], [], 0, {}, {}
    for topic, _t, _type, msg in read_messages(out / "recording"):
        if topic.endswith("/perception"):
            perception.append(msg)
        elif topic.endswith("/decision_trace"):
            traces.append(msg.e2e_latency_ms)
        elif topic.endswith("/collisions"):
            collisions += 1
        elif topic == "/diagnostics":
            scheduling.update({"/" + s.name[:-len(": scheduling")]: s.message for s in msg.status
                               if s.name.endswith(": scheduling")})
            for s in msg.status:
                if s.name.endswith(": control"):
                    heard = {v.key: v.value for v in s.values}.get("teammates")
                    teammates.setdefault(s.name, set()).add(heard)
    assert report["decisions"] == len(perception)
    assert report["collisions"] == collisions
    assert report["scheduling"] == scheduling and scheduling
    # each robot's controller heard the other robot's fleet heartbeats (/fleet/agent_state)
    assert len(teammates) == 2 and all("1" in heard for heard in teammates.values()), teammates
    assert report["steps_mean"] == pytest.approx(np.mean([m.steps_used for m in perception]), abs=1e-3)
    assert report["e2e_latency_ms"]["p50"] == pytest.approx(np.percentile(traces, 50), abs=1e-3)
    assert report["events_per_decision"] == pytest.approx(np.mean([m.events_used for m in perception]), abs=1e-2)
    assert report["early_exit_saving"] == pytest.approx(1 - report["steps_mean"] / 16, abs=1e-3)
    # the patrol figures: one distance per robot summing to the total; collision episodes never
    # outnumber the contacts recorded, and at-fault ones never outnumber the collisions
    assert sorted(report["distance_per_robot_m"]) == ["robot_0", "robot_1"]
    assert sum(report["distance_per_robot_m"].values()) == pytest.approx(report["distance_m"], abs=0.02)
    assert sum(report["collisions_by_kind"].values()) <= collisions
    assert all(report["collisions_at_fault_by_kind"][k] <= n for k, n in report["collisions_by_kind"].items())
    assert 0.0 <= report["halted_fraction"] <= 1.0 and report["mean_speed_mps"] >= 0.0


def test_report_judges_fault_on_the_worlds_clock_not_the_recordings(tmp_path):
    """Collisions and ground truth carry the world's stamps while the recording's clock is the
    wall's (the world runs at half real time): the fault must be judged on the pose at the
    contact's own time, and on the other's velocity the collision message carries."""
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry
    from rclpy.serialization import serialize_message
    from snn_autonomy.events.bag import McapBagWriter
    from snn_autonomy.report.summary import summarise
    from snn_autonomy.sim.config import load_world_config, with_robot_count
    from snn_autonomy.sim.world import World
    from snn_autonomy_msgs.msg import Collision

    wall0 = 1_800_000_000 * 10**9
    with McapBagWriter(tmp_path / "rec") as bag:
        for k in range(21):                        # 0..10 world seconds, written at 2 wall s each
            gt = Odometry()
            gt.header.stamp.sec = k // 2
            gt.header.stamp.nanosec = (k % 2) * 500_000_000
            gt.pose.pose.position.x = 0.1 * max(0, k - 10)   # at rest, then driving along +x
            gt.pose.pose.orientation.w = 1.0
            gt.twist.twist.linear.x = 0.0 if k < 10 else 0.2
            bag.write_raw("/robot_0/ground_truth", "nav_msgs/msg/Odometry", serialize_message(gt), wall0 + k * 10**9)
            cmd = Twist()
            cmd.linear.x = gt.twist.twist.linear.x
            bag.write_raw("/robot_0/cmd_vel", "geometry_msgs/msg/Twist", serialize_message(cmd), wall0 + k * 10**9)
        c = Collision()
        c.header.stamp.sec = 10                    # at the end, just ahead of the robot
        c.robot_id, c.other_kind, c.other_id = "robot_0", 0, "wall_0"
        c.position.x = 1.2
        bag.write_raw("/robot_0/collisions", "snn_autonomy_msgs/msg/Collision", serialize_message(c),
                      wall0 + 20 * 10**9)
        # two moving obstacles at its front right and front left: one crossing into the robot
        # faster than the robot closes on it, one drifting away more slowly than the robot follows
        for index, y, vy in ((5, -0.15, 0.6), (6, 0.15, 0.3)):
            c = Collision()
            c.header.stamp.sec = 10
            c.robot_id, c.other_kind, c.other_id = "robot_0", 1, f"obstacle_{index}"
            c.position.x, c.position.y = 1.1, y
            c.other_velocity.y = vy
            bag.write_raw("/robot_0/collisions", "snn_autonomy_msgs/msg/Collision", serialize_message(c),
                          wall0 + 20 * 10**9)
    world = World(with_robot_count(load_world_config(None), 1))
    assert world.obs_moving[5] and world.obs_moving[6]
    report, _run = summarise(tmp_path / "rec", 1, 10.0, 16, world=world)
    assert report["collisions_by_kind"]["wall"] == 1
    assert report["collisions_at_fault_by_kind"]["wall"] == 1     # driving toward it at the contact
    assert report["collisions_by_kind"]["moving"] == 2
    assert report["collisions_at_fault_by_kind"]["moving"] == 1   # the one it caught up with
    assert report["collisions_judged_without_other_velocity"] == 0
    assert report["halted_fraction"] == pytest.approx(0.5)
    assert report["distance_m"] == pytest.approx(1.0)


def test_a_recording_older_than_the_collisions_other_velocity_is_read_with_its_own_definition(tmp_path):
    """CDR carries no field names: a recording whose Collision has no `other_velocity` is read
    with the definition it carries, not today's, and its collisions with something that moves are
    judged by the robot's motion alone, and counted as such."""
    from snn_autonomy.events.bag import McapBagWriter, ensure_type, typestore
    from snn_autonomy.report.summary import summarise
    from snn_autonomy.sim.config import load_world_config, with_robot_count
    from snn_autonomy.sim.world import World

    collision = "snn_autonomy_msgs/msg/Collision"
    ensure_type(collision)
    today, _ = typestore().generate_msgdef(collision, ros_version=2)
    older = today.replace("geometry_msgs/Vector3 other_velocity\n", "")
    assert older != today
    with McapBagWriter(tmp_path / "rec") as bag:
        bag.define(collision, older)
        for k in range(11):                       # driving along +x at 0.2 m/s
            bag.write("/robot_0/ground_truth", "nav_msgs/msg/Odometry",
                      {"header": {"stamp": {"sec": k, "nanosec": 0}, "frame_id": "map"}, "child_frame_id": "",
                       "pose": {"pose": {"position": {"x": 0.2 * k, "y": 0.0, "z": 0.0},
                                         "orientation": {"x": 0.0, "y": 0.0, "z": 0.0, "w": 1.0}},
                                "covariance": [0.0] * 36},
                       "twist": {"twist": {"linear": {"x": 0.2, "y": 0.0, "z": 0.0},
                                           "angular": {"x": 0.0, "y": 0.0, "z": 0.0}}, "covariance": [0.0] * 36}},
                      k * 10**9)
        for other_id, y in (("obstacle_5", -0.15), ("obstacle_6", 3.0)):   # one ahead, one beside
            bag.write("/robot_0/collisions", collision,
                      {"header": {"stamp": {"sec": 10, "nanosec": 0}, "frame_id": "map"}, "robot_id": "robot_0",
                       "other_kind": 1, "other_id": other_id, "position": {"x": 2.1, "y": y, "z": 0.0},
                       "relative_speed_mps": 0.2}, 10 * 10**9)
    world = World(with_robot_count(load_world_config(None), 1))
    report, run = summarise(tmp_path / "rec", 1, 10.0, 16, world=world)
    assert not hasattr(run.collisions["robot_0"][0], "other_velocity")
    assert report["collisions_by_kind"]["moving"] == 2
    assert report["collisions_at_fault_by_kind"]["moving"] == 1   # the one ahead of the driving robot
    assert report["collisions_judged_without_other_velocity"] == 2
