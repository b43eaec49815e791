"""Block compressive sensing (operator cs-block) on BSD68 with the ISTA-Net sampling matrices.

    python bench/bench_cs_block.py [--ratios 10,30,40] [--images N] [--methods qinit,admm-tv,pnp-admm]
                                   [--threads 1] [solver settings] [--csv FILE]
    python bench/bench_cs_block.py --tune [--val-images 10]      (choose the settings on Train400)
    python bench/bench_cs_block.py --ratios 10 --methods qinit,ista-net-plus --weights RUN/best.pt
    python bench/bench_cs_block.py --data ../shared/data/Set12 --images 7 --ratios 30 \
        --methods qinit,admm-tv,pnp-admm,ista-net-plus,ista-net,fista-net --untrained ista-net,fista-net
                                   (seconds per 256 x 256 image: the CPU time table)

Convention (shared/data/cs/PROVENANCE.txt, ISTA-Net's test script): x = Y / 255 (BSD68 is
grayscale), zero-pad right and bottom to a multiple of 33, row-major 33 x 33 blocks,
y_k = Phi x_k with ISTA-Net's phi_0_R_1089.mat; outputs clipped to [0, 1]; PSNR on the 0..255
scale over the original area, 10 log10(255^2 / mse), averaged over images; SSIM from
scikit-image (7 x 7 window, data_range 1) on the same clipped images.

Methods: qinit (ISTA-Net's linear initialiser Qinit y_k, Initialization_Matrix_R.mat), admm-tv
and pnp-admm with FFDNet, both started from the Qinit estimate; ista-net-plus (and ista-net,
fista-net) with ``--weights RUN/best.pt`` from ``scicli train --operator cs-block`` (evaluated at
the ratio the weights were trained for; the others are skipped), started from Qinit y. The settings (SETTINGS below)
were chosen on 10 Train400 images (``--tune``), never on BSD68. Published rows: Zhang & Ghanem,
ISTA-Net, CVPR 2018, Table 2 (BSD68, average PSNR), as quoted in
shared/references/model-driven-deep-learning-slides.txt.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # numpy's BLAS: the CPUs are shared
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import csv  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.io  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.metrics import structural_similarity  # noqa: E402

from scicli.core.errors import UsageError  # noqa: E402
from scicli.physics.cs_block import BlockCS  # noqa: E402
from scicli.methods import METHODS as REGISTRY  # noqa: E402
from scicli.weights.store import FORMAT, FORMAT_VERSION, build_model  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BSD68 = DATA / "BSD68"
TRAIN400 = DATA / "Train400"
MATRICES = DATA / "cs" / "sampling_matrix"
METHODS = ("qinit", "admm-tv", "pnp-admm")
LEARNED = ("ista-net-plus", "ista-net", "fista-net")
"""Learned methods: need ``--weights RUN/best.pt`` (trained for one ratio: other ratios are skipped)."""
LABELS = {"qinit": "Qinit (linear)", "admm-tv": "admm-tv", "pnp-admm": "pnp-admm / ffdnet",
          "ista-net-plus": "ista-net-plus (scicli)", "ista-net": "ista-net (scicli)", "fista-net": "fista-net (scicli)"}

# ISTA-Net (CVPR 2018) Table 2: average PSNR (dB) on BSD68
PUBLISHED = {
    "ISTA-Net+ (published)": {10: 25.33, 30: 30.34, 40: 32.21},
    "ISTA-Net (published)": {10: 25.02, 30: 29.93, 40: 31.85},
    "ReconNet (published)": {10: 24.15, 30: 27.53, 40: 29.08},
}

# Chosen on Train400 images 1-10 (bench --tune), never on BSD68; sigma on the 0..255 scale. The
# validation landscape is flat for admm-tv (tv_weight 0.01-0.04 with gamma <= 0.01 within 0.05 dB;
# it has converged by 20-50 iterations); pnp-admm is budget-limited: 10 FFDNet calls per image keep
# the full 68-image, 3-ratio run near 30 minutes on one CPU thread (the default 50/25/12/6 x 10
# schedule, 40 calls, is +0.3 to +0.4 dB at 30/40 % and -0.3 dB at 10 % on the validation images).
_ADMM_TV = {"iters": 50, "tv_weight": 0.02, "tv_iters": 5, "gamma": 0.003}
_PNP = {"sigma": (20.0, 10.0, 5.0), "iters": (3.0, 3.0, 4.0), "gamma": 0.01}
SETTINGS: dict[int, dict[str, dict[str, Any]]] = {r: {"admm-tv": dict(_ADMM_TV), "pnp-admm": dict(_PNP)}
                                                  for r in (10, 30, 40)}


# -- data -------------------------------------------------------------------------------------------
def load_gray(path: Path) -> np.ndarray:
    """8-bit luma (H, W): grayscale as stored; colour through PIL's ITU-R 601 luma (Y of YCbCr)."""
    img = Image.open(path)
    if img.mode not in ("L", "I;16"):
        img = img.convert("L")
    return np.asarray(img, dtype=np.uint8)


