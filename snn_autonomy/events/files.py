"""Event files, whatever their format: Prophesee RAW (EVT2/EVT3) or iniVation AEDAT4."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Tuple

from .aedat4 import is_aedat4, iter_aedat4, read_aedat4_header
from .batch import EventBatch
from .errors import EventFormatError
from .raw import RawHeader, iter_raw, read_raw_header
from .stats import DecodeStats


def read_file_header(path: Path) -> RawHeader:
    path = Path(path)
    if not path.is_file():
        raise EventFormatError(f"{path}: no such file")
    return read_aedat4_header(path) if is_aedat4(path) else read_raw_header(path)


def iter_file(path: Path) -> Iterator[Tuple[EventBatch, DecodeStats]]:
    """(batch, cumulative stats) of the file's events, in order."""
    path = Path(path)
    return iter_aedat4(path) if is_aedat4(path) else iter_raw(path)
