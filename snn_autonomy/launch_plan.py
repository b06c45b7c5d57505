"""The one launch plan: which nodes run, in which namespaces, with which parameters.

Built from a YAML file in `config/` (validated by the one config loader) and read
by `launch/*.launch.py` (launch_ros, on full ROS 2 installs). Robots get
namespaces `/robot_0 ... /robot_{N-1}` as in Nav2's multi-robot launch; the
world node is global. No ROS import here: the plan is plain data, tested directly.

Besides the built-in world the plan describes a robot with a real event-camera
driver (`sensor_source: driver`: metavision_driver or libcaer_driver publishing
EventPackets on `<ns>/event_camera/events`) and Gazebo (`sensor_source: image` on a
camera bridged by ros_gz_bridge, `gz_bridge: true`). Nodes of other packages carry
their `package`; `snn-autonomy launch` runs them from the ament prefix when present.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Tuple

import yaml

from .config import ConfigError, from_dict, load, load_yaml, spec, to_dict
from .paths import config_path
from .realtime import check_priority


@dataclass(frozen=True)
class NodeSpec:
    executable: str                 # console script of the snn_autonomy package
    name: str
    namespace: str = ""
    parameters: Dict[str, Any] = field(default_factory=dict)
    respawn: bool = False
    respawn_delay_s: float = 1.0
    package: str = "snn_autonomy"
    remappings: Tuple[Tuple[str, str], ...] = ()   # (from, to) topic remappings
    enclave: str = ""               # SROS2 enclave (`--enclave`), set when the plan's security is on
    cpus: Tuple[int, ...] = ()      # CPU affinity (empty: any CPU), from the plan's cpu_affinity

    @property
    def ours(self) -> bool:
        """A node of this package (run through ros/spin.py: it takes `realtime_priority` and
        answers the launcher's stack-dump signal)."""
        return self.package == "snn_autonomy"

    def prefix(self) -> Optional[str]:
        """launch_ros `prefix` that gives the process its CPU affinity (None: no prefix)."""
        return f"taskset -c {','.join(map(str, self.cpus))}" if self.cpus else None


DRIVER_NODE_NAME = "event_camera"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


SECURITY_STRATEGIES = ("Enforce", "Permissive")
AFFINITY_NODES = ("world", "gz_bridge", DRIVER_NODE_NAME, "event_sensor", "perception", "control", "attention",
                  "robot", "fleet_agent", "coordinator")
# nodes of this package: they take `realtime_priority` as a parameter (ros/spin.py applies it)
OWN_NODES = tuple(n for n in AFFINITY_NODES if n not in ("gz_bridge", DRIVER_NODE_NAME))
# The sensing-to-action chain preempts everything else on its cores (SCHED_FIFO), control above
# perception so that a decision in flight finishes before the next packet is taken up (50 is
# ros2_control's controller-manager default). The built-in world's event sensor is left out:
# it renders and emulates the camera (work a real camera does in its own silicon), and at
# FIFO it takes the cores from everything else whenever the simulation is heavy. With a live
# camera (`source: camera`) add `event_sensor: 40`; a driver of another package: `chrt`.
ATTENTION_FROM_PERCEPTION = ("model", "temporal_prior")   # perception parameters the attention node shares
DEFAULT_REALTIME_PRIORITY = {"perception": 45, "control": 50, "robot": 45}


@dataclass(frozen=True)
class SecurityLaunchConfig:
    """SROS2 for every node of the plan (procedure: snn_autonomy/ros/security.py). When on, each
    node gets ROS_SECURITY_* in its environment and the enclave `<enclave_prefix>/<ns>/<node>`."""

    enable: bool = False
    strategy: str = "Enforce"       # Enforce | Permissive (Permissive may run nodes unsecured)
    keystore: str = ""              # `ros2 security create_keystore` directory (required when enabled)
    enclave_prefix: str = ""        # e.g. /fleet_a: enclaves /fleet_a/robot_0/perception ...

    def validate(self) -> None:
        if self.strategy not in SECURITY_STRATEGIES:
            raise ConfigError(f"security.strategy: {self.strategy!r} is not one of {', '.join(SECURITY_STRATEGIES)}")
        if self.enable and not self.keystore:
            raise ConfigError("security.keystore: '' but security.enable is true; give the keystore directory")
        if self.enclave_prefix and not re.match(r"^(/[A-Za-z_][A-Za-z0-9_]*)+$", self.enclave_prefix):
            raise ConfigError(f"security.enclave_prefix: {self.enclave_prefix!r} is not an absolute ROS name "
                              "such as /fleet_a")


@dataclass(frozen=True)
class LaunchConfig:
    robots: int = spec(3, lo=0, hi=64, help="robots, each in its own namespace")
    robot_prefix: str = "robot_"
    world: bool = True              # start the built-in world (false: a robot or Gazebo provides the data)
    world_config: str = ""          # world YAML ('' = the shipped default)
    world_parameters: Dict[str, Any] = field(default_factory=dict)
    # event_sensor source, or driver: an event-camera driver node instead of event_sensor
    sensor_source: Literal["world", "image", "bag", "raw", "camera", "driver"] = "world"
    sensor_parameters: Dict[str, Any] = field(default_factory=dict)
    perception_parameters: Dict[str, Any] = field(default_factory=dict)
    respawn_perception: bool = True
    respawn_delay_s: float = spec(1.0, lo=0.0, hi=60.0, unit="s")
    # split: sensor, perception, control, attention nodes; fused: one `robot` node
    mode: Literal["split", "fused"] = "split"
    control: bool = True            # per robot: control (perception -> cmd_vel, watchdog)
    control_parameters: Dict[str, Any] = field(default_factory=dict)
    attention: bool = True          # per robot: attention (false: the full sensing budget always)
    attention_parameters: Dict[str, Any] = field(default_factory=dict)
    fleet: bool = True              # the coordinator and, per robot, a fleet_agent
    coordinator_parameters: Dict[str, Any] = field(default_factory=dict)
    # --- robots on real hardware and in Gazebo (the defaults keep the plan above unchanged)
    robot_names: List[str] = field(default_factory=list)  # explicit namespaces, e.g. [robot_3] (robots = their count)
    robot_poses: Dict[str, List[float]] = field(default_factory=dict)  # id -> [x, y, yaw] start (control, attention, fleet)
    coordinator: bool = True        # with fleet: false on a robot whose coordinator runs elsewhere
    event_driver: Literal["metavision_driver", "libcaer_driver"] = "metavision_driver"   # with sensor_source driver
    driver_parameters: Dict[str, Any] = field(default_factory=dict)
    events_topic: str = ""          # perception input ('' = events; with a driver: event_camera/events)
    # every node follows /clock; None: when a simulator publishes it (the built-in world, whose
    # nodes then keep its time at any real_time_factor, or Gazebo)
    use_sim_time: Optional[bool] = None
    gz_bridge: bool = False         # ros_gz_bridge parameter_bridge for every robot (Gazebo)
    gz_bridge_config: str = ""      # bridge template ('' = config/gz_bridge.yaml)
    security: SecurityLaunchConfig = field(default_factory=SecurityLaunchConfig)   # SROS2 (off by default)
    # node name (world, event_sensor, perception, control, robot, ...) -> CPUs it may run on, for
    # every instance of that node; e.g. {world: [0], event_sensor: [0], perception: [1], control: [1]}
    # keeps a simulation off the cores of the sensing-to-action chain
    cpu_affinity: Dict[str, List[int]] = field(default_factory=dict)
    # node name -> SCHED_FIFO priority (1..99, 0 = normal scheduling) of every instance of that
    # node; refused by the kernel without CAP_SYS_NICE or an rtprio limit, which the node
    # reports (log and /diagnostics) before running on normal scheduling. {} turns it off.
    realtime_priority: Dict[str, int] = field(default_factory=lambda: dict(DEFAULT_REALTIME_PRIORITY))

    def validate(self) -> None:
        if self.sensor_source == "world" and not self.world:
            raise ConfigError("sensor_source: 'world' needs world: true")
        if self.mode == "fused" and self.sensor_source != "world":
            raise ConfigError("mode: 'fused' runs the built-in world's camera in the robot node; "
                              "it needs sensor_source: world")
        for n in self.robot_names:
            if not _NAME.match(n):
                raise ConfigError(f"robot_names: {n!r} is not a valid ROS name (letters, digits, _)")
        if len(set(self.robot_names)) != len(self.robot_names):
            raise ConfigError(f"robot_names: {self.robot_names!r} has duplicates")
        if self.robot_names and len(self.robot_names) != self.robots:
            raise ConfigError(f"robot_names: {len(self.robot_names)} names but robots: {self.robots}")
        ids = list(self.robot_names) or [f"{self.robot_prefix}{i}" for i in range(self.robots)]
        for rid, pose in self.robot_poses.items():
            if rid not in ids:
                raise ConfigError(f"robot_poses: {rid!r} is not one of the robots ({', '.join(ids)})")
            if len(pose) != 3:
                raise ConfigError(f"robot_poses.{rid}: {pose!r} is not [x, y, yaw]")
        for name, cpus in self.cpu_affinity.items():
            if name not in AFFINITY_NODES:
                raise ConfigError(f"cpu_affinity: {name!r} is not one of {', '.join(AFFINITY_NODES)}")
            if not cpus or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < 4096 for c in cpus):
                raise ConfigError(f"cpu_affinity.{name}: {cpus!r} is not a non-empty list of CPU numbers")
        for name, prio in self.realtime_priority.items():
            if name not in OWN_NODES:
                raise ConfigError(f"realtime_priority: {name!r} is not one of {', '.join(OWN_NODES)}")
            try:
                check_priority(prio, f"realtime_priority.{name}")
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        if self.gz_bridge and self.world:
            raise ConfigError("gz_bridge: true needs world: false (Gazebo, not the built-in world, "
                              "drives the robots)")


