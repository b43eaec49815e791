"""The three ways a method runs its iteration, written once.

    iterate       the classical loop: no autograd, ``x_k = step(k)`` until k = iters or
                  ``||x_k - x_{k-1}|| / ||x_{k-1}|| < tol`` for every measurement of the batch,
                  with a per-iteration record (residual ``||y - A x|| / ||y||``, change, PSNR
                  against a given ground truth, seconds)
    unroll        K applications ``z_{k+1} = f(z_k)`` recorded for backprop (unrolled networks)
    equilibrium   the fixed point ``z* = f(z*)`` by a fixed-point solver without autograd, then
                  one recorded application whose gradient is the implicit one (deep equilibrium)

The steps themselves are :mod:`scicli.algorithms`'; a method chooses its runner.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from scicli.core.errors import DataError
from scicli.fixedpoint import Info, attach_gradient, make_solver, relative_residual, settings_options, solve_fixed_point
from scicli.metrics import frame_psnr
from scicli.physics import LinearOperator

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


@dataclass
class Result:
    """A reconstruction and what happened on the way."""

    x: Tensor
    history: list[dict[str, float]]
    iterations: int
    converged: bool
    diagnostics: dict[str, Any] = field(default_factory=dict)
    """Method-specific facts for the report (e.g. a DEQ's fixed-point residual and Lipschitz estimates)."""


def _norms(t: Tensor) -> Tensor:
    return torch.linalg.vector_norm(t.flatten(1), dim=1)


@torch.no_grad()
def iterate(step: Callable[[int], Tensor], x0: Tensor, op: LinearOperator, y: Tensor, *, iters: int,
            tol: float = 0.0, gt: Tensor | None = None, callback: Callback | None = None) -> Result:
    """Run ``x_k = step(k)``, k = 1..iters, from ``x0``; stop early at relative change < ``tol``
    (0: never); a non-finite iterate raises :class:`Diverged` (nothing passes NaN off as a
    result). The history keeps every record up to ``HISTORY_LIMIT``, then ever sparser ones
    (:class:`History`: bounded memory for any ``iters``). The record of iteration k holds ``iter``,
    ``residual`` (mean over the batch), ``change`` (max over the batch), ``psnr`` (mean per-frame
    PSNR against ``gt``, of the magnitudes for complex images), ``time``, and per measurement of
    the batch ``residual_each`` and ``psnr_each`` (lists, for one convergence line per measurement)."""
    y_norm = _norms(y).clamp_min(1e-12)
    history = History()
    x = x_prev = x0
    converged = False
    start = time.perf_counter()
    k = 0
    for k in range(1, iters + 1):
        x = step(k)
        residual = _norms(y - op.A(x)) / y_norm
        change = _norms(x - x_prev) / _norms(x_prev).clamp_min(1e-12)
        record: dict[str, Any] = {"iter": k, "residual": float(residual.mean()), "change": float(change.max()),
                                  "residual_each": residual.tolist()}
        if gt is not None:
            each = frame_psnr(x.abs() if x.is_complex() else x, gt.abs() if gt.is_complex() else gt)
            record["psnr"] = float(each.mean())
            record["psnr_each"] = each.mean(dim=tuple(range(1, each.ndim))).tolist()
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
    return Result(x=x, history=history.records(), iterations=k, converged=converged)


def unroll(f: Callable[[Tensor], Tensor], z0: Tensor, steps: int) -> tuple[Tensor, Info]:
    """``f`` applied ``steps`` times from ``z0`` with autograd (when it is on): the unrolled network.
    The record lists the relative change of every step; a fixed number of steps is the method
    itself, so the result counts as converged."""
    info = Info()
    z = z0
    for _ in range(int(steps)):
        fz = f(z)
        info.residuals.append(float(relative_residual(fz.detach(), z.detach()).max()))
        info.steps += 1
        z = fz
    info.best_step = info.steps
    info.converged = True
    return z, info


def equilibrium(f: Callable[[Tensor], Tensor], z0: Tensor, settings: dict[str, Any]) -> tuple[Tensor, Info]:
    """The fixed point of ``f`` from ``z0`` with the fixed-point ``settings`` (solver, max_iter,
    tol, backward, backward_max_iter, backward_tol and the solver's own options); its gradient is
    the ``backward`` one (implicit, neumann:K or jfb). ``max_iter = 0``: the first application
    alone, recorded (training on the first iterate)."""
    s = settings
    if int(s["max_iter"]) == 0:
        return attach_gradient(f, z0, "jfb"), Info(steps=1)
    solver = make_solver(s["solver"], **settings_options(s, s["tol"], s["max_iter"]))
    back = make_solver(s["solver"], **settings_options(s, s["backward_tol"], s["backward_max_iter"]))
    return solve_fixed_point(f, z0, solver, s["backward"], back)
