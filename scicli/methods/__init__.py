"""Reconstruction solvers by name: ``METHODS.get(name).factory(**params).solve(op, y)``."""

from scicli.methods import admm, fbp, gap, gd, hqs, pgd, red  # noqa: F401  (each import registers its methods)
from scicli.methods import admm_net, deq_gap, deq_rnn, fista_net, ista_net, lista, red_deq, unrolled_gap  # noqa: F401  (the learned methods)
from scicli.methods.base import Result, Solver
from scicli.methods.registry import METHODS

__all__ = ["METHODS", "Result", "Solver"]
