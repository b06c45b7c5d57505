"""iniVation AEDAT4 files (DV software, dv-processing recorders), read through `dv-processing`.

A file is told by its first line, `#!AER-DAT4.0`. Its event stream arrives as `EventBatch`es in
the camera's microseconds; frames, IMU and trigger streams of the file are not read. Without the
`dv-processing` package (`pip install dv-processing`) an AEDAT4 file is refused with that advice.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Tuple

import numpy as np

from .batch import EVENT_DTYPE, EventBatch
from .errors import EventFormatError
from .raw import RawHeader
from .stats import DecodeStats

MAGIC = b"#!AER-DAT4.0"


def is_aedat4(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(MAGIC)) == MAGIC


def dv_error_text(exc: Exception) -> str:
    """dv-processing's message on one line, without its C++ source location and stack trace."""
    text = " ".join(str(exc).split()).split(" Stacktrace:")[0]
    return text.split("() ", 1)[-1]


def _open(path: Path):
    try:
        import dv_processing as dv
    except ImportError as exc:
        raise EventFormatError(f"{path} is an AEDAT4 file: reading it needs dv-processing "
                               "(pip install dv-processing)") from exc
    try:
        rec = dv.io.MonoCameraRecording(str(path))
    except RuntimeError as exc:
        raise EventFormatError(f"{path}: cannot read AEDAT4: {dv_error_text(exc)}") from exc
    if not rec.isEventStreamAvailable():
        raise EventFormatError(f"{path}: the AEDAT4 file holds no event stream")
    return rec


def read_aedat4_header(path: Path) -> RawHeader:
    """The file's camera and geometry, as a RAW file's header gives them."""
    rec = _open(Path(path))
    w, h = rec.getEventResolution()
    return RawHeader({"camera": rec.getCameraName()}, "aedat4", int(w), int(h), 0, geometry_source="aedat4")


def iter_aedat4(path: Path) -> Iterator[Tuple[EventBatch, DecodeStats]]:
    """The file's event batches in order, with cumulative counts (out-of-sensor events, times
    going back, both dropped)."""
    rec = _open(Path(path))
    w, h = (int(v) for v in rec.getEventResolution())
    stats = DecodeStats()
    last_t = np.iinfo(np.int64).min
    while rec.isRunning():
        try:
            store = rec.getNextEventBatch()
        except RuntimeError as exc:
            raise EventFormatError(f"{path}: corrupt AEDAT4 data: {dv_error_text(exc)}") from exc
        if store is None:
            continue
        a = store.numpy()
        inside = (a["x"] >= 0) & (a["x"] < w) & (a["y"] >= 0) & (a["y"] < h)
        forward = a["timestamp"] >= np.maximum.accumulate(np.concatenate([[last_t], a["timestamp"][:-1]]))
        keep = inside & forward
        stats.words += len(a)
        stats.out_of_range += int((~inside).sum())
        stats.time_backwards += int((inside & ~forward).sum())
        ev = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
        ev["x"], ev["y"], ev["t"] = a["x"][keep], a["y"][keep], a["timestamp"][keep]
        ev["p"] = a["polarity"][keep].astype(np.int8)
        stats.events += len(ev)
        if len(a):
            last_t = max(last_t, int(a["timestamp"].max()))
        yield EventBatch(ev, w, h), stats


def write_aedat4(path: Path, batch: EventBatch, camera: str = "snn_autonomy") -> None:
    """An AEDAT4 file of `batch`'s events (fixtures and exports)."""
    import dv_processing as dv

    writer = dv.io.MonoCameraWriter(str(path), dv.io.MonoCameraWriter.EventOnlyConfig(camera, (batch.width, batch.height)))
    store = dv.EventStore()
    for t, x, y, p in zip(batch.t.tolist(), batch.x.tolist(), batch.y.tolist(), batch.p.tolist()):
        store.push_back(t, x, y, bool(p))
    writer.writeEvents(store)
    del writer      # the file is complete when the writer is gone
