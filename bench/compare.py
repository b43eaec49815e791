"""Compare reconstructions of the same ground truth: a score table and one comparison figure.

    python bench/compare.py demo_out/sim/orig.npy gap-tv=demo_out/gap-tv.tif pnp-gap=demo_out/pnp-gap.tif \
        --out demo_out/compare.png --frames 3,12

Prints the mean per-frame PSNR (dB) and SSIM of each reconstruction (data range 1, frames clipped
to [0, 1], scikit-image SSIM: the convention of ``scicli evaluate``) and writes the ground truth, the
reconstructions and their error maps side by side (``scicli.plots.comparison_figure``). `make demo`
runs it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from scicli.core.errors import ScicliError
from scicli.data.problem import orig_scale, parse_selection
from scicli.io import atomic_write, read_array
from scicli.io.outputs import Output, check_outputs
from scicli.metrics import frame_metrics
from scicli.plots import comparison_figure


def main(argv: list[str] | None = None) -> int:
    """Score each NAME=FILE reconstruction against the ground truth and draw them side by side."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gt", type=Path, help="ground-truth video (F, H, W)")
    ap.add_argument("recons", nargs="+", help="NAME=FILE reconstructions of the same frames")
    ap.add_argument("--out", type=Path, required=True, help="comparison figure (.png)")
    ap.add_argument("--frames", default=None, help="frames to show, e.g. 3,12 (default: the middle one)")
    ap.add_argument("--title", default=None, help="figure title (default: the ground truth's folder and the names)")
    ap.add_argument("--force", action="store_true", help="overwrite --out")
    args = ap.parse_args(argv)
    pairs = [r.split("=", 1) for r in args.recons]
    if any(len(p) != 2 for p in pairs):
        ap.error("reconstructions are NAME=FILE")
    check_outputs([Output("--out", args.out, (".png",))], [args.gt, *(Path(f) for _, f in pairs)], force=args.force)
    ref = read_array(args.gt, role="orig").astype(np.float64)
    ref = ref / orig_scale(ref)
    recons = {}
    width = max(len(name) for name, _ in pairs) + 2
    print(f"{'method':<{width}} {'PSNR (dB)':>10} {'SSIM':>8}")
    for name, path in pairs:
        x = read_array(Path(path), role="recon").astype(np.float64)
        x = x.reshape(ref.shape) / orig_scale(x)
        m = frame_metrics(x, ref)
        print(f"{name:<{width}} {m['psnr_mean']:>10.2f} {m['ssim_mean']:>8.4f}")
        recons[name] = x
    frames = None if args.frames is None else parse_selection(args.frames, ref.shape[0], "frame")
    fig = comparison_figure(recons, ref, frames, title=args.title or f"{args.gt.parent.name}: {', '.join(recons)}")
    atomic_write(args.out, lambda tmp: fig.savefig(tmp, format="png"), force=args.force)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ScicliError as exc:  # one line, as the scicli commands print it
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
