"""Reconstruct the real TSA-Net CASSI snapshots with gap-tv and pnp-gap (FFDNet per band).

    python bench/bench_cassi.py [--scenes 1,2,3,4,5] [--methods gap-tv,pnp-gap] [--threads T]
                                [--crop N] [--previews DIR] [--device cpu|cuda]

Data (../shared/data/cassi/real, see its PROVENANCE.txt): ``scene{1..5}.mat`` ('meas_real',
660 x 714 float32, already scaled to max 1) and ``mask.mat`` ('mask', the real 660 x 660 grey
coded aperture); 28 bands, dispersion d = 2 columns per band. No ground truth exists, so the
table reports the relative residual ``||y - A x|| / ||y||``, the time and the iterations.

Intensity scale: TSA-Net's real-data code feeds ``meas_real / max(meas_real) * 0.8`` to a
network trained on snapshots simulated as ``sum_l shift(M x_l) * 2 / 28 * 1.2`` with x on [0, 1]
(``TSA_Net_realdata/Lib/Data_Processing.py``). In scicli's unscaled model ``y = sum_l shift(M x_l)``
that is ``y = meas_real / max(meas_real) * 0.8 * 28 / 2.4`` (x 9.33): the scale at which TSA-Net
reads the real cube as lying on [0, 1]. The header prints ``max (y / S)`` (S = sum_l shift(M), the
snapshot of a flat unit spectrum): the brightest flat-spectrum intensity that scale implies.

Methods. gap-tv: accelerated GAP with per-band TV (Chambolle, 5 inner steps), 60 iterations,
TV weight 0.1 (0.05 and 0.25 looked alike; the residual falls to about 0.002 by 60 iterations).
pnp-gap: as in the PnP-CASSI papers, started from the gap-tv result (x0; its time and iterations
include the gap-tv solve), then GAP with FFDNet applied to every band, sigma 12 then 6 (0..255),
3 iterations each. Per-band FFDNet costs about 110 s per iteration on one 660 x 660 x 28 cube
with one CPU thread, so the usual 50/25/12/6 x 10 schedule is out of reach of a CPU run. On a
140-row strip of scene 1, 25/15/10 x 2, 50/25/12/6 x 2, 10/6 x 3 (with and without acceleration)
and 12/6 x 8 looked no better than this one, and all of them left horizontal streaks that TV
does not (FFDNet keeps row-correlated back-projection noise).

Known limit: with this smooth grey aperture (neighbour correlation 0.66) per-band priors barely
resolve CASSI's shear ambiguity (moving band l by -d l columns leaves y almost unchanged): the
reconstructed bands drift by about -2 px per band and edges get rainbow fringes (red on the left,
blue on the right). A simulated cube through the same aperture drifts too (-36 px over 28 bands,
-3 px with a random binary aperture), so this is the method, not the data path.

``--crop N`` takes the centre N x N of the aperture and the matching N x (N + 54) window of the
snapshot (a quick run). Only the row crop is exact: the first and last 54 columns of the window
also hold light from scene columns outside the crop, which the model cannot explain, so expect
artefacts (and large values) along the left and right edges of a cropped reconstruction.
``--previews DIR`` writes ``cassi_scene{k}_{method}.png``: the cube rendered to sRGB through the
CIE 1931 colour matching functions at the TSA-Net band centres (scicli.color), downscaled by
``--preview-scale``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import scipy.io
import torch
from rich.console import Console
from rich.table import Table

from scicli.color import cassi_wavelengths, cube_to_srgb
from scicli.physics import OPERATORS
from scicli.methods import METHODS as REGISTRY

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cassi" / "real"
BANDS, STEP = 28, 2
TSA_SCALE = 0.8 * 28 / 2.4  # meas / max(meas) * 0.8 (TSA-Net test input) / (2 / 28 * 1.2) (its simulation scale)
METHODS = ("gap-tv", "pnp-gap")


def floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def load(data: Path, scene: int, crop: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(mask (H, W), y (H, W + 54)) float32 on scicli's scale, centre-cropped when asked."""
    mask = scipy.io.loadmat(str(data / "mask.mat"))["mask"].astype(np.float32)
    meas = scipy.io.loadmat(str(data / f"scene{scene}.mat"))["meas_real"].astype(np.float32)
    y = meas / meas.max() * TSA_SCALE
    if crop:
        H, W = mask.shape
        if not 8 <= crop <= min(H, W):
            raise SystemExit(f"--crop must be between 8 and {min(H, W)}, got {crop}")
        i0, j0 = (H - crop) // 2, (W - crop) // 2
        mask = mask[i0:i0 + crop, j0:j0 + crop]
        y = y[i0:i0 + crop, j0:j0 + crop + STEP * (BANDS - 1)]
    return np.ascontiguousarray(mask), np.ascontiguousarray(y)


