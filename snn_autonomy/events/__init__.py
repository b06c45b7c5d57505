"""Event core: EventBatch, EVT2/EVT3 codecs, RAW files, bags, ROI, representations.

Pure numpy/numba; no ROS imports. Time is integer microseconds throughout. The names below
load their module on first use, so that a module that needs only the packet type or a bag
reader does not load the numba codecs.
"""
from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "EVENT_DTYPE": "batch", "TRIGGER_DTYPE": "batch", "EventBatch": "batch",
    "SUPPORTED": "codec", "encode": "codec", "make_decoder": "codec",
    "EventFormatError": "errors", "UnsupportedEncodingError": "errors",
    "EventPacketData": "packet", "PacketEncoder": "packet", "PacketStreamDecoder": "packet",
    "Roi": "roi", "DecodeStats": "stats",
}

__all__ = list(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(set(globals()) | set(__all__))
