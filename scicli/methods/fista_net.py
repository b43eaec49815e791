"""fista-net: FISTA unrolled into K phases with a learned gradient step, a learned proximal block
and a learned momentum (Xiang, Dong, Yang, "FISTA-Net: Learning a Fast Iterative Shrinkage
Thresholding Network for Inverse Problems in Imaging", IEEE TMI 2021), on any operator with real
images.

Phase k = 0..K-1 (K = 7 by default) from ``x_{-1} = v_0 = op.start(y)``:

    r_k     = v_k - (mu_k / L) A^T (A v_k - y)                        (gradient step, L = ||A||^2)
    x_k     = r_k + G_k(F~_k(soft(F_k(D_k(r_k)), theta_k)))           (ISTA-Net+'s proximal block)
    v_{k+1} = x_k + rho_k (x_k - x_{k-1})                             (FISTA extrapolation)

The step sizes, thresholds and momenta are not free per phase: as in the paper they are smooth
functions of the phase index with two learned numbers each, constrained so that the steps and
thresholds are positive and non-increasing and the momenta in [0, 1) and non-decreasing, for
any values of the raw parameters (``sp`` the softplus; ``a, b`` raw):

    mu_k    = sp(b_mu - sp(a_mu) k)                      (> 0, non-increasing)
    theta_k = sp(b_theta - sp(a_theta) k)                (> 0, non-increasing)
    rho_k   = 1 - sp(b_rho) / sp(b_rho + sp(a_rho) k)    (rho_0 = 0, non-decreasing, < 1)

(the paper's ``sp(w k + b)`` with the sign of w fixed by a softplus; its momentum
``(sp(w k + b) - sp(b)) / sp(w k + b)`` is the same expression). Initial values: mu_0 = 1,
theta_0 = 0.01, and slopes sp(a) of 0.2 (mu), 0.1 (theta), 0.5 (rho). The loss adds the
symmetry term ``gamma sum_k ||F~_k(F_k(D_k r_k)) - D_k r_k||^2`` (gamma = 0.01) to the MSE;
the paper's additional l1 sparsity term on the transform coefficients is not used.

The state is the extrapolated point and the last estimate, ``z = [v_k, x_{k-1}]`` stacked along
the channel axis; multi-channel images (video frames, spectral bands) go through the proximal
blocks frame by frame as in :mod:`scicli.methods.ista_net`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scicli.algorithms.gradient import pgd_step
from scicli.core.params import param
from scicli.methods.ista_net import SYMMETRY_WEIGHT, UnrolledPhases, framewise
from scicli.methods.learned import register_learned
from scicli.physics import LinearOperator


def inverse_softplus(value: float) -> float:
    """``sp^-1(value) = log(exp(value) - 1)``, value > 0."""
    return value + math.log(-math.expm1(-value))


def decreasing(raw_slope: Tensor, raw_offset: Tensor, phases: int) -> Tensor:
    """``sp(b - sp(a) k)``, k = 0..phases-1: positive and non-increasing for any raw a, b."""
    k = torch.arange(phases, dtype=raw_slope.dtype, device=raw_slope.device)
    return F.softplus(raw_offset - F.softplus(raw_slope) * k)


def momentum(raw_slope: Tensor, raw_offset: Tensor, phases: int) -> Tensor:
    """``1 - sp(b) / sp(b + sp(a) k)``, k = 0..phases-1: 0 at k = 0, non-decreasing, below 1."""
    k = torch.arange(phases, dtype=raw_slope.dtype, device=raw_slope.device)
    return 1 - F.softplus(raw_offset) / F.softplus(raw_offset + F.softplus(raw_slope) * k)


class FISTANet(UnrolledPhases):
    """FISTA-Net: K FISTA phases with a learned step mu_k, threshold theta_k and momentum rho_k
    (monotone by construction) and ISTA-Net+'s residual proximal block."""

    method = "fista-net"
    plus = True
    default_phases = 7

    @dataclass
    class Options(UnrolledPhases.Options):
        phases: int = param(7, "phases K (unrolled iterations, each with its own weights)", low=1, high=100)

    def __init__(self, phases: int | None = None, width: int = 32, gamma: float = SYMMETRY_WEIGHT,
                 solve: dict[str, Any] | None = None, operator: str | None = None,
                 signature: dict[str, Any] | None = None) -> None:
        super().__init__(phases, width, gamma, solve, operator, signature)

        def scalar(value: float) -> nn.Parameter:
            return nn.Parameter(torch.tensor(float(value)))

        self.mu_slope, self.mu_offset = scalar(inverse_softplus(0.2)), scalar(inverse_softplus(1.0))
        self.theta_slope, self.theta_offset = scalar(inverse_softplus(0.1)), scalar(inverse_softplus(0.01))
        self.rho_slope, self.rho_offset = scalar(inverse_softplus(0.5)), scalar(0.0)

    # -- the constrained schedules ---------------------------------------------------------------
    def mu(self) -> Tensor:
        """The step sizes mu_0..mu_{K-1} (in units of 1 / ||A||^2)."""
        return decreasing(self.mu_slope, self.mu_offset, self.phases)

    def theta(self) -> Tensor:
        """The thresholds theta_0..theta_{K-1}."""
        return decreasing(self.theta_slope, self.theta_offset, self.phases)

    def rho(self) -> Tensor:
        """The momenta rho_0..rho_{K-1}."""
        return momentum(self.rho_slope, self.rho_offset, self.phases)

    # -- the state [v, x_prev] -------------------------------------------------------------------
    def lift(self, x: Tensor) -> Tensor:
        """``[x, x]``: no momentum at the start."""
        return torch.cat([x, x], dim=1)

    def image(self, z: Tensor) -> Tensor:
        """The last estimate x_{k-1}: the second half of the channels."""
        return z[:, z.shape[1] // 2:]

    def phase(self, k: int, z: Tensor, op: LinearOperator, y: Tensor, L: float,
              symmetry: bool) -> tuple[Tensor, Tensor | None]:
        """``r = v - (mu_k / L) A^T (A v - y)``, ``x = prox_k(r)``, ``v' = x + rho_k (x - x_prev)``."""
        c = z.shape[1] // 2
        v, x_prev = z[:, :c], z[:, c:]
        out: dict[str, Tensor | None] = {}

        def prox(r: Tensor) -> Tensor:
            x, out["sym"] = framewise(self.blocks[k], r, self.theta()[k], symmetry)
            return x

        x = pgd_step(op, v, y, self.mu()[k] / L, prox)
        return torch.cat([x + self.rho()[k] * (x - x_prev), x], dim=1), out["sym"]


register_learned(FISTANet, "FISTA-Net (Xiang, Dong, Yang 2021): 7 unrolled FISTA phases with learned monotone "
                           "steps, thresholds and momenta; any real-image operator (scicli train --operator cs-block|mri)")
