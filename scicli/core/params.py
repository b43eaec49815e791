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


def coerce(name: str, value: Any, kind: type) -> Any:
    """Convert a command-line string to the parameter's type, or raise a UsageError."""
    if isinstance(value, (list, tuple)) and kind is tuple:
        return tuple(float(v) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and kind is tuple:
        return (float(value),)
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
        if kind is int and float(value) == int(float(value)):
            return int(float(value))
        return kind(value)
    except ValueError:
        raise UsageError(f"parameter '{name}': cannot read '{value}' as {kind.__name__}") from None
