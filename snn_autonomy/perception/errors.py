"""Perception error types (importable without torch)."""
from __future__ import annotations


class ModelFileError(ValueError):
    """A model file that cannot be trusted or used (hash, shape or format mismatch)."""


class RecordingError(ValueError):
    """A recording that cannot be made into labelled samples or checked (a topic missing, stamps
    of two clocks, no ground truth); the message says what to fix."""
