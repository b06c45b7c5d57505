"""Live event cameras through maintained driver libraries, when installed.

- Prophesee cameras: OpenEB's Python bindings (`metavision_core`), EventsIterator.
- iniVation cameras: `dv-processing` (`pip install dv-processing`), CameraCapture.
On a robot with a full ROS 2 install the usual path is the C++ driver node
(metavision_driver, libcaer_driver) publishing EventPackets that perception
subscribes to directly; this source is for running without those nodes.
"""
from __future__ import annotations

import importlib.util
from typing import Iterator, Optional, Tuple

import numpy as np

from ..events.batch import EVENT_DTYPE, EventBatch


class SourceUnavailable(RuntimeError):
    """A source cannot be opened here; the message says what to install or connect."""


def available_backends() -> Tuple[str, ...]:
    found = []
    if importlib.util.find_spec("metavision_core") is not None:
        found.append("metavision")
    if importlib.util.find_spec("dv_processing") is not None:
        found.append("dv_processing")
    return tuple(found)


class LiveCameraSource:
    """Yields (sensor time of the batch end in us, EventBatch) from the first camera found."""

    def __init__(self, backend: Optional[str] = None, period_us: int = 1000, serial: str = "") -> None:
        backends = available_backends()
        if backend is None:
            if not backends:
                raise SourceUnavailable(
                    "no live event-camera library installed: install Prophesee OpenEB (Python package "
                    "metavision_core) for Prophesee cameras, or `pip install dv-processing` for iniVation cameras")
            backend = backends[0]
        if backend not in ("metavision", "dv_processing"):
            raise SourceUnavailable(f"unknown camera backend {backend!r}; use metavision or dv_processing")
        if backend not in backends:
            pkg = "metavision_core (Prophesee OpenEB)" if backend == "metavision" else "dv-processing"
            raise SourceUnavailable(f"camera backend {backend!r} needs the Python package {pkg}, which is not installed")
        self.backend, self.period_us, self.serial = backend, int(period_us), serial

    def __iter__(self) -> Iterator[Tuple[int, EventBatch]]:
        return self._metavision() if self.backend == "metavision" else self._dv()

    def _metavision(self) -> Iterator[Tuple[int, EventBatch]]:
        from metavision_core.event_io import EventsIterator

        try:
            it = EventsIterator(input_path=self.serial, delta_t=self.period_us)
        except Exception as exc:  # the SDK raises its own types when no camera answers
            raise SourceUnavailable(f"no Prophesee camera could be opened ({exc})") from exc
        height, width = it.get_size()
        t_end = 0
        for evs in it:
            t_end += self.period_us
            out = np.empty(len(evs), dtype=EVENT_DTYPE)
            out["x"], out["y"], out["t"], out["p"] = evs["x"], evs["y"], evs["t"], evs["p"]
            yield t_end, EventBatch(out, int(width), int(height))

    def _dv(self) -> Iterator[Tuple[int, EventBatch]]:
        import dv_processing as dv

        from ..events.aedat4 import dv_error_text

        # dv-processing 2 opens cameras with io.camera.open; 1.x had io.CameraCapture
        opener = dv.io.camera.open if hasattr(dv.io, "camera") else dv.io.CameraCapture
        if hasattr(dv.io, "camera") and not dv.io.camera.discover():
            raise SourceUnavailable("no iniVation camera could be opened (none connected: dv-processing finds "
                                    "no device; check the USB connection and udev rules)")
        try:
            cap = opener(self.serial) if self.serial else opener()
        except Exception as exc:
            raise SourceUnavailable(f"no iniVation camera could be opened ({dv_error_text(exc)})") from exc
        if not cap.isEventStreamAvailable():
            raise SourceUnavailable("the camera provides no event stream")
        width, height = cap.getEventResolution()
        while cap.isRunning():
            store = cap.getNextEventBatch()
            if store is None or len(store) == 0:
                continue
            a = store.numpy()
            out = np.empty(len(a), dtype=EVENT_DTYPE)
            out["x"], out["y"], out["t"], out["p"] = a["x"], a["y"], a["timestamp"], a["polarity"]
            yield int(a["timestamp"][-1]), EventBatch(out, int(width), int(height))
