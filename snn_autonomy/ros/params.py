"""ROS parameters declared from the same config dataclasses the core validates.

Every parameter of every node is a field of a config dataclass: `declare_params(node, cls,
prefix)` declares one parameter per field, with a descriptor (type, description with unit,
numeric range, the choices of a Literal field) taken from the field's `spec(...)` metadata,
reads them back through the one config loader (a bad value is a ConfigError that names the
parameter, the value and what was expected: the node exits 2), and checks later changes
(`ros2 param set`) against the same dataclass, so a value outside a Literal's choices is
refused at run time as rclpy refuses one outside a declared range.
"""
from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any, Dict, Type, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.exceptions import ParameterUninitializedException
from rclpy.parameter import Parameter

from ..config import ConfigError, from_dict

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
    if lo is not None or hi is not None:     # a descriptor range has both ends: open ends as far as the type goes
        if tp is int:
            lo, hi = (-(2 ** 63) if lo is None else lo), (2 ** 63 - 1 if hi is None else hi)
            d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
        elif tp is float:
            big = sys.float_info.max
            lo, hi = (-big if lo is None else lo), (big if hi is None else hi)
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


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) or hasattr(value, "tolist") else value


def _values(node, cls: Type[Any], prefix: str) -> Dict[str, Any]:
    data: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        try:
            value = node.get_parameter(prefix + f.name).value
        except ParameterUninitializedException:   # an empty list that was never set
            value = []
        data[f.name] = _plain(value)
    return data


def read_config(node, cls: Type[T], prefix: str = "") -> T:
    return from_dict(_values(node, cls, prefix), cls, path=prefix.rstrip("."))


def declare_params(node, cls: Type[T], prefix: str = "") -> T:
    """Declare `cls`'s fields as parameters, read them (validated), and check every later change
    of them against `cls` (Literal choices, ranges, the dataclass's own `validate`)."""
    declare_config(node, cls, prefix)
    cfg = read_config(node, cls, prefix)
    names = {prefix + f.name: f.name for f in dataclasses.fields(cls)}

    def check(params) -> SetParametersResult:
        changed = {names[p.name]: _plain(p.value) for p in params if p.name in names}
        if not changed:
            return SetParametersResult(successful=True)
        try:
            from_dict({**_values(node, cls, prefix), **changed}, cls, path=prefix.rstrip("."))
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(check)
    return cfg
