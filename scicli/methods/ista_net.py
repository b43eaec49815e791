"""ista-net and ista-net-plus: ISTA unrolled into K phases with learned transforms, thresholds and
step sizes (Zhang & Ghanem, "ISTA-Net: Interpretable Optimization-Inspired Deep Network for
Image Compressive Sensing", CVPR 2018), on any operator with real images.

Phase k (k = 1..K, K = 9 by default), from the operator's linear estimate ``x_0 = op.start(y)``
(block CS with a Qinit: ``Qinit y``; otherwise e.g. ``A^T y``):

    r_k = x_{k-1} - (rho_k / L) A^T (A x_{k-1} - y)                   (the ISTA gradient step)
    x_k = F~_k(soft(F_k(r_k), theta_k))                                (ISTA-Net)
    x_k = r_k + G_k(F~_k(soft(F_k(D_k(r_k)), theta_k)))                 (ISTA-Net+)

with learned rho_k (initialised 0.5) and theta_k (0.01), and ``L = ||A||^2`` (1 for ISTA-Net's
orthonormal Phi, so rho_k is the paper's step there; the scaling keeps the step stable on
operators such as video SCI whose ||A||^2 is the number of frames). The blocks F, F~, D, G are
:class:`scicli.nets.ista.ISTAProx`, separate weights per phase. Training minimises

    ||x_K - x||^2 / n + gamma sum_k ||F~_k(F_k(v_k)) - v_k||^2 / n_k       (gamma = 0.01)

(mean squares: the discrepancy and each phase's symmetry residual of its transform input v_k,
r_k or D_k(r_k)).

Images with several channels (video-sci frames, cassi bands) go through the proximal blocks
frame by frame (channels folded into the batch): the blocks are 2-D sparsifying transforms as
in the paper, the weights do not depend on the number of frames, and the data step couples the
frames. Complex images (mri with complex_images=1) are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from scicli.algorithms.gradient import pgd_step
from scicli.core.errors import UsageError
from scicli.core.params import param
from scicli.fixedpoint import Info
from scicli.methods.learned import LearnedMap, register_learned
from scicli.methods.runners import unroll
from scicli.nets.ista import ISTAProx
from scicli.physics import LinearOperator

SYMMETRY_WEIGHT = 0.01
"""gamma, the weight of the symmetry loss in both papers."""


def framewise(block: nn.Module, r: Tensor, *args: Any, **kwargs: Any) -> tuple[Tensor, Tensor | None]:
    """``block`` (a single-channel image map returning (output, residual)) applied to every
    channel of r (N, C, H, W) as its own image."""
    n, c = r.shape[:2]
    out, sym = block(r.reshape(n * c, 1, *r.shape[2:]), *args, **kwargs)
    return out.reshape(r.shape), sym


class UnrolledPhases(LearnedMap):
    """Base of the ISTA-type maps: K phases with their own parameters, ``phase(k, z, op, y, L)``
    returning the next state and phase k's symmetry residual (None when not asked for)."""

    unrolled = True
    plus: bool = True
    default_phases = 9

    @dataclass
    class Options:
        phases: int = param(9, "phases K (unrolled iterations, each with its own weights)", low=1, high=100)
        width: int = param(32, "feature channels of the learned transforms", low=1, high=1024)
        gamma: float = param(SYMMETRY_WEIGHT, "weight of the symmetry loss sum_k ||F~(F(v)) - v||^2", low=0)

    def __init__(self, phases: int | None = None, width: int = 32, gamma: float = SYMMETRY_WEIGHT,
                 solve: dict[str, Any] | None = None, operator: str | None = None,
                 signature: dict[str, Any] | None = None) -> None:
        phases = self.default_phases if phases is None else int(phases)
        if phases < 1:
            raise ValueError(f"phases must be >= 1, got {phases}")
        solve = {"iters": phases, **(solve or {})}
        if not 1 <= int(solve["iters"]) <= phases:
            raise ValueError(f"iters {solve['iters']}: the network has {phases} phases (set phases instead)")
        super().__init__(solve=solve, operator=operator, signature=signature)
        self.phases, self.width, self.gamma = phases, int(width), float(gamma)
        self.config.update(phases=phases, width=self.width, gamma=self.gamma)
        self.blocks = nn.ModuleList(ISTAProx(self.width, plus=self.plus) for _ in range(phases))

    # -- the map ----------------------------------------------------------------------------
    def start(self, op: LinearOperator, y: Tensor) -> Tensor:
        x0 = op.start(y)
        if x0.is_complex():
            raise UsageError(f"{self.method} works on real images; operator '{op.name}' gives complex ones "
                             "(for mri use complex_images=0)")
        return self.lift(x0)

    def phase(self, k: int, z: Tensor, op: LinearOperator, y: Tensor, L: float,
              symmetry: bool) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def f(self, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        """The first phase (``one_step``)."""
        return self.phase(0, z, op, y, op.norm(), False)[0]

    def steps(self, solve: dict[str, Any] | None) -> int:
        """The phases a solve runs: the first ``iters`` (default all K)."""
        iters = int(self.settings(solve)["iters"])
        if not 1 <= iters <= self.phases:
            raise UsageError(f"{self.method}: iters {iters}; these weights have {self.phases} phases (1..{self.phases})")
        return iters

    def unrolled_run(self, y: Tensor, op: LinearOperator, solve: dict[str, Any] | None = None,
                     z0: Tensor | None = None, symmetry: bool = False) -> tuple[Tensor, Info, Tensor, list[Tensor]]:
        """The reconstruction, the runner's record, the start's estimate and (``symmetry``) every
        phase's symmetry residual."""
        self.check(op, y)
        steps = self.steps(solve)
        start = self.start(op, y) if z0 is None else z0
        L = op.norm()
        residuals: list[Tensor] = []
        k = iter(range(steps))

        def phase(z: Tensor) -> Tensor:
            z, sym = self.phase(next(k), z, op, y, L, symmetry)
            if sym is not None:
                residuals.append(sym)
            return z

        z, info = unroll(phase, start, steps)
        return self.image(z), info, self.image(start), residuals

    def reconstruct_with_start(self, y: Tensor, op: LinearOperator, solve: dict[str, Any] | None = None,
                               z0: Tensor | None = None) -> tuple[Tensor, Info, Tensor]:
        x, info, start, _ = self.unrolled_run(y, op, solve, z0)
        return x, info, start

    def symmetry_loss(self, residuals: list[Tensor]) -> Tensor:
        """``sum_k mean(|F~_k(F_k(v_k)) - v_k|^2)``."""
        return torch.stack([r.square().mean() for r in residuals]).sum()

    def training_loss(self, y: Tensor, op: LinearOperator, x: Tensor) -> Tensor:
        """``mean |x_K - x|^2 + gamma sum_k mean |F~_k(F_k(v_k)) - v_k|^2``."""
        out, _, _, residuals = self.unrolled_run(y, op, symmetry=True)
        loss = torch.nn.functional.mse_loss(out, x)
        return loss + self.gamma * self.symmetry_loss(residuals) if self.gamma > 0 else loss


class ISTANetPlus(UnrolledPhases):
    """ISTA-Net+: K ISTA phases, a learned step rho_k and threshold theta_k, and a residual
    proximal block r + G(F~(soft(F(D(r)), theta)))."""

    method = "ista-net-plus"
    plus = True

    def __init__(self, phases: int | None = None, width: int = 32, gamma: float = SYMMETRY_WEIGHT,
                 solve: dict[str, Any] | None = None, operator: str | None = None,
                 signature: dict[str, Any] | None = None) -> None:
        super().__init__(phases, width, gamma, solve, operator, signature)
        self.rho = nn.Parameter(torch.full((self.phases,), 0.5))
        self.theta = nn.Parameter(torch.full((self.phases,), 0.01))

    def phase(self, k: int, z: Tensor, op: LinearOperator, y: Tensor, L: float,
              symmetry: bool) -> tuple[Tensor, Tensor | None]:
        """``r = z - (rho_k / L) A^T (A z - y)``, then phase k's proximal block."""
        out: dict[str, Tensor | None] = {}

        def prox(r: Tensor) -> Tensor:
            x, out["sym"] = framewise(self.blocks[k], r, self.theta[k], symmetry)
            return x

        return pgd_step(op, z, y, self.rho[k] / L, prox), out["sym"]


class ISTANet(ISTANetPlus):
    """ISTA-Net: K ISTA phases, a learned step rho_k and threshold theta_k, and the proximal
    block F~(soft(F(r), theta))."""

    method = "ista-net"
    plus = False


register_learned(ISTANetPlus, "ISTA-Net+ (Zhang & Ghanem 2018): 9 unrolled ISTA phases with learned residual "
                              "transforms; any real-image operator (scicli train --operator cs-block|mri)")
register_learned(ISTANet, "ISTA-Net (Zhang & Ghanem 2018): 9 unrolled ISTA phases with learned transforms; "
                          "any real-image operator (scicli train --operator cs-block|mri)")
