"""GAP: generalized alternating projection with a denoiser (Yuan 2016; PnP-GAP, Yuan et al. 2020).

Accelerated GAP, the form of every reference code:

    y1 <- y1 + (y - A v)
    x  <- v + lambda * A^T (A A^T)^-1 (y1 - A v)     (projection towards {A x = y1})
    v  <- D(x, sigma_k)                              (TV, or a learned denoiser: plug-and-play)

With ``accelerate=False`` the plain projection ``x = v + lambda * A^T (A A^T)^-1 (y - A v)`` is used,
which gives ``A x = y`` exactly for lambda = 1. GAP needs the closed-form ``(A A^T)^-1``
(diagonal for video SCI, CASSI and MRI): an operator without it is refused in one line. ``gap-tv`` denoises with TV of weight w;
``pnp-gap`` with any registered denoiser and an annealed sigma schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from scicli.algorithms import gap_step
from scicli.physics import LinearOperator
from scicli.core.params import param
from scicli.methods.base import Solver
from scicli.methods.pnp import PnPMixin, pnp_params
from scicli.methods.registry import register
from scicli.methods.tvprior import TVMixin, TVParams


class Gap(Solver):
    """The GAP iteration; subclasses provide ``denoise(x, k)``."""

    def init(self, op: LinearOperator, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        op.require_gram_inverse("GAP")
        acc = self.params.accelerate
        if x0 is None:  # the reference codes' start: v = A^T y (op.start), empty residual accumulator (e = -y)
            return {"op": op, "y": y, "x": op.start(y), "e": -y if acc else None}
        # a warm start: e = 0 makes a consistent estimate (A v = y) a fixed point of the projection
        return {"op": op, "y": y, "x": x0.clone(), "e": torch.zeros_like(y) if acc else None}

    def step(self, s: dict[str, Any], k: int) -> Tensor:
        v, s["e"] = gap_step(s["op"], s["x"], s["y"], s["e"], self.params.step)
        s["x"] = self.denoise(v, k)
        return s["x"]

    def denoise(self, x: Tensor, k: int) -> Tensor:
        raise NotImplementedError


@register("gap-tv", summary="accelerated GAP with per-frame TV denoising (the field's default baseline)")
class GapTV(TVMixin, Gap):
    @dataclass
    class Params(TVParams):
        step: float = param(1.0, "projection step lambda", positive=True)
        accelerate: bool = param(True, "accumulate the residual (accelerated GAP)")


@register("pnp-gap", summary="plug-and-play GAP: any denoiser, annealed sigma schedule",
          aliases=("gap-ffdnet",))
class PnPGap(PnPMixin, Gap):
    @dataclass
    class Params(pnp_params()):
        step: float = param(1.0, "projection step lambda", positive=True)
        accelerate: bool = param(True, "accumulate the residual (accelerated GAP)")