def image_files(folder: Path, count: int | None) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".tif", ".bmp", ".jpg"))
    if not files:
        raise SystemExit(f"error: no images in {folder}")
    return files[:count] if count else files


def load_matrices(ratio: int) -> tuple[np.ndarray, np.ndarray]:
    """ISTA-Net's Phi (m, 1089) and Qinit (1089, m) for a ratio in percent."""
    phi = scipy.io.loadmat(str(MATRICES / f"phi_0_{ratio}_1089.mat"))["phi"]
    qinit = scipy.io.loadmat(str(MATRICES / f"Initialization_Matrix_{ratio}.mat"))["Qinit"]
    return phi, qinit


class Operators:
    """One float32 BlockCS per image size for a ratio (BSD68 has two sizes)."""

    def __init__(self, ratio: int) -> None:
        self.phi, self.qinit = load_matrices(ratio)
        self.cache: dict[tuple[int, int], BlockCS] = {}

    def get(self, size: tuple[int, int]) -> BlockCS:
        if size not in self.cache:
            K = 1
            R, C = -(-size[0] // 33), -(-size[1] // 33)
            self.cache[size] = BlockCS.from_arrays(
                {"phi": self.phi, "size": np.array(size), "qinit": self.qinit},
                meas_shape=(K, R * C, self.phi.shape[0]),
            ).to(torch.float32)
        return self.cache[size]


# -- metrics ------------------------------------------------------------------------------------------
def score(x: np.ndarray, img: np.ndarray) -> tuple[float, float]:
    """(PSNR on the 0..255 scale, SSIM with data_range 1) of x clipped to [0, 1] against the 8-bit image."""
    rec = np.clip(x.astype(np.float64), 0.0, 1.0)
    mse = float(np.mean((rec * 255.0 - img.astype(np.float64)) ** 2))
    psnr = 10.0 * math.log10(255.0**2 / mse) if mse > 0 else float("inf")
    ssim = float(structural_similarity(rec, img.astype(np.float64) / 255.0, data_range=1.0))
    return psnr, ssim


# -- solvers ----------------------------------------------------------------------------------------
def untrained_checkpoint(method: str) -> str:
    """A checkpoint of ``method``'s default architecture with freshly initialised weights (seed 0),
    for timing a network that has no weights for the ratio (``--untrained``)."""
    torch.manual_seed(0)
    model = build_model(method, {})
    path = Path(tempfile.mkdtemp(prefix="bench_cs_")) / f"{method}-untrained.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "method": method,
                "config": dict(model.config), "model": model.state_dict()}, path)
    return str(path)


