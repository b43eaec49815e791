"""Benchmark the TV solvers side by side on the first measurement of a CACTI benchmark scene.

    python bench/bench_solvers.py [--mat PATH] [--device cpu|cuda] [--repeat 3] [--threads T]

Loads ``mask`` (H, W, B) uint8, ``meas`` (H, W, K) and ``orig`` (H, W, K*B) from a MATLAB v5
file (default: the Drop scene of the shared benchmark), keeps the first measurement only
(the published convention for Drop and Runner), normalises by 255, and runs gd-tv, admm-tv
and gap-tv with their default parameters: one warm-up solve, then ``--repeat`` timed solves
(no ground truth passed, so no per-iteration PSNR is computed inside the timing). PSNR and
SSIM are per frame with scikit-image conventions (scicli.metrics.frame_metrics), then averaged.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.io
import torch
from rich.console import Console
from rich.table import Table

from scicli.metrics import frame_metrics
from scicli.physics import VideoSCI
from scicli.solvers import SOLVERS

DEFAULT_MAT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "benchmark" / "drop40_cacti.mat"
METHODS = ("gd-tv", "admm-tv", "gap-tv")
# GUIDE.md section 5: PnP-SCI reference Python code, 2-core x86 CPU, first measurement of Drop
REFERENCE = {"method": "gap-tv (PnP-SCI reference)", "iters": "40", "psnr": "34.95", "ssim": "0.966", "seconds": "0.9"}


def load_first_measurement(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask (B, H, W), y (H, W), orig (B, H, W)) as float32 on [0, 1] (y on [0, B])."""
    data = scipy.io.loadmat(str(path))
    mask = np.ascontiguousarray(np.moveaxis(data["mask"], -1, 0)).astype(np.float32)
    b = mask.shape[0]
    y = (data["meas"][:, :, 0] / 255.0).astype(np.float32)
    orig = np.ascontiguousarray(np.moveaxis(data["orig"][:, :, :b], -1, 0) / 255.0).astype(np.float32)
    return mask, y, orig


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mat", type=Path, default=DEFAULT_MAT, help="MATLAB v5 benchmark file (default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    ap.add_argument("--repeat", type=int, default=3, help="timed solves per method after one warm-up")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)

    console = Console(width=None if sys.stdout.isatty() else 150)  # no wrapping in logs
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        console.print("[red]error:[/red] --device cuda but CUDA is not available")
        return 2
    if args.repeat < 1:
        console.print("[red]error:[/red] --repeat must be at least 1")
        return 2
    path = args.mat.resolve()
    if not path.is_file():
        console.print(f"[red]error:[/red] no such file: {path}")
        return 2

    mask_np, y_np, orig_np = load_first_measurement(path)
    B, H, W = mask_np.shape
    op = VideoSCI(torch.from_numpy(mask_np)).to(device)
    y = torch.from_numpy(y_np)[None].to(device)  # (1, H, W)
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
    conv = frame_metrics(orig_np[:1], orig_np[:1])["convention"]["text"]
    console.print(f"evaluation: {conv}")
    console.print(f"timing: median of {args.repeat} solves after 1 warm-up, default parameters, no ground truth inside the loop")

    table = Table(title="TV solvers, default parameters", show_footer=True)
    table.add_column("method", footer=REFERENCE["method"])
    table.add_column("iterations", justify="right", footer=REFERENCE["iters"])
    table.add_column("PSNR (dB)", justify="right", footer=REFERENCE["psnr"])
    table.add_column("SSIM", justify="right", footer=REFERENCE["ssim"])
    table.add_column("median s", justify="right", footer=REFERENCE["seconds"])
    table.add_column("min s", justify="right", footer="")
    table.add_column("parameters", footer="GUIDE.md section 5")

    for method in METHODS:
        cls = SOLVERS.get(method).factory
        solver = cls()
        solver.solve(op, y)  # warm-up
        times = []
        result = None
        for _ in range(args.repeat):
            sync(device)
            t0 = time.perf_counter()
            result = solver.solve(op, y)
            sync(device)
            times.append(time.perf_counter() - t0)
        recon = result.x[0].float().cpu().numpy()
        m = frame_metrics(recon, orig_np)
        params = ", ".join(f"{k}={v}" for k, v in vars(solver.params).items() if k != "tol")
        table.add_row(
            method,
            str(result.iterations),
            f"{m['psnr_mean']:.2f}",
            f"{m['ssim_mean']:.3f}",
            f"{statistics.median(times):.3f}",
            f"{min(times):.3f}",
            params,
        )
    console.print(table)
    console.print(f"load average after the runs {os.getloadavg()[0]:.2f} (timings on a shared CPU vary; compare min s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
