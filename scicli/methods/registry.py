"""Registry of reconstruction solvers (name -> Solver subclass)."""

from __future__ import annotations

from scicli.core.registry import Registry

METHODS: Registry = Registry("method")
register = METHODS.register
