"""Accelerated gradient steps (Nesterov 1983; FISTA, Beck and Teboulle 2009).

    x_k = z - alpha * grad F(z),   z' = x_k + (k - 1) / (k + 2) * (x_k - x_{k-1})
"""

from __future__ import annotations

from torch import Tensor


def nesterov(x: Tensor, x_prev: Tensor, k: int) -> Tensor:
    """The extrapolated point ``x + (k - 1) / (k + 2) (x - x_prev)`` of iteration k (1-based)."""
    return x + (k - 1) / (k + 2) * (x - x_prev)
