"""RED steps: regularisation by denoising (Romano, Elad, Milanfar 2017) on

    E(x) = ||A x - y||_W^2 / 2 + tau / 2 <x, x - D(x)>,   W = (A A^T)^-1  (or I / ||A||^2 = I / L),

whose gradient, for a denoiser with a symmetric Jacobian, is ``A^T W (A x - y) + tau (x - D(x))``.

    red_gradient     grad E(x) with the denoised ``d = D(x)`` given
    red_fixed_point  x' = argmin_x ||A x - y||_W^2 / 2 + tau / 2 ||x - d||^2 (D frozen at d):
                     ``d + A^T (A A^T)^-1 (y - A d) / (1 + tau)`` with the closed form (a GAP
                     step damped by 1 / (1 + tau)), ``prox_l2(d, y, tau L)`` with W = I / L

Both are what the classical RED loop, RED as a deep-equilibrium map and its online (minibatch)
variant iterate.
"""

from __future__ import annotations

from torch import Tensor

from scicli.physics import LinearOperator


def red_gradient(op: LinearOperator, x: Tensor, y: Tensor, d: Tensor, tau: float,
                 L: float | None = None) -> Tensor:
    """``A^T W (A x - y) + tau (x - d)`` with ``W = (A A^T)^-1`` (``L`` None) or ``I / L``."""
    r = op.A(x) - y
    return op.A_adjoint(op.gram_inverse(r) if L is None else r / L) + tau * (x - d)


def red_fixed_point(op: LinearOperator, y: Tensor, d: Tensor, tau: float, L: float | None = None) -> Tensor:
    """The minimiser of the RED objective with the denoiser frozen at ``d = D(x_k)``."""
    return op.project(d, y, 1.0 / (1.0 + tau)) if L is None else op.prox_l2(d, y, tau * L)
