"""Region of interest on the sensor, in pixels (like sensor_msgs/RegionOfInterest)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from .batch import EventBatch
from .errors import EventFormatError


@dataclass(frozen=True)
class Roi:
    """x_offset, y_offset: top-left pixel; width, height: size in pixels (> 0)."""

    x_offset: int
    y_offset: int
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ("x_offset", "y_offset", "width", "height"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
                raise EventFormatError(f"Roi.{name} must be an integer, got {v!r}")
        if self.x_offset < 0 or self.y_offset < 0 or self.width <= 0 or self.height <= 0:
            raise EventFormatError(f"invalid ROI {self}: offsets must be >= 0 and sizes > 0")

    @classmethod
    def full(cls, width: int, height: int) -> "Roi":
        return cls(0, 0, int(width), int(height))

    def clamped(self, width: int, height: int) -> Tuple["Roi", bool]:
        """This ROI cut to a width x height sensor, and whether anything was cut.

        An ROI entirely outside the sensor becomes the full sensor (changed=True),
        so a bad command never blinds the robot.
        """
        x0 = min(max(int(self.x_offset), 0), width)
        y0 = min(max(int(self.y_offset), 0), height)
        x1 = min(int(self.x_offset) + int(self.width), width)
        y1 = min(int(self.y_offset) + int(self.height), height)
        if x1 <= x0 or y1 <= y0:
            return Roi.full(width, height), True
        roi = Roi(x0, y0, x1 - x0, y1 - y0)
        return roi, roi != self

    def mask(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return ((x >= self.x_offset) & (x < self.x_offset + self.width)
                & (y >= self.y_offset) & (y < self.y_offset + self.height))


def crop(batch: EventBatch, roi: Roi) -> EventBatch:
    """Events inside the ROI, coordinates unchanged (the sensor frame is kept)."""
    keep = roi.mask(batch.x, batch.y)
    return EventBatch(batch.events[keep], batch.width, batch.height, batch.triggers)
