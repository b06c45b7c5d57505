"""A robot's event camera in the built-in world: render the view, emulate the pixels."""
from __future__ import annotations

from typing import Optional

from ..events.batch import EventBatch
from ..sim.world import World
from .dvs import DvsConfig, DvsEmulator


class WorldCamera:
    """Events of robot `robot`'s camera. Call `capture()` after each world step at
    which a frame is due (`frame_due()`); it returns the events since the last frame."""

    def __init__(self, world: World, robot: int, dvs: Optional[DvsConfig] = None) -> None:
        cam = world.cfg.camera
        self.world = world
        self.robot = int(robot)
        self.width, self.height = cam.width, cam.height
        seed = (dvs or DvsConfig()).seed
        # each robot's pixels get their own mismatch and noise, reproducibly
        from dataclasses import replace

        self.emulator = DvsEmulator(cam.width, cam.height, replace(dvs or DvsConfig(), seed=seed * 1009 + robot))
        self.frame_period_us = max(1, int(round(1e6 / cam.frame_rate_hz)))
        self._next_frame_us = 0
        self._image = None

    def frame_due(self) -> bool:
        return self.world.time_us >= self._next_frame_us

    def capture(self) -> EventBatch:
        self._image = self.world.render(self.robot, self._image)
        t = self.world.time_us
        self._next_frame_us = t + self.frame_period_us
        return self.emulator.feed(self._image, t)
