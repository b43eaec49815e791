"""Plug-and-play pieces shared by PnP solvers: the denoiser and its sigma schedule.

The field anneals the noise level: e.g. FFDNet with sigma = 50, 25, 12, 6 (/255) for 10
iterations each. ``sigma`` (noise levels on [0, 1]; 0..255 on the command line) and ``iters``
are lists of equal length; iteration k uses ``sigma_j`` for the j-th block of ``iters_j``
iterations. One ``iters`` count with the default levels (no ``sigma`` given) means that many
iterations at every level (``--iters 3``: 3,3,3,3).
"""

from __future__ import annotations

import bisect
import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from scicli.priors import DENOISERS
from scicli.core.errors import UsageError
from scicli.physics import LinearOperator
from scicli.core.params import param
from scicli.core.units import level


PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def denoiser_dtype(precision: str, y: Tensor) -> torch.dtype:
    """The denoiser's dtype: half precision on CUDA for 'auto'; the iterate keeps y's dtype
    (a complex y, k-space, means its real dtype: complex images are denoised as real channels)."""
    if precision == "auto":
        if y.device.type == "cuda":
            return torch.float16
        return y.real.dtype if y.is_complex() else y.dtype
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def pnp_params(sigmas: tuple = (50.0, 25.0, 12.0, 6.0), blocks: tuple = (10.0, 10.0, 10.0, 10.0)) -> type:
    """The dataclass of parameters every PnP solver has (extended by each solver)."""

    @dataclass
    class PnPParams:
        denoiser: str = param("ffdnet", "denoiser D(x, sigma) (tv, ffdnet, ...)")
        sigma: tuple = param(tuple(level(s) for s in sigmas),
                             "noise levels (0..255 on the command line), one per block (for tv: the TV weight)",
                             level=True)
        iters: tuple = param(blocks, "iterations per sigma block")
        weights: str = param("", "weights file for the denoiser (default: the shipped or packaged one)")
        precision: str = param("auto", "denoiser arithmetic: auto (fp16 on CUDA, fp32 on CPU), fp32, fp16, "
                                       "bf16 (bf16 costs ~11 dB with FFDNet: avoid)")
        tol: float = param(0.0, "stop when ||x_k - x_k-1|| / ||x_k-1|| < tol (0: run all iterations)", low=0)

    return PnPParams


class SigmaSchedule:
    """The noise level of each iteration, computed when asked: block j of ``iters[j]``
    iterations uses ``sigma[j]`` (on [0, 1]). Holds one number per block, never one per iteration
    (``--iters 1000000000`` costs nothing)."""

    def __init__(self, sigmas: tuple, iters: tuple) -> None:
        self.levels = [float(s) for s in sigmas]
        self.ends: list[int] = []
        total = 0
        for n in iters:
            total += int(n)
            self.ends.append(total)

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def __getitem__(self, index: int) -> float:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"iteration {index} is outside the schedule of {len(self)}")
        return self.levels[bisect.bisect_right(self.ends, index)]


class PnPMixin:
    """Builds the denoiser (early, so missing weights fail before any work) and the schedule."""

    params: Any

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)  # type: ignore[call-arg]
        p = self.params
        levels = ",".join(f"{s * 255:g}" for s in p.sigma)
        if len(p.iters) == 1 and len(p.sigma) > 1 and "sigma" not in overrides:
            p.iters = tuple(p.iters) * len(p.sigma)  # one count, default levels: that many at every level
        if len(p.sigma) != len(p.iters):
            raise UsageError(f"--sigma has {len(p.sigma)} levels ({levels} on 0..255) but --iters has "
                             f"{len(p.iters)} entries: give one count per level, e.g. --iters "
                             f"{','.join([str(int(p.iters[0]))] * len(p.sigma))}")
        if any(not math.isfinite(s) or s <= 0 for s in p.sigma) or any(
            not math.isfinite(n) or int(n) != n or n < 1 for n in p.iters
        ):
            raise UsageError("--sigma levels must be > 0 and --iters entries whole numbers >= 1")
        self.schedule = SigmaSchedule(p.sigma, p.iters)
        if p.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got '{p.precision}'")
        entry = DENOISERS.get(p.denoiser)
        if p.weights and "weights" not in inspect.signature(entry.factory).parameters:
            raise UsageError(f"denoiser '{p.denoiser}' takes no weights file")
        self.denoiser = entry.factory(weights=p.weights) if p.weights else entry.factory()

    def total_iters(self) -> int:
        return len(self.schedule)

    def init(self, op: LinearOperator, y: Tensor, x0: Tensor | None) -> dict[str, Any]:
        self.denoiser.to(y.device, denoiser_dtype(self.params.precision, y))
        return super().init(op, y, x0)  # type: ignore[misc]

    def denoise(self, x: Tensor, k: int) -> Tensor:
        return self.denoiser(x, self.schedule[k - 1])
