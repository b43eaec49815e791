"""Gradients through a fixed point ``z* = f_theta(z*)`` in constant memory.

The forward solve runs without autograd. One more application ``z = f_theta(z*)`` is recorded,
and its incoming gradient g = dL/dz is replaced by a hook:

    implicit    a = J^T a + g   (J = df/dz at z*), solved with a fixed-point solver on
                vector-Jacobian products of one recorded evaluation; then dL/dtheta =
                (df/dtheta)^T a. This is dL/dtheta of the exact fixed point (implicit function
                theorem), whatever the number of forward iterations.
    neumann:K   a = sum_{k=0..K} (J^T)^k g   (truncated Neumann series of (I - J^T)^{-1} g)
    jfb         a = g               (Jacobian-free backprop: the last step only; Fung et al. 2022)
    unroll      no fixed-point gradient: the forward solve itself is recorded (every evaluation
                and the solver's own steps, e.g. Anderson's mixing weights), so dL/dtheta is the
                gradient of the iterate the solver returns after its ``max_iter`` evaluations,
                the one inference returns with the same settings (memory grows with them)

Memory holds two evaluations of f, never the forward iterations (``unroll`` holds them all).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from scicli.fixedpoint.solvers import FixedPointSolver, Info, make_solver
from scicli.core.errors import UsageError

BACKWARD_MODES = ("implicit", "jfb", "neumann:K", "unroll")


@dataclass(frozen=True)
class Backward:
    """A parsed backward mode: ``kind`` in implicit / jfb / neumann / unroll and the Neumann order."""

    kind: str
    terms: int = 0

    @classmethod
    def of(cls, backward: "Backward | str") -> "Backward":
        """``backward`` itself when parsed already, else :meth:`parse` of it."""
        return backward if isinstance(backward, Backward) else cls.parse(backward)

    @classmethod
    def parse(cls, text: str) -> "Backward":
        text = str(text).strip().lower()
        if text in ("implicit", "jfb", "unroll"):
            return cls(text)
        if text.startswith("neumann"):
            _, _, k = text.partition(":")
            try:
                terms = int(k) if k else 5
            except ValueError:
                terms = -1
            if terms < 1:
                raise UsageError(f"backward mode '{text}': write neumann:K with K >= 1 (e.g. neumann:5)")
            return cls("neumann", terms)
        raise UsageError(f"unknown backward mode '{text}' (known: {', '.join(BACKWARD_MODES)})")


def attach_gradient(f: Callable[[Tensor], Tensor], z_star: Tensor, backward: Backward | str = "implicit",
                    solver: FixedPointSolver | None = None) -> Tensor:
    """``f(z*)`` with the gradient of the fixed point (see module docstring).

    ``solver`` solves the backward fixed-point equation (default: Anderson, tol 1e-6, 50 steps).
    Without grad mode this is just ``f(z*)``.
    """
    mode = Backward.of(backward)
    z_star = z_star.detach()
    z = f(z_star)
    if not (torch.is_grad_enabled() and z.requires_grad) or mode.kind in ("jfb", "unroll"):
        return z
    z0 = z_star.clone().requires_grad_()
    with torch.enable_grad():
        f0 = f(z0)
    solve = solver or make_solver("anderson", tol=1e-6, max_iter=50)

    def vjp(a: Tensor) -> Tensor:
        return torch.autograd.grad(f0, z0, a, retain_graph=True)[0]

    def hook(g: Tensor | None) -> Tensor | None:
        if g is None:  # an undefined gradient stays undefined
            return None
        if mode.kind == "neumann":
            term, total = g, g
            for _ in range(mode.terms):
                term = vjp(term)
                total = total + term
            return total
        a, info = solve(lambda a: vjp(a) + g, g)
        if info.diverged or not math.isfinite(info.residual):
            warnings.warn(f"implicit backward did not converge ({info.diverged or 'no finite residual'}); "
                          "using its best iterate", RuntimeWarning, stacklevel=2)
        return a

    z.register_hook(hook)
    return z


def solve_fixed_point(f: Callable[[Tensor], Tensor], z0: Tensor, solver: FixedPointSolver,
                      backward: Backward | str = "implicit",
                      backward_solver: FixedPointSolver | None = None) -> tuple[Tensor, Info]:
    """The DEQ layer: forward solve without autograd, then :func:`attach_gradient` (one more
    recorded application of f). Without grad mode the solver's last evaluation is the output:
    inference costs exactly the evaluations the solver made. With ``backward="unroll"`` the
    solve is recorded instead and its output carries the gradient of the solve itself."""
    mode = Backward.of(backward)
    if mode.kind == "unroll":
        return solver(f, z0)
    with torch.no_grad():
        z_star, info = solver(f, z0)
    if not torch.is_grad_enabled():
        return z_star, info
    return attach_gradient(f, z_star, mode, backward_solver), info