def make_solver(method: str, params: dict[str, Any]):
    if method == "qinit":
        return None
    if method in LEARNED:
        return REGISTRY.get(method).factory(**{k: v for k, v in params.items() if k != "untrained"})
    extra = {"denoiser": "ffdnet"} if method == "pnp-admm" else {}
    return REGISTRY.get(method).factory.from_command_line(**extra, **params)  # sigma on 0..255


def reconstruct(method: str, solver, op: BlockCS, y: torch.Tensor, gt: torch.Tensor | None = None):
    """(x, history): the Qinit estimate, or the solver started from it."""
    x0 = op.start(y)
    if solver is None:
        return x0, []
    res = solver.solve(op, y, x0=x0, gt=gt)
    return res.x, res.history


def settings_for(ratio: int, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """SETTINGS of the nearest tuned ratio, with the command-line overrides."""
    base = SETTINGS[min(SETTINGS, key=lambda r: abs(r - ratio))]
    tv = dict(base["admm-tv"])
    pnp = dict(base["pnp-admm"])
    for key, value in (("iters", args.admm_iters), ("tv_weight", args.tv_weight), ("tv_iters", args.tv_inner),
                       ("gamma", args.admm_gamma)):
        if value is not None:
            tv[key] = value
    for key, value in (("sigma", args.pnp_sigma), ("iters", args.pnp_iters), ("gamma", args.pnp_gamma)):
        if value is not None:
            pnp[key] = value
    learned = {m: {"weights": str(args.weights)} if args.weights else {} for m in LEARNED}
    for m in args.untrained:
        learned[m] = {"weights": untrained_checkpoint(m), "untrained": True}
    return {"admm-tv": tv, "pnp-admm": pnp, **learned}


def describe(method: str, params: dict[str, Any]) -> str:
    if method == "qinit":
        return "x0 = Qinit y_k"
    if method in LEARNED:
        if params.get("untrained"):
            return "UNTRAINED (fresh weights, for its time only), from Qinit y_k"
        return f"weights {params.get('weights') or '(shipped)'}, from Qinit y_k"
    if method == "admm-tv":
        return (f"iters={params['iters']} tv_weight={params['tv_weight']} tv_iters={params['tv_iters']} "
                f"gamma={params['gamma']}")
    sig = "/".join(f"{s:g}" for s in params["sigma"])
    its = "/".join(f"{int(n)}" for n in params["iters"])
    return f"ffdnet sigma={sig} iters={its} ({int(sum(params['iters']))} in all) gamma={params['gamma']}"


# -- the benchmark ------------------------------------------------------------------------------------
def header(args: argparse.Namespace) -> None:
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    print(f"load average {tuple(round(v, 2) for v in os.getloadavg())}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s), {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), "
          f"python {platform.python_version()}")


def bench(args: argparse.Namespace) -> int:
    files = image_files(args.data, args.images)
    images = [(p.name, load_gray(p)) for p in files]
    print(f"data: {args.data} ({len(images)} images); matrices: {MATRICES}")
    print("convention: x = Y/255, zero-pad to a multiple of 33, row-major blocks, output clipped to [0, 1]; "
          "PSNR 10 log10(255^2/mse) on the original area, SSIM skimage (7x7, data_range 1); means over images")
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    rows_csv = []
    t_all = time.perf_counter()
    for ratio in args.ratios:
        ops = Operators(ratio)
        settings = settings_for(ratio, args)
        solvers = {m: make_solver(m, settings.get(m, {})) for m in args.methods}
        skip = set()
        for m in args.methods:
            print(f"  {ratio:>2d} %  {LABELS[m]:<18s} {describe(m, settings.get(m, {}))}")
            if m in LEARNED:
                op = ops.get(images[0][1].shape)
                try:
                    solvers[m].fit_weights(op)  # the shipped variant for this ratio (METHOD@csNN), if any
                    solvers[m].model.check(op, op.A(torch.zeros(1, 1, *op.size)))
                except UsageError as exc:
                    print(f"         skipped: {exc}")
                    skip.add(m)
        for name, img in images:
            op = ops.get(img.shape)
            x = torch.from_numpy(img.astype(np.float32) / 255.0)[None, None]
            y = op.A(x)
            for m in args.methods:
                if m in skip:
                    continue
                t0 = time.perf_counter()
                xhat, _ = reconstruct(m, solvers[m], op, y)
                dt = time.perf_counter() - t0
                p, s = score(xhat[0, 0].numpy(), img)
                results.setdefault((m, ratio), []).append((p, s, dt))
                rows_csv.append({"image": name, "ratio": ratio, "method": m, "psnr": f"{p:.4f}", "ssim": f"{s:.5f}",
                                 "seconds": f"{dt:.3f}"})
            if args.verbose:
                line = "  ".join(f"{m} {results[(m, ratio)][-1][0]:.2f}" for m in args.methods)
                print(f"    {ratio} % {name}: {line}", flush=True)
        done = "  ".join(f"{m} {np.mean([r[0] for r in results[(m, ratio)]]):.2f} dB" for m in args.methods
                         if (m, ratio) in results)
        print(f"  {ratio} % done after {time.perf_counter() - t_all:.0f} s: {done}", flush=True)
    wall = time.perf_counter() - t_all

    print()
    print(f"BSD68-style block CS ({args.data.name}, {len(images)} images), PSNR (dB) / SSIM / seconds per image; "
          f"wall {wall:.0f} s, load average now {tuple(round(v, 2) for v in os.getloadavg())}")
    width = 25
    head = f"{'method':<24s}" + "".join(f"{f'{r} %':>{width}s}" for r in args.ratios)
    print(head)
    print("-" * len(head))
    for m in args.methods:
        cells = []
        for r in args.ratios:
            if (m, r) not in results:
                cells.append("-")
                continue
            arr = np.array(results[(m, r)])
            cells.append(f"{arr[:, 0].mean():6.2f} / {arr[:, 1].mean():.4f} / {arr[:, 2].mean():5.2f}")
        print(f"{LABELS[m]:<24s}" + "".join(f"{c:>{width}s}" for c in cells))
    for label, vals in PUBLISHED.items():
        cells = [f"{vals[r]:6.2f} /    -   /    - " if r in vals else "-" for r in args.ratios]
        print(f"{label:<24s}" + "".join(f"{c:>{width}s}" for c in cells))
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows_csv[0]))
            w.writeheader()
            w.writerows(rows_csv)
        print(f"per-image results: {args.csv}")
    return 0