# What Gazebo changes in a plan (launch/gazebo.launch.py): no built-in world, the event
# sensors emulate events from each robot's bridged camera, every node on simulation time.
GAZEBO_OVERRIDES: Dict[str, Any] = {
    "world": False, "sensor_source": "image", "sensor_parameters": {"image_topic": "camera/image_raw"},
    "use_sim_time": True, "gz_bridge": True,
}


def _with_robot_count(data: Dict[str, Any], n: int) -> Dict[str, Any]:
    """`robots: n`; names (and their poses) from the file are dropped when they no longer fit."""
    data = {**data, "robots": n}
    if data.get("robot_names") and len(data["robot_names"]) != n:
        data["robot_names"] = []
        data["robot_poses"] = {}
    return data


def load_launch_config(path: Optional[str] = None, robots: Optional[int] = None,
                       namespace: Optional[str] = None,
                       overrides: Optional[Dict[str, Any]] = None) -> LaunchConfig:
    """The plan's config; `robots` overrides the count, `namespace` makes it one robot of that
    name, `overrides` replaces keys (mappings such as sensor_parameters are merged)."""
    cfg = load(path or config_path("sim.yaml"), LaunchConfig, section="launch")
    if overrides:
        data = to_dict(cfg)
        if "robots" in overrides and "robot_names" not in overrides:
            data = _with_robot_count(data, int(overrides["robots"]))
        if "robot_names" in overrides:      # new robots: the file's poses were for its own names
            data["robot_poses"] = {}
        for k, v in overrides.items():
            data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
        cfg = from_dict(data, LaunchConfig, path="launch")
    if robots is not None:  # re-validated like the file itself
        cfg = from_dict(_with_robot_count(to_dict(cfg), int(robots)), LaunchConfig, path="launch")
    if namespace:
        name = namespace.strip("/")
        poses = {name: cfg.robot_poses[name]} if name in cfg.robot_poses else {}
        cfg = from_dict({**to_dict(cfg), "robots": 1, "robot_names": [name], "robot_poses": poses}, LaunchConfig,
                        path="launch")
    return cfg


