"""The GAP data step (Liao, Li, Carin 2014; Yuan 2016), plain and accelerated.

With ``G = (A A^T)^-1`` (closed form: the operator must declare it):

    plain         v = x + lambda A^T G (y - A x)                 (lambda = 1: projection onto {A x = y})
    accelerated   e' = e + alpha (y - A x)                      (alpha = 1 in the reference codes)
                  v  = x + lambda A^T G (y + e' - A x)           (projection towards {A x = y + e'})

The accelerated form keeps the accumulated residual e, which pulls the iterates onto the
measurements when the prior step keeps moving them off (every PnP-SCI reference code uses it).
Started with e = -y it is the reference codes' ``y1 = 0`` accumulator (``y1 = y + e``); with
e = 0 a consistent start ``A x = y`` is a fixed point. alpha, the rate at which e integrates the
residual, leaves the fixed points as they are (``A x* = y`` either way) and changes how fast the
iterates get there (deq-gap can learn it).
"""

from __future__ import annotations

from torch import Tensor

from scicli.physics import LinearOperator


def gap_step(op: LinearOperator, x: Tensor, y: Tensor, e: Tensor | None = None,
             step: float | Tensor = 1.0, rate: float | Tensor = 1.0) -> tuple[Tensor, Tensor | None]:
    """One GAP data step from ``x``: ``(v, e')`` with ``r = y - A x``,
    ``e' = e + rate r`` and ``v = x + step A^T((r + e') / R)`` (accelerated GAP: rate 1);
    ``e`` None gives the plain projection ``v = x + step A^T(r / R)`` (and e' None)."""
    r = y - op.A(x)
    if e is None:
        return x + step * op.A_adjoint(op.gram_inverse(r)), None
    e = e + rate * r
    return x + step * op.A_adjoint(op.gram_inverse(r + e)), e
