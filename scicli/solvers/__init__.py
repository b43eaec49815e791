"""Reconstruction solvers by name: ``SOLVERS.get(name).factory(**params).solve(op, y)``."""

from scicli.solvers import admm, deq, gap, gd, red  # noqa: F401  (each import registers its methods)
from scicli.solvers.base import Result, Solver
from scicli.solvers.registry import SOLVERS

__all__ = ["SOLVERS", "Result", "Solver"]
