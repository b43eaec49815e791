"""Peak memory of one training step of deq-gap (implicit, jfb backward) and unrolled-gap against K.

    python bench/bench_memory.py [--batch 4] [--patch 64] [--frames 8] [--iters 10,20,40]
                                 [--device cpu|cuda] [--threads T]

One step = the forward solve with exactly K evaluations of the map (deq-gap: max_iter K, tol 0;
unrolled-gap: iters K) + ``loss.backward()`` of the MSE to the clips, on random clips (N, B, P, P)
with random binary masks (SCITask, mask "random", no noise). Networks are randomly initialised
(spectral_norm off, every parameter + 0.01 N(0, 1) so the map is not the projection). CUDA:
``torch.cuda.max_memory_allocated`` during the step minus the memory allocated before it, in
process. CPU: each configuration in a fresh subprocess (hidden ``--one METHOD BACKWARD K``);
the increase of peak RSS (``getrusage`` ru_maxrss) over the peak after set-up and one warm-up
forward solve without grad. The last column is the absolute peak (RSS, or CUDA allocated).
DEQ memory should be flat in K, unrolled memory linear in K.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table

from common import sync
from scicli.methods.deq_gap import DEQGap
from scicli.methods.learned import LearnedMap
from scicli.methods.unrolled_gap import UnrolledGap
from scicli.train.sci import SCITask

CONFIGS = (("deq-gap", "implicit"), ("deq-gap", "jfb"), ("unrolled-gap", "backprop"))


def build(method: str, backward: str, iters: int, frames: int) -> LearnedMap:
    if method == "deq-gap":
        model: LearnedMap = DEQGap(frames, spectral_norm=False,
                                       solve={"max_iter": iters, "tol": 0, "backward": backward})
    else:
        model = UnrolledGap(frames, spectral_norm=False, solve={"iters": iters})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.train()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def measure_one(method: str, backward: str, iters: int, args: argparse.Namespace) -> dict[str, Any]:
    """Build, warm up without grad, run one training step; memory in MB and the step's seconds."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    model = build(method, backward, iters, args.frames).to(device)
    x = torch.rand((args.batch, args.frames, args.patch, args.patch), device=device)
    op, y = SCITask(args.frames, "random", meas_noise=0.0, seed=0).problem(x, 0)
    with torch.no_grad():
        model(y, op)  # warm-up: the forward solve's own peak, allocator and kernels primed
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = peak_rss_mb()
    t0 = time.perf_counter()
    out, info = model(y, op)
    F.mse_loss(out, x).backward()
    sync(device)
    seconds = time.perf_counter() - t0
    if device.type == "cuda":
        step_mb = (torch.cuda.max_memory_allocated(device) - base) / 2**20
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = peak_rss_mb()
        step_mb = peak - base
    return {"step_mb": step_mb, "peak_mb": peak, "seconds": seconds, "steps": info.steps}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4, help="clips per step N (default: %(default)s)")
    ap.add_argument("--patch", type=int, default=64, help="clip size P (default: %(default)s)")
    ap.add_argument("--frames", type=int, default=8, help="frames per snapshot B (default: %(default)s)")
    ap.add_argument("--iters", default="10,20,40", help="comma-separated K (default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--one", nargs=3, metavar=("METHOD", "BACKWARD", "K"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.one:  # child process: one configuration, one JSON line
        method, backward, k = args.one
        print(json.dumps(measure_one(method, backward, int(k), args)))
        return 0

    console = Console(width=None if sys.stdout.isatty() else 160)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        console.print("[red]error:[/red] --device cuda but CUDA is not available")
        return 2
    try:
        ks = [int(k) for k in args.iters.split(",") if k.strip()]
    except ValueError:
        console.print(f"[red]error:[/red] --iters {args.iters}: expected comma-separated integers")
        return 2
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    console.print(f"device {device} ({dev_name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
                  f"python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    what = ("torch.cuda.max_memory_allocated during the step minus memory allocated before it (in process)"
            if device.type == "cuda" else
            "increase of peak RSS (ru_maxrss) over set-up + a no-grad warm-up solve, one fresh process per row")
    console.print(f"measured: one training step (forward solve + loss.backward), N={args.batch} clips of "
                  f"B={args.frames} x {args.patch}x{args.patch}, random init and binary masks; memory = {what}")

    table = Table(title="memory of one training step against the number of forward iterations K")
    for col in ("method", "backward", "iterations", "peak step memory MB", "step s", "process peak MB"):
        table.add_column(col, justify="left" if col in ("method", "backward") else "right")
    passthrough = ["--batch", str(args.batch), "--patch", str(args.patch), "--frames", str(args.frames),
                   "--device", args.device] + (["--threads", str(args.threads)] if args.threads is not None else [])
    for method, backward in CONFIGS:
        for k in ks:
            if device.type == "cuda":
                r = measure_one(method, backward, k, args)
                torch.cuda.empty_cache()
            else:
                proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", method, backward, str(k),
                                       *passthrough], capture_output=True, text=True)
                if proc.returncode != 0:
                    console.print(f"[red]error:[/red] {method} {backward} K={k} failed:\n{proc.stderr[-2000:]}")
                    return 1
                r = json.loads(proc.stdout.strip().splitlines()[-1])
            its = str(k) if r["steps"] == k else f"{k} (ran {r['steps']})"
            table.add_row(method, backward, its, f"{r['step_mb']:.1f}", f"{r['seconds']:.2f}",
                          f"{r['peak_mb']:.0f}")
        table.add_section()
    console.print(table)
    console.print(f"load average after the runs {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
