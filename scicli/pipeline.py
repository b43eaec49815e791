"""Run a solver over all measurements of a problem, in batches, on a device."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

import scicli
from scicli.core import threads
from scicli.core.device import describe
from scicli.metrics import frame_metrics
from scicli.data.problem import Problem
from scicli.core.errors import DataError
from scicli.methods import Solver
from scicli.methods.base import Diverged

Progress = Callable[[int, int, dict[str, float]], None]  # (measurements done, iteration, record)


@dataclass
class Reconstruction:
    """Estimates (K, C, H, W) on [0, 1] (C frames, bands or channels) with per-batch solver statistics."""

    x: np.ndarray
    batches: list[dict[str, Any]]
    seconds: float


def reconstruct(
    problem: Problem,
    solver: Solver,
    device: torch.device,
    *,
    batch_size: int = 8,
    x0: np.ndarray | None = None,
    on_iteration: Progress | None = None,
    on_batch: Callable[[dict[str, Any]], None] | None = None,
) -> Reconstruction:
    """Reconstruct all K measurements, ``batch_size`` at a time, each batch one solver call."""
    K = problem.meas.shape[0]
    out: np.ndarray | None = None
    batches = []
    start = time.perf_counter()
    for lo in range(0, K, batch_size):
        hi = min(lo + batch_size, K)
        op = problem.operator_for(lo, hi).to(device)  # one instance for all batches unless arrays are per measurement
        y = torch.from_numpy(problem.meas[lo:hi]).to(device)
        gt = None if problem.orig is None else torch.from_numpy(problem.orig[lo:hi]).to(device)
        init = None if x0 is None else torch.from_numpy(x0[lo:hi]).to(device)
        t0 = time.perf_counter()
        callback = None if on_iteration is None else (lambda k, n, rec, lo=lo: on_iteration(lo, k, rec))
        try:
            result = solver.solve(op, y, x0=init, gt=gt, callback=callback)
        except Diverged as exc:
            raise DataError(f"{exc} (measurements {lo}..{hi - 1}); likely cause: {likely_cause(problem)}") from None
        x = result.x.detach().cpu()
        x = x.to(torch.complex64 if x.is_complex() else torch.float32).numpy()
        if not np.isfinite(x).all():  # e.g. a float32 overflow in the last step, or a learned method
            raise DataError(f"the result of measurements {lo}..{hi - 1} holds NaN/Inf values; "
                            f"likely cause: {likely_cause(problem)}")
        if out is None:
            out = np.empty((K, *x.shape[1:]), dtype=x.dtype)
        out[lo:hi] = x
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        record = {
            "measurements": [lo, hi],
            "iterations": result.iterations,
            "converged": result.converged,
            "seconds": time.perf_counter() - t0,
            "history": result.history,
            **({"diagnostics": result.diagnostics} if result.diagnostics else {}),
        }
        batches.append(record)
        if on_batch is not None:
            on_batch(record)
    assert out is not None  # K >= 1
    return Reconstruction(x=out, batches=batches, seconds=time.perf_counter() - start)


def likely_cause(problem: Problem) -> str:
    """The likeliest reason a solve went non-finite, from the magnitudes of its inputs."""
    tops = {role: float(np.abs(arr).max()) for role, arr in problem.arrays.items() if arr.size}
    role, top = max(tops.items(), key=lambda item: item[1], default=("mask", 0.0))
    y_top = float(np.abs(problem.meas).max()) if problem.meas.size else 0.0
    if top > 1e3:
        return f"the {role} values reach {top:.3g}, far outside [0, 1]: rescale the {role}"
    if y_top > 1e3:
        return (f"the scaled measurements reach {y_top:.3g} (max value {problem.info.get('max_value')}): "
                "pass the data's true scale with --max-value")
    return "the method diverges with these parameters: try a smaller --step, fewer --iters or another --method"


def score(x: np.ndarray, orig: np.ndarray, ssim_convention: str = "skimage") -> dict[str, Any]:
    """Per-frame PSNR/SSIM/SNR of (K, B, H, W) estimates, overall and per measurement."""
    K, B = x.shape[:2]
    flat = frame_metrics(x.reshape(K * B, *x.shape[2:]), orig.reshape(K * B, *orig.shape[2:]),
                         ssim_convention=ssim_convention)
    per_meas = [
        {
            "measurement": k,
            "psnr": float(np.mean(flat["psnr"][k * B:(k + 1) * B])),
            "ssim": float(np.mean(flat["ssim"][k * B:(k + 1) * B])),
            "snr": float(np.mean(flat["snr"][k * B:(k + 1) * B])),
        }
        for k in range(K)
    ]
    return {**flat, "per_measurement": per_meas}


def environment(device: torch.device) -> dict[str, Any]:
    """Versions and machine facts for reports (``threads``: torch's pools, where their size came
    from and the OpenMP wait policy; see :mod:`scicli.core.threads`)."""
    return {
        "scicli": scicli.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": describe(device),
        "threads": threads.describe(),
    }
