"""One robot's camera in a local copy of the built-in world that follows the world node's
published states: what the `world` source of the event sensor and the fused robot node share.

A world whose step count goes back (the world node restarted, simulation time from 0 again)
starts a new time line: the camera and its pixels start afresh (counted in `time_resets`),
or the camera would wait for the old time of its next frame and stay silent until then."""
from __future__ import annotations

from typing import Callable, Optional

from ..config import ConfigError
from ..events.batch import EventBatch
from ..sim.config import WorldConfig, with_robot_count
from ..sim.world import World
from .dvs import DvsConfig
from .warmup import warm_up
from .world_camera import WorldCamera


class WorldFollower:
    def __init__(self, cfg: WorldConfig, robot_id: str, dvs: Optional[DvsConfig] = None) -> None:
        self.cfg, self.robot_id, self.dvs = cfg, robot_id, dvs
        self.world: World
        self.camera: WorldCamera
        self.missed_states = 0   # states that never arrived (the camera skipped frames)
        self.time_resets = 0     # times the world's step went back (a restarted world)
        # the step of the first state rendered: a subscriber the world has matched may not yet
        # have matched the world itself, and misses the states published meanwhile
        self.first_step: Optional[int] = None
        self._last_step: Optional[int] = None
        self.build(cfg.robots.count)

    def build(self, n_robots: int) -> None:
        """A local world of `n_robots` robots and this robot's camera in it (kernels warmed up)."""
        world = World(with_robot_count(self.cfg, n_robots))
        if self.robot_id not in world.robot_ids:
            raise ConfigError(f"robot {self.robot_id!r} is not in the world (robots: {', '.join(world.robot_ids)}); "
                             "set robot_id or run the node in the robot's namespace")
        self.index = world.robot_ids.index(self.robot_id)
        self.world, self.camera = world, WorldCamera(world, self.index, self.dvs)
        warm_up(world, self.index)

    @property
    def size(self) -> tuple:
        return self.camera.width, self.camera.height

    def on_state(self, n_robots: int, step: int, apply: Callable[[World], None]) -> Optional[EventBatch]:
        """A world state arrived (`apply` writes it into the local world; ValueError if it does not
        fit): the camera's events when a frame is due, else None."""
        if n_robots != len(self.world.robot_ids):   # the world node overrides the count
            self.build(n_robots)
        apply(self.world)
        if self._last_step is not None and step <= self._last_step:
            self.time_resets += 1
            self.first_step = step
            self.camera = WorldCamera(self.world, self.index, self.dvs)   # a new time line: fresh pixels
        elif self._last_step is not None:
            self.missed_states += step - self._last_step - 1
        else:
            self.first_step = step
        self._last_step = step
        return self.camera.capture() if self.camera.frame_due() else None
