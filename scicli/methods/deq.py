"""Learned reconstruction: deep-equilibrium and unrolled GAP networks trained by ``scicli train``.

    deq-gap       (x*, e*) = accelerated GAP step with D = FFDNet(., sigma) - N   fixed point (Anderson)
    deq-rnn       (x*, h*) = RNN(x*, h*; y, A)                                     fixed point (Anderson)
    unrolled-gap  K steps of the deq-gap map                                       (GAP-net style)

The weights file (``--weights RUN/best.pt``, or ``scicli/weights/<method>.pt`` when scicli ships
one) holds the method, the network and the number of frames B it was trained for; the
fixed-point settings below override the ones stored with it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from scicli.core.errors import UsageError
from scicli.fixedpoint import make_options, settings_options
from scicli.physics import VideoSCI
from scicli.core.params import param
from scicli.metrics import frame_psnr
from scicli.methods.base import Callback, Result, Solver
from scicli.methods.deq_models import DEFAULT_SOLVE, INFERENCE_KEYS
from scicli.methods.registry import register
from scicli.weights.store import load_model


def load_reconstructor(method: str, weights: str | Path | None) -> torch.nn.Module:
    """The eval-mode network of ``weights`` (a checkpoint file or run directory, default: the
    shipped file) for ``method``."""
    return load_model(method, weights, option="--weights RUN/best.pt")


class LearnedSolver(Solver):
    """Runs a trained reconstruction network; no per-iteration callback granularity beyond the
    solver's record (the history lists the fixed-point residual per evaluation)."""

    method: ClassVar[str] = ""
    trainable = True

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)
        self.given = set(overrides)  # what the user set; the rest comes from the weights' settings
        if hasattr(self.params, "solver"):  # fixed-point options checked before any data is read
            st = {**DEFAULT_SOLVE, "max_iter": 1, **self.settings()}
            make_options(st["solver"], **settings_options(st, st["tol"], st["max_iter"]))
        self.model = load_reconstructor(self.method, self.params.weights)

    def settings(self) -> dict[str, Any]:
        """The fixed-point settings the user gave (-p solver= max_iter= tol= m= lam= beta=,
        iters=); everything else is what was stored with the weights."""
        p = self.params
        out = {k: getattr(p, k) for k in (*INFERENCE_KEYS, "iters") if k in self.given and hasattr(p, k)}
        if not out.get("max_iter", 1):  # max_iter=0: the stored budget
            del out["max_iter"]
        if not out.get("iters", 1):
            del out["iters"]
        return out

    def effective_settings(self) -> dict[str, Any]:
        """The settings a solve uses: those stored with the weights, updated by the user's."""
        return {**self.model.config["solve"], **self.settings()}

    def total_iters(self) -> int:
        used = self.effective_settings()
        return int(used.get("iters", 10)) if hasattr(self.params, "iters") else int(used["max_iter"])

    @torch.no_grad()
    def solve(self, op: VideoSCI, y: Tensor, *, x0: Tensor | None = None, gt: Tensor | None = None,
              callback: Callback | None = None) -> Result:
        if not isinstance(op, VideoSCI):
            raise UsageError(f"{self.method} is a video-sci network; it does not apply to operator '{op.name}'")
        if op.frames != self.model.frames:
            raise UsageError(f"{self.method} weights are for B={self.model.frames} frames per snapshot; "
                             f"this mask has B={op.frames} (train weights for it with --frames {op.frames})")
        model = self.model.to(device=y.device, dtype=y.dtype)
        z0 = None if x0 is None else model.lift(x0.to(y.dtype))
        x, info = model(y, op, solve=self.settings(), z0=z0)
        history = []
        for k, r in enumerate(info.residuals, start=1):
            history.append({"iter": k, "fixed_point_residual": r})
        if gt is not None and history:
            history[-1]["psnr"] = float(frame_psnr(x, gt).mean())
        if callback is not None:
            total = max(len(history), 1)
            for k, rec in enumerate(history, start=1):
                callback(k, total, rec)
        if info.diverged:
            warnings.warn(f"{self.method}: the fixed-point solve stopped early ({info.diverged}); "
                          f"returning the best iterate (step {info.best_step})", RuntimeWarning, stacklevel=2)
        return Result(x=x, history=history, iterations=info.steps, converged=info.converged)


def deq_params() -> type:
    stored = "; default: as stored with the weights"

    @dataclass
    class DEQParams:
        weights: str = param("", "trained weights (a scicli train checkpoint; default: the shipped file)")
        solver: str = param("anderson", "fixed-point solver: anderson, broyden or fixed-point" + stored)
        max_iter: int = param(0, "most evaluations of the map (0: the budget stored with the weights)", low=0)
        tol: float = param(1e-3, "stop at relative residual ||f(z) - z|| / ||f(z)|| <= tol" + stored, low=0)
        m: int = param(5, "Anderson history size" + stored, low=1)
        lam: float = param(1e-4, "Anderson regularisation (relative)" + stored, low=0)
        beta: float = param(1.0, "relaxation: z <- (1 - beta) z + beta f(z) (mixed, for Anderson)" + stored,
                            positive=True)

    return DEQParams


@register("deq-gap", summary="deep-equilibrium accelerated GAP with FFDNet and a trained joint-frame correction",
          trainable=True)
class DEQGapSolver(LearnedSolver):
    method = "deq-gap"
    Params = deq_params()


@register("deq-rnn", summary="deep-equilibrium recurrent cell in a GAP-TV step, seeing x, y and the masks",
          trainable=True)
class DEQRnnSolver(LearnedSolver):
    method = "deq-rnn"
    Params = deq_params()


@register("unrolled-gap", summary="K unrolled GAP steps with a trained denoiser (GAP-net style, scicli train)",
          trainable=True)
class UnrolledGapSolver(LearnedSolver):
    method = "unrolled-gap"

    @dataclass
    class Params:
        weights: str = param("", "trained weights (a scicli train checkpoint; default: the shipped file)")
        iters: int = param(0, "unrolled steps (0: as trained)", low=0)

