"""The one configuration loader: YAML (or dicts) into typed, validated dataclasses.

A configuration section is a frozen dataclass. Field types (int, float, bool, str,
Optional[...], Tuple[...], List[...], Dict[str, ...], nested dataclasses, Literal[...])
are checked on load, and `spec(...)` adds a range, a description and units:

    @dataclass(frozen=True)
    class CameraConfig:
        width: int = spec(128, lo=1, hi=2048, help="image width", unit="px")

Every error names the key path, the value and what was expected:
    ConfigError: camera.width: 0 is below the minimum 1 (image width, px)
Unknown keys are errors too (a typo must not silently fall back to a default).
The same metadata declares ROS parameter descriptors for the nodes.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any, Dict, Literal, Optional, Type, TypeVar, Union

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """Invalid configuration: names the key, the value and what was expected."""


def spec(default: Any = dataclasses.MISSING, *, lo: Optional[float] = None, hi: Optional[float] = None,
         help: str = "", unit: str = "", default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with validation metadata (range, description, unit)."""
    meta = {"lo": lo, "hi": hi, "help": help, "unit": unit}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe(f: dataclasses.Field) -> str:
    help_, unit = f.metadata.get("help", ""), f.metadata.get("unit", "")
    bits = [b for b in (help_, unit) if b]
    return f" ({', '.join(bits)})" if bits else ""


def _check_range(path: str, value: Any, f: dataclasses.Field) -> None:
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if lo is not None and v < lo:
            raise ConfigError(f"{path}: {v!r} is below the minimum {lo}{_describe(f)}")
        if hi is not None and v > hi:
            raise ConfigError(f"{path}: {v!r} is above the maximum {hi}{_describe(f)}")


def _convert(path: str, value: Any, tp: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for alt in (a for a in args if a is not type(None)):
            try:
                return _convert(path, value, alt)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{path}: {value!r} matches none of {args}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(path, value, tp)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{path}: expected {len(args)} items, got {len(value)}")
            return tuple(_convert(f"{path}[{i}]", v, a) for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_convert(f"{path}[{i}]", v, item) for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        vt = args[1] if args else Any
        return {str(k): _convert(f"{path}.{k}", v, vt) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{path}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported field type {tp!r}")  # a programming error in a schema


def _build(path: str, data: Any, cls: Type[T]) -> T:
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or '<root>'}: expected a mapping for {cls.__name__}, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(map(str, data)) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"unknown key {where}{unknown[0]!s} (expected one of: {', '.join(sorted(fields))})")
    kwargs: Dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{key}: required{_describe(f)}")
            continue
        value = _convert(key, data[name], hints[name])
        _check_range(key, value, f)
        kwargs[name] = value
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path or cls.__name__}: {exc}") from exc
    check = getattr(obj, "validate", None)
    if callable(check):
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(f"{path + ': ' if path else ''}{exc}") from exc
    return obj


def from_dict(data: Any, cls: Type[T], path: str = "") -> T:
    """Build and validate `cls` from a mapping (raises ConfigError)."""
    return _build(path, data, cls)


EXTENDS = "extends"


def load_yaml(path: Union[str, Path], _seen: tuple = ()) -> Any:
    """Parse a YAML file; errors name the file and line.

    A file whose top level has `extends: other.yaml` (a path relative to the file) is that
    file with this one's settings over it: mappings merge key by key, at any depth; any other
    value, a list too, replaces the base's. So a world with another camera names only the camera.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict) or EXTENDS not in data:
        return data
    base_name = data.pop(EXTENDS)
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(f"{path}: {EXTENDS}: {base_name!r} is not a file name")
    base_path = (path.parent / base_name).resolve()
    chain = _seen + (path.resolve(),)
    if base_path in chain:
        raise ConfigError(f"{path}: {EXTENDS}: {base_name} extends itself "
                          f"({' -> '.join(p.name for p in chain + (base_path,))})")
    return merged(load_yaml(base_path, chain), data)


def merged(base: Any, over: Any) -> Any:
    """`over` on top of `base`: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in over.items()}}
    return over


def load(path: Union[str, Path], cls: Type[T], section: Optional[str] = None) -> T:
    """Load `cls` from a YAML file, optionally from one top-level section of it."""
    data = load_yaml(path)
    if section is not None:
        if not isinstance(data, dict) or section not in data:
            raise ConfigError(f"{path}: no top-level section {section!r}")
        data = data[section]
    try:
        return _build(section or "", data, cls)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def to_dict(obj: Any) -> Any:
    """A config dataclass as plain YAML-ready data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
