"""Half-quadratic splitting for ``min_x ||A x - y||^2 / 2 + g(x)`` split as x = v with the
penalty ``gamma / 2 ||x - v||^2`` (Geman and Yang 1995; plug-and-play HQS: IRCNN, Zhang, Zuo,
Gu, Zhang 2017):

    x  = prox_l2(v, y, gamma) = argmin ||A x - y||^2 / 2 + gamma / 2 ||x - v||^2
    v' = D(x)                                                  (the prox of g: TV, or a denoiser)

ADMM without the multiplier; gamma -> 0 gives the plain GAP projection ``x = P(v)``.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor

from scicli.physics import LinearOperator


def hqs_step(op: LinearOperator, v: Tensor, y: Tensor, gamma: float,
             prior: Callable[[Tensor], Tensor]) -> Tensor:
    """One HQS iteration from ``v``: ``D(prox_l2(v, y, gamma))``."""
    return prior(op.prox_l2(v, y, gamma))
