"""Deep ADMM-Net (Yang, Sun, Li, Xu, NIPS 2016) for CS-MRI and the generic ADMM-CSNet (Yang et
al., TPAMI 2018) for any operator: ADMM for ``min_x ||A x - y||^2 / 2 + sum_l lambda_l g(D_l x)``
unrolled into a fixed number of stages whose filters, shrinkages, penalties and update rates
are learned (:func:`scicli.methods.runners.unroll`, ordinary backprop).

``admm-net`` (operator ``mri``; splitting ``z_l = D_l x``, scaled multipliers ``beta_l``), stage n:

    X  x    = F^H [ (F A^T y + sum_l rho_l conj(H_l) F (z_l - beta_l)) / (G + sum_l rho_l |H_l|^2) ]
    C  c_l  = D_l x                                  (learned filters, circular)
    Z  z_l  = S_l(c_l + beta_l)                      (learned piecewise-linear shrinkage)
    M  beta_l = beta_l + eta_l (c_l - z_l)

followed by a last reconstruction layer X. The X layer is the paper's exact x-update
``(A^T A + sum_l rho_l H_l^T H_l)^-1 [A^T y + sum_l rho_l H_l^T (z_l - beta_l)]``, solved in
k-space: the filters H_l are circular convolutions, diagonal in the Fourier basis with
multipliers ``H_l(omega)``, and so is ``A^T A`` (:meth:`~scicli.physics.mri.MRI.fourier_gram`,
G = ``S_sym`` for real images). H_l and D_l are separate learned filters (the paper does not tie
them); rho_l > 0 is learned as ``log rho_l``. The start is the zero-filled image x0
(:meth:`~scicli.physics.LinearOperator.start`) with ``z_l = H_l x0``, ``beta = 0``, so that the
first X layer is a proximal step from x0. Real images only (the ``mri`` default); complex images
are refused in one line.

``admm-csnet`` (any operator; splitting ``z = x``, the slides' ADMM-CSNet), stage n:

    X  x    = prox_l2(z - beta, y, rho) = argmin ||A x - y||^2 / 2 + rho / 2 ||x - (z - beta)||^2
    Z  v    = x + beta,    z = v - D~^T (D v - S(D v))
    M  beta = beta + eta (x - z)

followed by a last X layer. X is the operator's own :meth:`~scicli.physics.LinearOperator.prox_l2`
(closed form where ``(A A^T + rho)^-1`` is, conjugate gradients otherwise) with one learned
rho per stage; Z is one step of the auxiliary-variable block started at its data point v: a
learned filter bank D, a learned piecewise-linear shrinkage S per filter and a learned
synthesis bank D~ (starting as ``D / k^2``, the inverse of the DCT tight frame, so the untrained
Z is DCT-frame soft thresholding). With eta = 1 a stage is exactly one
:func:`scicli.algorithms.admm_step` with the prior Z. Images with several channels (video-sci
frames, CASSI bands) are filtered channel by channel with the same filters (frame by frame);
real images only. Start: the operator's linear estimate, ``z = x0``, ``beta = 0``.

Both: the shrinkages start as soft thresholding at ``threshold`` and the filters as the k x k
DCT basis without the constant filter (:mod:`scicli.nets.sparse`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from scicli.core.errors import UsageError
from scicli.core.params import param
from scicli.fixedpoint import Info
from scicli.methods.learned import LearnedMap, register_learned
from scicli.methods.runners import unroll
from scicli.nets.sparse import FilterBank, PiecewiseLinear
from scicli.physics import LinearOperator


def _fft(x: Tensor) -> Tensor:
    return torch.fft.fft2(x, norm="ortho")


class StagedMap(LearnedMap):
    """An unrolled map whose stages have their own weights: stage k of a run is the k-th
    application of :meth:`f` (:meth:`run` lays out the stages, then a last reconstruction layer).

    ``-p iters=n`` at reconstruction runs the first n stages and the last layer (n <= stages)."""

    unrolled = True
    channels_per_state: ClassVar[int] = 3

    def __init__(self, stages: int, solve: dict[str, Any] | None = None, operator: str | None = None,
                 signature: dict[str, Any] | None = None) -> None:
        super().__init__(solve, operator, signature)
        if stages < 1:
            raise ValueError(f"stages must be >= 1, got {stages}")
        self.stages = int(stages)
        self._plan: list[int] = [*range(self.stages), self.stages]
        self._cursor = 0

    def shrinkage_options(self, filters: int, size: int, points: int, threshold: float, rho: float) -> None:
        """Check and record the options both ADMM networks share (filters of odd ``size``,
        shrinkages of ``points`` control points from soft thresholding at ``threshold``, penalty ``rho``)."""
        if size % 2 != 1:
            raise ValueError(f"size must be odd, got {size}")
        if not rho > 0:
            raise ValueError(f"rho must be > 0, got {rho}")
        self.config.update(stages=self.stages, filters=int(filters), size=int(size), points=int(points),
                           threshold=float(threshold), rho=float(rho))

    def settings(self, solve: dict[str, Any] | None) -> dict[str, Any]:
        """The stored settings updated by ``solve``; ``iters`` (stages run) defaults to all stages."""
        out = super().settings(solve)
        out["iters"] = int(out.get("iters") or self.stages)
        return out

    def active_stages(self, settings: dict[str, Any]) -> int:
        n = int(settings.get("iters") or self.stages)
        if not 1 <= n <= self.stages:
            raise UsageError(f"{self.method}: iters={n}, but these weights have {self.stages} stages "
                             f"(use 1 to {self.stages})")
        return n

    def run(self, f, z0: Tensor, settings: dict[str, Any]) -> tuple[Tensor, Info]:
        n = self.active_stages(settings)
        self._plan, self._cursor = [*range(n), self.stages], 0
        return unroll(f, z0, n + 1)

    def f(self, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        if self._cursor >= len(self._plan):
            raise RuntimeError(f"{self.method}: the stages are applied by run()")
        k = self._plan[self._cursor]
        self._cursor += 1
        return self.stage(k, z, op, y)

    def stage(self, k: int, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        raise NotImplementedError

    def check(self, op: LinearOperator, y: Tensor) -> None:
        super().check(op, y)
        if getattr(op, "complex_images", False):
            raise UsageError(f"{self.method} reconstructs real images; it does not take complex images "
                             f"(-O complex_images=0)")


class ADMMNet(StagedMap):
    """Deep ADMM-Net for CS-MRI: the exact ADMM x-update in k-space, learned filters, shrinkages,
    penalties and multiplier rates per stage (see the module docstring)."""

    method = "admm-net"
    operator = "mri"

    @dataclass
    class Options:
        """The network's shape and initial values."""

        stages: int = param(15, "ADMM stages (each X, C, Z, M), followed by a last X layer", low=1)
        filters: int = param(8, "filters L per stage", low=1)
        size: int = param(3, "filter size k (odd)", low=1)
        points: int = param(101, "control points of each piecewise-linear shrinkage", low=2)
        threshold: float = param(0.02, "the soft threshold the shrinkages start from", low=0)
        rho: float = param(0.1, "the initial penalty rho_l", positive=True)

    def __init__(self, stages: int = 15, filters: int = 8, size: int = 3, points: int = 101,
                 threshold: float = 0.02, rho: float = 0.1, solve: dict[str, Any] | None = None,
                 operator: str | None = None, signature: dict[str, Any] | None = None) -> None:
        super().__init__(stages, solve, operator, signature)
        self.shrinkage_options(filters, size, points, threshold, rho)
        L = int(filters)
        self.recon_filters = nn.ModuleList(FilterBank(L, size) for _ in range(self.stages + 1))
        self.log_rho = nn.Parameter(torch.full((self.stages + 1, L), math.log(rho)))
        self.conv_filters = nn.ModuleList(FilterBank(L, size) for _ in range(self.stages))
        self.shrink = nn.ModuleList(PiecewiseLinear(L, points, 1.0, threshold) for _ in range(self.stages))
        self.eta = nn.Parameter(torch.ones(self.stages, L))
        self.filters = L

    def split(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        L = self.filters
        return z[:, :1], z[:, 1:1 + L], z[:, 1 + L:]

    def lift(self, x: Tensor) -> Tensor:
        """``(x, H_l x, 0)`` with the first X layer's filters: that layer is a proximal step from x."""
        z = self.recon_filters[0](x)
        return torch.cat([x, z, torch.zeros_like(z)], dim=1)

    def image(self, z: Tensor) -> Tensor:
        return z[:, :1]

    def reconstruction(self, k: int, z: Tensor, beta: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        """The X layer k: ``(A^T A + sum rho H^T H)^-1 (A^T y + sum rho H^T (z - beta))`` in k-space."""
        H, W = z.shape[-2:]
        spec = self.recon_filters[k].spectrum(H, W)  # (L, H, W)
        rho = torch.exp(self.log_rho[k]).to(z.dtype)[:, None, None]
        num = _fft(op.A_adjoint(y)[:, 0]) + (rho * torch.conj(spec) * _fft(z - beta)).sum(dim=1)
        den = op.fourier_gram().to(z.dtype) + (rho * (spec.real ** 2 + spec.imag ** 2)).sum(dim=0)
        return torch.fft.ifft2(num / den.clamp_min(1e-8), norm="ortho").real[:, None]

    def stage(self, k: int, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        _, zl, beta = self.split(z)
        x = self.reconstruction(k, zl, beta, op, y)
        if k == self.stages:  # the last X layer
            return torch.cat([x, zl, beta], dim=1)
        c = self.conv_filters[k](x)
        z_new = self.shrink[k](c + beta)
        beta = beta + self.eta[k].to(x.dtype)[None, :, None, None] * (c - z_new)
        return torch.cat([x, z_new, beta], dim=1)


class ADMMCSNet(StagedMap):
    """ADMM-CSNet on any operator: the operator's prox_l2 as the x-update, a learned transform-
    domain shrinkage as the z-update, learned rho and eta per stage (see the module docstring)."""

    method = "admm-csnet"

    @dataclass
    class Options:
        """The network's shape and initial values."""

        stages: int = param(10, "ADMM stages (each X, Z, M), followed by a last X layer", low=1)
        filters: int = param(8, "filters L per stage", low=1)
        size: int = param(3, "filter size k (odd)", low=1)
        points: int = param(101, "control points of each piecewise-linear shrinkage", low=2)
        threshold: float = param(0.04, "the soft threshold the shrinkages start from", low=0)
        rho: float = param(0.1, "the initial penalty rho", positive=True)

    def __init__(self, stages: int = 10, filters: int = 8, size: int = 3, points: int = 101,
                 threshold: float = 0.04, rho: float = 0.1, solve: dict[str, Any] | None = None,
                 operator: str | None = None, signature: dict[str, Any] | None = None) -> None:
        super().__init__(stages, solve, operator, signature)
        self.shrinkage_options(filters, size, points, threshold, rho)
        self.log_rho = nn.Parameter(torch.full((self.stages + 1,), math.log(rho)))
        self.analysis = nn.ModuleList(FilterBank(filters, size) for _ in range(self.stages))
        self.synthesis = nn.ModuleList(FilterBank(filters, size) for _ in range(self.stages))
        with torch.no_grad():
            for bank in self.synthesis:
                bank.weight.div_(size * size)
        self.shrink = nn.ModuleList(PiecewiseLinear(filters, points, 1.0, threshold) for _ in range(self.stages))
        self.eta = nn.Parameter(torch.ones(self.stages))

    def lift(self, x: Tensor) -> Tensor:
        """``(x, z = x, beta = 0)``."""
        return torch.cat([x, x, torch.zeros_like(x)], dim=1)

    def image(self, z: Tensor) -> Tensor:
        return z[:, : z.shape[1] // 3]

    def rho(self, k: int) -> Tensor:
        return torch.exp(self.log_rho[k])

    def prior(self, k: int, v: Tensor) -> Tensor:
        """The Z layer k on (N, C, H, W), channel by channel: ``v - D~^T (D v - S(D v))``."""
        N, C, H, W = v.shape
        flat = v.reshape(N * C, 1, H, W)
        c = self.analysis[k](flat)
        out = flat - self.synthesis[k].adjoint(c - self.shrink[k](c))
        return out.reshape(N, C, H, W)

    def stage(self, k: int, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        C = z.shape[1] // 3
        zz, beta = z[:, C:2 * C], z[:, 2 * C:]
        x = op.prox_l2(zz - beta, y, self.rho(k).to(z.dtype))
        if k == self.stages:
            return torch.cat([x, zz, beta], dim=1)
        z_new = self.prior(k, x + beta)
        beta = beta + self.eta[k].to(x.dtype) * (x - z_new)
        return torch.cat([x, z_new, beta], dim=1)


register_learned(ADMMNet, "Deep ADMM-Net for CS-MRI: unrolled ADMM with learned filters and shrinkages "
                          "(mri, real images; scicli train)")
register_learned(ADMMCSNet, "ADMM-CSNet: unrolled ADMM with the operator's prox and a learned shrinkage "
                            "prior, any operator (scicli train)")
