"""The built-in world: determinism, kinematics, collisions, rendering, configuration."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from snn_autonomy.config import ConfigError, from_dict
from snn_autonomy.sim.config import WorldConfig, load_world_config, with_robot_count
from snn_autonomy.sim.ground_truth import HIT_WALL, range_scan
from snn_autonomy.sim.world import World, config_sha256


def _empty_world(**robots):
    cfg = from_dict({"seed": 1, "arena": {"size_m": [6.0, 4.0], "moving_obstacles": {"count": 0}},
                     "robots": {"count": 1, "start_poses": [[1.0, 2.0, 0.0]], **robots}}, WorldConfig)
    return World(cfg)


def _run(world, steps, cmds):
    for _ in range(steps):
        for i, (v, w) in enumerate(cmds):
            world.set_command(i, v, w)
        world.step()


def test_same_seed_same_world_and_trajectories():
    cfg = load_world_config()
    a, b = World(cfg), World(cfg)
    np.testing.assert_array_equal(a.obs_pos, b.obs_pos)
    _run(a, 500, [(0.5, 0.3)] * 3)
    _run(b, 500, [(0.5, 0.3)] * 3)
    np.testing.assert_array_equal(a.pose, b.pose)
    np.testing.assert_array_equal(a.render(1), b.render(1))
    c = World(replace(cfg, seed=cfg.seed + 1))
    assert not np.array_equal(a.obs_pos, c.obs_pos) or not np.array_equal(a.obs_vel, c.obs_vel)


def test_unicycle_limits_and_arc():
    w = _empty_world(max_linear_mps=0.5, max_linear_accel=1.0, max_angular_rps=1.0)
    w.set_command(0, 5.0, 0.0)  # clamped to 0.5 m/s
    w.step()
    assert w.vel[0, 0] == pytest.approx(0.001)  # 1 m/s^2 for 1 ms
    _run(w, 1000, [(5.0, 0.0)])
    assert w.vel[0, 0] == pytest.approx(0.5)
    # a full circle at v = 0.5, w = 1 returns to its start (radius 0.5 m)
    w2 = _empty_world(max_linear_accel=100.0, max_angular_accel=500.0)
    w2.vel[0] = (0.5, 1.0)
    start = w2.pose[0].copy()
    _run(w2, int(round(2 * math.pi / 0.001)), [(0.5, 1.0)])
    assert np.hypot(*(w2.pose[0, :2] - start[:2])) < 0.01


def test_non_finite_command_is_rejected_and_stops():
    w = _empty_world()
    w.set_command(0, 0.4, 0.0)
    assert not w.set_command(0, float("nan"), 0.0)
    assert w.rejected_commands == 1 and tuple(w.cmd[0]) == (0.0, 0.0)


def test_wall_collision_is_detected_once_and_robot_stays_inside():
    w = _empty_world()
    _run(w, 20_000, [(0.6, 0.0)])  # straight at the wall at x = 6
    assert w.collisions[0] == 1
    r = w.cfg.robots.radius_m
    assert w.pose[0, 0] <= 6.0 - r + 1e-6
    assert w.vel[0, 0] == pytest.approx(0.0, abs=0.01)


def test_robots_collide_with_each_other():
    cfg = from_dict({"arena": {"size_m": [6.0, 4.0], "moving_obstacles": {"count": 0}},
                     "robots": {"count": 2, "start_poses": [[1.0, 2.0, 0.0], [3.0, 2.0, math.pi]]}}, WorldConfig)
    w = World(cfg)
    _run(w, 3000, [(0.5, 0.0), (0.5, 0.0)])
    assert list(w.collisions) == [1, 1]
    assert np.hypot(*(w.pose[0, :2] - w.pose[1, :2])) >= 2 * cfg.robots.radius_m - 1e-6


def _meet_one_mover(robot_v, mover_xy, mover_v, steps=3000):
    """One robot driving at `robot_v` from (1, 2) along +x for `steps` ms in an empty arena with
    one mover (radius 0.2 m) starting at `mover_xy` with velocity `mover_v`: (world, the patrol
    metrics' collision events)."""
    from snn_autonomy.loop.metrics import PatrolMetrics

    cfg = from_dict({"seed": 1, "arena": {"size_m": [6.0, 4.0], "moving_obstacles": {"count": 1,
                                                                                   "radius_m": [0.2, 0.2]}},
                     "robots": {"count": 1, "start_poses": [[1.0, 2.0, 0.0]]}}, WorldConfig)
    w = World(cfg)
    w.vel[0] = (robot_v, 0.0)
    w.obs_pos[0], w.obs_vel[0] = mover_xy, mover_v
    m = PatrolMetrics(w, [[(0.0, 0.0), (6.0, 0.0), (6.0, 4.0), (0.0, 4.0)]])
    for _ in range(steps):
        w.set_command(0, robot_v, 0.0)
        m.before_step()
        m.after_step(w.step(), ["pursue"])
    return w, [(e["kind"], e["at_fault"]) for e in m.events]


@pytest.mark.parametrize("mover_x", [1.15, 1.3])
def test_an_obstacle_running_into_a_robots_side_is_a_collision_the_robot_is_not_at_fault_for(mover_x):
    """The mover's contact is reported in the step it happens, with its velocity before the
    bounce: reported only once the robot next moved into it, the mover would seem to recede and
    the robot, driving on, to have closed the gap."""
    w, events = _meet_one_mover(0.3, (mover_x, 1.2), (0.0, 0.6))    # crossing toward the robot's right flank
    assert events == [("moving", False)] and w.collisions[0] == 1


def test_a_robot_running_into_an_obstacles_side_is_at_fault():
    _w, events = _meet_one_mover(0.5, (1.8, 2.2), (0.0, 0.05))      # a slow mover drifting off the robot's path
    assert events[:1] == [("moving", True)]


def test_moving_obstacles_stay_in_the_arena():
    cfg = load_world_config()
    w = World(cfg)
    _run(w, 20_000, [(0.0, 0.0)] * 3)
    W, H = cfg.arena.size_m
    m = w.obs_moving
    assert (w.obs_pos[m, 0] - w.obs_r[m] > -0.02).all() and (w.obs_pos[m, 0] + w.obs_r[m] < W + 0.02).all()
    assert (w.obs_pos[m, 1] - w.obs_r[m] > -0.02).all() and (w.obs_pos[m, 1] + w.obs_r[m] < H + 0.02).all()
    assert np.linalg.norm(w.obs_vel[m], axis=1).min() > 0.0


def test_render_shape_contrast_and_motion():
    w = World(load_world_config())
    img = w.render(0)
    assert img.shape == (96, 128) and img.dtype == np.float32
    assert 0.0 < img.min() and img.max() <= 1.0 and img.std() > 0.05
    w.vel[0] = (0.0, 1.0)
    _run(w, 50, [(0.0, 1.0)] * 3)
    assert np.abs(w.render(0) - img).mean() > 0.01  # turning changes the view


@pytest.mark.parametrize("projection", ["pinhole", "cylindrical"])
def test_camera_projection_puts_a_post_where_its_bearing_and_height_say(projection):
    """A thin post 50 deg to the left, 1.5 m from the lens: its column follows the projection
    (pinhole: f tan 50; cylindrical: evenly spaced in angle), its top row, cylindrical, the
    elevation of its top."""
    bearing, dist, height = math.radians(50.0), 1.5, 0.5
    camera = {"hfov_deg": 140.0, "projection": projection, "vfov_deg": 74.0, "mount_height_m": 0.3}
    arena = {"size_m": [8.0, 8.0], "moving_obstacles": {"count": 0}}
    robots = {"count": 1, "start_poses": [[1.0, 2.0, 0.0]]}
    bare = World(from_dict({"seed": 1, "arena": arena, "robots": robots, "camera": camera}, WorldConfig))
    cx, cy, _ = bare.camera_pose(0)
    post = {"position": [cx + dist * math.cos(bearing), cy + dist * math.sin(bearing)], "radius_m": 0.02,
            "height_m": height}
    w = World(from_dict({"seed": 1, "arena": dict(arena, static_obstacles=[post]), "robots": robots,
                         "camera": camera}, WorldConfig))
    img, ref = w.render(0), bare.render(0)
    rows, cols = np.nonzero(np.abs(img - ref) > 1e-6)
    width, hfov = w.cfg.camera.width, math.radians(140.0)
    if projection == "pinhole":
        expected = width / 2 - (width / 2) / math.tan(hfov / 2) * math.tan(bearing) - 0.5
    else:
        expected = width / 2 - bearing * width / hfov - 0.5
    assert len(cols) and abs(cols.mean() - expected) < 1.0, (cols.mean(), expected)
    if projection == "cylindrical":
        h = w.cfg.camera.height
        top = h / 2 - math.atan((height - 0.3) / dist) * h / math.radians(74.0) - 0.5
        assert abs(rows.min() - top) <= 1.0, (rows.min(), top)


def test_range_scan_sees_the_wall_ahead():
    w = _empty_world()
    scan = range_scan(w, 0, n_rays=9)
    centre = len(scan.distance) // 2
    cam_x = w.camera_pose(0)[0]
    assert scan.kind[centre] == HIT_WALL
    assert scan.distance[centre] == pytest.approx(6.0 - cam_x, abs=1e-6)
    w.vel[0] = (0.5, 0.0)
    assert range_scan(w, 0, n_rays=9).closing_speed[centre] == pytest.approx(0.5)


def _wall_end_world(thickness_m, start_pose=(1.0, 2.0, 0.0)):
    """An inner wall from (3, 2) to the arena's end at (8, 2); by default a robot faces its free
    end 2 m away, end-on."""
    cfg = from_dict({"seed": 1, "arena": {"size_m": [8.0, 4.0], "moving_obstacles": {"count": 0},
                                          "walls": [{"start": [3.0, 2.0], "end": [8.0, 2.0],
                                                     "thickness_m": thickness_m}]},
                     "robots": {"count": 1, "start_poses": [list(start_pose)]}}, WorldConfig)
    return World(cfg)


def test_a_thick_walls_end_is_seen_head_on_and_stops_the_robot():
    thick, plane = _wall_end_world(0.1), _wall_end_world(0.0)
    ahead = [range_scan(w, 0, n_rays=9) for w in (thick, plane)]
    centre = 4
    assert ahead[0].kind[centre] == HIT_WALL
    assert ahead[0].distance[centre] == pytest.approx(3.0 - thick.camera_pose(0)[0], abs=1e-6)
    assert ahead[1].distance[centre] > 6.0               # a plane seen edge-on is not there: the arena's end is
    cols = thick.cfg.camera.width
    mid = slice(cols // 2 - 1, cols // 2 + 1)
    assert not np.allclose(thick.render(0)[:, mid], plane.render(0)[:, mid])
    hits = []
    for _ in range(4500):
        thick.set_command(0, 0.5, 0.0)
        hits += thick.step()
    assert [(c.kind, c.other) for c in hits] == [("wall", 4)]
    assert thick.pose[0, 0] == pytest.approx(3.0 - thick.cfg.robots.radius_m, abs=1e-3)


def test_pushing_into_a_thick_walls_corner_while_turning_is_one_collision():
    """The corner belongs to two faces, and the face that holds the robot off changes from step to
    step as it turns against it: still one wall, one contact (counted per face it was hundreds)."""
    w = _wall_end_world(0.1, start_pose=(2.0, 3.05, -math.pi / 4))   # heading for the corner (3, 2.05)
    hits = []
    for k in range(6000):
        w.set_command(0, 0.5, 0.3 if k > 3000 else 0.0)
        hits += w.step()
    assert [(c.kind, c.other, round(c.x, 3), round(c.y, 3)) for c in hits] == [("wall", 4, 3.0, 2.05)]


def test_lidar_scan_follows_rep117_and_sees_only_what_rises_through_its_plane():
    """Robot at (1, 2) facing +x in a 6 x 4 m arena: the wall ahead is 5 m away, behind 1 m; a
    short pillar (below the scanning plane) is invisible to the LiDAR though the camera sees it."""
    from snn_autonomy.sim.lidar import lidar_scan

    cfg = from_dict({"seed": 1, "arena": {"size_m": [6.0, 4.0], "moving_obstacles": {"count": 0},
                                          "static_obstacles": [{"position": [2.0, 1.0], "radius_m": 0.2, "height_m": 0.1},
                                                               {"position": [1.0, 3.0], "radius_m": 0.2, "height_m": 0.5}]},
                     "robots": {"count": 1, "start_poses": [[1.0, 2.0, 0.0]]},
                     "lidar": {"range_max_m": 4.0, "noise_std_m": 0.0}}, WorldConfig)
    w = World(cfg)
    s = lidar_scan(w, 0, np.random.default_rng(0))
    a = s.angles()
    assert len(s.ranges) == 360 and a[0] == pytest.approx(-math.pi) and s.scan_time == pytest.approx(0.1)
    at = lambda deg: s.ranges[np.argmin(np.abs(a - math.radians(deg)))]  # noqa: E731
    assert at(0) == math.inf                          # the wall ahead lies beyond range_max (REP 117)
    assert at(180) == pytest.approx(1.0, abs=1e-3)    # the wall behind
    assert at(90) == pytest.approx(0.8, abs=1e-3)     # the tall pillar 1 m to the left, 0.2 m radius
    assert at(-45) > 1.3                              # the 0.1 m pillar to the front right: below the plane
    noisy = lidar_scan(World(replace(cfg, lidar=replace(cfg.lidar, noise_std_m=0.01))), 0, np.random.default_rng(1))
    both = np.isfinite(s.ranges) & np.isfinite(noisy.ranges)
    err = noisy.ranges[both] - s.ranges[both]
    assert 0.005 < float(np.std(err)) < 0.015
    with pytest.raises(ConfigError, match="range_min_m 5.0 must be below range_max_m 4.0"):
        from_dict({"lidar": {"range_min_m": 5.0, "range_max_m": 4.0}}, WorldConfig)


def test_config_errors_and_hash():
    with pytest.raises(ConfigError, match="textures: 'marble' is used but not defined"):
        from_dict({"arena": {"wall_texture": "marble"}}, WorldConfig)
    with pytest.raises(ConfigError, match="speed_mps: range"):
        from_dict({"arena": {"moving_obstacles": {"speed_mps": [2.0, 1.0]}}}, WorldConfig)
    with pytest.raises(ConfigError, match="camera.width: 4 is below the minimum 8"):
        from_dict({"camera": {"width": 4}}, WorldConfig)
    cfg = load_world_config()
    assert config_sha256(cfg) == config_sha256(with_robot_count(cfg, 7))
    assert config_sha256(cfg) != config_sha256(replace(cfg, seed=99))


def test_crowded_arena_is_a_clear_error():
    cfg = from_dict({"arena": {"size_m": [1.0, 1.0], "moving_obstacles": {"count": 30}}}, WorldConfig)
    with pytest.raises(ValueError, match="arena too crowded"):
        World(cfg)


def test_a_starved_world_goes_on_at_its_factor_instead_of_racing():
    """At half real time a step 0.1 s of the world in is due 0.2 s of wall time in; a short lag is
    caught up (the factor holds over jitter), a 2 s stall is given up on and counted: the next
    steps are due at the factor from there, not at once."""
    from snn_autonomy.sim.pacing import RealTimePacer

    p = RealTimePacer(0.5)
    p.start(100.0)
    assert p.wait_s(0.1, 100.0) == pytest.approx(0.2)
    assert p.wait_s(0.2, 100.42) == 0.0 and p.late_steps == 1 and p.lost_wall_s == 0.0   # 20 ms late: caught up
    assert p.wait_s(0.201, 100.403) == pytest.approx(0.0)
    assert p.wait_s(0.202, 102.404) == 0.0                      # stalled 2 s
    assert p.lost_wall_s == pytest.approx(2.0) and p.late_steps == 2
    assert p.wait_s(0.203, 102.404) == pytest.approx(0.002)     # 1 ms of the world = 2 ms of wall time
    assert RealTimePacer(0.0).wait_s(5.0, 0.0) == 0.0           # as fast as possible
