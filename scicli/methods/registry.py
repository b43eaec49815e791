"""Registry of reconstruction solvers (name -> Solver subclass)."""

from __future__ import annotations

from typing import Any, Callable

from scicli.core.registry import Registry

METHODS: Registry = Registry("method")


def register(name: str, *, summary: str, aliases: tuple[str, ...] = (), **extra: Any) -> Callable[[Any], Any]:
    """Register a solver class under ``name``; the class learns its ``method_name`` (the key of
    an operator's ``method_defaults``)."""
    deco = METHODS.register(name, summary=summary, aliases=aliases, **extra)

    def wrap(factory: Any) -> Any:
        if isinstance(factory, type):
            factory.method_name = name
        return deco(factory)

    return wrap
