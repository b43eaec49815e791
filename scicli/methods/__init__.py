"""Reconstruction solvers by name: ``METHODS.get(name).factory(**params).solve(op, y)``.

This package is also the public ``scicli.methods()``: calling the module returns the registered
methods by name with their summaries (``scicli.methods`` is this subpackage, so the API function
of the same name is the module's ``__call__``).
"""

import sys
import types

from scicli.methods import admm, fbp, gap, gd, hqs, pgd, red  # noqa: F401  (each import registers its methods)
from scicli.methods import admm_net, deq_gap, deq_rnn, fista_net, ista_net, lista, red_deq, unrolled_gap  # noqa: F401  (the learned methods)
from scicli.methods.base import Result, Solver
from scicli.methods.registry import METHODS

__all__ = ["METHODS", "Result", "Solver"]


class _Catalogue(types.ModuleType):
    """The ``scicli.methods`` module, callable as ``scicli.methods()`` (see :func:`scicli.api.methods`)."""

    def __call__(self) -> dict[str, str]:
        return {e.name: e.summary for e in METHODS.entries()}


sys.modules[__name__].__class__ = _Catalogue