# -- tuning on the validation split ------------------------------------------------------------------
# The grids of --tune: the union of the three stages that were run to choose SETTINGS,
#   --tune --methods admm-tv                          (tv_weight 0.01..0.2 x gamma 0.01, 0.1, 1; tv_iters 5)
#   --tune --methods admm-tv --tune-tv-weights 0.005,0.01,0.02,0.04 --tune-gammas 0.001,0.003,0.01
#          --tune-tv-inner 5,10
#   --tune --methods pnp-admm --tune-pnp '...'         (step and geometric schedules of 8-40 iterations)
TUNE_TV_WEIGHTS = (0.005, 0.01, 0.02, 0.04, 0.05, 0.1, 0.2)
TUNE_ADMM_GAMMAS = (0.001, 0.003, 0.01, 0.1, 1.0)
TUNE_TV_INNER = (5, 10)
TUNE_ADMM_CHECKPOINTS = (10, 20, 50, 100)
TUNE_PNP = ";".join((  # schedules "sigmas:iters" separated by ';' (sigma on 0..255)
    "20,10,5:4,4,4", "30,15,8,4:3,3,3,3", "15,8,4:4,4,4", "10,5,3:4,4,4", "25,12,6:3,3,3",
    "50,25,12,6:10,10,10,10",
    "20,16.7,14,11.7,9.78,8.18,6.84,5.72,4.78,4:1,1,1,1,1,1,1,1,1,1",
    "20,16.4,13.5,11,9.06,7.43,6.1,5:1,1,1,1,1,1,1,1",
    "30,24,19.2,15.3,12.3,9.79,7.83,6.26,5,4:1,1,1,1,1,1,1,1,1,1",
    "15,12.5,10.5,8.77,7.34,6.13,5.13,4.29,3.59,3:1,1,1,1,1,1,1,1,1,1",
    "20,10,5:3,3,2", "20,10,5:4,3,3", "20,10,5:3,3,4", "15,8,4:4,3,3", "25,10,5:4,3,3",
))
TUNE_PNP_GAMMAS = (0.01,)


