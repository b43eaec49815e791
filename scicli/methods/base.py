"""Common machinery of iterative solvers: parameters, the iteration loop, history, stopping.

A solver declares its hyper-parameters as a dataclass ``Params`` (with a ``help`` string in
each field's metadata) and implements ``init`` and ``step``; :meth:`Solver.solve` runs the loop

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
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from scicli.core.params import check_range, coerce
from scicli.core.errors import DataError, UsageError
from scicli.metrics import frame_psnr
from scicli.physics import LinearOperator


@dataclass
class Result:
    """Solver output: the estimate (N, B, H, W) and what happened on the way."""

    x: Tensor
    history: list[dict[str, float]]
    iterations: int
    converged: bool


Callback = Callable[[int, int, dict[str, float]], None]  # (iteration, total, record)

HISTORY_LIMIT = 1000
"""Records a :class:`History` keeps at most (plus the last one)."""


class Diverged(DataError):
    """The iterate became NaN/Inf (exit code 1); ``iteration`` is where it was noticed."""

    def __init__(self, message: str, iteration: int) -> None:
        super().__init__(message)
        self.iteration = iteration


class History:
    """Per-iteration records in bounded memory: all of them up to ``limit``, then every
    ``stride``-th (the stride doubles each time the list is full again), and the last one."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        self.limit = max(2, int(limit))
        self.stride = 1
        self._kept: list[dict[str, float]] = []
        self._last: dict[str, float] | None = None

    def append(self, record: dict[str, float]) -> None:
        self._last = record
        if int(record["iter"]) % self.stride:
            return
        self._kept.append(record)
        if len(self._kept) > self.limit:
            self.stride *= 2
            self._kept = [r for r in self._kept if int(r["iter"]) % self.stride == 0 or r is self._kept[0]]

    def records(self) -> list[dict[str, float]]:
        """The kept records in order, ending with the last one appended."""
        if self._last is None or (self._kept and self._kept[-1] is self._last):
            return list(self._kept)
        return [*self._kept, self._last]


class Solver:
    """Base class: subclasses set ``Params`` and implement ``init`` / ``step``."""

    Params: ClassVar[type]
    trainable: ClassVar[bool] = False

    def __init__(self, **overrides: Any) -> None:
        self.params = self.make_params(overrides)

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
    def describe(cls) -> list[tuple[str, Any, str]]:
        """(name, default, help) for every hyper-parameter."""
        return [(f.name, f.default, f.metadata.get("help", "")) for f in dataclasses.fields(cls.Params)]

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
        """Reconstruct x (N, B, H, W) from snapshots y (N, H, W)."""
        iters = self.total_iters()
        tol = float(self.params.tol)
        y = y.contiguous()
        state = self.init(op, y, x0)
        y_norm = torch.linalg.vector_norm(y.flatten(1), dim=1).clamp_min(1e-12)
        history = History()
        x_prev = state["x"]
        converged = False
        start = time.perf_counter()
        k = 0
        for k in range(1, iters + 1):
            x = self.step(state, k)
            residual = torch.linalg.vector_norm((y - op.A(x)).flatten(1), dim=1) / y_norm
            change = torch.linalg.vector_norm((x - x_prev).flatten(1), dim=1) / torch.linalg.vector_norm(
                x_prev.flatten(1), dim=1
            ).clamp_min(1e-12)
            record = {"iter": k, "residual": float(residual.mean()), "change": float(change.max())}
            if gt is not None:
                record["psnr"] = float(frame_psnr(x.abs() if x.is_complex() else x,
                                                  gt.abs() if gt.is_complex() else gt).mean())
            record["time"] = time.perf_counter() - start
            history.append(record)
            if callback is not None:
                callback(k, iters, record)
            if not math.isfinite(record["residual"]) or not bool(torch.isfinite(x).all()):
                raise Diverged(f"the iterate became NaN/Inf at iteration {k}", k)
            x_prev = x
            if tol > 0 and record["change"] < tol:
                converged = True
                break
        return Result(x=state["x"], history=history.records(), iterations=k, converged=converged)
