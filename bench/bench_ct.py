"""Parallel-beam CT (operator ct): accuracy against scikit-image and speed against a PyPI torch
projector, and the choice of the CT TV weight on a validation set.

    python bench/bench_ct.py [--sizes 256,512] [--views 60,120,180] [--repeat 3] [--threads 1] [--no-peers]
    python bench/bench_ct.py --tune [--val-size 128] [--views 120]     (TV weights on validation)
    python bench/bench_ct.py --methods [--size 128] [--views 60,120] [--noise 0] [--max-iter N]
        [--weights-ista-net-plus-60 RUN/best.pt] [--weights-ista-net-plus-120 RUN/best.pt]
        [--weights-fista-net-60 RUN/best.pt] [--weights-fista-net-120 RUN/best.pt]
        [--weights-red-deq RUN/best.pt] [--weights-oder RUN/best.pt]          (issue 12's CT method table)

Accuracy (float64, Shepp-Logan phantom, ``--accuracy-size`` square): our A against
``skimage.transform.radon(circle=False)`` (same geometry: rotation centre (H // 2, W // 2),
``ceil(sqrt(2) N)`` detector bins, unit steps, no scaling needed) and our FBP (ramp) against
``iradon(filter_name="ramp", circle=False)`` (same filter and ``pi / 2V`` scaling; iradon's
back-projection interpolates the filtered sinogram at each pixel, ours is the exact transpose of
A, so they differ at the level of interpolation error). Tolerances: radon 1e-6 relative, FBP 5 %
relative (both far above what is measured, see the printed numbers).

Speed (float32, CPU, ``--threads``, one image, the median of ``--repeat`` calls after one
warm-up; the warm-up of ours builds the sparse system matrix, A and A^T, and is printed as
"first", with the matrix's bytes): scicli's A / A^T, torchskradon 0.1.4 (``skradon`` for A, ``skiradon(filter_name=None)`` unscaled
for the back-projection; both circle=False) and scikit-image's radon / iradon(filter=None).

``--tune``: admm-tv and fista-tv TV weights and pnp-admm's FFDNet sigma schedule on a validation set that is never a test image:
two phantoms (Shepp-Logan, a random-ellipse phantom) and one Train400 image, resized to
``--val-size``, ``--views`` views, noise-free; PSNR against the image. The chosen weights are
the ct operator's ``method_defaults`` (scicli/physics/ct.py). The DICOM test slices
(pydicom-data's 693_UNCI / 693_UNCR) are never used here.

``--methods``: the CT method table of issue 12 section 3 on the CT test slices of
``bench/ct_slices.py`` (pydicom-data's 693_UNCI.dcm and 693_UNCR.dcm, the same acquisition
stored twice, correlation 0.995; and the two frames of eCT_Supplemental.dcm, correlation 0.90
between them; windowed [-1000, 1000] HU, resized to ``--size``), for ``--views`` views evenly
over 180 degrees, noise-free (``--noise S``: Gaussian noise of standard deviation S / 255 added
to the sinogram). Rows: fbp (ramp), fista-tv, admm-tv, pnp-admm (FFDNet), all with the ct
operator's defaults; ista-net-plus and fista-net with the weights trained for that number of
views (a missing file or weights for other views: the row says so and is skipped); red-deq
(``--weights-red-deq``, default the shipped weights; ``untrained``: the shipped dncnn as D) and
oder (``--weights-oder``, default the shipped weights: its stored w and data-gradient estimate,
and the other estimate, plain or saga, at the same w; RED's weights fit any number of views)
with the solve stored with the weights, or at most ``--max-iter`` Nesterov evaluations. Columns: the means over the slices of PSNR (result
clipped to [0, 1]), SSIM (scikit-image convention), SNR (the ODER supplement's eq. 15, affine
fit), the PSNR gain over FBP, the seconds of the whole batch, and each slice's PSNR. The
published Mayo numbers (FISTA-Net paper, 60 / 120 views) are printed beside: the data differ
(Mayo/AAPM there, these DICOM slices here) so only the ordering and the gains over FBP compare.
CPU, one thread (``--threads``), load average printed at the start and the end.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # the CPUs are shared
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from skimage.data import shepp_logan_phantom  # noqa: E402
from skimage.transform import iradon, radon, resize  # noqa: E402

from ct_slices import similarity_note, test_slices  # noqa: E402
from scicli.core.errors import ScicliError  # noqa: E402
from scicli.methods import METHODS  # noqa: E402
from scicli.methods.red_deq import REDMap  # noqa: E402
from scicli.metrics import psnr as clipped_psnr, snr, ssim  # noqa: E402
from scicli.physics.ct import ParallelBeamCT, matrix_bytes  # noqa: E402
from scicli.weights.store import load_model  # noqa: E402

TRAIN400 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "Train400"
RADON_TOL, FBP_TOL = 1e-6, 0.05


def median_seconds(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(first call, median of ``repeat`` later calls) in seconds."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times)


def psnr(x: np.ndarray, ref: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(x, 0, 1) - ref) ** 2)))


def accuracy(size: int, views: int) -> None:
    img = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    theta = np.linspace(0.0, 180.0, views, endpoint=False)
    op = ParallelBeamCT(torch.from_numpy(theta), (size, size)).double()
    y = op.A(torch.from_numpy(img)[None, None])[0].numpy().T
    ref = radon(img, theta=theta, circle=False)
    e_radon = np.linalg.norm(y - ref) / np.linalg.norm(ref)
    ours = op.fbp(torch.from_numpy(y.T.copy())[None])[0, 0].numpy()
    theirs = iradon(ref, theta=theta, circle=False, filter_name="ramp")
    e_fbp = np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)
    ok = e_radon < RADON_TOL and e_fbp < FBP_TOL
    print(f"  {size}x{size}, {views:3d} views: radon rel. diff {e_radon:.1e} (tol {RADON_TOL:g}); FBP vs iradon "
          f"rel. diff {e_fbp:.3f} (tol {FBP_TOL:g}); PSNR ours {psnr(ours, img):.2f} dB, iradon "
          f"{psnr(theirs, img):.2f} dB  {'OK' if ok else 'FAIL'}")


def speed(size: int, views: int, repeat: int, peers: bool = True) -> None:
    try:
        from torchskradon.functional import skiradon, skradon  # noqa: PLC0415 (bench extra)
    except ImportError:
        skradon = skiradon = None
    img = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True).astype(np.float32)
    theta = np.linspace(0.0, 180.0, views, endpoint=False)
    x = torch.from_numpy(img)[None, None]
    op = ParallelBeamCT(torch.from_numpy(theta), (size, size)).float()
    t0 = time.perf_counter()
    y = op.A(x)
    build = time.perf_counter() - t0
    held = sum(matrix_bytes(m.values().numel(), m.shape[0], m.dtype)
               for ms in op._matrices.values() for m in ms)
    print(f"  {size}x{size} {views:3d} views  scicli ct: system matrix A and A^T {held / 1e6:.0f} MB "
          f"({held // 2 / 1e6:.0f} MB each; {'matrix-free' if not held else 'CSR float32'}), first call "
          f"{build:.2f} s (build)")
    rows = [("scicli ct A", lambda: op.A(x)), ("scicli ct A^T", lambda: op.A_adjoint(y))]
    if skradon is not None and peers:
        th = torch.from_numpy(theta).float()
        sino = skradon(x, theta=th, circle=False)
        rows += [("torchskradon skradon", lambda: skradon(x, theta=th, circle=False)),
                 ("torchskradon skiradon(filter=None)",
                  lambda: skiradon(sino, theta=th, circle=False, filter_name=None))]
    sino_np = radon(img, theta=theta, circle=False) if peers else None
    rows += [] if not peers else [("skimage radon", lambda: radon(img, theta=theta, circle=False)),
             ("skimage iradon(filter=None)", lambda: iradon(sino_np, theta=theta, circle=False, filter_name=None))]
    for label, fn in rows:
        with torch.no_grad():
            first, med = median_seconds(fn, repeat)
        print(f"  {size}x{size} {views:3d} views  {label:36s} median {1000 * med:8.1f} ms   (first {1000 * first:8.1f} ms)")


def ellipses(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random phantom: 6 ellipses of random intensity in [0.1, 1] on a zero background."""
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    img = np.zeros((size, size))
    for _ in range(6):
        cx, cy, a, b = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), rng.uniform(0.1, 0.5), rng.uniform(0.1, 0.5)
        t = rng.uniform(0, math.pi)
        u, v = (xx - cx) * math.cos(t) + (yy - cy) * math.sin(t), -(xx - cx) * math.sin(t) + (yy - cy) * math.cos(t)
        img[(u / a) ** 2 + (v / b) ** 2 <= 1] = rng.uniform(0.1, 1.0)
    return img