def parse_robots_argument(text: str) -> Tuple[Dict[str, Any], Dict[str, Dict[str, float]]]:
    """A launch file's `robots` argument: plan overrides and the robots' spawn poses.

    Either a count (`robots:=3`) or, as in Nav2's multi-robot bringup, names with optional
    poses separated by ';': `robots:="robot_a={x: 0.0, y: 1.0, yaw: 1.57}; robot_b={x: 2.0}"`.
    Poses take x, y, z, roll, pitch, yaw (missing = 0); x, y, yaw become the robots' start poses.
    """
    text = text.strip()
    if not text:
        return {}, {}
    if text.isdigit():
        return {"robots": int(text)}, {}
    names: List[str] = []
    poses: Dict[str, Dict[str, float]] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, _, pose_text = part.partition("=")
        name = name.strip()
        names.append(name)
        if pose_text.strip():
            try:
                pose = yaml.safe_load(pose_text)
            except yaml.YAMLError as exc:
                raise ConfigError(f"robots: pose of {name!r} is not a mapping: {pose_text.strip()!r}") from exc
            if not isinstance(pose, dict) or set(pose) - {"x", "y", "z", "roll", "pitch", "yaw"}:
                raise ConfigError(f"robots: pose of {name!r} must be a mapping of x, y, z, roll, pitch, yaw, "
                                  f"got {pose_text.strip()!r}")
            try:
                poses[name] = {k: float(pose.get(k, 0.0)) for k in ("x", "y", "z", "roll", "pitch", "yaw")}
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"robots: pose of {name!r} has a value that is not a number") from exc
    overrides: Dict[str, Any] = {"robots": len(names), "robot_names": names}
    if poses:
        overrides["robot_poses"] = {n: [p["x"], p["y"], p["yaw"]] for n, p in poses.items()}
    return overrides, poses


