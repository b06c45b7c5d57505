"""ROS parameters declared from the same config dataclasses the core validates.

`declare_config(node, cls, prefix)` declares one parameter per field, with a
descriptor (type, description with unit, numeric range) taken from the field's
`spec(...)` metadata; `read_config(node, cls, prefix)` reads them back and
validates them with the one config loader, so a bad value is a ConfigError that
names the parameter, the value and what was expected.
"""
from __future__ import annotations

import dataclasses
import typing
from typing import Any, Dict, Type, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from ..config import from_dict

T = TypeVar("T")

_SCALAR = {int: ParameterType.PARAMETER_INTEGER, float: ParameterType.PARAMETER_DOUBLE,
           bool: ParameterType.PARAMETER_BOOL, str: ParameterType.PARAMETER_STRING}


def _param_type(tp: Any) -> int:
    if tp in _SCALAR:
        return _SCALAR[tp]
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return ParameterType.PARAMETER_STRING
    if origin in (list, tuple) and args:
        inner = args[0]
        return {int: ParameterType.PARAMETER_INTEGER_ARRAY, float: ParameterType.PARAMETER_DOUBLE_ARRAY,
                str: ParameterType.PARAMETER_STRING_ARRAY, bool: ParameterType.PARAMETER_BOOL_ARRAY}[inner]
    raise TypeError(f"no ROS parameter type for {tp!r}")


def descriptor(f: dataclasses.Field, tp: Any) -> ParameterDescriptor:
    meta = f.metadata
    text = meta.get("help", "") or f.name.replace("_", " ")
    if meta.get("unit"):
        text += f" [{meta['unit']}]"
    d = ParameterDescriptor(description=text, type=_param_type(tp))
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        if tp is int:
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif tp is float:
            d.floating_point_range = [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]
    if typing.get_origin(tp) is typing.Literal:
        d.additional_constraints = "one of: " + ", ".join(map(str, typing.get_args(tp)))
    return d


def declare_config(node, cls: Type[Any], prefix: str = "") -> None:
    """One parameter per field of config dataclass `cls`. A list field whose default is empty
    is declared by its type: rclpy would type an empty default list as a byte array and then
    refuse every override (`-p allowed:=[a, b]`)."""
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        d = descriptor(f, hints[f.name])
        if isinstance(value, (list, tuple)):
            value = list(value) if value else Parameter.Type(d.type)
        node.declare_parameter(prefix + f.name, value, d)


def read_config(node, cls: Type[T], prefix: str = "") -> T:
    data: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        try:
            value = node.get_parameter(prefix + f.name).value
        except ParameterUninitializedException:   # an empty list that was never set
            value = []
        data[f.name] = list(value) if isinstance(value, (tuple, list)) or hasattr(value, "tolist") else value
    return from_dict(data, cls, path=prefix.rstrip("."))