def preview(x: torch.Tensor, path: Path, scale: int) -> int:
    """Write the sRGB rendering of a cube (L, H, W), block-averaged by ``scale``; returns bytes."""
    cube = x.float().cpu().numpy()
    if scale > 1:
        L, H, W = cube.shape
        h, w = H // scale, W // scale
        cube = cube[:, :h * scale, :w * scale].reshape(L, h, scale, w, scale).mean(axis=(2, 4))
    iio.imwrite(path, cube_to_srgb(cube, cassi_wavelengths(cube.shape[0])), optimize=True)
    return path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA, help="folder with mask.mat and scene{k}.mat")
    ap.add_argument("--scenes", default="1,2,3,4,5", help="scene numbers, comma separated")
    ap.add_argument("--methods", default="gap-tv,pnp-gap", help=f"comma separated, of {', '.join(METHODS)}")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--crop", type=int, default=None, help="centre crop N x N of the aperture (quick run)")
    ap.add_argument("--previews", type=Path, default=None, help="write an sRGB PNG per scene and method here")
    ap.add_argument("--preview-scale", type=int, default=2, help="downscale factor of the previews")
    ap.add_argument("--tv-iters", type=int, default=60, help="gap-tv iterations")
    ap.add_argument("--tv-weight", type=float, default=0.1, help="gap-tv TV weight (x on [0, 1])")
    ap.add_argument("--sigma", type=floats, default=(12.0, 6.0), help="pnp-gap FFDNet sigmas (0..255)")
    ap.add_argument("--pnp-iters", type=floats, default=(3.0, 3.0), help="pnp-gap iterations per sigma")
    ap.add_argument("--pnp-from-scratch", action="store_true", help="start pnp-gap from A^T y, not from gap-tv")
    args = ap.parse_args(argv)

    console = Console(width=None if sys.stdout.isatty() else 200)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        console.print(f"[red]error:[/red] --methods takes {', '.join(METHODS)}, got {args.methods}")
        return 2
    scenes = [int(s) for s in args.scenes.split(",") if s.strip()]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    console.print(f"command: {' '.join(shlex.quote(a) for a in [sys.executable, *sys.argv])}")
    console.print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}, torch {torch.__version__}, "
                  f"{torch.get_num_threads()} CPU threads, device {device}, python {platform.python_version()}")
    crop_text = f", centre crop {args.crop}" if args.crop else ""
    console.print(f"data {args.data.resolve()}: L = {BANDS}, d = {STEP}, y = meas_real / max * 0.8 * 28 / 2.4 "
                  f"(x {TSA_SCALE:.3f}, TSA-Net's real-data scale){crop_text}")
    gap_params = {"iters": args.tv_iters, "tv_weight": args.tv_weight}
    pnp_params = {"denoiser": "ffdnet", "sigma": args.sigma, "iters": args.pnp_iters}
    console.print(f"gap-tv: {gap_params} (tv_iters 5, accelerated, step 1); pnp-gap: FFDNet per band, "
                  f"sigma {args.sigma} x iters {args.pnp_iters}, "
                  f"{'from A^T y' if args.pnp_from_scratch else 'started from the gap-tv result'}")
    if args.previews:
        args.previews.mkdir(parents=True, exist_ok=True)

    cls = OPERATORS.get("cassi").factory
    table = Table(title="CASSI real data (TSA-Net prototype), no ground truth")
    for col in ("scene", "method", "iterations", "residual ||y-Ax||/||y||", "seconds", "x min / p99 / max",
                "max y/S", "preview"):
        table.add_column(col, justify="left" if col in ("method", "preview") else "right")
    total = time.perf_counter()
    for k in scenes:
        mask, y_np = load(args.data, k, args.crop)
        op = cls.from_arrays({"mask": mask}, meas_shape=(1, *y_np.shape), step=STEP).to(device)
        y = torch.from_numpy(y_np)[None].to(device)
        flat = op._disperse(op.mask.unsqueeze(1).expand(-1, BANDS, -1, -1))
        reach = STEP * (BANDS - 1)  # sensor columns from `reach` to W - 1 receive every band
        inner = slice(reach, mask.shape[1]) if mask.shape[1] > reach else slice(None)
        q = float((y[..., inner] / flat[..., inner].clamp_min(1e-3)).max())
        cache: dict[str, tuple[torch.Tensor, float, int]] = {}

        def gap_tv() -> tuple[torch.Tensor, float, int]:
            """The gap-tv solve (x, seconds, iterations), once per scene."""
            if "gap-tv" not in cache:
                t0 = time.perf_counter()
                r = REGISTRY.get("gap-tv").factory(**gap_params).solve(op, y)
                cache["gap-tv"] = (r.x, time.perf_counter() - t0, r.iterations)
            return cache["gap-tv"]

        for method in methods:
            if method == "gap-tv":
                x, seconds, iters = gap_tv()
                iters_text = str(iters)
            else:
                x0, base_s, base_it = (None, 0.0, 0) if args.pnp_from_scratch else gap_tv()
                t1 = time.perf_counter()
                r = REGISTRY.get("pnp-gap").factory.from_command_line(**pnp_params).solve(op, y, x0=x0)
                x, seconds = r.x, base_s + time.perf_counter() - t1
                iters_text = f"{r.iterations}" if x0 is None else f"{base_it}+{r.iterations}"
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            residual = float(torch.linalg.vector_norm(y - op.A(x)) / torch.linalg.vector_norm(y))
            xs = x.float().flatten().cpu().numpy()
            p99 = float(np.percentile(xs[::max(1, xs.size // 1_000_000)], 99))  # on a strided sample
            shot = ""
            if args.previews:
                path = args.previews / f"cassi_scene{k}_{method}.png"
                size = preview(x[0], path, args.preview_scale)
                shot = f"{path} ({size // 1024} KB)"
            table.add_row(str(k), method, iters_text, f"{residual:.4f}", f"{seconds:.1f}",
                          f"{float(xs.min()):.3f} / {p99:.3f} / {float(xs.max()):.3f}", f"{q:.3f}", shot)
            console.print(f"scene {k} {method}: residual {residual:.4f}, {seconds:.1f} s, "
                          f"load {os.getloadavg()[0]:.2f}")
    console.print(table)
    console.print(f"total {time.perf_counter() - total:.0f} s; load average after the runs "
                  f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} (a shared CPU: timings vary)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
