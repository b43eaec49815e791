"""Shared pieces of the benchmark scripts: the benchmark scene, the header, timed solves."""

from __future__ import annotations

from typing import Any

import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
import torch
from rich.console import Console

from scicli.metrics import frame_metrics
from scicli.physics import VideoSCI
from scicli.methods import METHODS

DEFAULT_MAT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "benchmark" / "drop40_cacti.mat"


def load_first_measurement(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask (B, H, W), y (H, W), orig (B, H, W)) as float32, x = orig / 255, y = meas / 255."""
    data = scipy.io.loadmat(str(path))
    mask = np.ascontiguousarray(np.moveaxis(data["mask"], -1, 0)).astype(np.float32)
    b = mask.shape[0]
    y = (data["meas"][:, :, 0] / 255.0).astype(np.float32)
    orig = np.ascontiguousarray(np.moveaxis(data["orig"][:, :, :b], -1, 0) / 255.0).astype(np.float32)
    return mask, y, orig


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Scene:
    op: VideoSCI
    y: torch.Tensor
    orig: np.ndarray
    device: torch.device


def setup(mat: Path, device_name: str, threads: int | None, repeat: int) -> tuple[Console, Scene | None]:
    """Parse-independent set-up: console, checks, scene on the device, and the header lines."""
    console = Console(width=None if sys.stdout.isatty() else 160)  # no wrapping in logs
    if threads is not None:
        torch.set_num_threads(threads)
    device = torch.device(device_name)
    if device.type == "cuda" and not torch.cuda.is_available():
        console.print("[red]error:[/red] --device cuda but CUDA is not available")
        return console, None
    if repeat < 1:
        console.print("[red]error:[/red] --repeat must be at least 1")
        return console, None
    path = mat.resolve()
    if not path.is_file():
        console.print(f"[red]error:[/red] no such file: {path}")
        return console, None
    mask_np, y_np, orig_np = load_first_measurement(path)
    B, H, W = mask_np.shape
    op = VideoSCI(torch.from_numpy(mask_np)).to(device)
    y = torch.from_numpy(y_np)[None].to(device)
    consistency = float((op.A(torch.from_numpy(orig_np)[None].to(device)) - y).abs().max())
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    console.print(
        f"device {device} ({dev_name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}"
    )
    console.print(
        f"data {path.name}: first measurement, B={B}, {H}x{W}, x = orig/255, y = meas/255, "
        f"max |A x - y| = {consistency:.2e}; {op.energy.eq(0).sum().item()} pixels with mask sum 0"
    )
    console.print(f"evaluation: {frame_metrics(orig_np[:1], orig_np[:1])['convention']['text']}")
    return console, Scene(op, y, orig_np, device)


def effective_params(solver: Any) -> dict[str, Any]:
    """The settings a solve really uses: a learned solver's stored fixed-point settings with the
    user's overrides, a classical solver's parameters."""
    if hasattr(solver, "effective_settings"):
        keys = ("iters",) if hasattr(solver.params, "iters") else ("solver", "max_iter", "tol", "m", "beta")
        used = solver.effective_settings()
        return {k: used[k] for k in keys if k in used}
    return solver.command_line_params()  # as typed: noise levels on 0..255


def run(scene: Scene, method: str, params: dict, repeat: int, warmup: bool = True,
        x0: torch.Tensor | None = None) -> dict:
    """Time ``repeat`` solves (after an optional warm-up) and score the last one."""
    solver = METHODS.get(method).factory.from_command_line(**params)  # as typed: sigma on 0..255
    if warmup:
        solver.solve(scene.op, scene.y, x0=x0)
    times = []
    result = None
    for _ in range(repeat):
        sync(scene.device)
        t0 = time.perf_counter()
        result = solver.solve(scene.op, scene.y, x0=x0)
        sync(scene.device)
        times.append(time.perf_counter() - t0)
    m = frame_metrics(result.x[0].float().cpu().numpy(), scene.orig)
    return {
        "x": result.x,
        "iterations": result.iterations,
        "psnr": m["psnr_mean"],
        "ssim": m["ssim_mean"],
        "median": statistics.median(times),
        "min": min(times),
        "params": ", ".join(f"{k}={v}" for k, v in effective_params(solver).items() if k not in ("tol", "weights")),
    }