def validation_images(size: int) -> list[tuple[str, np.ndarray]]:
    """Two phantoms and one Train400 image (the first by name), on [0, 1]."""
    out = [("shepp-logan", resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)),
           ("ellipses", ellipses(size, np.random.default_rng(0)))]
    for path in sorted(TRAIN400.glob("*.png"))[:1]:
        img = np.asarray(Image.open(path).convert("L"), dtype=np.float64) / 255.0
        out.append((path.name, resize(img, (size, size), anti_aliasing=True)))
    return out


def tune(size: int, views: int) -> None:
    images = validation_images(size)
    theta = torch.arange(views, dtype=torch.float64) * (180.0 / views)
    op = ParallelBeamCT(theta, (size, size)).float()
    x = torch.from_numpy(np.stack([im for _, im in images])[:, None]).float()
    y = op.A(x)
    fbp = op.start(y).numpy()[:, 0]
    print(f"validation: {', '.join(n for n, _ in images)}; {size}x{size}, {views} views, no noise")
    print(f"  fbp (ramp)  mean PSNR {np.mean([psnr(f, im) for f, (_, im) in zip(fbp, images)]):.2f} dB")

    def tried(label: str, solver) -> None:
        """One setting's solve on the validation images: its mean and per-image PSNR and time."""
        t0 = time.perf_counter()
        rec = solver.solve(op, y).x.numpy()[:, 0]
        sec = time.perf_counter() - t0
        scores = [psnr(r, im) for r, (_, im) in zip(rec, images)]
        print(f"  {label} mean PSNR {np.mean(scores):.2f} dB  "
              f"({' '.join(f'{s:.1f}' for s in scores)})  {sec:.1f} s for {len(images)} images")
    for method, weights, extra in (("fista-tv", (0.3, 1.0, 3.0), {"iters": 50}),
                                   ("admm-tv", (0.01,), {"gamma": 100.0, "iters": 25})):
        for w in weights:
            # explicit settings: no operator defaults
            tried(f"{method:8s} tv_weight {w:<6g} {extra or ''}", METHODS.get(method).factory(tv_weight=w, **extra))
    for schedule in ((50, 25, 12, 6), (25, 12, 6, 3), (12, 6, 3, 1.5), (6, 3, 1.5, 0.75)):
        tried(f"pnp-admm ffdnet sigma {schedule} /255",  # gamma 0.01, 4 x 10
              METHODS.get("pnp-admm").factory(sigma=tuple(v / 255.0 for v in schedule)))


