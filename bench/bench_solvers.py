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
import sys
from pathlib import Path

from rich.table import Table

from common import DEFAULT_MAT, run, setup

METHODS = ("gd-tv", "admm-tv", "gap-tv")
# GUIDE.md section 5: PnP-SCI reference Python code, 2-core x86 CPU, first measurement of Drop
REFERENCE = {"method": "gap-tv (PnP-SCI reference)", "iters": "40", "psnr": "34.95", "ssim": "0.966", "seconds": "0.9"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mat", type=Path, default=DEFAULT_MAT, help="MATLAB v5 benchmark file (default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    ap.add_argument("--repeat", type=int, default=3, help="timed solves per method after one warm-up")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args(argv)
    console, scene = setup(args.mat, args.device, args.threads, args.repeat)
    if scene is None:
        return 2
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
        r = run(scene, method, {}, args.repeat)
        table.add_row(method, str(r["iterations"]), f"{r['psnr']:.2f}", f"{r['ssim']:.3f}",
                      f"{r['median']:.3f}", f"{r['min']:.3f}", r["params"])
    console.print(table)
    console.print(f"load average after the runs {os.getloadavg()[0]:.2f} (timings on a shared CPU vary; compare min s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
