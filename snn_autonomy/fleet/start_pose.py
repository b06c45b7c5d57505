"""Where a robot's odometry starts in the map frame: the `start_pose` parameter of every node that
places the robot in the map (control, attention, the fleet agent), or, where it is not given, the
robot's start in the built-in world."""
from __future__ import annotations

from typing import Any, Optional, Sequence

from ..config import ConfigError, spec
from ..control.frames import Pose2


def start_pose_field() -> Any:
    """The `start_pose` field of a node's configuration: [x, y, yaw] or [] (the world's)."""
    return spec(default_factory=list, unit="m, m, rad",
                help="x, y, yaw of the odom origin in the map frame ([] = the robot's start in the world config)")


def check_start_pose(pose: Sequence[float]) -> None:
    if len(pose) not in (0, 3):
        raise ConfigError(f"start_pose: expected [] or [x, y, yaw], got {list(pose)!r}")


def start_pose_of(pose: Sequence[float], world_config: Optional[str], agent_id: str) -> Pose2:
    """`pose` when given, else where robot `agent_id` starts in the built-in world of `world_config`."""
    check_start_pose(pose)
    if pose:
        return (float(pose[0]), float(pose[1]), float(pose[2]))
    return start_pose_in_world(world_config, agent_id)


def start_pose_in_world(world_config: Optional[str], agent_id: str) -> Pose2:
    """Where robot `agent_id` (`robot_<k>`) starts in the built-in world of `world_config` (None = default)."""
    from ..sim.config import load_world_config, with_robot_count
    from ..sim.world import World

    cfg = load_world_config(world_config)
    prefix = cfg.robots.id_prefix
    number = agent_id[len(prefix):] if agent_id.startswith(prefix) else ""
    if not number.isdigit():
        raise ConfigError(f"agent {agent_id!r} is not a robot of the world config (ids {prefix}<n>); "
                         "set the start_pose parameter")
    k = int(number)
    world = World(with_robot_count(cfg, max(cfg.robots.count, k + 1)))
    x, y, yaw = world.pose[k].tolist()
    return (x, y, yaw)
