"""Node parameters as data: name, type, default, description, bounds or choices, read-only or
dynamic (plain Python, no rclpy).

Modelled on generate_parameter_library's YAML in ros2_controllers: every node declares its
parameters once, as a `ParamSchema`; `so100_common.ros_node.declare_params` declares them to ROS
with a `ParameterDescriptor` (so `ros2 param describe` shows type, range and description, and
ROS itself refuses an out-of-range set), and `config/<node>.yaml` is generated from the same
schema (`render_yaml`). A bad value stops the node at start with a `ParameterError` that names
the parameter and what it accepts.
"""
from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
FLOAT_MAX = 1.7976931348623157e308  # rcl_interfaces FloatingPointRange takes finite bounds

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")  # ROS parameter names


class ParameterError(ValueError):
    """A parameter value the node cannot run with; the text names it and what it accepts."""


# The value types a parameter may have, by the Python type of its default.
TYPE_NAMES = {bool: "bool", int: "integer", float: "double", str: "string",
              "str_list": "string array", "float_list": "double array", "int_list": "integer array"}
LIST_KINDS = ("str_list", "float_list", "int_list")


@dataclass(frozen=True)
class Param:
    """One parameter. `min`/`max` are inclusive (`min_exclusive=True`: strictly greater than
    `min`, for doubles such as rates); `choices` lists the allowed values (strings or numbers;
    for an array parameter, the allowed elements); `read_only` parameters are read once at start;
    a dynamic one (`read_only=False`) may be set at run time and is checked the same way.
    `dynamic_typing` is for list parameters whose empty value (`[]` on the command line) has no
    type (declare_params also turns an untyped `[]` into the empty list of the default's type)."""

    name: str
    default: Any
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    read_only: bool = True
    dynamic_typing: bool = False
    unit: str = ""
    min_exclusive: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"{self.name!r} is not a valid ROS parameter name")
        if not self.description.strip():
            raise ValueError(f"{self.name}: a description is required")
        kind = self.kind  # raises for an unsupported default
        if isinstance(self.default, (list, tuple)) and not self.default and not self.dynamic_typing:
            raise ValueError(f"{self.name}: an empty array default needs dynamic_typing=True (ROS cannot "
                             "give an empty array a type)")
        if self.choices is not None:
            if isinstance(self.choices, (str, bytes)) or not isinstance(self.choices, (tuple, list)):
                raise ValueError(f"{self.name}: choices must be a tuple of values, got {self.choices!r}")
            object.__setattr__(self, "choices", tuple(self.choices))
            if not self.choices:
                raise ValueError(f"{self.name}: empty choices")
            element = {"str_list": str, "float_list": float, "int_list": int}.get(kind, kind)
            bad = [c for c in self.choices if not _scalar_ok(element, c)]
            if bad:
                raise ValueError(f"{self.name}: choices {bad} are not of the parameter's type "
                                 f"({TYPE_NAMES[kind]})")
        if self.min is not None or self.max is not None:
            if kind not in (int, float):
                raise ValueError(f"{self.name}: bounds need a numeric parameter")
            for bound in (self.min, self.max):
                if bound is not None and not (isinstance(bound, (int, float)) and math.isfinite(bound)):
                    raise ValueError(f"{self.name}: bound {bound!r} is not a finite number")
            if self.min is not None and self.max is not None and self.min > self.max:
                raise ValueError(f"{self.name}: min {self.min} > max {self.max}")
        if self.min_exclusive:
            if self.min is None or kind is not float:
                raise ValueError(f"{self.name}: min_exclusive needs a double parameter with a min "
                                 "(for an integer use min=<bound + 1>)")
            if self.max is not None and self.max <= self.min:
                raise ValueError(f"{self.name}: nothing is > {self.min} and <= {self.max}")
        problem = self.problem(self.default)
        if problem:
            raise ValueError(f"{self.name}: default {problem}")

    @property
    def kind(self) -> Any:
        """bool, int, float, str, or 'str_list' / 'float_list' / 'int_list'."""
        d = self.default
        if isinstance(d, bool):
            return bool
        if isinstance(d, (int, float, str)):
            return type(d)
        if isinstance(d, (list, tuple)):
            if all(isinstance(x, str) for x in d) and (d or self.dynamic_typing):
                return "str_list"
            if all(isinstance(x, int) and not isinstance(x, bool) for x in d) and d:
                return "int_list"
            if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in d):
                return "float_list"
        raise ValueError(f"{self.name}: unsupported default {d!r}")

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.kind]

    def allowed(self) -> str:
        """What the parameter accepts, for messages and descriptions."""
        if self.choices is not None:
            choices = ", ".join(str(c) for c in self.choices)
            return (f"{self.type_name} of: {choices}" if self.kind in LIST_KINDS else f"one of {choices}")
        lo = "" if self.min is None else _number(self.min)
        hi = "" if self.max is None else _number(self.max)
        if lo and hi:
            return f"{self.type_name} in {'(' if self.min_exclusive else '['}{lo}, {hi}]"
        if lo:
            return f"{self.type_name} {'>' if self.min_exclusive else '>='} {lo}"
        if hi:
            return f"{self.type_name} <= {hi}"
        return self.type_name

    def problem(self, value: Any) -> str:
        """'' when `value` is acceptable, else what is wrong with it."""
        kind = self.kind
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not self._type_ok(value):
            hint = (f" (on the command line quote it: -p {self.name}:=\"'{value}'\")"
                    if kind is str and isinstance(value, (int, float)) else "")
            return f"is {value!r} ({_type_of(value)}){hint}; allowed: {self.allowed()}"
        if kind in (int, float):
            if isinstance(value, float) and not math.isfinite(value):
                return f"is {value!r}; allowed: finite {self.allowed()}"
            below = self.min is not None and (value <= self.min if self.min_exclusive else value < self.min)
            if below or (self.max is not None and value > self.max):
                return f"is {value!r}; allowed: {self.allowed()}"
        if kind == "float_list" and not all(math.isfinite(x) for x in value):
            return f"is {list(value)!r}; allowed: finite numbers"
        if self.choices is not None:
            if kind in LIST_KINDS:
                unknown = [x for x in value if x not in self.choices]
                if unknown:
                    return f"has {', '.join(repr(x) for x in unknown)}; allowed: {self.allowed()}"
            elif value not in self.choices:
                return f"is {value!r}; allowed: {self.allowed()}"
        return ""

    def _type_ok(self, value: Any) -> bool:
        kind = self.kind
        if kind not in LIST_KINDS:
            return _scalar_ok(kind, value)
        if not isinstance(value, (list, tuple)):
            return False
        element = {"str_list": str, "int_list": int, "float_list": float}[kind]
        return all(_scalar_ok(element, x) for x in value)


