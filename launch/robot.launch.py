"""A robot with a real event camera: driver, perception, control, attention, fleet agent.

    ros2 launch snn_autonomy robot.launch.py [namespace:=robot_3] [driver:=libcaer_driver]
    ros2 launch snn_autonomy robot.launch.py robots:=2            # robot_0, robot_1 (one camera each)
    ros2 launch snn_autonomy robot.launch.py robots:="front; rear" [config:=/path/to/robot.yaml]

The event-camera driver (metavision_driver or libcaer_driver, node `event_camera`)
publishes event_camera_msgs/EventPacket on `<ns>/event_camera/events`; perception is
remapped to it. The node graph comes from the launch plan (snn_autonomy.launch_plan)
built from config/robot.yaml; this file only turns it into launch_ros actions.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from snn_autonomy.launch_plan import (SECURITY_LAUNCH_ARGUMENTS, build_plan, launch_ros_security, load_launch_config,
                                      parse_robots_argument, security_overrides)
from snn_autonomy.paths import config_path


def _nodes(context, *args, **kwargs):
    arg = lambda name: LaunchConfiguration(name).perform(context).strip()  # noqa: E731
    overrides, _ = parse_robots_argument(arg("robots"))
    if arg("driver"):
        overrides["event_driver"] = arg("driver")
    if arg("coordinator"):
        overrides["coordinator"] = arg("coordinator").lower() in ("true", "1", "yes")
    overrides.update(security_overrides(arg("security"), arg("security_strategy"), arg("keystore"),
                                        arg("enclave_prefix")))
    cfg = load_launch_config(arg("config") or str(config_path("robot.yaml")), namespace=arg("namespace") or None,
                             overrides=overrides or None)
    plan = build_plan(cfg)
    return [LogInfo(msg=f"snn_autonomy robot: {len(plan)} nodes, driver {cfg.event_driver}")] + [
        Node(package=n.package, executable=n.executable, name=n.name, namespace=n.namespace or None,
             parameters=[n.parameters], remappings=list(n.remappings), respawn=n.respawn,
             respawn_delay=n.respawn_delay_s, prefix=n.prefix(), output="screen",
             **launch_ros_security(cfg, n))
        for n in plan]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="", description="launch plan YAML (default: config/robot.yaml)"),
        DeclareLaunchArgument("namespace", default_value="",
                              description="this robot's namespace and fleet id (one robot; default: from the plan)"),
        DeclareLaunchArgument("robots", default_value="",
                              description="a count, or names as in Nav2: 'robot_a; robot_b={x: 1.0, y: 0.0, yaw: 0.0}' "
                                          "(default: from the plan)"),
        DeclareLaunchArgument("driver", default_value="",
                              description="metavision_driver | libcaer_driver (default: from the plan)"),
        DeclareLaunchArgument("coordinator", default_value="",
                              description="true: also run the fleet coordinator here (default: from the plan)"),
        *(DeclareLaunchArgument(name, default_value="", description=text) for name, text in SECURITY_LAUNCH_ARGUMENTS),
        OpaqueFunction(function=_nodes),
    ])