def robot_ids(cfg: LaunchConfig) -> List[str]:
    """The robots' ids, which are also their namespaces (without the leading '/')."""
    return list(cfg.robot_names) or [f"{cfg.robot_prefix}{i}" for i in range(cfg.robots)]


def sim_time(cfg: LaunchConfig) -> bool:
    """Whether the plan's nodes run on simulation time (/clock): as configured, else whenever a
    simulator publishes it. The built-in world steps at `real_time_factor` x real time; on the wall
    clock the watchdog's deadline, the velocity ramps and the patrol's timeouts would run that
    much faster than the world they act in."""
    return cfg.use_sim_time if cfg.use_sim_time is not None else bool(cfg.world or cfg.gz_bridge)


def build_plan(cfg: LaunchConfig) -> List[NodeSpec]:
    nodes: List[NodeSpec] = []
    if cfg.world:
        nodes.append(NodeSpec("world", "world", parameters={
            "world_config": cfg.world_config, "robots": cfg.robots, **cfg.world_parameters}))
    if cfg.gz_bridge:
        nodes.append(NodeSpec("parameter_bridge", "gz_bridge", package="ros_gz_bridge",
                              parameters={"config_file": str(write_gz_bridge_config(cfg))}))
    events = cfg.events_topic
    for rid in robot_ids(cfg):
        ns = f"/{rid}"
        world = {"world_config": cfg.world_config}
        start = {"start_pose": [float(v) for v in cfg.robot_poses[rid]]} if rid in cfg.robot_poses else {}
        if cfg.mode == "fused":   # sensor -> perception -> control -> attention in one process
            nodes.append(NodeSpec("robot", "robot", ns, {**world, "attention": cfg.attention,
                                                           **cfg.perception_parameters,
                                                           **cfg.control_parameters},
                                  respawn=cfg.respawn_perception, respawn_delay_s=cfg.respawn_delay_s))
            if cfg.fleet:
                nodes.append(NodeSpec("fleet_agent", "fleet_agent", ns, {**world, **start}))
            continue
        if cfg.sensor_source == "driver":
            nodes.append(NodeSpec("driver_node", DRIVER_NODE_NAME, ns, dict(cfg.driver_parameters),
                                  package=cfg.event_driver))
            events = events or f"{DRIVER_NODE_NAME}/events"
        else:
            sensor = {"source": cfg.sensor_source, **cfg.sensor_parameters}
            if cfg.sensor_source == "world":
                sensor["world_config"] = cfg.world_config
            nodes.append(NodeSpec("event_sensor", "event_sensor", ns, sensor))
        nodes.append(NodeSpec("perception", "perception", ns, dict(cfg.perception_parameters),
                              respawn=cfg.respawn_perception, respawn_delay_s=cfg.respawn_delay_s,
                              remappings=(("events", events),) if events else ()))
        if cfg.control:
            nodes.append(NodeSpec("control", "control", ns, {**world, **start, **cfg.control_parameters}))
        if cfg.attention:
            # attention's full budget is the perception model's T_max and threshold: the same model, run
            # with or without its temporal prior as perception runs it
            engine = {k: v for k, v in cfg.perception_parameters.items() if k in ATTENTION_FROM_PERCEPTION}
            nodes.append(NodeSpec("attention", "attention", ns, {**world, **start, **engine, **cfg.attention_parameters}))
        if cfg.fleet:
            nodes.append(NodeSpec("fleet_agent", "fleet_agent", ns, {**world, **start}))
    if cfg.fleet and cfg.robots and cfg.coordinator:
        allowed = robot_ids(cfg)
        nodes.append(NodeSpec("coordinator", "coordinator", parameters={
            "world_config": cfg.world_config, "allowed_agents": allowed, **cfg.coordinator_parameters}))
    if sim_time(cfg):   # the world node is the clock's source: it keeps the wall clock
        nodes = [n if n.name == "world" else replace(n, parameters={**n.parameters, "use_sim_time": True})
                 for n in nodes]
    if cfg.security.enable:
        nodes = [replace(n, enclave=node_enclave(cfg, n)) for n in nodes]
    if cfg.cpu_affinity:
        nodes = [replace(n, cpus=tuple(cfg.cpu_affinity.get(n.name, ()))) for n in nodes]
    return [replace(n, parameters={**n.parameters, "realtime_priority": cfg.realtime_priority[n.name]})
            if n.ours and cfg.realtime_priority.get(n.name) else n for n in nodes]


