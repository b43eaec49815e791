"""The one parameter parser: command-line strings and numbers to the declared type, one-line errors."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pytest

from scicli.core.errors import UsageError
from scicli.methods import METHODS
from scicli.core.params import check_range, coerce, from_command_line, param, to_command_line


@pytest.mark.parametrize("value,kind,expected", [
    ("3", int, 3), ("40.0", int, 40), (40.0, int, 40), (2, float, 2.0), ("1e-3", float, 1e-3),
    ("on", bool, True), ("0", bool, False), ("50,25", tuple, (50.0, 25.0)), (6, tuple, (6.0,)),
    ("anderson", str, "anderson"),
])
def test_values_take_the_declared_type(value, kind, expected) -> None:
    out = coerce("p", value, kind)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("value,kind", [("1.5", int), (1.5, int), ("maybe", bool), ("x", float), ("1e999", int)])
def test_bad_values_are_one_line_usage_errors(value, kind) -> None:
    with pytest.raises(UsageError, match="parameter 'p'"):
        coerce("p", value, kind)
    with pytest.raises(UsageError, match="^m: p is bad$"):
        coerce("p", value, kind, "m: p is bad")


@pytest.mark.parametrize("value,kind,expected", [
    ("abc", tuple, "comma-separated numbers"), ("2.5", int, "a whole number"), ("x", float, "a number"),
    ("maybe", bool, "1/0, true/false"),
])
def test_the_error_says_what_the_value_must_look_like(value, kind, expected) -> None:
    with pytest.raises(UsageError, match=f"^parameter 'p': '{value}' is not .*{re.escape(expected)}"):
        coerce("p", value, kind)


# ----------------------------------------------------------------------------- ranges, choices, units
@dataclass
class Example:
    sigma: tuple = param((50 / 255,), "noise levels", level=True)
    mode: str = param("fast", "a word", choices=("fast", "slow"))
    step: float = param(0.5, "a number", positive=True, high=1.0)


def test_noise_levels_are_on_0_1_inside_and_0_255_as_typed() -> None:
    """--sigma 50,25 is (50/255, 25/255) inside; the record shows what was typed."""
    typed = from_command_line(Example, {"sigma": "50,25", "mode": "slow"})
    assert typed["sigma"] == pytest.approx((50 / 255, 25 / 255)) and typed["mode"] == "slow"
    assert to_command_line(Example(sigma=typed["sigma"]))["sigma"] == pytest.approx((50, 25))
    assert to_command_line(Example())["step"] == 0.5  # not a level: as it is


def test_a_methods_python_api_takes_levels_on_0_1_and_its_command_line_on_0_255() -> None:
    cls = METHODS.get("pnp-gap").factory
    assert list(cls(sigma=(0.1,), iters=(1,)).schedule) == [0.1]
    assert list(cls.from_command_line(sigma="51", iters="1").schedule) == pytest.approx([0.2])
    assert dict((n, d) for n, d, _ in cls.describe())["sigma"] == pytest.approx((50, 25, 12, 6))


@pytest.mark.parametrize("name,value,message", [
    ("mode", "medium", "'mode' must be one of fast, slow, got 'medium'"),
    ("step", 2.0, "'step' must be <= 1"), ("step", 0.0, "'step' must be > 0"),
    ("step", float("nan"), "'step' must be a finite number"),
])
def test_values_outside_the_declared_range_or_choices_are_one_line_errors(name, value, message) -> None:
    meta = {f.name: f.metadata for f in dataclasses.fields(Example)}[name]
    with pytest.raises(UsageError, match=re.escape(message)):
        check_range(name, value, meta)
