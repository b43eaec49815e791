"""Scaled ADMM for ``min_x ||A x - y||^2 / 2 + g(x)`` split as x = v (Boyd et al. 2011; PnP-ADMM,
Chan, Wang, Elgendy 2017):

    x  = prox_l2(v + u, y, gamma) = argmin ||A x - y||^2 / 2 + gamma / 2 ||x - (v + u)||^2
    v' = D(x - u)                                      (the prox of g: TV, or a denoiser)
    u' = u - (x - v')

``prox_l2`` is the operator's: closed-form Woodbury where ``(A A^T + gamma)^-1`` is, conjugate
gradients otherwise.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from scicli.physics import LinearOperator


def admm_step(op: LinearOperator, v: Tensor, u: Tensor, y: Tensor, gamma: float,
              prior: Callable[[Tensor], Tensor]) -> tuple[Tensor, Tensor]:
    """One scaled-ADMM iteration from ``(v, u)``: returns ``(v', u')``."""
    x = op.prox_l2(v + u, y, gamma)
    v_new = prior(x - u)
    return v_new, u - (x - v_new)
