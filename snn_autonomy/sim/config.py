"""Configuration of the built-in world (loaded from YAML by snn_autonomy.config).

Units: metres, seconds, radians, m/s, rad/s; map frame x right, y up (REP-103),
robot heading measured counter-clockwise from +x.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple

from ..config import ConfigError, load, spec
from ..paths import config_path

TextureKind = Literal["stripes", "checker", "bars", "uniform"]


@dataclass(frozen=True)
class TextureConfig:
    """A procedural surface pattern; intensities are linear radiance in (0, 1]."""

    kind: TextureKind = "bars"
    period_m: float = spec(0.25, lo=0.005, hi=50.0, help="pattern period", unit="m")
    low: float = spec(0.15, lo=0.001, hi=1.0, help="dark intensity")
    high: float = spec(0.85, lo=0.001, hi=1.0, help="bright intensity")
    seed: int = spec(0, lo=0, help="for kind=bars: seed of the random bar widths")


@dataclass(frozen=True)
class WallConfig:
    """An inner wall along the segment from start to end (the arena boundary is added). It
    stands as a box `thickness_m` thick, centred on the segment, so its end is a face a camera
    sees head-on; a wall of no thickness is a plane whose end vanishes seen edge-on."""

    start: Tuple[float, float]
    end: Tuple[float, float]
    height_m: float = spec(1.0, lo=0.05, hi=10.0, unit="m")
    texture: str = "wall"
    thickness_m: float = spec(0.1, lo=0.0, hi=5.0, unit="m", help="a partition wall's; 0 for a plane")


@dataclass(frozen=True)
class StaticObstacleConfig:
    position: Tuple[float, float]
    radius_m: float = spec(0.3, lo=0.02, hi=5.0, unit="m")
    height_m: float = spec(0.5, lo=0.05, hi=10.0, unit="m")
    texture: str = "obstacle"


@dataclass(frozen=True)
class MovingObstaclesConfig:
    """A population of cylinders moving at constant speed, bouncing off walls and obstacles."""

    count: int = spec(4, lo=0, hi=200)
    radius_m: Tuple[float, float] = spec((0.15, 0.35), lo=0.02, hi=5.0, help="uniform range", unit="m")
    height_m: Tuple[float, float] = spec((0.3, 0.7), lo=0.05, hi=10.0, help="uniform range", unit="m")
    speed_mps: Tuple[float, float] = spec((0.1, 0.5), lo=0.0, hi=20.0, help="uniform range", unit="m/s")
    textures: List[str] = field(default_factory=lambda: ["mover"])

    def validate(self) -> None:
        for name in ("radius_m", "height_m", "speed_mps"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"{name}: range [{lo}, {hi}] has min > max")
        if self.count and not self.textures:
            raise ConfigError("textures: at least one texture name is needed")


@dataclass(frozen=True)
class CameraConfig:
    """Forward camera on each robot (sim/render.py: the projections)."""

    width: int = spec(128, lo=8, hi=2048, unit="px")
    height: int = spec(96, lo=8, hi=2048, unit="px")
    hfov_deg: float = spec(90.0, lo=10.0, hi=170.0, help="horizontal field of view", unit="deg")
    projection: Literal["pinhole", "cylindrical"] = spec(
        "pinhole", help="pinhole: square pixels; cylindrical: columns and rows evenly spaced in angle (a "
                        "rectified wide-angle lens, which a pinhole cannot model past ~120 deg)")
    vfov_deg: float = spec(74.0, lo=1.0, hi=170.0, unit="deg",
                           help="cylindrical only: vertical field of view (a pinhole's follows from its "
                                "hfov and square pixels: 74 deg at 90 deg and 4:3)")
    mount_height_m: float = spec(0.3, lo=0.01, hi=3.0, unit="m")
    max_range_m: float = spec(20.0, lo=0.5, hi=1000.0, unit="m")
    frame_rate_hz: float = spec(1000.0, lo=10.0, hi=100000.0,
                                help="render rate; events are interpolated between frames", unit="Hz")
    sky_intensity: float = spec(0.5, lo=0.001, hi=1.0)
    floor_texture: str = "floor"


@dataclass(frozen=True)
class LidarConfig:
    """2D laser scanner on each robot; the defaults are those of a typical 360-degree
    triangulation/ToF scanner of small ground robots (e.g. RPLIDAR A2: 0.15-12 m, 10 Hz,
    about 1 degree, range error about 1 % at a few metres). The scan is taken at one instant
    (no rotation skew) from `mount_xy_m` in the robot's base_link, in a plane `mount_height_m`
    above the floor: obstacles lower than that plane are not seen, as with a real scanner."""

    enabled: bool = spec(True, help="publish /<robot>/scan")
    rate_hz: float = spec(10.0, lo=0.1, hi=100.0, unit="Hz")
    rays: int = spec(360, lo=3, hi=10_000, help="beams per scan, evenly over fov_deg")
    fov_deg: float = spec(360.0, lo=1.0, hi=360.0, unit="deg", help="centred on the robot's heading")
    range_min_m: float = spec(0.15, lo=0.0, hi=10.0, unit="m")
    range_max_m: float = spec(12.0, lo=0.1, hi=1000.0, unit="m")
    noise_std_m: float = spec(0.01, lo=0.0, hi=1.0, unit="m", help="Gaussian range noise")
    mount_xy_m: Tuple[float, float] = spec((0.0, 0.0), lo=-10.0, hi=10.0, unit="m", help="in base_link")
    mount_height_m: float = spec(0.2, lo=0.0, hi=3.0, unit="m")


@dataclass(frozen=True)
class RobotsConfig:
    """Differential-drive robots (unicycle model with velocity and acceleration limits)."""

    count: int = spec(1, lo=0, hi=64)
    start_poses: List[Tuple[float, float, float]] = field(
        default_factory=list, metadata={"help": "x, y, yaw per robot; the rest are placed at random"})
    radius_m: float = spec(0.18, lo=0.02, hi=3.0, unit="m")
    height_m: float = spec(0.25, lo=0.02, hi=3.0, unit="m")
    max_linear_mps: float = spec(0.6, lo=0.0, hi=20.0, unit="m/s")
    max_angular_rps: float = spec(2.0, lo=0.0, hi=50.0, unit="rad/s")
    max_linear_accel: float = spec(1.5, lo=0.01, hi=100.0, unit="m/s^2")
    max_angular_accel: float = spec(6.0, lo=0.01, hi=500.0, unit="rad/s^2")
    texture: str = "robot"
    id_prefix: str = "robot_"


@dataclass(frozen=True)
class ArenaConfig:
    size_m: Tuple[float, float] = spec((10.0, 8.0), lo=0.5, hi=1000.0, help="width (x), depth (y)", unit="m")
    wall_height_m: float = spec(1.0, lo=0.05, hi=10.0, unit="m")
    wall_texture: str = "wall"
    walls: List[WallConfig] = field(default_factory=list)
    static_obstacles: List[StaticObstacleConfig] = field(default_factory=list)
    random_static_obstacles: int = spec(0, lo=0, hi=500, help="extra static obstacles at random places")
    random_static_radius_m: Tuple[float, float] = spec((0.2, 0.5), lo=0.02, hi=5.0, unit="m")
    moving_obstacles: MovingObstaclesConfig = field(default_factory=MovingObstaclesConfig)


def _default_textures():
    return {
        "wall": TextureConfig("bars", 0.3, 0.2, 0.8, 1),
        "floor": TextureConfig("checker", 0.5, 0.25, 0.55, 0),
        "obstacle": TextureConfig("stripes", 0.12, 0.1, 0.9, 0),
        "mover": TextureConfig("stripes", 0.08, 0.05, 0.95, 0),
        "robot": TextureConfig("checker", 0.1, 0.1, 0.7, 0),
    }


@dataclass(frozen=True)
class WorldConfig:
    seed: int = spec(0, lo=0, help="seeds placement and motion; the same seed gives the same world")
    physics_dt_s: float = spec(0.001, lo=1e-5, hi=0.1, help="integration step", unit="s")
    arena: ArenaConfig = field(default_factory=ArenaConfig)
    robots: RobotsConfig = field(default_factory=RobotsConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    lidar: LidarConfig = field(default_factory=LidarConfig)
    textures: Dict[str, TextureConfig] = field(default_factory=_default_textures)

    def __post_init__(self) -> None:
        # Textures named in a file add to (or replace) the defaults.
        object.__setattr__(self, "textures", {**_default_textures(), **self.textures})

    def validate(self) -> None:
        names = set(self.textures)
        used = {self.arena.wall_texture, self.camera.floor_texture, self.robots.texture,
                *self.arena.moving_obstacles.textures}
        used |= {w.texture for w in self.arena.walls} | {o.texture for o in self.arena.static_obstacles}
        missing = sorted(used - names)
        if missing:
            raise ConfigError(f"textures: {missing[0]!r} is used but not defined (defined: {', '.join(sorted(names))})")
        if self.lidar.range_min_m >= self.lidar.range_max_m:
            raise ConfigError(f"lidar: range_min_m {self.lidar.range_min_m} must be below range_max_m "
                              f"{self.lidar.range_max_m}")
        if len(self.robots.start_poses) > self.robots.count:
            raise ConfigError(f"robots.start_poses: {len(self.robots.start_poses)} poses for {self.robots.count} robots")


def with_robot_count(cfg: WorldConfig, count: int) -> WorldConfig:
    """The same world with `count` robots (CLI --agents)."""
    from dataclasses import replace

    return replace(cfg, robots=replace(cfg.robots, count=int(count),
                                       start_poses=list(cfg.robots.start_poses[:count])))


def load_world_config(path: Optional[str] = None) -> WorldConfig:
    """The world in `path` (YAML with a top-level `world:` section), or the default world."""
    return load(path or config_path("world_default.yaml"), WorldConfig, section="world")
