"""FBP: filtered back-projection, the linear reconstruction of tomography (the ``ct`` operator).

    x = (pi / 2V) A^T (h * y)        h: the ramp filter, optionally windowed (shepp-logan, hann)

One pass, no iterations; the operator must provide ``fbp`` (a one-line refusal otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from scicli.core.errors import UsageError
from scicli.core.params import param
from scicli.methods.base import Solver
from scicli.methods.registry import register
from scicli.physics import LinearOperator

FILTERS = ("ramp", "shepp-logan", "hann")


@register("fbp", summary="filtered back-projection (ct): ramp, shepp-logan or hann filter")
class FBP(Solver):
    linear = True

    @dataclass
    class Params:
        filter: str = param("ramp", "the ramp filter's window: ramp (none), shepp-logan or hann", choices=FILTERS)
        tol: float = param(0.0, "unused (one pass)", low=0)

    @classmethod
    def applies_to(cls, op: LinearOperator) -> bool:
        return callable(getattr(op, "fbp", None))

    def total_iters(self) -> int:
        return 1

    def init(self, op: LinearOperator, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        if not self.applies_to(op):
            raise UsageError(f"fbp is the reconstruction of tomography; operator '{op.name}' has no "
                             f"filtered back-projection (use a method of scicli methods)")
        return {"x": op.fbp(y, self.params.filter)}

    def step(self, s: dict[str, Any], k: int) -> Tensor:
        return s["x"]
