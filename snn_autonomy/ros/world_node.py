"""`world` node: the built-in simulator on ROS 2.

Subscribes  /<robot>/cmd_vel        geometry_msgs/Twist (non-finite values rejected, counted)
Publishes   /<robot>/odom           nav_msgs/Odometry (odom frame = start pose, base_link)
            /<robot>/ground_truth   nav_msgs/Odometry in the map frame
            /<robot>/collisions     snn_autonomy_msgs/Collision, once per new contact
            /<robot>/scan           sensor_msgs/LaserScan of the robot's 2D LiDAR (world file's
                                    `lidar:` section; frame <robot>/laser, at the robot's centre
                                    unless mounted elsewhere), sensor-data QoS
            /world/state            snn_autonomy_msgs/WorldState every step, reliable (event sensors render from it)
            /clock                  rosgraph_msgs/Clock (simulation time, starting at 0, at clock_rate_hz)
            /diagnostics
A robot whose cmd_vel is older than `cmd_vel_timeout_s` is commanded to stop, as a
real base controller does. `odom_muted` (robot ids, comma-separated; settable at run time)
withholds those robots' `odom`, as a base whose odometry died would (their ground truth goes
on): the fault `snn-autonomy chaos` injects to check that control stops for it. Every node of
the graph but this one runs on /clock (the launch plan's use_sim_time): the world keeps its
real_time_factor, and when starved it goes on from where it is rather than racing through the
time it lost (sim/pacing.py).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import List, Optional, Set

import numpy as np
import rclpy
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import LaserScan
from snn_autonomy_msgs.msg import Collision, WorldState

from ..config import ConfigError, spec
from ..sim.config import load_world_config, with_robot_count
from ..sim.lidar import lidar_scan
from ..sim.pacing import RealTimePacer
from ..sim.world import World, pose_in_start_frame
from . import qos
from .convert import WorldStateWriter, laser_scan_msg, ns_to_stamp, yaw_to_quat
from .diagnostics import OK, WARN, Status, Updater
from .params import declare_params
from .spin import exit_with, spin_node

_KIND = {"wall": Collision.WALL, "obstacle": Collision.OBSTACLE, "robot": Collision.ROBOT}


@dataclass(frozen=True)
class WorldNodeConfig:
    world_config: str = spec("", help="world YAML ('' = the shipped default world)")
    robots: int = spec(-1, lo=-1, hi=64, help="number of robots (-1 = as in the world file)")
    real_time_factor: float = spec(1.0, lo=0.0, hi=1000.0, help="simulated s per wall s (0 = as fast as possible)")
    odom_rate_hz: float = spec(50.0, lo=0.1, hi=1000.0, unit="Hz", help="odometry and ground-truth rate")
    clock_rate_hz: float = spec(200.0, lo=1.0, hi=100000.0, unit="Hz",
                                help="/clock rate in simulated time (at most once a step): every node of the "
                                     "graph follows it, and each tick is a callback in each of them; 200 Hz puts "
                                     "a watchdog stop within 5 ms of its 100 ms deadline")
    cmd_vel_timeout_s: float = spec(0.5, lo=0.001, hi=3600.0, unit="s", help="stop a robot whose cmd_vel is older")
    wait_for_subscribers: int = spec(0, lo=0, hi=1000,
                                     help="hold simulation time at 0 until /world/state has this many subscribers "
                                          "(as this node counts them: one may match it a moment later and miss the "
                                          "first states; an event sensor reports the step it began at)")
    state_depth: int = spec(qos.STATE_DEPTH, lo=1, hi=100000,
                            help="states of /world/state held for a subscriber that falls behind (0.2 s at "
                                 "1 kHz); deeper lets it catch up later instead of missing states")
    odom_muted: str = spec("", help="robot ids, comma-separated, whose odom is withheld (an injected fault; "
                                    "ground truth goes on); settable at run time")


class WorldNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("world", **kwargs)
        params = declare_params(self, WorldNodeConfig)
        cfg = load_world_config(params.world_config or None)
        if params.robots >= 0:
            cfg = with_robot_count(cfg, params.robots)
        self.world = World(cfg)
        self.params = params
        self.rtf = params.real_time_factor
        self.odom_period_us = int(1e6 / params.odom_rate_hz)
        self.clock_period_us = int(1e6 / params.clock_rate_hz)
        self.cmd_timeout_us = int(params.cmd_vel_timeout_s * 1e6)
        self._lock = threading.Lock()
        self._last_cmd_us = [-(1 << 62)] * len(self.world.robot_ids)
        self._start_pose = self.world.pose.copy()
        self._odom_pubs, self._gt_pubs, self._col_pubs, self._scan_pubs = [], [], [], []
        lidar = cfg.lidar
        self.scan_period_us = int(1e6 / lidar.rate_hz) if lidar.enabled else 0
        self._scan_rng = np.random.default_rng(cfg.seed * 7919 + 17)   # range noise, reproducible per world
        for i, rid in enumerate(self.world.robot_ids):
            self.create_subscription(Twist, f"/{rid}/cmd_vel", lambda m, i=i: self._on_cmd(i, m), qos.COMMAND)
            self._odom_pubs.append(self.create_publisher(Odometry, f"/{rid}/odom", qos.COMMAND))
            self._gt_pubs.append(self.create_publisher(Odometry, f"/{rid}/ground_truth", qos.COMMAND))
            self._col_pubs.append(self.create_publisher(Collision, f"/{rid}/collisions", qos.COMMAND))
            if lidar.enabled:
                self._scan_pubs.append(self.create_publisher(LaserScan, f"/{rid}/scan", qos.SENSOR))
        self._state_pub = self.create_publisher(WorldState, "/world/state", qos.state(params.state_depth))
        self._state = WorldStateWriter(self.world)
        self._clock_pub = self.create_publisher(Clock, "/clock", qos.SENSOR)
        self.pacer = RealTimePacer(self.rtf)
        self.rejected_cmds = 0
        self._muted = self._robot_ids(params.odom_muted)
        self.add_on_set_parameters_callback(self._on_params)
        self.diag = Updater(self, hardware_id="builtin_world")
        self.diag.add("simulation", self._diagnose)
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="world-physics", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"world: {len(self.world.robot_ids)} robots, {len(self.world.obs_pos)} obstacles, "
            f"dt {self.world.dt_us} us, real-time factor {self.rtf or 'max'}")

    # ------------------------------------------------------------------ callbacks
    def _on_cmd(self, i: int, msg: Twist) -> None:
        with self._lock:
            if not self.world.set_command(i, msg.linear.x, msg.angular.z):
                self.rejected_cmds += 1
                self.get_logger().warning(f"{self.world.robot_ids[i]}: non-finite cmd_vel rejected; robot stopped",
                                          throttle_duration_sec=1.0)
            self._last_cmd_us[i] = self.world.time_us

    def _robot_ids(self, text: str) -> Set[int]:
        """The robots named in a comma-separated `odom_muted` (ConfigError naming any unknown)."""
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in self.world.robot_ids]
        if unknown:
            raise ConfigError(f"odom_muted: no robot {', '.join(unknown)} in this world "
                              f"({', '.join(self.world.robot_ids)})")
        return {self.world.robot_ids.index(n) for n in names}

    def _on_params(self, params) -> SetParametersResult:
        for p in params:
            if p.name == "odom_muted":
                try:
                    self._muted = self._robot_ids(str(p.value))
                except ConfigError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
                self.get_logger().warning(f"odometry withheld for {p.value or 'no robot'}")
        return SetParametersResult(successful=True)

    def _diagnose(self, st: Status) -> None:
        w = self.world
        st.summary(OK, "running")
        if self._muted:
            st.merge(WARN, "odometry withheld for " + ", ".join(w.robot_ids[i] for i in sorted(self._muted)))
        if self.pacer.late_steps:
            st.merge(WARN, f"{self.pacer.late_steps} steps later than real time")
        if self.rejected_cmds:
            st.merge(WARN, f"{self.rejected_cmds} non-finite cmd_vel rejected")
        st.add_all({"sim_time_s": w.time_us / 1e6, "steps": w.step_count, "late_steps": self.pacer.late_steps,
                    "lost_wall_s": round(self.pacer.lost_wall_s, 3),
                    "rejected_cmd_vel": self.rejected_cmds,
                    "collisions": ",".join(str(int(c)) for c in w.collisions),
                    "distance_m": ",".join(f"{d:.2f}" for d in w.distance_m)})

    # ------------------------------------------------------------------ stepping
    def _loop(self) -> None:
        w = self.world
        next_odom = next_scan = next_clock = 0
        wanted = self.params.wait_for_subscribers
        try:
            while wanted and self._running and self._state_pub.get_subscription_count() < wanted:
                time.sleep(0.01)
            self.pacer.start(time.monotonic())
            while self._running and rclpy.ok():
                with self._lock:
                    for i, t in enumerate(self._last_cmd_us):
                        if w.time_us - t > self.cmd_timeout_us:
                            w.cmd[i] = 0.0
                    collisions = w.step()
                    state = self._state.write(w, w.time_us * 1000)
                now_ns = w.time_us * 1000
                if w.time_us >= next_clock:
                    self._clock_pub.publish(Clock(clock=ns_to_stamp(now_ns)))
                    next_clock = w.time_us + self.clock_period_us
                self._state_pub.publish(state)
                for c in collisions:
                    self._publish_collision(c)
                if w.time_us >= next_odom:
                    self._publish_odom(now_ns)
                    next_odom = w.time_us + self.odom_period_us
                if self.scan_period_us and w.time_us >= next_scan:
                    self._publish_scans(now_ns)
                    next_scan = w.time_us + self.scan_period_us
                delay = self.pacer.wait_s(w.time_us / 1e6, time.monotonic())
                if delay > 0:
                    time.sleep(delay)
        except Exception as exc:  # context shut down under us, or a real fault: say so
            if rclpy.ok():
                self.get_logger().error(f"physics loop stopped: {type(exc).__name__}: {exc}")

    def _publish_collision(self, c) -> None:
        msg = Collision()
        msg.header.stamp = ns_to_stamp(c.time_us * 1000)
        msg.header.frame_id = "map"
        msg.robot_id = self.world.robot_ids[c.robot]
        msg.other_kind = _KIND[c.kind]
        msg.other_id = self.world.robot_ids[c.other] if c.kind == "robot" else f"{c.kind}_{c.other}"
        msg.position.x, msg.position.y = c.x, c.y
        msg.relative_speed_mps = c.relative_speed
        msg.other_velocity.x, msg.other_velocity.y = c.other_vx, c.other_vy
        self._col_pubs[c.robot].publish(msg)
        self.get_logger().warning(f"{msg.robot_id} collided with {msg.other_id} at {c.relative_speed:.2f} m/s")

    def _publish_odom(self, now_ns: int) -> None:
        w = self.world
        for i, rid in enumerate(w.robot_ids):
            outputs = [(self._gt_pubs[i], "map", w.pose[i])]
            if i not in self._muted:
                outputs.append((self._odom_pubs[i], f"{rid}/odom", pose_in_start_frame(w.pose[i], self._start_pose[i])))
            for pub, frame, (px, py, pyaw) in outputs:
                m = Odometry()
                m.header.stamp = ns_to_stamp(now_ns)
                m.header.frame_id = frame
                m.child_frame_id = f"{rid}/base_link"
                m.pose.pose.position.x, m.pose.pose.position.y = float(px), float(py)
                m.pose.pose.orientation = yaw_to_quat(float(pyaw))
                m.twist.twist.linear.x, m.twist.twist.angular.z = float(w.vel[i, 0]), float(w.vel[i, 1])
                pub.publish(m)

    def _publish_scans(self, now_ns: int) -> None:
        stamp = ns_to_stamp(now_ns)
        for i, rid in enumerate(self.world.robot_ids):
            s = lidar_scan(self.world, i, self._scan_rng)   # on the physics thread, between steps
            self._scan_pubs[i].publish(laser_scan_msg(stamp, f"{rid}/laser", s.angle_min, s.angle_increment,
                                                      s.ranges, s.range_min, s.range_max, s.scan_time))

    def destroy_node(self) -> None:
        self._running = False
        thread = getattr(self, "_thread", None)    # absent when the constructor failed before it
        if thread is not None and thread.is_alive():
            thread.join(timeout=2.0)
        super().destroy_node()


def main(args: Optional[List[str]] = None) -> None:
    exit_with(spin_node(WorldNode, args))


if __name__ == "__main__":
    main()
