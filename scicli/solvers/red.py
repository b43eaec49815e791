"""RED: regularisation by denoising (Romano, Elad, Milanfar 2017).

    min_x  ||A x - y||_W^2 / 2 + tau/2 <x, x - D(x)>,   W = R^{-1} = (A A^T)^{-1},

whose gradient (for a denoiser with a symmetric Jacobian) is ``A^T W (A x - y) + tau (x - D(x))``.
Weighting by ``R^{-1}`` makes ``P = A^T W A`` the projector onto the row space of A. Two schemes:

* ``fixed-point`` (default): solve the optimality condition for x with D(x) frozen,
  ``x = (P + tau I)^{-1} (A^T W y + tau D(x_k))``, which in closed form is
  ``v = D(x_k, sigma_k);  x_{k+1} = v + A^T((y - A v) / R) / (1 + tau)``
  (a GAP step damped by 1 / (1 + tau); tau -> 0 gives plain GAP).
* ``gradient``: Nesterov-accelerated steps ``x = z - eta (A^T W (A z - y) + tau (z - D(z)))``
  with ``eta = step / (1 + tau)``, the inverse Lipschitz bound; slower (the null space of A
  moves only through the prior term).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from scicli.errors import UsageError
from scicli.physics import VideoSCI
from scicli.solvers.base import Solver, param
from scicli.solvers.pnp import PnPMixin, denoiser_dtype, pnp_params
from scicli.solvers.registry import register

SCHEMES = ("fixed-point", "gradient")


@register("red", summary="regularisation by denoising (fixed-point or Nesterov gradient scheme)")
class Red(PnPMixin, Solver):
    @dataclass
    class Params(pnp_params()):
        tau: float = param(0.1, "weight tau of the RED prior", positive=True)
        scheme: str = param("fixed-point", "fixed-point or gradient")
        step: float = param(1.0, "gradient scheme: step as a fraction of 1 / (1 + tau)", positive=True)

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        if self.params.scheme not in SCHEMES:
            raise UsageError(f"parameter 'scheme' must be one of {', '.join(SCHEMES)}, got '{self.params.scheme}'")

    def init(self, op: VideoSCI, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        self.denoiser.to(y.device, denoiser_dtype(self.params.precision, y))
        x = op.A_dagger(y) if x0 is None else x0.clone()
        return {"op": op, "y": y, "x": x, "z": x}

    def step(self, s: dict[str, Any], k: int) -> Tensor:
        p, op, y = self.params, s["op"], s["y"]
        if p.scheme == "fixed-point":
            v = self.denoise(s["x"], k)
            s["x"] = v + op.A_adjoint((y - op.A(v)) / op.R) / (1.0 + p.tau)
            return s["x"]
        z = s["z"]
        grad = op.A_adjoint((op.A(z) - y) / op.R) + p.tau * (z - self.denoise(z, k))
        x = z - p.step / (1.0 + p.tau) * grad
        s["z"] = x + (k - 1) / (k + 2) * (x - s["x"])
        s["x"] = x
        return x
