"""The TV prior shared by the TV solvers: their common parameters and denoising step.

    v = argmin_u ||u - x||^2 / 2 + w TV(u)   (per frame, Chambolle, ``tv_iters`` dual steps)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from scicli.priors.tv import tv_chambolle
from scicli.core.params import param


@dataclass
class TVParams:
    """Parameters every TV solver has (each solver's ``Params`` extends them)."""

    iters: int = param(40, "outer iterations", low=1)
    tv_weight: float = param(0.3, "TV weight w of the denoising step (data on [0, 1])", positive=True)
    tv_iters: int = param(5, "Chambolle iterations per denoising step", low=0)
    tol: float = param(0.0, "stop when ||x_k - x_k-1|| / ||x_k-1|| < tol (0: run all iterations)", low=0)


class TVMixin:
    """``denoise(x, k)``: TV denoising with the solver's ``tv_weight`` and ``tv_iters``."""

    params: Any

    def denoise(self, x: Tensor, k: int) -> Tensor:
        return tv_chambolle(x, self.params.tv_weight, n_iter=self.params.tv_iters)
