"""Benchmark single-coil CS-MRI (operator ``mri``, real images) against Deep ADMM-Net Table 1.

    python bench/bench_mri.py [--ratios 20,30,40,50] [--images 50] [--methods zero-filling,admm-tv,pnp-admm]
                              [--threads 1] [--dataset brain|chest] [solver settings]
    python bench/bench_mri.py --ratios 20 --methods zero-filling,admm-net --weights RUN/best.pt
    python bench/bench_mri.py --ratios 30 --methods zero-filling,ista-net-plus --weights RUN/best.pt

Data (../shared/data/mri/PROVENANCE.txt): the 50 brain test images, x = png / 255, the
pseudo-radial masks mask_{20,30,40,50}.mat (DC at [0, 0]), y = mask * fft2(x) (unitary FFT, no
noise). Rows: the zero-filled image real(ifft2(y)); admm-tv and pnp-admm (FFDNet) in real-image
mode, started from the zero-filled image; admm-net (Deep ADMM-Net, weights trained by ``scicli
train --method admm-net --operator mri``, given by ``--weights``; run at the ratios they were
trained for, skipped at the others). Scores per image, averaged over the images:
PSNR = 10 log10(1 / mean((x_hat - x)^2)) with NO clipping (the convention that reproduces the
published zero-filling row), SSIM = skimage structural_similarity (7 x 7 uniform window,
data_range 1, both images clipped to [0, 1]), NMSE = ||x_hat - x|| / ||x||.

``--dataset chest`` runs the same on the Deep ADMM-Net chest training images (im-NN.mat,
'im_ori'), the validation set the solver settings were chosen on (never the brain test set).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import time
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import scipy.io
import torch

from scicli.core.errors import UsageError
from scicli.metrics import nmse, ssim
from scicli.physics.mri import MRI
from scicli.methods import METHODS as REGISTRY

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mri"

# Deep ADMM-Net (Yang et al., NIPS 2016) Table 1, brain: (PSNR, NMSE) at 20 / 30 / 40 / 50 %
PUBLISHED = {
    "zero-filling": {20: (29.96, 0.1700), 30: (32.59, 0.1247), 40: (34.76, 0.0968), 50: (36.73, 0.0770)},
    "TV": {20: (35.20, 0.0929), 30: (37.99, 0.0673), 40: (40.00, 0.0534), 50: (41.69, 0.0440)},
    "BM3D-MRI": {20: (37.98, 0.0674), 30: (40.33, 0.0515), 40: (41.99, 0.0426), 50: (43.47, 0.0359)},
    "ADMM-Net15": {20: (37.17, 0.0739), 30: (39.84, 0.0544), 40: (41.56, 0.0447), 50: (43.00, 0.0379)},
    "ISTA-Net+": {20: (38.73, float("nan")), 30: (40.89, float("nan")), 40: (42.52, float("nan")),
                  50: (44.09, float("nan"))},  # ISTA-Net Table 3 (PSNR only)
}
METHODS = ("zero-filling", "admm-tv", "pnp-admm", "admm-net", "ista-net-plus")
LEARNED = ("admm-net", "ista-net-plus")
"""Trained networks: ``--weights RUN/best.pt`` (default: the shipped weights for the ratio, if any)."""
PUBLISHED_ROW = {"admm-net": "ADMM-Net15", "zero-filling": "zero-filling", "admm-tv": "TV",
                 "ista-net-plus": "ISTA-Net+"}

# Chosen on the first 8 chest training images (validation, never the brain test set), the same
# for every ratio; PSNR dB at 20 / 50 % (chest zero-filling 27.71 / 35.53):
#   admm-tv, 100 iterations, gamma 0.03: tv_weight 0.05 30.25/40.78, 0.02 31.39/41.89,
#     0.01 32.08/42.47, 0.005 32.34/42.92, 0.002 31.72/43.33, 0.001 30.47/43.41 (gamma 0.01-0.3
#     changes < 0.3 dB at weights <= 0.01); 200 iterations: 0.005 32.47/42.92, 0.002 32.62/43.33.
#   pnp-admm/ffdnet, 5 iterations per sigma: 15,10,6,4 gamma 0.05 36.32/46.83, gamma 0.2
#     36.14/45.08, gamma 0.01 36.33/47.16, gamma 0.003 36.32/47.20; 10,6,4,2 (0.05) 35.60/46.46;
#     25,15,8,4 (0.05) 36.38/46.69, (0.01) 36.40/46.97; 20,12,6,3 (0.01) 36.36/46.85.
# 20 PnP iterations (not the field's 40) keep the 50-image bench near 30 minutes on 2 shared cores.
DEFAULTS = dict(tv_iters=200, tv_weight=0.002, tv_inner=5, tv_gamma=0.03,
                sigma="15,10,6,4", pnp_iters="5,5,5,5", pnp_gamma=0.01)


def floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v.strip())


def load_images(dataset: str, count: int) -> tuple[np.ndarray, list[str]]:
    """(N, H, W) float64 images on [0, 1] and their names."""
    if dataset == "brain":
        files = sorted((DATA / "brain_test").glob("*.png"))[:count]
        return np.stack([iio.imread(f).astype(np.float64) / 255.0 for f in files]), [f.name for f in files]
    names = [f"im-{i:02d}.mat" for i in range(1, count + 1)]
    images = []
    for name in names:
        with h5py.File(DATA / "chest_train" / name, "r") as f:
            images.append(np.asarray(f["im_ori"][()], dtype=np.float64).T)  # MATLAB column-major
    return np.stack(images), names


def load_mask(ratio: int) -> np.ndarray:
    return scipy.io.loadmat(str(DATA / "masks_pseudo_radial" / f"mask_{ratio}.mat"))["mask_matrix"].astype(np.float64)


def scores(est: np.ndarray, x: np.ndarray) -> dict[str, float]:
    """Mean over images of unclipped PSNR, SSIM (clipped, skimage) and NMSE."""
    mse = ((est - x) ** 2).mean(axis=(1, 2))
    return {
        "psnr": float(np.mean(10 * np.log10(1.0 / mse))),
        "ssim": float(np.mean([ssim(e, r, 1.0) for e, r in zip(est, x)])),
        "nmse": float(np.mean([nmse(e, r) for e, r in zip(est, x)])),
    }


def solver_for(method: str, args: argparse.Namespace):
    if method in LEARNED:
        return REGISTRY.get(method).factory(weights=args.weights)
    if method == "admm-tv":
        return REGISTRY.get("admm-tv").factory(iters=args.tv_iters, tv_weight=args.tv_weight,
                                              tv_iters=args.tv_inner, gamma=args.tv_gamma)
    return REGISTRY.get("pnp-admm").factory.from_command_line(denoiser="ffdnet", sigma=floats(args.sigma),
                                           iters=floats(args.pnp_iters), gamma=args.pnp_gamma)


def reconstruct(method: str, op: MRI, x: np.ndarray, args: argparse.Namespace) -> tuple[np.ndarray, float]:
    """Estimates (N, H, W) float64 and seconds per image (batches of ``args.batch`` images)."""
    dtype = torch.float64 if method == "zero-filling" else torch.float32
    op = op.to(dtype)
    out = np.empty_like(x)
    seconds = 0.0
    solver = None if method == "zero-filling" else solver_for(method, args)
    for lo in range(0, len(x), args.batch):
        xt = torch.from_numpy(x[lo:lo + args.batch]).to(dtype)[:, None]
        y = op.A(xt)
        t0 = time.perf_counter()
        x0 = op.start(y)
        est = x0 if solver is None else solver.solve(op, y, x0=x0).x
        seconds += time.perf_counter() - t0
        out[lo:lo + args.batch] = est[:, 0].double().numpy()
    return out, seconds / len(x)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", default="20,30,40,50", help="sampling ratios in %% (pseudo-radial masks)")
    ap.add_argument("--images", type=int, default=50, help="number of images (first N)")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--dataset", choices=("brain", "chest"), default="brain",
                    help="brain (test set, published table) or chest (training images: validation)")
    ap.add_argument("--batch", type=int, default=10, help="images per solver call")
    ap.add_argument("--tv-iters", type=int, default=DEFAULTS["tv_iters"], help="admm-tv outer iterations")
    ap.add_argument("--tv-weight", type=float, default=DEFAULTS["tv_weight"], help="admm-tv TV weight")
    ap.add_argument("--tv-inner", type=int, default=DEFAULTS["tv_inner"], help="admm-tv Chambolle iterations")
    ap.add_argument("--tv-gamma", type=float, default=DEFAULTS["tv_gamma"], help="admm-tv penalty gamma")
    ap.add_argument("--sigma", default=DEFAULTS["sigma"], help="pnp-admm FFDNet sigmas (0..255), comma list")
    ap.add_argument("--pnp-iters", default=DEFAULTS["pnp_iters"], help="pnp-admm iterations per sigma")
    ap.add_argument("--pnp-gamma", type=float, default=DEFAULTS["pnp_gamma"], help="pnp-admm penalty gamma")
    ap.add_argument("--weights", default="", help="admm-net / ista-net-plus weights (a scicli train checkpoint or "
                                                  "run directory; default: the shipped ones for the ratio)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        print(f"error: unknown method(s) {', '.join(bad)} (choose from {', '.join(METHODS)})", file=sys.stderr)
        return 2
    ratios = [int(r) for r in args.ratios.split(",")]
    if sum(m in LEARNED for m in methods) > 1 and args.weights:
        print("error: --weights names one network's checkpoint: run one learned method at a time", file=sys.stderr)
        return 2

    print("command:", " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]))
    print(f"load average {os.getloadavg()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
          f"cpu count {os.cpu_count()}")
    x, names = load_images(args.dataset, args.images)
    print(f"data: {len(x)} {args.dataset} images {x.shape[1]}x{x.shape[2]} ({names[0]} .. {names[-1]}), "
          f"masks pseudo-radial {ratios} %, y = mask * fft2(x) (unitary), no noise")
    print("scores: PSNR 10 log10(1/mse) unclipped; SSIM skimage 7x7, data_range 1, clipped to [0, 1]; "
          "NMSE ||x_hat - x|| / ||x||; mean over images")
    if "admm-tv" in methods:
        print(f"admm-tv: iters {args.tv_iters}, tv_weight {args.tv_weight}, tv_iters {args.tv_inner}, "
              f"gamma {args.tv_gamma}, x0 = zero-filled, float32")
    for m in (m for m in methods if m in LEARNED):
        print(f"{m}: weights {args.weights or '(shipped for the ratio)'}, x0 = zero-filled, float32")
    if "pnp-admm" in methods:
        print(f"pnp-admm: ffdnet, sigma {args.sigma} /255, iters {args.pnp_iters}, gamma {args.pnp_gamma}, "
              f"x0 = zero-filled, float32")
    sys.stdout.flush()

    results: dict[tuple[str, int], dict[str, float]] = {}
    start = time.perf_counter()
    for ratio in ratios:
        mask = load_mask(ratio)
        op = MRI(torch.from_numpy(mask))
        for method in methods:
            try:
                est, sec = reconstruct(method, op, x, args)
            except UsageError as exc:  # learned weights for another ratio
                print(f"  {ratio:2d} % (actual {op.ratio:.4f})  {method:12s}  skipped: {exc}", flush=True)
                continue
            results[method, ratio] = {**scores(est, x), "sec": sec}
            r = results[method, ratio]
            pub = PUBLISHED.get(PUBLISHED_ROW.get(method, ""), {}).get(ratio) if args.dataset == "brain" else None
            print(f"  {ratio:2d} % (actual {op.ratio:.4f})  {method:12s}  PSNR {r['psnr']:6.2f}  "
                  f"SSIM {r['ssim']:.4f}  NMSE {r['nmse']:.4f}  {sec:7.3f} s/image"
                  + (f"  (published {PUBLISHED_ROW[method]} {pub[0]:.2f} / "
                     f"{'-' if math.isnan(pub[1]) else f'{pub[1]:.4f}'})" if pub else ""),
                  flush=True)

    print()
    print(f"{'method':24s}" + "".join(f"{f'{r} %':>26s}" for r in ratios) + f"{'s/image':>10s}")
    print(f"{'':24s}" + "".join(f"{'PSNR   SSIM    NMSE':>26s}" for _ in ratios))
    for method in methods:
        cells = "".join(f"{results[method, r]['psnr']:12.2f} {results[method, r]['ssim']:6.4f} "
                        f"{results[method, r]['nmse']:6.4f}" if (method, r) in results else f"{'-':>26s}"
                        for r in ratios)
        sec = np.mean([results[method, r]["sec"] for r in ratios if (method, r) in results] or [np.nan])
        print(f"{'scicli ' + method:24s}{cells}{sec:10.3f}")
    if args.dataset == "brain":
        for name, row in PUBLISHED.items():
            cells = "".join(f"{row[r][0]:12.2f} {'':6s} {'-' if math.isnan(row[r][1]) else f'{row[r][1]:6.4f}':>6s}"
                            if r in row else f"{'':26s}" for r in ratios)
            print(f"{'published ' + name:24s}{cells}")
    print(f"total {time.perf_counter() - start:.0f} s, load average {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
