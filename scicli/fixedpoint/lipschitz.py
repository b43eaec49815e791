"""Empirical Lipschitz constants of a map ``f`` near its fixed point, per sample of a batch.

A fixed-point iteration ``z_{k+1} = f(z_k)`` converges to z* from anywhere when f is a
contraction, ``||f(z) - f(z')|| <= L ||z - z'||`` with L < 1 (for DE-GAP the cookbook's bound
is ``L <= (1 + eps) max_i |1 - lambda_i|``, eps the Lipschitz constant of D - I). Three
measurements, all of a batch of N independent samples (f must not mix samples):

    norm      the spectral norm ||J|| of the Jacobian J = df/dz at z (the local Lipschitz
              constant): power iteration on J^T J, ``v <- J^T J v / ||J^T J v||``,
              ``||J|| ~ sqrt(||J^T J v||)`` for unit v (a lower bound that grows to ||J||)
    radius    the spectral radius rho(J) (the local rate of the plain iteration, which can be
              < 1 where ||J|| >= 1, e.g. a state that accumulates a residual): power iteration
              on J, the geometric mean of ``||J v_k|| / ||v_k||`` over the second half
    iterates  ``||f(z_k) - f(z*)|| / ||z_k - z*||`` over the iterates z_k of a solve (the
              secant ratios towards the fixed point: > 1 where the map expands; the ODER
              supplement's Fig. 1 histograms them, with z* in Fix(f) from a long solve and the
              iterates those of any solver, e.g. a stochastic one whose mean map is f:
              :func:`secant_ratios` and :func:`ratio_summary`)

J v is a Jacobian-vector product by double backward (``J v = d/du <J^T u, v>``), J^T w a
vector-Jacobian product, both on one recorded evaluation of f: each power step costs about
two (radius) or four (norm) evaluations of f.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

Map = Callable[[Tensor], Tensor]


def _unit(v: Tensor) -> Tensor:
    return v / torch.linalg.vector_norm(v.flatten(1), dim=1).clamp_min(1e-30).view(-1, *([1] * (v.dim() - 1)))


def _norms(v: Tensor) -> Tensor:
    return torch.linalg.vector_norm(v.flatten(1), dim=1)


class Linearisation:
    """``J v`` and ``J^T w`` of f at z from one recorded evaluation (double backward)."""

    def __init__(self, f: Map, z: Tensor) -> None:
        self.z = z.detach().clone().requires_grad_()
        with torch.enable_grad():
            self.fz = f(self.z)
            self.u = torch.zeros_like(self.fz, requires_grad=True)
            (self.jt_u,) = torch.autograd.grad(self.fz, self.z, self.u, create_graph=True)

    def jvp(self, v: Tensor) -> Tensor:
        """``J v``."""
        (out,) = torch.autograd.grad(self.jt_u, self.u, v, retain_graph=True)
        return out

    def vjp(self, w: Tensor) -> Tensor:
        """``J^T w``."""
        (out,) = torch.autograd.grad(self.fz, self.z, w, retain_graph=True)
        return out


def jacobian_norm_and_radius(f: Map, z: Tensor, iters: int = 10, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Per-sample estimates (N,) of ``||J||`` and ``rho(J)`` of f at z (``iters`` power steps each)."""
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    lin = Linearisation(f, z)
    gen = torch.Generator().manual_seed(seed)
    start = _unit(torch.randn(z.shape, generator=gen, dtype=z.dtype).to(z.device))
    v = start
    norm = z.new_zeros(z.shape[0])
    for _ in range(iters):
        w = lin.vjp(lin.jvp(v))
        norm = _norms(w).sqrt()
        v = _unit(w)
    v = start
    logs = []
    for _ in range(iters):
        jv = lin.jvp(v)
        logs.append(torch.log(_norms(jv).clamp_min(1e-30)))
        v = _unit(jv)
    tail = torch.stack(logs[len(logs) // 2:])
    return norm.detach(), tail.mean(dim=0).exp().detach()


def jacobian_penalty(f: Map, z: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """The Hutchinson estimate of ``||J||_F^2 / n`` of f at z (J = df/dz, n = z.numel()), with
    the graph to f's parameters (Bai, Koltun and Kolter, ICML 2021, the Jacobian regularisation
    of deep-equilibrium models):

        P(z) = ||eps^T J||^2 / n,   eps ~ N(0, I),   E[P] = trace(J J^T) / n = ||J||_F^2 / n

    (the Jacobian of the whole batch, block diagonal when f does not mix samples). One recorded
    evaluation of f at z (detached) and one vector-Jacobian product with ``create_graph=True``:
    ``P.backward()`` reaches f's parameters. ``generator`` (CPU) draws eps; default: torch's
    global generator. Complex states use ``|eps^H J|^2``."""
    z0 = z.detach().clone().requires_grad_()
    with torch.enable_grad():
        fz = f(z0)
        shape = fz.shape + ((2,) if fz.is_complex() else ())
        real = fz.real.dtype if fz.is_complex() else fz.dtype
        eps = torch.randn(shape, generator=generator, dtype=real).to(fz.device)
        if fz.is_complex():
            eps = torch.view_as_complex(eps) / 2 ** 0.5
        (vjp,) = torch.autograd.grad(fz, z0, eps, create_graph=True)
    return torch.linalg.vector_norm(vjp) ** 2 / z0.numel()


def jacobian_norm_estimate(f: Map, z: Tensor, iters: int = 4, start: Tensor | None = None
                           ) -> tuple[Tensor, Tensor]:
    """Per-sample ``||J v||`` of f at z (N,), with the graph to f's parameters, and v.

    v is the unit vector after ``iters`` power steps on J^T J (``v <- J^T J v / ||J^T J v||``,
    detached) from ``start`` (a warm start, e.g. the v of the previous training step) or a
    Gaussian draw, so ``||J v||`` is a lower bound of the spectral norm ``||J||`` that grows to
    it; the last product ``J v`` is recorded with ``create_graph=True``, so a penalty on it
    trains f's parameters (the spectral-norm penalty of Pesquet, Repetti, Terris and Wiaux,
    SIAM J. Imaging Sci. 2021, and Hurault, Leclaire and Papadakis, ICLR 2022). Costs one
    recorded evaluation of f and about ``2 iters + 2`` products of its size."""
    if iters < 0:
        raise ValueError(f"iters must be >= 0, got {iters}")
    lin = Linearisation(f, z)
    v = start if start is not None and start.shape == z.shape else torch.randn_like(z)
    v = _unit(v.detach())
    for _ in range(iters):
        v = _unit(lin.vjp(lin.jvp(v)).detach())
    with torch.enable_grad():
        (jv,) = torch.autograd.grad(lin.jt_u, lin.u, v, create_graph=True)
    return _norms(jv), v


def iterate_ratios(f: Map, iterates: Sequence[Tensor], images: Sequence[Tensor], z_star: Tensor) -> Tensor:
    """``||f(z_k) - f(z*)|| / ||z_k - z*||`` (K, N) for the iterates z_k and their images
    f(z_k) (NaN where z_k = z*)."""
    with torch.no_grad():
        f_star = f(z_star)
        rows = []
        for zk, fk in zip(iterates, images):
            den = _norms(zk - z_star)
            ratio = _norms(fk - f_star) / den.clamp_min(1e-30)
            rows.append(torch.where(den > 0, ratio, torch.full_like(ratio, float("nan"))))
    return torch.stack(rows) if rows else z_star.new_zeros((0, z_star.shape[0]))


def secant_ratios(f: Map, points: Sequence[Tensor], z_star: Tensor) -> Tensor:
    """``||f(z_k) - f(z*)|| / ||z_k - z*||`` (K, N) with f applied here to every point z_k (e.g.
    the iterates of another solver, or of a stochastic version of f) and to z*; NaN where
    z_k = z*. One evaluation of f per point, no gradients."""
    with torch.no_grad():
        images = [f(z) for z in points]
    return iterate_ratios(f, points, images, z_star)


def ratio_summary(ratios: Tensor) -> dict[str, float]:
    """``median``, ``max`` and ``above_one`` (the fraction > 1) of the finite ratios, and their
    ``count``; NaN statistics when there are none."""
    finite = ratios[torch.isfinite(ratios)].double()
    if finite.numel() == 0:
        return {"median": float("nan"), "max": float("nan"), "above_one": float("nan"), "count": 0}
    return {"median": float(np.median(finite.cpu().numpy())), "max": float(finite.max()),
            "above_one": float((finite > 1).double().mean()), "count": int(finite.numel())}
