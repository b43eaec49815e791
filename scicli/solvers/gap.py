"""GAP-TV: generalized alternating projection with a TV denoiser (Yuan 2016).

Accelerated GAP, the form of every reference code:

    y1 <- y1 + (y - A v)
    x  <- v + lambda * A^T((y1 - A v) / R)          (projection towards {A x = y1})
    v  <- D_TV(x, w)                                 (w: TV weight)

With ``accelerate=False`` the plain projection ``x = v + lambda * A^T((y - A v) / R)`` is used,
which gives ``A x = y`` exactly for lambda = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from scicli.denoisers.tv import tv_chambolle
from scicli.physics import VideoSCI
from scicli.solvers.base import Solver, param
from scicli.solvers.registry import register


@register("gap-tv", summary="accelerated GAP with per-frame TV denoising (the field's default baseline)")
class GapTV(Solver):
    @dataclass
    class Params:
        iters: int = param(40, "outer iterations", low=1)
        tv_weight: float = param(0.3, "TV weight w of the denoising step (data on [0, 1])", positive=True)
        tv_iters: int = param(5, "Chambolle iterations per denoising step", low=0)
        step: float = param(1.0, "projection step lambda", positive=True)
        accelerate: bool = param(True, "accumulate the residual (accelerated GAP)")
        tol: float = param(0.0, "stop when ||x_k - x_k-1|| / ||x_k-1|| < tol (0: run all iterations)", low=0)

    def init(self, op: VideoSCI, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        v = op.A_adjoint(y) if x0 is None else x0.clone()
        return {"op": op, "y": y, "x": v, "y1": y.new_zeros(y.shape)}

    def step(self, s: dict[str, Any], k: int) -> Tensor:
        p, op, y, v = self.params, s["op"], s["y"], s["x"]
        Av = op.A(v)
        if p.accelerate:
            s["y1"] += y - Av
            x = v + p.step * op.A_adjoint((s["y1"] - Av) / op.R)
        else:
            x = v + p.step * op.A_adjoint((y - Av) / op.R)
        s["x"] = tv_chambolle(x, p.tv_weight, n_iter=p.tv_iters)
        return s["x"]
