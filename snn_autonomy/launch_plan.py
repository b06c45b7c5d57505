"""The one launch plan: which nodes run, in which namespaces, with which parameters.

Built from a YAML file in `config/` (validated by the one config loader) and read
by `launch/*.launch.py` (launch_ros, on full ROS 2 installs). Robots get
namespaces `/robot_0 ... /robot_{N-1}` as in Nav2's multi-robot launch; the
world node is global. No ROS import here: the plan is plain data, tested directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from .config import ConfigError, from_dict, load, spec, to_dict
from .paths import config_path


@dataclass(frozen=True)
class NodeSpec:
    executable: str                 # console script of the snn_autonomy package
    name: str
    namespace: str = ""
    parameters: Dict[str, Any] = field(default_factory=dict)
    respawn: bool = False
    respawn_delay_s: float = 1.0
    package: str = "snn_autonomy"


@dataclass(frozen=True)
class LaunchConfig:
    robots: int = spec(3, lo=0, hi=64, help="robots, each in its own namespace")
    robot_prefix: str = "robot_"
    world: bool = True              # start the built-in world (false: a robot or Gazebo provides the data)
    world_config: str = ""          # world YAML ('' = the shipped default)
    world_parameters: Dict[str, Any] = field(default_factory=dict)
    sensor_source: str = "world"    # event_sensor source: world | image | bag | raw | camera
    sensor_parameters: Dict[str, Any] = field(default_factory=dict)
    perception_parameters: Dict[str, Any] = field(default_factory=dict)
    respawn_perception: bool = True
    respawn_delay_s: float = spec(1.0, lo=0.0, hi=60.0, unit="s")
    control: bool = True            # per robot: control (perception -> cmd_vel, watchdog)
    control_parameters: Dict[str, Any] = field(default_factory=dict)
    attention: bool = True          # per robot: attention (false: the full sensing budget always)
    attention_parameters: Dict[str, Any] = field(default_factory=dict)
    fleet: bool = True              # the coordinator and, per robot, a fleet_agent
    coordinator_parameters: Dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        if self.sensor_source not in ("world", "image", "bag", "raw", "camera"):
            raise ConfigError(f"sensor_source: {self.sensor_source!r} is not one of world, image, bag, raw, camera")
        if self.sensor_source == "world" and not self.world:
            raise ConfigError("sensor_source: 'world' needs world: true")


def load_launch_config(path: Optional[str] = None, robots: Optional[int] = None) -> LaunchConfig:
    cfg = load(path or config_path("sim.yaml"), LaunchConfig, section="launch")
    if robots is not None:  # re-validated like the file itself
        cfg = from_dict({**to_dict(cfg), "robots": int(robots)}, LaunchConfig, path="launch")
    return cfg


def build_plan(cfg: LaunchConfig) -> List[NodeSpec]:
    nodes: List[NodeSpec] = []
    if cfg.world:
        nodes.append(NodeSpec("world", "world", parameters={
            "world_config": cfg.world_config, "robots": cfg.robots, **cfg.world_parameters}))
    for i in range(cfg.robots):
        ns = f"/{cfg.robot_prefix}{i}"
        sensor = {"source": cfg.sensor_source, **cfg.sensor_parameters}
        if cfg.sensor_source == "world":
            sensor["world_config"] = cfg.world_config
        nodes.append(NodeSpec("event_sensor", "event_sensor", ns, sensor))
        nodes.append(NodeSpec("perception", "perception", ns, dict(cfg.perception_parameters),
                              respawn=cfg.respawn_perception, respawn_delay_s=cfg.respawn_delay_s))
        world = {"world_config": cfg.world_config}
        if cfg.control:
            nodes.append(NodeSpec("control", "control", ns, {**world, **cfg.control_parameters}))
        if cfg.attention:
            nodes.append(NodeSpec("attention", "attention", ns, {**world, **cfg.attention_parameters}))
        if cfg.fleet:
            nodes.append(NodeSpec("fleet_agent", "fleet_agent", ns, dict(world)))
    if cfg.fleet and cfg.robots:
        allowed = [f"{cfg.robot_prefix}{i}" for i in range(cfg.robots)]
        nodes.append(NodeSpec("coordinator", "coordinator", parameters={
            "world_config": cfg.world_config, "allowed_agents": allowed, **cfg.coordinator_parameters}))
    return nodes
