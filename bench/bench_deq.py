"""Benchmark the learned reconstructions (deq-gap, deq-rnn, unrolled-gap) against gap-tv and pnp-gap.

    python bench/bench_deq.py [--mat PATH] [--device cpu|cuda] [--threads T] [--repeat 1]
                              [--no-warmup] [--skip-pnp]
                              [--deq-gap PATH] [--deq-rnn PATH] [--unrolled-gap PATH]

First measurement of the scene (default: Drop), x = orig / 255, PSNR / SSIM per frame
(scicli.metrics.frame_metrics). Rows: gap-tv (defaults), pnp-gap with ffdnet (default schedule;
``--skip-pnp`` leaves it out, ~25 s on a 2-core CPU), and each learned method with the weights
given (default: the shipped scicli/weights/<method>.pt); a method without weights is listed as
"no weights" and skipped. Learned solvers run with the budget stored with their weights (max_iter; tol 1e-3;
unrolled-gap: the trained number of steps). The last column is each time / pnp-gap's time.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import sys
from pathlib import Path

from rich.table import Table

from common import DEFAULT_MAT, run, setup
from scicli.core.errors import ScicliError
from scicli.weights.store import WEIGHTS_DIR

LEARNED = ("deq-gap", "deq-rnn", "unrolled-gap")


def weights_for(method: str, given: Path | None) -> Path | None:
    """The weights file to use, or None when there is none."""
    path = given if given is not None else WEIGHTS_DIR / f"{method}.pt"
    return path if path.exists() else None


def untrained_copy(path: Path, folder: Path) -> Path:
    """A checkpoint of the same method and config as ``path`` with freshly initialised weights."""
    import torch

    from scicli.weights.store import build_model, load_checkpoint

    ckpt = load_checkpoint(path)
    fresh = build_model(ckpt["method"], dict(ckpt["config"]))
    out = folder / "untrained.pt"
    torch.save({**{k: ckpt[k] for k in ("format", "format_version", "method", "config") if k in ckpt},
                "model": fresh.state_dict()}, out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mat", type=Path, default=DEFAULT_MAT, help="MATLAB v5 benchmark file (default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--repeat", type=int, default=1, help="timed solves per row (median reported)")
    ap.add_argument("--no-warmup", action="store_true", help="skip the warm-up solve of each row")
    ap.add_argument("--skip-pnp", action="store_true", help="leave out pnp-gap / ffdnet (the slow row)")
    ap.add_argument("--untrained", action="store_true",
                    help="add a row per learned method: the same config before training (deq-gap: PnP-GAP "
                         "with FFDNet at the initial sigma; deq-rnn: GAP-TV continued), same budget")
    for method in LEARNED:
        ap.add_argument(f"--{method}", type=Path, default=None, metavar="PATH",
                        help=f"{method} weights (checkpoint or run directory; default: scicli/weights/{method}.pt)")
    args = ap.parse_args(argv)
    console, scene = setup(args.mat, args.device, args.threads, args.repeat)
    if scene is None:
        return 2
    warm = not args.no_warmup
    console.print(f"timing: median of {args.repeat} solve(s){' after 1 warm-up' if warm else ''}, "
                  "no ground truth inside the loop")

    rows: list[tuple[str, dict | None, str]] = [("gap-tv", {}, "")]  # (method, params or None, note)
    if not args.skip_pnp:
        rows.append(("pnp-gap", {"denoiser": "ffdnet"}, ""))
    for method in LEARNED:
        given = getattr(args, method.replace("-", "_"))
        path = weights_for(method, given)
        if path is None:
            rows.append((method, None, f"no weights ({f'{given} not found' if given is not None else f'no shipped {method}.pt'})"))
        else:
            rows.append((method, {"weights": str(path)}, str(path)))

    tmp = tempfile.TemporaryDirectory()
    for method in LEARNED if args.untrained else ():
        trained = weights_for(method, getattr(args, method.replace("-", "_")))
        if trained is not None:
            folder = Path(tmp.name) / method
            folder.mkdir()
            rows.append((method, {"weights": str(untrained_copy(trained, folder))}, "untrained"))

    results: dict[str, dict | str] = {}
    for method, params, note in rows:
        if params is None:
            continue
        try:
            results[method + note] = run(scene, method, params, args.repeat, warmup=warm)
        except ScicliError as exc:  # e.g. weights for another B, or a checkpoint of another method
            results[method + note] = f"error: {exc}"
    pnp = results.get("pnp-gap")
    pnp_s = pnp["median"] if isinstance(pnp, dict) else None

    table = Table(title="learned reconstruction vs gap-tv and pnp-gap, first measurement")
    for col in ("method", "iterations", "PSNR (dB)", "SSIM", "median s", "min s", "/ pnp-gap", "weights / parameters"):
        table.add_column(col, justify="left" if col in ("method", "weights / parameters") else "right")
    for method, params, note in rows:
        r = results.get(method + note, note)
        label = "pnp-gap / ffdnet" if method == "pnp-gap" else method + (" (untrained)" if note == "untrained" else "")
        if isinstance(r, str):
            table.add_row(label, "-", "-", "-", "-", "-", "-", r)
            continue
        ratio = f"{r['median'] / pnp_s:.3f}" if pnp_s else "-"
        table.add_row(label, str(r["iterations"]), f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", f"{r['median']:.2f}",
                      f"{r['min']:.2f}", ratio, "; ".join(s for s in (note, r["params"]) if s))
    console.print(table)
    if pnp_s is None:
        console.print("time ratios to pnp-gap / ffdnet: not computed (--skip-pnp)")
    console.print(f"load average after the runs {os.getloadavg()[0]:.2f} (timings on a shared CPU vary; compare min s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
