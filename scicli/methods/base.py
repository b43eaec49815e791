"""Common machinery of iterative solvers: parameters, the iteration loop, history, stopping.

A solver declares its hyper-parameters as a dataclass ``Params`` (with a ``help`` string in
each field's metadata) and implements ``init`` and ``step``; :meth:`Solver.solve` runs the loop
(:func:`scicli.methods.runners.iterate`)

    state = init(op, y, x0);  repeat: x_k = step(state)  until k = iters or
    ||x_k - x_{k-1}|| / ||x_{k-1}|| < tol  (for every measurement of the batch: a batch stops
                                          when its slowest measurement has converged)

and records, per iteration, the relative residual ``||y - A x|| / ||y||`` and, when the ground
truth is given, the mean per-frame PSNR (frames clipped to [0, 1]; of the magnitudes ``|x|``,
``|gt|`` for complex images). The history is bounded (:class:`History`: every record of the
first iterations, then ever sparser ones, and always the last), so a huge ``--iters`` costs no
memory. An iterate that becomes NaN/Inf ends the solve with :class:`Diverged` (exit code 1):
a non-finite result is never returned.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import Tensor

from scicli.core.params import check_range, coerce, from_command_line, to_command_line
from scicli.core.errors import UsageError
from scicli.methods.runners import Callback, Diverged, History, Result, iterate
from scicli.physics import LinearOperator

__all__ = ["Callback", "Diverged", "History", "Result", "Solver"]


class Solver:
    """Base class: subclasses set ``Params`` and implement ``init`` / ``step``."""

    Params: ClassVar[type]
    trainable: ClassVar[bool] = False
    linear: ClassVar[bool] = False
    """True for a one-pass linear reconstruction (no iterations to set)."""

    @classmethod
    def applies_to(cls, op: LinearOperator) -> bool:
        """Whether the method runs on this operator (a method needing more than the contract,
        e.g. FBP, says no where it does not; GAP's need of (A A^T)^-1 is checked by the operator)."""
        return True

    method_name: ClassVar[str] = ""
    """The registered name (set by :func:`scicli.methods.registry.register`)."""

    def __init__(self, **overrides: Any) -> None:
        self.params = self.make_params(overrides)
        self.given = set(overrides)  # what the user set; an operator's method_defaults fill the rest
        self.base_params = self.params

    def params_for(self, op: LinearOperator) -> Any:
        """The parameters of a solve on ``op``: the operator's ``method_defaults`` for this method
        in place of the generic defaults the user did not override."""
        chosen = {k: v for k, v in type(op).method_defaults.get(self.method_name, {}).items() if k not in self.given}
        return dataclasses.replace(self.base_params, **chosen) if chosen else self.base_params

    @classmethod
    def make_params(cls, overrides: dict[str, Any]) -> Any:
        """Build ``Params`` from user overrides; unknown names or bad values are UsageErrors."""
        fields = {f.name: f for f in dataclasses.fields(cls.Params)}
        values = {}
        for name, value in overrides.items():
            if name not in fields:
                raise UsageError(
                    f"parameter '{name}' does not apply to this method (its parameters: {', '.join(fields)})"
                )
            values[name] = coerce(name, value, type(fields[name].default))
        for name, f in fields.items():
            check_range(name, values.get(name, f.default), f.metadata)
        return cls.Params(**values)

    @classmethod
    def from_command_line(cls, **overrides: Any) -> "Solver":
        """The solver of parameters as typed on the command line (noise levels on 0..255)."""
        return cls(**from_command_line(cls.Params, overrides))

    def command_line_params(self) -> dict[str, Any]:
        """The parameters as the command line quotes them (for reports and reproducing commands)."""
        return to_command_line(self.params)

    @classmethod
    def describe(cls) -> list[tuple[str, Any, str]]:
        """(name, default as the command line quotes it, help) for every hyper-parameter."""
        defaults = to_command_line(cls.Params())
        return [(f.name, defaults[f.name], f.metadata.get("help", "")) for f in dataclasses.fields(cls.Params)]

    def total_iters(self) -> int:
        """Number of iterations the loop runs at most."""
        return int(self.params.iters)

    # -- to implement -----------------------------------------------------------------
    def init(self, op: LinearOperator, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        raise NotImplementedError

    def step(self, state: dict[str, Any], k: int) -> Tensor:
        raise NotImplementedError

    # -- the loop ---------------------------------------------------------------------
    @torch.no_grad()
    def solve(
        self,
        op: LinearOperator,
        y: Tensor,
        *,
        x0: Tensor | None = None,
        gt: Tensor | None = None,
        callback: Callback | None = None,
    ) -> Result:
        """Reconstruct x (N, *x_shape) from measurements y (N, *meas_shape): :func:`iterate` over
        :meth:`step` from :meth:`init`'s state."""
        y = y.contiguous()
        self.params = self.params_for(op)  # kept after the solve: the report shows what was used
        state = self.init(op, y, x0)
        return iterate(lambda k: self.step(state, k), state["x"], op, y, iters=self.total_iters(),
                       tol=float(self.params.tol), gt=gt, callback=callback)
