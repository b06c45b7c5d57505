"""sensor_msgs/Image data to linear intensity, and the Image -> events source.

The same DVS emulator that serves the built-in world turns any camera stream
(for example a Gazebo camera bridged by ros_gz_bridge) into events.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..events.batch import EventBatch
from .dvs import DvsConfig, DvsEmulator

# encoding -> (numpy dtype, channels, scale to [0, 1])
IMAGE_ENCODINGS = {
    "mono8": (np.uint8, 1, 1 / 255.0), "8UC1": (np.uint8, 1, 1 / 255.0),
    "mono16": (np.uint16, 1, 1 / 65535.0), "16UC1": (np.uint16, 1, 1 / 65535.0),
    "rgb8": (np.uint8, 3, 1 / 255.0), "bgr8": (np.uint8, 3, 1 / 255.0),
    "rgba8": (np.uint8, 4, 1 / 255.0), "bgra8": (np.uint8, 4, 1 / 255.0),
    "32FC1": (np.float32, 1, 1.0),
}
_LUMA = np.array([0.299, 0.587, 0.114])


class ImageFormatError(ValueError):
    """An Image this project cannot read (encoding, size or data length)."""


def image_to_intensity(encoding: str, width: int, height: int, step: int, data, is_bigendian: bool = False) -> np.ndarray:
    """(height, width) float32 linear intensity in [0, 1] from sensor_msgs/Image fields."""
    if encoding not in IMAGE_ENCODINGS:
        raise ImageFormatError(f"unsupported image encoding {encoding!r}; supported: {', '.join(IMAGE_ENCODINGS)}")
    dtype, ch, scale = IMAGE_ENCODINGS[encoding]
    if width <= 0 or height <= 0:
        raise ImageFormatError(f"empty image {width}x{height}")
    dt = np.dtype(dtype).newbyteorder(">" if is_bigendian else "<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    row_bytes = width * ch * dt.itemsize
    if step < row_bytes:
        raise ImageFormatError(f"step {step} is shorter than a row ({row_bytes} bytes)")
    buf = np.frombuffer(bytes(data) if not isinstance(data, (bytes, bytearray, memoryview)) else data, dtype=np.uint8)
    if buf.size < step * (height - 1) + row_bytes:
        raise ImageFormatError(f"data holds {buf.size} bytes, a {width}x{height} {encoding} image needs "
                               f"{step * (height - 1) + row_bytes}")
    rows = np.lib.stride_tricks.as_strided(buf, shape=(height, row_bytes), strides=(step, 1))
    img = np.ascontiguousarray(rows).view(dt).reshape(height, width, ch).astype(np.float32) * scale
    if ch >= 3:
        rgb = img[..., :3] if encoding.startswith("rgb") else img[..., 2::-1]
        img = rgb @ _LUMA.astype(np.float32)
    else:
        img = img[..., 0]
    if encoding == "32FC1" and not np.isfinite(img).all():
        img = np.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(img, 0.0, 1.0)


@dataclass
class ImageCounters:
    frames: int = 0
    rejected: int = 0          # unreadable images (encoding, size, data)
    size_changes: int = 0      # the emulator restarted for a new image size
    time_backwards: int = 0    # an image not newer than the previous one (emulator restarted)
    last_problem: str = ""


class ImageEventSource:
    """feed(image fields, stamp) -> events since the previous image (None when rejected)."""

    def __init__(self, dvs: Optional[DvsConfig] = None) -> None:
        self.dvs = dvs or DvsConfig()
        self.emulator: Optional[DvsEmulator] = None
        self.counters = ImageCounters()

    def feed(self, encoding: str, width: int, height: int, step: int, data, stamp_us: int,
             is_bigendian: bool = False) -> Optional[EventBatch]:
        c = self.counters
        try:
            img = image_to_intensity(encoding, width, height, step, data, is_bigendian)
        except ImageFormatError as exc:
            c.rejected += 1
            c.last_problem = str(exc)
            return None
        c.frames += 1
        em = self.emulator
        if em is None or (em.width, em.height) != (width, height):
            if em is not None:
                c.size_changes += 1
                c.last_problem = f"image size changed from {em.width}x{em.height} to {width}x{height}; emulator restarted"
            em = self.emulator = DvsEmulator(width, height, self.dvs)
        elif em.t_us is not None and stamp_us <= em.t_us:
            c.time_backwards += 1
            c.last_problem = f"image stamp {stamp_us} us is not after the previous {em.t_us} us; emulator restarted"
            em.reset()
        return em.feed(img, stamp_us)
