"""Registry of reconstruction solvers (name -> Solver subclass)."""

from __future__ import annotations

from scicli.registry import Registry

SOLVERS: Registry = Registry("method")
register = SOLVERS.register