def schedules(text: str) -> list[tuple[tuple[float, ...], tuple[float, ...]]]:
    out = []
    for part in text.split(";"):
        sig, its = part.split(":")
        out.append((floats(sig), floats(its)))
    return out


def tune(args: argparse.Namespace) -> int:
    """Grid search on the validation images (all the same size: one batched solve per setting);
    PSNR per setting (mean over images; for admm-tv the solver's per-iteration PSNR at the
    checkpoints, which is the same mean of per-image PSNRs of the clipped iterate)."""
    files = image_files(args.val_data, args.val_images)
    imgs = [load_gray(p) for p in files]
    if len({i.shape for i in imgs}) != 1:
        raise SystemExit("error: --tune needs validation images of one size")
    print(f"validation: {args.val_data} images {files[0].name} .. {files[-1].name} ({len(files)}, {imgs[0].shape})")
    gt = torch.from_numpy(np.stack(imgs).astype(np.float32) / 255.0)[:, None]
    for ratio in args.ratios:
        op = Operators(ratio).get(imgs[0].shape)
        y = op.A(gt)
        x0 = op.start(y)
        base = np.mean([score(x0[i, 0].numpy(), imgs[i])[0] for i in range(len(imgs))])
        print(f"\n{ratio} %: Qinit {base:.2f} dB")
        if "admm-tv" in args.methods:
            best = None
            for inner in args.tune_tv_inner:
                for w in args.tune_tv_weights:
                    for g in args.tune_gammas:
                        t0 = time.perf_counter()
                        solver = make_solver("admm-tv", {"iters": max(TUNE_ADMM_CHECKPOINTS), "tv_weight": w,
                                                         "tv_iters": inner, "gamma": g})
                        _, hist = reconstruct("admm-tv", solver, op, y, gt)
                        ps = [hist[k - 1]["psnr"] for k in TUNE_ADMM_CHECKPOINTS]
                        cells = "  ".join(f"{k}:{p:6.2f}" for k, p in zip(TUNE_ADMM_CHECKPOINTS, ps))
                        print(f"  admm-tv tv_iters={inner:<2d} w={w:<5g} gamma={g:<5g} {cells}  "
                              f"({time.perf_counter() - t0:.1f} s)", flush=True)
                        for k, p in zip(TUNE_ADMM_CHECKPOINTS, ps):
                            if best is None or p > best[0] + 1e-9:
                                best = (p, w, g, k, inner)
            print(f"  best admm-tv: {best[0]:.2f} dB at tv_weight={best[1]} gamma={best[2]} iters={best[3]} "
                  f"tv_iters={best[4]}")
        if "pnp-admm" in args.methods:
            for sig, its in schedules(args.tune_pnp):
                for g in args.tune_pnp_gammas:
                    t0 = time.perf_counter()
                    solver = make_solver("pnp-admm", {"sigma": sig, "iters": its, "gamma": g})
                    _, hist = reconstruct("pnp-admm", solver, op, y, gt)
                    trace = " ".join(f"{h['psnr']:.2f}" for h in hist)
                    print(f"  pnp-admm sigma={'/'.join(f'{s:g}' for s in sig)} iters={'/'.join(f'{n:g}' for n in its)} "
                          f"gamma={g:g}: {hist[-1]['psnr']:.2f} dB ({time.perf_counter() - t0:.1f} s)  "
                          f"per iteration: {trace}",
                          flush=True)
    return 0


