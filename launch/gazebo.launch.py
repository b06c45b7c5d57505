"""Gazebo: N robots with emulated event cameras, perception, control, attention and the fleet.

    ros2 launch snn_autonomy gazebo.launch.py world:=/path/to/arena.sdf robots:=2
    ros2 launch snn_autonomy gazebo.launch.py world:=arena.sdf robot_sdf:=robot.sdf \
        robots:="robot_0={x: 1.0, y: 1.0, yaw: 0.0}; robot_1={x: 3.0, y: 1.0, yaw: 3.14}"

Starts Gazebo (ros_gz_sim; leave `world` empty when it already runs), spawns `robot_sdf`
once per robot at its pose when given (else the world file holds the robots, named like
them), bridges each robot's camera image, cmd_vel and odom plus /clock with one
ros_gz_bridge `parameter_bridge` (config/gz_bridge.yaml, expanded per robot), and runs the
launch plan with Gazebo's overrides (snn_autonomy.launch_plan.GAZEBO_OVERRIDES): no
built-in world, `event_sensor` with `source: image` (the frame-to-event emulator) on
`<ns>/camera/image_raw`, every node on simulation time. The nodes come from the plan.
"""
import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, LogInfo, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from snn_autonomy.launch_plan import (GAZEBO_OVERRIDES, SECURITY_LAUNCH_ARGUMENTS, build_plan, launch_ros_security,
                                      load_launch_config, parse_robots_argument, robot_ids, security_overrides)


def _actions(context, *args, **kwargs):
    arg = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    robots, poses = parse_robots_argument(arg("robots"))
    overrides = {**GAZEBO_OVERRIDES, **robots}
    if arg("bridge_config"):
        overrides["gz_bridge_config"] = arg("bridge_config")
    overrides.update(security_overrides(arg("security"), arg("security_strategy"), arg("keystore"),
                                        arg("enclave_prefix")))
    cfg = load_launch_config(arg("config") or None, overrides=overrides)
    plan = build_plan(cfg)
    actions = [LogInfo(msg=f"snn_autonomy gazebo: {len(plan)} nodes")]
    if arg("world"):
        from ament_index_python.packages import get_package_share_directory

        gz_sim = os.path.join(get_package_share_directory("ros_gz_sim"), "launch", "gz_sim.launch.py")
        server_only = "" if arg("gui").lower() in ("true", "1", "yes") else "-s "
        gz_args = f"-r {server_only}{arg('world')}"
        actions.append(IncludeLaunchDescription(PythonLaunchDescriptionSource(gz_sim),
                                                launch_arguments={"gz_args": gz_args}.items()))
    if arg("robot_sdf"):
        flags = (("x", "-x"), ("y", "-y"), ("z", "-z"), ("roll", "-R"), ("pitch", "-P"), ("yaw", "-Y"))
        for rid in robot_ids(cfg):
            pose = poses.get(rid, {})
            pose_args = [a for key, flag in flags for a in (flag, str(pose.get(key, 0.0)))]
            actions.append(Node(package="ros_gz_sim", executable="create", name=f"spawn_{rid}", output="screen",
                                arguments=["-name", rid, "-file", arg("robot_sdf"), *pose_args]))
    actions += [Node(package=n.package, executable=n.executable, name=n.name, namespace=n.namespace or None,
                     parameters=[n.parameters], remappings=list(n.remappings), respawn=n.respawn,
                     respawn_delay=n.respawn_delay_s, prefix=n.prefix(), output="screen",
                     **launch_ros_security(cfg, n))
                for n in plan]
    return actions


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="", description="launch plan YAML (default: config/sim.yaml, "
                                                                      "with Gazebo's overrides)"),
        DeclareLaunchArgument("robots", default_value="",
                              description="a count, or names and poses as in Nav2: "
                                          "'robot_0={x: 0.0, y: 0.0, yaw: 0.0}; robot_1={x: 1.0, y: 0.0}'"),
        DeclareLaunchArgument("world", default_value="", description="Gazebo world SDF ('' = Gazebo already runs)"),
        DeclareLaunchArgument("gui", default_value="true", description="false: Gazebo server only"),
        DeclareLaunchArgument("robot_sdf", default_value="",
                              description="robot model to spawn per robot ('' = the world file has the robots)"),
        DeclareLaunchArgument("bridge_config", default_value="",
                              description="ros_gz_bridge template (default: config/gz_bridge.yaml)"),
        *(DeclareLaunchArgument(name, default_value="", description=text) for name, text in SECURITY_LAUNCH_ARGUMENTS),
        OpaqueFunction(function=_actions),
    ])
