"""Launch the built-in world with N robots, each with an event sensor and perception.

    ros2 launch snn_autonomy sim.launch.py robots:=3 [config:=/path/to/sim.yaml]

The node graph comes from the launch plan (snn_autonomy.launch_plan) built from
config/sim.yaml; this file only turns it into launch_ros actions.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from snn_autonomy.launch_plan import (SECURITY_LAUNCH_ARGUMENTS, build_plan, launch_ros_security, load_launch_config,
                                      security_overrides)


def _nodes(context, *args, **kwargs):
    config = LaunchConfiguration("config").perform(context) or None
    robots = LaunchConfiguration("robots").perform(context)
    sec = [LaunchConfiguration(a).perform(context).strip()
           for a in ("security", "security_strategy", "keystore", "enclave_prefix")]
    cfg = load_launch_config(config, int(robots) if robots else None, overrides=security_overrides(*sec) or None)
    plan = build_plan(cfg)
    return [Node(package=n.package, executable=n.executable, name=n.name, namespace=n.namespace or None,
                 parameters=[n.parameters], respawn=n.respawn, respawn_delay=n.respawn_delay_s,
                 prefix=n.prefix(), output="screen", **launch_ros_security(cfg, n))
            for n in plan]


def generate_launch_description():
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value="", description="launch plan YAML (default: config/sim.yaml)"),
        DeclareLaunchArgument("robots", default_value="", description="number of robots (default: from the plan)"),
        *(DeclareLaunchArgument(name, default_value="", description=text) for name, text in SECURITY_LAUNCH_ARGUMENTS),
        OpaqueFunction(function=_nodes),
    ])
