"""Benchmark the image denoisers on a held-out test set (BSD68 or Set12) at sigma 15/25/50.

    python bench/bench_denoisers.py [--data ../shared/data/BSD68] [--sigmas 15,25,50] [--limit N]

Every image on [0, 1] gets Gaussian noise of a fixed seed; each denoiser D(x, sigma/255) with
its shipped (or packaged) weights; mean PSNR (data range 1, clipped) per sigma and seconds
per image. Denoisers without weights here are reported as skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from scicli.priors import DENOISERS
from scicli.core.errors import ScicliError
from scicli.metrics import psnr

DEFAULT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "BSD68"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT)
    ap.add_argument("--sigmas", default="15,25,50")
    ap.add_argument("--limit", type=int, default=None, help="use the first N images only")
    args = ap.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 140)
    files = sorted(p for p in args.data.resolve().iterdir() if p.suffix.lower() in (".png", ".tif", ".jpg"))
    files = files[: args.limit] if args.limit else files
    if not files:
        console.print(f"[red]error:[/red] no images in {args.data}")
        return 2
    images = [iio.imread(p).astype(np.float32) / 255.0 for p in files]
    sigmas = [float(s) for s in args.sigmas.split(",")]
    console.print(f"{args.data.resolve().name}: {len(images)} images; torch {torch.__version__}, "
                  f"{torch.get_num_threads()} CPU threads; PSNR per image (data range 1, clipped), then the mean")
    table = Table(title="image denoisers, Gaussian noise, mean PSNR (dB)")
    table.add_column("denoiser")
    for s in sigmas:
        table.add_column(f"sigma {s:g}", justify="right")
    table.add_column("s / image", justify="right")
    noisy = {s: [img + s / 255.0 * torch.randn(img.shape, generator=torch.Generator().manual_seed(i)).numpy()
                 for i, img in enumerate(images)] for s in sigmas}
    rows = [("noisy input", None)]
    for name in ("ffdnet", "dncnn", "unet"):
        try:
            rows.append((name, DENOISERS.get(name).factory()))
        except ScicliError as exc:
            console.print(f"skipped {name}: {exc}")
    for label, D in rows:
        cells, seconds = [], 0.0
        for s in sigmas:
            values = []
            for img, nz in zip(images, noisy[s]):
                t0 = time.perf_counter()
                out = nz if D is None else D(torch.from_numpy(nz)[None, None], s / 255.0)[0, 0].numpy()
                seconds += time.perf_counter() - t0
                values.append(psnr(out, img))
            cells.append(f"{np.mean(values):.2f}")
        table.add_row(label, *cells, "" if D is None else f"{seconds / (len(images) * len(sigmas)):.3f}")
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
