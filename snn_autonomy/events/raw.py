"""Prophesee RAW files: a text header of lines starting with "% ", then EVT2/EVT3 words.

The header may end with "% end"; data starts at the first line that does not
begin with "% ". Geometry comes from "% geometry WxH", from "% format
EVT3;width=W;height=H", or, for older files that name neither, from the sensor
generation in the plugin name (Gen3 sensors are 640x480).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

import numpy as np

from .batch import EventBatch
from .codec import make_decoder, normalise_encoding
from .errors import EventFormatError
from .stats import DecodeStats

MAX_HEADER_BYTES = 1 << 20
# Sensor sizes of Prophesee sensor generations, for headers without geometry.
_PLUGIN_GEOMETRY = (
    (re.compile(r"gen3|gen31|vga"), (640, 480)),
    (re.compile(r"gen4|imx636|imx646|hd"), (1280, 720)),
    (re.compile(r"imx8|genx320"), (320, 320)),
)


@dataclass
class RawHeader:
    fields: Dict[str, str]
    encoding: str
    width: int
    height: int
    data_offset: int
    geometry_source: str = field(default="header")


def _parse_header_lines(blob: bytes) -> Tuple[Dict[str, str], int]:
    fields: Dict[str, str] = {}
    pos = 0
    while blob.startswith(b"% ", pos):
        end = blob.find(b"\n", pos)
        if end < 0:
            raise EventFormatError("RAW header line without a newline (truncated file?)")
        line = blob[pos + 2:end].decode("utf-8", errors="replace").rstrip("\r")
        pos = end + 1
        if line.strip() == "end":
            break
        key, _, value = line.partition(" ")
        fields[key] = value.strip()
    return fields, pos


def parse_raw_header(blob: bytes, width: Optional[int] = None, height: Optional[int] = None) -> RawHeader:
    """Parse the header at the start of `blob`; width/height override the file's."""
    fields, offset = _parse_header_lines(blob)
    encoding = None
    geo: Optional[Tuple[int, int]] = None
    source = "header"
    fmt = fields.get("format", "")
    if fmt:
        parts = fmt.split(";")
        encoding = parts[0]
        kv = dict(p.split("=", 1) for p in parts[1:] if "=" in p)
        if "width" in kv and "height" in kv:
            geo = (int(kv["width"]), int(kv["height"]))
    if encoding is None and "evt" in fields:
        encoding = "evt" + fields["evt"]
    if encoding is None:
        raise EventFormatError("RAW header names no event format ('% evt' or '% format' line missing)")
    if geo is None and "geometry" in fields:
        m = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", fields["geometry"])
        if not m:
            raise EventFormatError(f"RAW header geometry {fields['geometry']!r} is not WxH")
        geo = (int(m.group(1)), int(m.group(2)))
    if geo is None:
        hint = (fields.get("plugin_name", "") + " " + fields.get("sensor_generation", "")).lower()
        for pattern, size in _PLUGIN_GEOMETRY:
            if pattern.search(hint):
                geo, source = size, f"sensor generation ({hint.strip()})"
                break
    if width is not None and height is not None:
        geo, source = (int(width), int(height)), "caller"
    if geo is None:
        raise EventFormatError("RAW header has no geometry; pass width and height explicitly")
    return RawHeader(fields, normalise_encoding(encoding), geo[0], geo[1], offset, source)


def read_raw_header(path: Path) -> RawHeader:
    with open(path, "rb") as fh:
        return parse_raw_header(fh.read(MAX_HEADER_BYTES))


def iter_raw(path: Path, chunk_bytes: int = 1 << 22, width: Optional[int] = None,
             height: Optional[int] = None) -> Iterator[Tuple[EventBatch, DecodeStats]]:
    """Yield (batch, cumulative stats) per chunk of a RAW file, decoding as one stream."""
    path = Path(path)
    with open(path, "rb") as fh:
        header = parse_raw_header(fh.read(MAX_HEADER_BYTES), width, height)
        decoder = make_decoder(header.encoding, header.width, header.height)
        word = decoder.word_dtype.itemsize
        chunk_bytes -= chunk_bytes % word
        fh.seek(header.data_offset)
        while True:
            blob = fh.read(chunk_bytes)
            if not blob:
                break
            yield decoder.decode(blob), decoder.stats


def read_raw(path: Path, width: Optional[int] = None, height: Optional[int] = None) -> Tuple[EventBatch, DecodeStats]:
    """Decode a whole RAW file into one batch."""
    batches = []
    stats = DecodeStats()
    header = read_raw_header(path)
    for batch, stats in iter_raw(path, width=width, height=height):
        batches.append(batch)
    if not batches:
        return EventBatch.empty(width or header.width, height or header.height), stats
    return EventBatch.concatenate(batches), stats


def raw_data(path: Path) -> Tuple[RawHeader, np.ndarray]:
    """Header and the undecoded data bytes (for benchmarks and tests)."""
    blob = Path(path).read_bytes()
    header = parse_raw_header(blob[:MAX_HEADER_BYTES])
    return header, np.frombuffer(blob, dtype=np.uint8, offset=header.data_offset)
