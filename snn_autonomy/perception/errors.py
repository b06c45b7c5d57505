"""Perception error types (importable without torch)."""
from __future__ import annotations


class ModelFileError(ValueError):
    """A model file that cannot be trusted or used (hash, shape or format mismatch)."""
