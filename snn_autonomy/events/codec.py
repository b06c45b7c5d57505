"""The one place that maps an encoding name to its decoder and encoder."""
from __future__ import annotations

from typing import Callable, Dict, Type

from .batch import EventBatch
from .errors import UnsupportedEncodingError
from .evt2 import Evt2Decoder, encode_evt2
from .evt3 import Evt3Decoder, encode_evt3
from .libcaer import LibcaerCmpDecoder, LibcaerDecoder, encode_libcaer, encode_libcaer_cmp
from .words import WordStreamDecoder

DECODERS: Dict[str, Type[WordStreamDecoder]] = {"evt3": Evt3Decoder, "evt2": Evt2Decoder,
                                                "libcaer_cmp": LibcaerCmpDecoder, "libcaer": LibcaerDecoder}
ENCODERS: Dict[str, Callable[[EventBatch], bytes]] = {"evt3": encode_evt3, "evt2": encode_evt2,
                                                      "libcaer_cmp": encode_libcaer_cmp, "libcaer": encode_libcaer}
SUPPORTED = tuple(sorted(DECODERS))


_ALIASES = {"evt30": "evt3", "evt20": "evt2"}


def normalise_encoding(encoding: str) -> str:
    """Canonical name of an encoding: "EVT 3.0", "evt3.0" and "evt3" are all "evt3"."""
    key = str(encoding).strip().lower().replace(".", "").replace(" ", "")
    return _ALIASES.get(key, key)


def make_decoder(encoding: str, width: int, height: int) -> WordStreamDecoder:
    """A fresh stream decoder for `encoding` ("evt3", "evt2", "libcaer_cmp", "libcaer"; "EVT 3.0"
    is accepted).

    Raises UnsupportedEncodingError for other encodings (e.g. mono).
    """
    key = normalise_encoding(encoding)
    if key not in DECODERS:
        raise UnsupportedEncodingError(encoding, SUPPORTED)
    return DECODERS[key](width, height)


def encode(batch: EventBatch, encoding: str = "evt3") -> bytes:
    key = normalise_encoding(encoding)
    if key not in ENCODERS:
        raise UnsupportedEncodingError(encoding, SUPPORTED)
    return ENCODERS[key](batch)
