"""Reconstruction solvers by name: ``METHODS.get(name).factory(**params).solve(op, y)``."""

from scicli.methods import admm, deq, gap, gd, pgd, red  # noqa: F401  (each import registers its methods)
from scicli.methods.base import Result, Solver
from scicli.methods.registry import METHODS

__all__ = ["METHODS", "Result", "Solver"]
