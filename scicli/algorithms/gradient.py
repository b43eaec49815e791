"""Gradient steps: proximal gradient (ISTA) and Nesterov's extrapolation (FISTA, Beck and
Teboulle 2009; Nesterov 1983).

    x_k = prox_{alpha g}(z - alpha A^T (A z - y)),   z' = x_k + (k - 1) / (k + 2) * (x_k - x_{k-1})
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from scicli.physics import LinearOperator


def nesterov(x: Tensor, x_prev: Tensor, k: int) -> Tensor:
    """The extrapolated point ``x + (k - 1) / (k + 2) (x - x_prev)`` of iteration k (1-based)."""
    return x + (k - 1) / (k + 2) * (x - x_prev)


def pgd_step(op: LinearOperator, z: Tensor, y: Tensor, alpha: float | Tensor,
             prox: Callable[[Tensor], Tensor]) -> Tensor:
    """One proximal-gradient (ISTA) step on ``||A x - y||^2 / 2 + g(x)`` from ``z``:
    ``prox_{alpha g}(z - alpha A^T (A z - y))``; ``prox`` is the prior's proximal map at step alpha."""
    return prox(z - alpha * op.A_adjoint(op.A(z) - y))
