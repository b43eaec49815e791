"""RED: regularisation by denoising (Romano, Elad, Milanfar 2017).

    min_x  ||A x - y||_W^2 / 2 + tau/2 <x, x - D(x)>,   W = (A A^T)^{-1},

whose gradient (for a denoiser with a symmetric Jacobian) is ``A^T W (A x - y) + tau (x - D(x))``.
Weighting by ``(A A^T)^{-1}`` makes ``P = A^T W A`` the projector onto the row space of A. An
operator without a closed-form ``(A A^T)^{-1}`` is weighted by ``W = I / ||A||^2`` instead (the
same Lipschitz bound 1 for ``P``). Two schemes:

* ``fixed-point`` (default): solve the optimality condition for x with D(x) frozen,
  ``x = (P + tau I)^{-1} (A^T W y + tau D(x_k))``, which in closed form is
  ``v = D(x_k, sigma_k);  x_{k+1} = v + A^T (A A^T)^-1 (y - A v) / (1 + tau)``
  (a GAP step damped by 1 / (1 + tau); tau -> 0 gives plain GAP); with ``W = I / L`` it is
  ``prox_l2(v, y, tau L)`` (conjugate gradients).
* ``gradient``: Nesterov-accelerated steps ``x = z - eta (A^T W (A z - y) + tau (z - D(z)))``
  with ``eta = step / (1 + tau)``, the inverse Lipschitz bound; slower (the null space of A
  moves only through the prior term).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from scicli.core.errors import UsageError
from scicli.physics import LinearOperator
from scicli.algorithms import nesterov, red_fixed_point, red_gradient
from scicli.core.params import param
from scicli.methods.base import Solver
from scicli.methods.pnp import PnPMixin, denoiser_dtype, pnp_params
from scicli.methods.registry import register

SCHEMES = ("fixed-point", "gradient")


@register("red", summary="regularisation by denoising (fixed-point or Nesterov gradient scheme); for video SCI "
                         "prefer pnp-gap: with the default tau it is 4 dB below it on drop40 and can fall below "
                         "gap-tv on unseen scenes (docs/benchmarks-validation.md)")
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

    def init(self, op: LinearOperator, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        self.denoiser.to(y.device, denoiser_dtype(self.params.precision, y))
        x = op.A_dagger(y) if x0 is None else x0.clone()
        L = None if op.has_gram_inverse else op.norm(like=x)
        return {"op": op, "y": y, "x": x, "z": x, "L": L}

    def step(self, s: dict[str, Any], k: int) -> Tensor:
        p, op, y, L = self.params, s["op"], s["y"], s["L"]
        if p.scheme == "fixed-point":
            s["x"] = red_fixed_point(op, y, self.denoise(s["x"], k), p.tau, L)
            return s["x"]
        z = s["z"]
        x = z - p.step / (1.0 + p.tau) * red_gradient(op, z, y, self.denoise(z, k), p.tau, L)
        s["z"] = nesterov(x, s["x"], k)
        s["x"] = x
        return x
