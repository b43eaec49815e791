"""Benchmark plug-and-play reconstruction with each available denoiser on a CACTI scene.

    python bench/bench_pnp.py [--mat PATH] [--device cpu|cuda] [--repeat 1] [--threads T]

First measurement of the scene (default: Drop), x = orig / 255. Rows: gap-tv (the baseline),
pnp-gap with every denoiser that has weights here (ffdnet always; dncnn, unet, video when
shipped), pnp-admm and red with ffdnet, and pnp-gap/ffdnet warm-started from gap-tv (its time
includes the gap-tv solve). Default schedules (sigma 50, 25, 12, 6 / 255, 10 iterations each).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.table import Table

from common import DEFAULT_MAT, run, setup
from scicli.priors import DENOISERS
from scicli.core.errors import ScicliError

# GUIDE.md section 5: PnP-SCI reference Python code on a 2-core x86 CPU, first measurement of Drop
REFERENCE = [("gap-tv (PnP-SCI reference)", "34.95", "0.966", "0.9"),
             ("gap-ffdnet (PnP-SCI reference)", "39.68", "0.986", "40")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mat", type=Path, default=DEFAULT_MAT, help="MATLAB v5 benchmark file (default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    ap.add_argument("--repeat", type=int, default=1, help="timed solves per row after one warm-up")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up solve (CPU: saves time)")
    args = ap.parse_args(argv)
    console, scene = setup(args.mat, args.device, args.threads, args.repeat)
    if scene is None:
        return 2
    warm = not args.no_warmup
    console.print(f"timing: median of {args.repeat} solve(s){' after 1 warm-up' if warm else ''}, no ground truth inside the loop")

    rows = [("gap-tv", "gap-tv", {})]
    for name in ("ffdnet", "dncnn", "unet", "video"):
        try:
            DENOISERS.get(name).factory()
        except ScicliError as exc:
            console.print(f"skipped denoiser {name}: {exc}")
            continue
        rows.append((f"pnp-gap / {name}", "pnp-gap", {"denoiser": name}))
    rows += [("pnp-admm / ffdnet", "pnp-admm", {"denoiser": "ffdnet"}),
             ("red / ffdnet", "red", {"denoiser": "ffdnet"})]

    table = Table(title="plug-and-play reconstruction, default schedules")
    for col in ("method / denoiser", "iterations", "PSNR (dB)", "SSIM", "median s", "min s", "parameters"):
        table.add_column(col, justify="left" if col in ("method / denoiser", "parameters") else "right")
    results = {}
    for label, method, params in rows:
        r = run(scene, method, params, args.repeat, warmup=warm)
        results[label] = r
        table.add_row(label, str(r["iterations"]), f"{r['psnr']:.2f}", f"{r['ssim']:.4f}",
                      f"{r['median']:.2f}", f"{r['min']:.2f}", r["params"])
    tv = results["gap-tv"]
    r = run(scene, "pnp-gap", {"denoiser": "ffdnet"}, args.repeat, warmup=warm, x0=tv["x"])
    table.add_row("gap-tv -> pnp-gap / ffdnet", f"40+{r['iterations']}", f"{r['psnr']:.2f}", f"{r['ssim']:.4f}",
                  f"{r['median'] + tv['median']:.2f}", f"{r['min'] + tv['min']:.2f}", "x0 = gap-tv result; " + r["params"])
    table.add_section()
    for label, psnr, ssim, sec in REFERENCE:
        table.add_row(label, "40", psnr, ssim, sec, "", "GUIDE.md section 5 (2-core CPU)")
    console.print(table)
    console.print(f"load average after the runs {os.getloadavg()[0]:.2f} (timings on a shared CPU vary; compare min s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
