"""The one parameter parser: command-line strings and numbers to the declared type, one-line errors."""

from __future__ import annotations

import pytest

from scicli.core.errors import UsageError
from scicli.core.params import coerce


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
