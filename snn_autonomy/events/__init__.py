"""Event core: EventBatch, EVT2/EVT3 codecs, RAW files, bags, ROI, representations.

Pure numpy/numba; no ROS imports. Time is integer microseconds throughout.
"""
from .batch import EVENT_DTYPE, TRIGGER_DTYPE, EventBatch
from .codec import SUPPORTED, encode, make_decoder
from .errors import EventFormatError, UnsupportedEncodingError
from .packet import EventPacketData, PacketEncoder, PacketStreamDecoder
from .roi import Roi
from .stats import DecodeStats

__all__ = [
    "EVENT_DTYPE", "TRIGGER_DTYPE", "EventBatch", "SUPPORTED", "encode", "make_decoder",
    "EventFormatError", "UnsupportedEncodingError", "EventPacketData", "PacketEncoder",
    "PacketStreamDecoder", "Roi", "DecodeStats",
]
