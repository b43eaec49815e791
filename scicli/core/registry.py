"""A tiny name -> factory registry shared by solvers and denoisers.

A new solver or denoiser is one file that decorates its class with ``@register(name)``;
the package ``__init__`` imports the file so the name appears in ``scicli methods``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

from scicli.core.errors import UsageError

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    name: str
    factory: Callable[..., T]
    summary: str
    aliases: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Maps names (and aliases) to factories; unknown names are a one-line UsageError."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}

    def register(self, name: str, *, summary: str, aliases: tuple[str, ...] = (), **extra: Any):
        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            for n in (name, *aliases):
                if n in self._entries or n in self._aliases:
                    raise ValueError(f"{self.kind} '{n}' registered twice")
            self._entries[name] = Entry(name, factory, summary, aliases, extra)
            for a in aliases:
                self._aliases[a] = name
            return factory

        return deco

    def get(self, name: str) -> Entry[T]:
        key = self._aliases.get(name, name)
        if key not in self._entries:
            known = ", ".join(sorted(self._entries))
            raise UsageError(f"unknown {self.kind} '{name}' (known: {known})")
        return self._entries[key]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]
