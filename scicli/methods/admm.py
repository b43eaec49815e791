"""ADMM with a denoiser (scaled form; PnP-ADMM, Chan et al. 2017; Yuan et al. 2020).

For ``min_x ||y - A x||^2 / 2 + g(x)`` split as x = v:

    x <- (v + u) + A^T (A A^T + gamma)^-1 (y - A(v + u))   (prox of the data term, Woodbury form;
                                                         conjugate gradients without a closed form)
    v <- D(x - u, sigma_k)                              (prox of g: TV, or a learned denoiser)
    u <- u - (x - v)

The output is v, the denoised variable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from scicli.algorithms import admm_step
from scicli.physics import LinearOperator
from scicli.core.params import param
from scicli.methods.base import Solver
from scicli.methods.pnp import PnPMixin, pnp_params
from scicli.methods.registry import register
from scicli.methods.tvprior import TVMixin, TVParams


class Admm(Solver):
    """The scaled ADMM iteration; subclasses provide ``denoise(x, k)``."""

    def init(self, op: LinearOperator, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        v = op.start(y) if x0 is None else x0.clone()  # the operator's linear estimate (A^T y)
        return {"op": op, "y": y, "x": v, "u": v.new_zeros(v.shape)}

    def step(self, s: dict[str, Any], k: int) -> Tensor:
        s["x"], s["u"] = admm_step(s["op"], s["x"], s["u"], s["y"], self.params.gamma, lambda t: self.denoise(t, k))
        return s["x"]

    def denoise(self, x: Tensor, k: int) -> Tensor:
        raise NotImplementedError


@register("admm-tv", summary="scaled ADMM with per-frame TV denoising")
class AdmmTV(TVMixin, Admm):
    @dataclass
    class Params(TVParams):
        gamma: float = param(0.01, "ADMM penalty gamma of the x-update", positive=True)


@register("pnp-admm", summary="plug-and-play ADMM: any denoiser, annealed sigma schedule",
          aliases=("admm-ffdnet",))
class PnPAdmm(PnPMixin, Admm):
    @dataclass
    class Params(pnp_params()):
        gamma: float = param(0.01, "ADMM penalty gamma of the x-update", positive=True)