# ---------------------------------------------------------------------------- SROS2
def node_enclave(cfg: LaunchConfig, node: NodeSpec) -> str:
    """`<enclave_prefix>/<ns>/<node>`: the enclave `ros2 security create_enclave` makes for the node."""
    parts = [p for part in (cfg.security.enclave_prefix, node.namespace, node.name) for p in part.split("/") if p]
    return "/" + "/".join(parts)


def security_environment(cfg: LaunchConfig) -> Dict[str, str]:
    """The ROS_SECURITY_* variables of every node ({} when the plan's security is off)."""
    if not cfg.security.enable:
        return {}
    return {"ROS_SECURITY_ENABLE": "true", "ROS_SECURITY_STRATEGY": cfg.security.strategy,
            "ROS_SECURITY_KEYSTORE": os.path.abspath(os.path.expanduser(cfg.security.keystore))}


def security_overrides(enable: str, strategy: str = "", keystore: str = "", enclave_prefix: str = "") -> Dict[str, Any]:
    """Plan overrides from launch arguments (`security:=true keystore:=... security_strategy:=...`);
    empty arguments keep the plan's values."""
    sec: Dict[str, Any] = {}
    if enable.strip():
        sec["enable"] = enable.strip().lower() in ("true", "1", "yes")
    for key, value in (("strategy", strategy), ("keystore", keystore), ("enclave_prefix", enclave_prefix)):
        if value.strip():
            sec[key] = value.strip()
    return {"security": sec} if sec else {}


# The launch arguments every launch file takes for SROS2 (name, description), read by security_overrides.
SECURITY_LAUNCH_ARGUMENTS = (
    ("security", "true: SROS2 for every node, enclave /<ns>/<node> (default: from the plan)"),
    ("keystore", "SROS2 keystore directory (with security)"),
    ("security_strategy", "Enforce | Permissive"),
    ("enclave_prefix", "prefix of every node's enclave"),
)


def launch_ros_security(cfg: LaunchConfig, node: NodeSpec) -> Dict[str, Any]:
    """Extra launch_ros `Node` arguments for a plan node: its enclave and the security environment."""
    if not node.enclave:
        return {}
    return {"ros_arguments": ["--enclave", node.enclave], "additional_env": security_environment(cfg)}


# ---------------------------------------------------------------------------- Gazebo bridge
_BRIDGE_KEYS = ("ros_topic_name", "gz_topic_name", "ros_type_name", "gz_type_name")


def gz_bridge_entries(cfg: LaunchConfig) -> List[Dict[str, Any]]:
    """The ros_gz_bridge entries of the plan's robots, from the bridge template.

    A template entry whose topic names contain `{robot}` or are relative (no leading '/')
    is repeated for every robot: `{robot}` becomes the robot id and a relative name
    `x` becomes `/<robot>/x`. Entries with absolute names only (e.g. /clock) appear once.
    """
    path = cfg.gz_bridge_config or str(config_path("gz_bridge.yaml"))
    template = load_yaml(path)
    if not isinstance(template, list) or not template:
        raise ConfigError(f"{path}: expected a non-empty list of bridge entries")
    out: List[Dict[str, Any]] = []
    for i, entry in enumerate(template):
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}[{i}]: expected a mapping, got {entry!r}")
        missing = [k for k in _BRIDGE_KEYS if not isinstance(entry.get(k), str) or not entry.get(k)]
        if missing:
            raise ConfigError(f"{path}[{i}]: {missing[0]} missing (entries need {', '.join(_BRIDGE_KEYS)})")
        names = (entry["ros_topic_name"], entry["gz_topic_name"])
        if not any("{robot}" in n or not n.startswith("/") for n in names):
            out.append(dict(entry))
            continue
        for rid in robot_ids(cfg):
            e = dict(entry)
            for k in ("ros_topic_name", "gz_topic_name"):
                name = e[k].replace("{robot}", rid)
                e[k] = name if name.startswith("/") else f"/{rid}/{name}"
            out.append(e)
    return out


def write_gz_bridge_config(cfg: LaunchConfig, directory: Optional[str] = None) -> Path:
    """The expanded bridge config as a file for parameter_bridge's `config_file`; the name is
    the hash of the content, so building the same plan twice gives the same file."""
    text = yaml.safe_dump(gz_bridge_entries(cfg), sort_keys=False)
    d = Path(directory or os.path.join(tempfile.gettempdir(), "snn_autonomy"))
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"gz_bridge_{hashlib.sha1(text.encode()).hexdigest()[:12]}.yaml"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return path