PUBLISHED = {"fbp": (27.53, 29.15), "fista-tv": (33.25, 35.22), "ista-net": (33.73, 35.45),
             "fista-net": (37.32, 40.19)}
"""Mayo (AAPM) sparse-view CT, PSNR at 60 / 120 views (FISTA-Net paper, as quoted in issue 12)."""


def method_rows(views: int, args: argparse.Namespace) -> list[tuple[str, Callable[[ParallelBeamCT, torch.Tensor],
                                                                               torch.Tensor] | str]]:
    """(label, reconstruct(op, y) or the reason the row is skipped) of the table at ``views``."""
    def classic(name: str) -> Callable[[ParallelBeamCT, torch.Tensor], torch.Tensor]:
        return lambda op, y: METHODS.get(name).factory().solve(op, y).x

    def learned(method: str, path: str | None, solve: dict | None = None, **attrs: int | str
                ) -> Callable[[ParallelBeamCT, torch.Tensor], torch.Tensor] | str:
        if path and path != "untrained" and not Path(path).exists():
            return f"skipped: {path} does not exist (yet)"
        try:  # path None: the shipped weights; untrained: the shipped dncnn as D
            model = (REDMap() if path == "untrained" else load_model(method, path)).float().eval()
        except ScicliError as exc:
            return f"skipped: {exc}"
        for name, value in attrs.items():
            setattr(model, name, value)

        def run(op: ParallelBeamCT, y: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return model(y, op, solve=solve)[0]
        return run

    red_solve = {} if args.max_iter is None else {"max_iter": args.max_iter}  # default: as stored with the weights
    rows: list[tuple[str, Callable | str]] = [("fbp (ramp)", classic("fbp")), ("fista-tv", classic("fista-tv")),
                                              ("admm-tv", classic("admm-tv")), ("pnp-admm (ffdnet)", classic("pnp-admm"))]
    for method in ("ista-net-plus", "fista-net"):
        path = getattr(args, f"weights_{method.replace('-', '_')}_{views}", None)
        rows.append((method, learned(method, path) if path else f"skipped: no --weights-{method}-{views}"))
    red = args.weights_red_deq
    rows.append(("red-deq" + {None: " (shipped)", "untrained": " (untrained: shipped dncnn)"}.get(red, ""),
                 learned("red-deq", red, red_solve)))
    oder = learned("oder", args.weights_oder, red_solve)
    if isinstance(oder, str):
        rows.append(("oder", oder))
        return rows
    stored = load_model("oder", args.weights_oder)
    other = "plain" if stored.variance == "saga" else "saga"
    source = "shipped" if args.weights_oder is None else "as stored"
    rows.append((f"oder w = {stored.w}, {stored.variance} ({source})", oder))
    rows.append((f"oder w = {stored.w}, {other}", learned("oder", args.weights_oder, red_solve, variance=other)))
    return rows


def methods_table(args: argparse.Namespace) -> None:
    names, imgs = test_slices(args.size)
    print(f"CT test slices at {args.size}x{args.size} (windowed [-1000, 1000] HU): {', '.join(names)}; "
          f"{similarity_note(imgs)}")
    x = torch.from_numpy(imgs[:, None]).float()
    for views in (int(v) for v in args.views.split(",")):
        op = ParallelBeamCT(torch.arange(views, dtype=torch.float64) * (180.0 / views), (args.size, args.size)).float()
        with torch.no_grad():
            y = op.A(x)
        if args.noise > 0:
            gen = torch.Generator().manual_seed(0)
            y = y + (args.noise / 255.0) * torch.randn(y.shape, generator=gen)
        budget = "as stored with their weights" if args.max_iter is None else f"at most {args.max_iter} evaluations"
        print(f"\n{views} views over 180 degrees, noise {args.noise:g}/255; red-deq/oder forward solves {budget}")
        print(f"{'method':36s} {'PSNR':>6s} {'SSIM':>6s} {'SNR':>6s} {'gain':>6s} {'s':>6s}   PSNR per slice")
        base = None
        for label, run in method_rows(views, args):
            if isinstance(run, str):
                print(f"{label:36s} {run}", flush=True)
                continue
            t0 = time.perf_counter()
            rec = run(op, y).detach().numpy()[:, 0]
            sec = time.perf_counter() - t0
            p = [clipped_psnr(r, im) for r, im in zip(rec, imgs)]
            q = float(np.mean([ssim(r, im) for r, im in zip(rec, imgs)]))
            n = float(np.mean([snr(r, im) for r, im in zip(rec, imgs)]))
            base = float(np.mean(p)) if base is None else base
            print(f"{label:36s} {np.mean(p):6.2f} {q:6.3f} {n:6.2f} {np.mean(p) - base:+6.2f} {sec:6.1f}   "
                  f"{' '.join(f'{v:.2f}' for v in p)}", flush=True)
    print("\npublished (FISTA-Net paper, Mayo/AAPM data; different data: compare the ordering and the gains only)")
    print(f"{'method':12s} {'60 views':>9s} {'gain':>6s} {'120 views':>10s} {'gain':>6s}")
    for name, (p60, p120) in PUBLISHED.items():
        print(f"{name:12s} {p60:9.2f} {p60 - PUBLISHED['fbp'][0]:+6.2f} {p120:10.2f} {p120 - PUBLISHED['fbp'][1]:+6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="256,512", help="image sizes of the speed table")
    parser.add_argument("--accuracy-size", type=int, default=256)
    parser.add_argument("--views", default="60,120,180")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true", help="time scicli only (not torchskradon, skimage)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--val-size", type=int, default=128)
    parser.add_argument("--methods", action="store_true", help="the CT method table on the DICOM test slices")
    parser.add_argument("--size", type=int, default=128, help="--methods: image size of the test slices")
    parser.add_argument("--noise", type=float, default=0.0, help="--methods: sinogram noise std on 0..255")
    parser.add_argument("--max-iter", type=int, default=None,
                        help="--methods: red-deq/oder forward evaluations (default: the settings stored with the weights)")
    for method in ("ista-net-plus", "fista-net"):
        for v in (60, 120):
            parser.add_argument(f"--weights-{method}-{v}", default=None, help=f"--methods: {method} weights, {v} views")
    parser.add_argument("--weights-red-deq", default=None, help="--methods: red-deq weights (default shipped; untrained)")
    parser.add_argument("--weights-oder", default=None, help="--methods: oder weights (default shipped)")
    args = parser.parse_args()
    if args.methods and args.views == "60,120,180":
        args.views = "60,120"
    torch.set_num_threads(args.threads)
    views = [int(v) for v in args.views.split(",")]
    print(f"device cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared), "
          f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if args.tune:
        for v in views:
            tune(args.val_size, v)
        return
    if args.methods:
        methods_table(args)
        print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        return
    print("accuracy (float64):")
    for v in views:
        accuracy(args.accuracy_size, v)
    print(f"speed (float32, median of {args.repeat} after a warm-up):")
    for size in (int(n) for n in args.sizes.split(",")):
        for v in views:
            speed(size, v, args.repeat, peers=not args.no_peers)
            print(f"    load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
