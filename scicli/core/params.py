"""The one parameter system: typed parameters with help and range, and command-line values.

A method, denoiser or operator declares its settings as a dataclass whose fields are made by
:func:`param` (default, one-line help, admissible range); values typed on the command line
(``-p NAME=VALUE``, ``--operator-param NAME=VALUE``) are converted by :func:`coerce` to the
type of the default and checked by :func:`check_range`.
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any

from scicli.core.errors import UsageError

__all__ = ["check_range", "coerce", "param"]


def param(default: Any, help: str, *, low: float | None = None, positive: bool = False) -> Any:
    """A solver hyper-parameter with its default, a one-line help and its admissible range
    (``low``: smallest allowed value; ``positive``: strictly above zero)."""
    return field(default=default, metadata={"help": help, "low": low, "positive": positive})


def check_range(name: str, value: Any, meta: Any) -> None:
    """Numbers must be finite and inside the parameter's declared range (a UsageError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value):
        raise UsageError(f"parameter '{name}' must be a finite number, got {value}")
    if meta.get("positive") and value <= 0:
        raise UsageError(f"parameter '{name}' must be > 0, got {value}")
    low = meta.get("low")
    if low is not None and value < low:
        raise UsageError(f"parameter '{name}' must be >= {low:g}, got {value}")


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


def _coerce(name: str, value: Any, kind: type, message: str | None) -> Any:
    """:func:`coerce` before the finiteness check."""
    error = UsageError(message or f"parameter '{name}': cannot read '{value}' as {kind.__name__}")
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
