"""GD-TV: accelerated gradient descent on TV-regularised least squares.

    min_x  F(x) = ||A x - y||^2 / 2 + w * sum sqrt(|grad x|^2 + eps^2)

with the smoothed isotropic TV of each frame. Nesterov's scheme with step alpha:

    x_k = z - alpha * (A^T(A z - y) + w * grad TV_eps(z)),
    z   = x_k + (k - 1) / (k + 2) * (x_k - x_{k-1})

The Lipschitz constant of grad F is at most ``||A||^2 + 8 w / eps`` (``op.norm()``); the
step is its inverse times ``step`` (1 is safe).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from scicli.physics import LinearOperator
from scicli.algorithms import nesterov
from scicli.core.params import param
from scicli.methods.base import Solver
from scicli.methods.registry import register


def tv_smooth_grad(x: Tensor, eps: float) -> Tensor:
    """Gradient of ``sum sqrt(|grad x|^2 + eps^2)`` over the last two dims: ``-div(grad x / |grad x|_eps)``."""
    gh = torch.zeros_like(x)
    gw = torch.zeros_like(x)
    gh[..., :-1, :] = x[..., 1:, :] - x[..., :-1, :]
    gw[..., :, :-1] = x[..., :, 1:] - x[..., :, :-1]
    n = torch.sqrt(gh * gh + gw * gw + eps * eps)
    gh /= n
    gw /= n
    out = -(gh + gw)  # -div of the normalised field (adjoint of the forward differences)
    out[..., 1:, :] += gh[..., :-1, :]
    out[..., :, 1:] += gw[..., :, :-1]
    return out


@register("gd-tv", summary="Nesterov-accelerated gradient descent on least squares + smoothed TV")
class GdTV(Solver):
    @dataclass
    class Params:
        iters: int = param(200, "gradient iterations", low=1)
        tv_weight: float = param(0.02, "TV weight w (data on [0, 1])", positive=True)
        eps: float = param(0.02, "TV smoothing eps", positive=True)
        step: float = param(1.0, "step as a fraction of 1 / L, L = ||A||^2 + 8 w / eps", positive=True)
        accelerate: bool = param(True, "Nesterov momentum")
        tol: float = param(0.0, "stop when ||x_k - x_k-1|| / ||x_k-1|| < tol (0: run all iterations)", low=0)

    def init(self, op: LinearOperator, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        x = op.A_dagger(y) if x0 is None else x0.clone()
        L = op.norm() + 8 * self.params.tv_weight / self.params.eps
        return {"op": op, "y": y, "x": x, "z": x, "alpha": self.params.step / L}

    def step(self, s: dict[str, Any], k: int) -> Tensor:
        p, op, z = self.params, s["op"], s["z"]
        grad = op.A_adjoint(op.A(z) - s["y"]) + p.tv_weight * tv_smooth_grad(z, p.eps)
        x = z - s["alpha"] * grad
        s["z"] = nesterov(x, s["x"], k) if p.accelerate else x
        s["x"] = x
        return x