def _scalar_ok(kind: Any, value: Any) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:  # an integer is a fine double
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    return False


def _type_of(value: Any) -> str:
    for kind, name in ((bool, "a bool"), (int, "an integer"), (float, "a double"), (str, "a string"),
                       ((list, tuple), "an array")):
        if isinstance(value, kind):
            return name
    return "no value" if value is None else type(value).__name__


def _number(x: float) -> str:
    text = f"{x:g}"
    return text if float(text) == x else repr(x)


@dataclass(frozen=True)
class ParamSchema:
    """The parameters of one node, in declaration order."""

    node: str  # default node name (the key of its config YAML)
    params: tuple[Param, ...]
    title: str = ""  # first line of the generated YAML's header
    _index: dict[str, Param] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for p in self.params:
            if not isinstance(p, Param):
                raise TypeError(f"{self.node}: {p!r} is not a Param")
            if p.name in self._index:
                raise ValueError(f"{self.node}: parameter {p.name} declared twice")
            self._index[p.name] = p

    def __iter__(self) -> Iterator[Param]:
        return iter(self.params)

    def __len__(self) -> int:
        return len(self.params)

    def __getitem__(self, name: str) -> Param:
        return self._index[name]

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def dynamic(self) -> list[Param]:
        """The parameters that may be set at run time."""
        return [p for p in self.params if not p.read_only]

    def validate(self, values: Mapping[str, Any], node: str | None = None) -> dict[str, Any]:
        """Check every value (missing ones take their default); return them, ints given for
        doubles as floats, tuples as lists. Raises ParameterError naming every bad parameter
        (prefixed with `node`, default the schema's node name)."""
        unknown = [k for k in values if k not in self._index]
        problems = [f"unknown parameter {k!r} (this node has: {', '.join(self.names())})" for k in unknown]
        out: dict[str, Any] = {}
        for p in self.params:
            value = values.get(p.name, p.default)
            why = p.problem(value)
            if why:
                problems.append(f"parameter {p.name} {why}")
                continue
            out[p.name] = coerce(p, value)
        if problems:
            raise ParameterError(f"{node or self.node}: " + "; ".join(problems))
        return out


