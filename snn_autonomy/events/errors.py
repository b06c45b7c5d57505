"""The event core's error types. Decoders raise nothing else, whatever the bytes."""
from __future__ import annotations


class EventFormatError(ValueError):
    """Input that cannot be interpreted as events (bad file, bad header, bad
    arguments). Recoverable problems inside a stream are counted drops, not errors."""


class UnsupportedEncodingError(EventFormatError):
    """An event encoding this project does not decode (e.g. libcaer_cmp)."""

    def __init__(self, encoding: str, supported: tuple) -> None:
        super().__init__(
            f"unsupported event encoding {encoding!r}; supported: {', '.join(supported)}"
        )
        self.encoding = encoding
        self.supported = supported
