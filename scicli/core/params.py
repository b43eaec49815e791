"""The one parameter system: typed parameters with help and range, and command-line values.

A method, denoiser or operator declares its settings as a dataclass whose fields are made by
:func:`param` (default, one-line help, admissible range); values typed on the command line
(``-p NAME=VALUE``, ``--operator-param NAME=VALUE``) are converted by :func:`coerce` to the
type of the default and checked by :func:`check_range`.

A noise level (``param(..., level=True)``) is held on [0, 1] like the data; the command line
quotes it on the 0..255 scale: :func:`from_command_line` converts typed values on their way in,
:func:`to_command_line` for display and for the record of a run (:mod:`scicli.core.units`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Any

from scicli.core.errors import UsageError
from scicli.core.units import level, level255

__all__ = ["check_range", "coerce", "from_command_line", "param", "to_command_line"]


def param(default: Any, help: str, *, low: float | None = None, high: float | None = None,
          positive: bool = False, choices: tuple[str, ...] | None = None, level: bool = False) -> Any:
    """A parameter with its default, a one-line help and its admissible values (``low`` /
    ``high``: smallest / largest allowed number; ``positive``: strictly above zero; ``choices``:
    the allowed words). ``level``: a noise level, on [0, 1] here and 0..255 on the command line."""
    return field(default=default, metadata={"help": help, "low": low, "high": high, "positive": positive,
                                            "choices": choices, "level": level})


def _scale(value: Any, convert: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return type(value)(convert(float(v)) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return convert(float(value))
    return value


def from_command_line(params: type, values: dict[str, Any]) -> dict[str, Any]:
    """Values typed on the command line for dataclass ``params``: noise levels (0..255) divided
    by 255 after :func:`coerce`; the rest as given (the dataclass's own checks follow)."""
    fields = {f.name: f for f in dataclasses.fields(params)}
    out = dict(values)
    for name, value in values.items():
        f = fields.get(name)
        if f is not None and f.metadata.get("level"):
            out[name] = _scale(coerce(name, value, type(f.default)), level)
    return out


def to_command_line(params: Any) -> dict[str, Any]:
    """The fields of a params dataclass as the command line quotes them (noise levels x 255)."""
    return {f.name: _scale(getattr(params, f.name), level255) if f.metadata.get("level") else getattr(params, f.name)
            for f in dataclasses.fields(params)}


def check_range(name: str, value: Any, meta: Any) -> None:
    """Numbers must be finite and inside the parameter's declared range, words among its choices
    (a UsageError otherwise)."""
    choices = meta.get("choices")
    if choices and isinstance(value, str) and value not in choices:
        raise UsageError(f"parameter '{name}' must be one of {', '.join(choices)}, got '{value}'")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise UsageError(f"parameter '{name}' must be a finite number, got {value}")
    if meta.get("positive") and value <= 0:
        raise UsageError(f"parameter '{name}' must be > 0, got {value}")
    low = meta.get("low")
    if low is not None and value < low:
        raise UsageError(f"parameter '{name}' must be >= {low:g}, got {value}")
    high = meta.get("high")
    if high is not None and value > high:
        raise UsageError(f"parameter '{name}' must be <= {high:g}, got {value}")


def coerce(name: str, value: Any, kind: type, message: str | None = None) -> Any:
    """Convert a command-line string (or a number) to the parameter's type, or raise a one-line
    UsageError (``message``, else a generic one naming the parameter).

    Strings: booleans as 1/0, true/false, yes/no, on/off; tuples as comma-separated numbers;
    integers also written as whole floats (``40.0``). Numbers: a whole float for an int becomes
    the int, an int for a float the float; other non-string values pass unchanged. A float
    (or a number of a tuple) that is NaN or infinite is a UsageError."""
    converted = _coerce(name, value, kind, message)
    numbers = converted if isinstance(converted, tuple) else (converted,)
    if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
        raise UsageError(f"parameter '{name}' must be a finite number, got {value}")
    return converted


_EXPECTED: dict[type, str] = {
    bool: "a yes/no value (1/0, true/false, yes/no, on/off)",
    int: "a whole number",
    float: "a number",
    tuple: "a number or comma-separated numbers (e.g. 50,25,12)",
}
"""What a command-line value of each parameter type must look like (for the one-line error)."""


def _coerce(name: str, value: Any, kind: type, message: str | None) -> Any:
    """:func:`coerce` before the finiteness check."""
    error = UsageError(message or f"parameter '{name}': '{value}' is not {_EXPECTED.get(kind, kind.__name__)}")
    if isinstance(value, (list, tuple)) and kind is tuple:
        return tuple(float(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if kind is tuple:
            return (float(value),)
        if kind is int:
            if not float(value).is_integer():
                raise error
            return int(value)
        if kind is float:
            return float(value)
    if not isinstance(value, str):
        return value
    try:
        if kind is bool:
            low = value.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind is tuple:
            return tuple(float(v) for v in value.split(","))
        if kind is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        return kind(value)
    except (ValueError, OverflowError):
        raise error from None
