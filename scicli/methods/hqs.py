"""HQS with a denoiser: plug-and-play half-quadratic splitting (IRCNN, Zhang et al. 2017).

    x <- prox_l2(v, y, gamma) = v + A^T (A A^T + gamma)^-1 (y - A v)   (conjugate gradients without
                                                                     a closed form)
    v <- D(x, sigma_k)                                                (annealed sigma schedule)

ADMM without the multiplier (:func:`scicli.algorithms.hqs_step`); the output is v. Without the
multiplier (or GAP's accumulated residual) nothing pulls the iterate back onto the measurements
when the prior moves it off: on a video-SCI crop (DAVIS car-shadow, 128 x 128, B = 8, random
mask, FFDNet, default schedule; a validation clip) pnp-hqs gave 23.0 dB, pnp-gap 25.9 and
pnp-admm 26.6. It is here as the field's third splitting; prefer pnp-admm or pnp-gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from scicli.algorithms import hqs_step
from scicli.core.params import param
from scicli.methods.base import Solver
from scicli.methods.pnp import PnPMixin, denoiser_dtype, pnp_params
from scicli.methods.registry import register
from scicli.physics import LinearOperator


@register("pnp-hqs", summary="plug-and-play half-quadratic splitting: any denoiser, annealed sigma schedule")
class PnPHqs(PnPMixin, Solver):
    @dataclass
    class Params(pnp_params()):
        gamma: float = param(0.01, "penalty gamma of the x-update", positive=True)

    def init(self, op: LinearOperator, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        self.denoiser.to(y.device, denoiser_dtype(self.params.precision, y))
        return {"op": op, "y": y, "x": op.start(y) if x0 is None else x0.clone()}

    def step(self, s: dict[str, Any], k: int) -> Tensor:
        s["x"] = hqs_step(s["op"], s["x"], s["y"], self.params.gamma, lambda t: self.denoise(t, k))
        return s["x"]