def coerce(p: Param, value: Any) -> Any:
    """An acceptable `value` in the parameter's own type: ints of doubles as floats, tuples as lists."""
    if p.kind is float:
        return float(value)
    if p.kind == "float_list":
        return [float(x) for x in value]
    if isinstance(value, tuple):
        return list(value)
    return value


def schema(node: str, params: Iterable[Param], title: str = "") -> ParamSchema:
    return ParamSchema(node=node, params=tuple(params), title=title)


# -- YAML generated from a schema ------------------------------------------------------------
def _yaml_value(value: Any) -> str:
    """A scalar or flow list that PyYAML and ROS' rcl_yaml_param_parser both read back as the
    same value and type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the non-finite {value!r} as a parameter")
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if "." not in mantissa:  # PyYAML (YAML 1.1) reads 1e-05 as a string, 1.0e-05 as a float
            mantissa += ".0"
        return mantissa + e + exponent
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '""' if value == "" else _quote(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as YAML")


def _quote(text: str) -> str:
    import yaml

    dumped = yaml.safe_dump(text, default_flow_style=True, width=10_000).strip()
    if dumped.endswith("\n..."):
        dumped = dumped[:-4].strip()
    return dumped.removesuffix("...").strip()


def comment_lines(text: str, indent: str = "", width: int = 100) -> list[str]:
    """`text` as '# ' comment lines of at most `width` columns (long words are not broken)."""
    return textwrap.wrap(text, width=width, initial_indent=indent + "# ", subsequent_indent=indent + "# ",
                         break_long_words=False, break_on_hyphens=False) or [indent + "#"]


def render_yaml(s: ParamSchema, values: Mapping[str, Any] | None = None,
                header: Sequence[str] = (), key: str | None = None) -> str:
    """config/<node>.yaml text: every parameter with its value (default unless given), its
    description, and what it accepts, as comments. `key` is the top-level key (default the
    schema's node name; e.g. '/**/so100_driver' matches the node in any namespace). Generated;
    edit the schema instead."""
    chosen = s.validate(dict(values or {}))
    lines = [*comment_lines(s.title or f"Parameters of {s.node}"),
             "# Generated from the node's parameter schema by `python -m so100_bringup.node_params --write`;",
             "# edit the schema in the node's module, not this file. Units: SI (s, Hz, rad, m).",
             *[f"# {h}".rstrip() for h in header],
             f"{key or s.node}:", "  ros__parameters:"]
    for p in s.params:
        lines += comment_lines(f"{p.description} [{p.allowed()}{', ' + p.unit if p.unit else ''}"
                               f"{'' if p.read_only else ', settable at run time'}]", "    ")
        lines.append(f"    {p.name}: {_yaml_value(chosen[p.name])}")
    return "\n".join(lines) + "\n"