# -- command line -------------------------------------------------------------------------------------
def floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(","))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", default="10,30,40",
                    help="sampling ratios in percent (ISTA-Net matrices: 1,4,10,25,30,40)")
    ap.add_argument("--images", type=int, default=None, help="first N images only (quick runs)")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {', '.join(METHODS)}")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    ap.add_argument("--data", type=Path, default=BSD68, help="test images (default: %(default)s)")
    ap.add_argument("--untrained", type=lambda v: [m for m in v.split(",") if m], default=[],
                    help="learned methods to run with fresh, untrained weights (their time: the CPU time table)")
    ap.add_argument("--csv", type=Path, default=None, help="write per-image PSNR/SSIM/seconds here")
    ap.add_argument("--verbose", action="store_true", help="print every image's PSNR")
    ap.add_argument("--weights", type=Path, default=None,
                    help="learned methods (ista-net-plus, ista-net, fista-net): a scicli train checkpoint "
                         "(default: the shipped weights)")
    g = ap.add_argument_group("solver settings (override SETTINGS for every ratio)")
    g.add_argument("--admm-iters", type=int, default=None, help="admm-tv iterations")
    g.add_argument("--tv-weight", type=float, default=None, help="admm-tv TV weight")
    g.add_argument("--tv-inner", type=int, default=None, help="admm-tv Chambolle iterations per step")
    g.add_argument("--admm-gamma", type=float, default=None, help="admm-tv penalty gamma")
    g.add_argument("--pnp-sigma", type=floats, default=None, help="pnp-admm sigma schedule on 0..255, e.g. 20,10,5")
    g.add_argument("--pnp-iters", type=floats, default=None, help="pnp-admm iterations per sigma, e.g. 4,4,4")
    g.add_argument("--pnp-gamma", type=float, default=None, help="pnp-admm penalty gamma")
    t = ap.add_argument_group("tuning on the validation split")
    t.add_argument("--tune", action="store_true", help="grid search on the validation images instead of the benchmark")
    t.add_argument("--val-data", type=Path, default=TRAIN400, help="validation images (default: %(default)s)")
    t.add_argument("--val-images", type=int, default=10, help="first N validation images")
    t.add_argument("--tune-tv-weights", type=floats, default=TUNE_TV_WEIGHTS, help="admm-tv TV weights to try")
    t.add_argument("--tune-gammas", type=floats, default=TUNE_ADMM_GAMMAS, help="admm-tv gammas to try")
    t.add_argument("--tune-tv-inner", type=lambda v: tuple(int(x) for x in v.split(",")), default=TUNE_TV_INNER,
                   help="admm-tv Chambolle iterations to try")
    t.add_argument("--tune-pnp", default=TUNE_PNP, help="pnp-admm schedules 'sigmas:iters;...', e.g. '20,10,5:4,4,4'")
    t.add_argument("--tune-pnp-gammas", type=floats, default=TUNE_PNP_GAMMAS, help="pnp-admm gammas to try")
    args = ap.parse_args(argv)
    args.ratios = [int(r) for r in args.ratios.split(",")]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in args.methods if m not in METHODS + LEARNED]
    if bad:
        ap.error(f"unknown method(s) {', '.join(bad)}; choose from {', '.join(METHODS + LEARNED)}")
    if args.tune and any(m in LEARNED for m in args.methods):
        ap.error("--tune applies to admm-tv and pnp-admm (learned methods are trained with scicli train)")
    missing = [r for r in args.ratios if not (MATRICES / f"phi_0_{r}_1089.mat").is_file()]
    if missing:
        ap.error(f"no ISTA-Net matrices for ratio(s) {missing} in {MATRICES}")
    torch.set_num_threads(args.threads)
    header(args)
    return tune(args) if args.tune else bench(args)


if __name__ == "__main__":
    sys.exit(main())
