"""ODER's training cost against the views per iteration: peak memory and seconds of one training
step for w in {10, 20, 40, 60, 120} of b = 120 views (w = b is RED (DEQ)).

    python bench/bench_oder.py [--size 128] [--batch 2] [--ws 10,20,40,60,120] [--steps 2]
                               [--max-iter 20] [--backward-max-iter 10] [--matrix-free]
    python bench/bench_oder.py --table [--weights RUN/best.pt] [--weights-w 20=RUN20/best.pt ...] [--size 128] [--max-iter N]
                               [--slices all|pair|validation] [--variants plain,chunks0,saga,saga-chunks0] [--lipschitz-ws 20,40] [--star-iter 300] [--no-lipschitz]
                               (Table 4's shape on the DICOM test slices, then Fig. 1's Lipschitz ratios)
    python bench/bench_oder.py --lipschitz [same options]       (the Lipschitz part of --table alone)
    python bench/bench_oder.py --fig4 [--weights RUN/best.pt] [--size 128] [--max-iter N] [--slices all|pair]
                               (Fig. 4's equal per-iteration budget: ODER w = 50 of 180 against RED on 50 views)

``--table`` (also ODER with ``chunks=0``: one view from each of w equal chunks, the finest
stratified draw): the CT test slices of ``bench/ct_slices.py`` (pydicom-data's 693_UNCI.dcm and
693_UNCR.dcm, the same acquisition twice (correlation 0.995), and the two frames of
eCT_Supplemental.dcm; ``--slices pair``: the first two only), windowed [-1000, 1000] HU, resized
to ``--size``, b = 120 views, no noise: FBP (ramp), fista-tv (the ct defaults), RED (DEQ) and
ODER at w/b = 1/12, 1/6, 1/3, 1/2, 3/4, 1 with the same weights (``--weights``; default: the
untrained map, i.e. the shipped dncnn as D: RED (Denoising)'s prior run as the DEQ). SNR is the
supplement's (eq. 15: the best affine fit ``a x_hat + c`` of the truth,
``20 log10(||x|| / ||x - a x_hat - c||)``), PSNR on [0, 1] with the result clipped.

Lipschitz (the supplement's Fig. 1, after the table): T is the full-batch map (all b = 120
views) of the weights, x* its fixed point from a long solve (``--star-iter``
evaluations of Anderson acceleration, tolerance 1e-6, from FBP; its residual
``||T(x*) - x*|| / ||x*||`` is printed); for the forward solves of RED (DEQ) and of ODER at each
w of ``--lipschitz-ws`` (the table's settings, the points x_{k-1} at which the solver evaluated
its map: Nesterov's extrapolated points; ODER's own evaluations use w drawn views, the ratio
uses T, whose fixed point ODER approximates, as in the supplement's Lemma 1) the ratios
``||T(x_{k-1}) - T(x*)|| / ||x_{k-1} - x*||`` over every iterate of every slice: their count,
median, max and the fraction above 1 (``scicli.fixedpoint.lipschitz.secant_ratios``).

``--fig4``: b = 180 views (evenly over 180 degrees, no noise). ODER with w = 50 views per
evaluation (5 chunks of 36 views, 10 drawn from each) against RED (DEQ) restricted to 50 fixed,
evenly spaced views of the 180 (views round(3.6 i), i = 0..49), the same weights and the same
number of evaluations (``--max-iter``), each from the FBP of the views it has (ODER: all 180,
RED: its 50); RED (DEQ) on all 180 views and the two FBPs for reference. The supplement's
Fig. 4 compares on its validation set after training each (RED (DEQ 50/180) trained on its 50
views) and reports ODER ~3 dB SNR above RED (DEQ 50/180) and near RED (DEQ 180/180); here the
weights are shared (trained for ODER or untrained), on the CT test slices.

One step = the loss of ``oder`` (w chunk-drawn views per evaluation, DnCNN 10 x 32 started from
the shipped dncnn) on a batch of ``--batch`` Shepp-Logan / ellipse images of ``--size`` pixels
through parallel-beam CT with b = 120 views, forward (Nesterov, ``--max-iter`` evaluations),
implicit backward (Anderson, ``--backward-max-iter``), and an Adam update.

Memory: each w runs in a fresh subprocess that gets y and ||A||^2 from the parent; after the
set-up (model, operator, data) it reads the peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and reports its growth over the first training
step ("first step": everything the step allocates, including the full operator's sparse system
matrix, built on first use for every w since view subsets slice it) and over ``--steps`` later
ones (beyond the first's peak). RSS peaks move with the allocator, so the exact measure is also
given: the bytes autograd keeps for the backward pass (distinct storages passed to
``saved_tensors_hooks`` during the loss: the recorded map evaluation and DnCNN activations; the
projector's autograd function saves no tensor).
Seconds: the median over ``--steps`` steps after the warm-up. CPU, one thread, the load average
is printed (the machine is shared).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from skimage.data import shepp_logan_phantom  # noqa: E402
from skimage.transform import resize  # noqa: E402

from bench_ct import validation_images  # noqa: E402
from ct_slices import PAIR, SLICES, similarity_note, test_slices  # noqa: E402
from scicli.fixedpoint.lipschitz import ratio_summary, secant_ratios  # noqa: E402
from scicli.methods import METHODS  # noqa: E402
from scicli.methods.red_deq import VARIANCE, _NORMS, ODERMap, operator_norm  # noqa: E402
from scicli.metrics import psnr, snr  # noqa: E402
from scicli.weights.store import load_model  # noqa: E402
from scicli.physics import ct  # noqa: E402
from scicli.physics.ct import ParallelBeamCT  # noqa: E402


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def problem(size: int, batch: int) -> tuple[ParallelBeamCT, torch.Tensor, torch.Tensor]:
    img = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    x = torch.from_numpy(np.stack([img, np.flipud(img)][:batch] * ((batch + 1) // 2))[:batch, None]).float()
    return ParallelBeamCT(torch.arange(120, dtype=torch.float64) * 1.5, (size, size)).float(), x, None


def one(w: int, size: int, batch: int, steps: int, max_iter: int, back_iter: int, given: str,
        matrix_free: bool = False) -> dict:
    """One training-step measurement; y and ||A||^2 come from the parent (``given``), so the full
    operator's system is built here only where the step itself needs it (w = b). ``matrix_free``:
    the projector of a geometry beyond ``MATRIX_BYTES`` (sample positions of the views at hand
    computed on every call; autograd keeps the gathered entries of the w views drawn)."""
    torch.set_num_threads(1)
    if matrix_free:
        ct.MATRIX_BYTES = 0
        warnings.simplefilter("ignore", UserWarning)  # the fallback's one-line notice
    torch.manual_seed(0)
    op, x, _ = problem(size, batch)
    data = np.load(given)
    y = torch.from_numpy(data["y"])
    _NORMS[op] = float(data["L"])
    model = ODERMap(w=w, solve={"max_iter": max_iter, "backward_max_iter": back_iter, "tol": 1e-6})
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)

    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        saved[storage.data_ptr()] = storage.nbytes()
        return t

    def step() -> None:
        opt.zero_grad()
        saved.clear()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = model.training_loss(y, op, x)
        record["saved_mib"] = sum(saved.values()) / 2 ** 20
        loss.backward()
        opt.step()

    record: dict[str, float] = {}

    before_first = peak_mib()
    step()  # warm-up
    first = peak_mib() - before_first
    base = peak_mib()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"w": w, "saved_mib": record["saved_mib"], "first_step_mib": first, "step_mib": peak_mib() - base, "seconds": statistics.median(times),
            "peak_mib": peak_mib()}


def load_slices(size: int, which: str) -> tuple[list[str], np.ndarray, torch.Tensor]:
    """The CT test slices (``all``, ``pair``) or the validation images (``validation``:
    bench_ct's two phantoms and one Train400 image, where settings and weights are chosen)."""
    if which == "validation":
        names, images = zip(*validation_images(size))
        imgs = np.stack(images).astype(np.float32)
        print(f"validation images {', '.join(names)} at {size}x{size} (never the test slices)")
        return list(names), imgs, torch.from_numpy(imgs[:, None]).float()
    names, imgs = test_slices(size, SLICES if which == "all" else PAIR)
    note = similarity_note(imgs)
    print(f"test slices {', '.join(names)} at {size}x{size}, windowed [-1000, 1000] HU{'; ' + note if note else ''}")
    return names, imgs, torch.from_numpy(imgs[:, None]).float()


def problem_on_slices(size: int, slices: str, weights: str | None, views: int = 120, step: float = 1.5):
    """(images (S, size, size), op with ``views`` views ``step`` degrees apart, y = A x, the map)."""
    torch.set_num_threads(1)
    _, imgs, x = load_slices(size, slices)
    op = ParallelBeamCT(torch.arange(views, dtype=torch.float64) * step, (size, size)).float()
    with torch.no_grad():
        y = op.A(x)
    return imgs, op, y, load_map(weights)


def load_map(weights: str | None) -> ODERMap:
    return (ODERMap() if weights is None else load_model("oder", weights)).float().eval()  # untrained: shipped D


def scores(rec: torch.Tensor, imgs: np.ndarray) -> tuple[float, float]:
    """Mean (SNR, PSNR) over the slices."""
    r = rec.detach().numpy()[:, 0]
    return (float(np.mean([snr(a, b) for a, b in zip(r, imgs)])), float(np.mean([psnr(a, b) for a, b in zip(r, imgs)])))


STAR_SOLVE = {"solver": "anderson", "tol": 1e-6, "m": 20, "lam": 1e-6}
"""The long solve of x* in Fix(T) for the Lipschitz ratios: Anderson with a history of 20, never
stopped for a growing step. With the oder-ct120-w40 weights (tau 0.02: T contracts by ~0.996 per
step) 600 evaluations on two 64 x 64 slices left ``||T(x) - x|| / ||x||`` at 6.0e-4 (Anderson,
m = 5: 6.6e-4; Nesterov without restarts: 4.6e-3; plain iteration in float64: 4.1e-3; float64
Anderson 6.1e-4, so not float32 round-off): x* is approximate and its residual is printed. Each
ratio is still a secant ratio of T between two points, so a ratio above 1 shows T expanding there
whatever the error of x*."""


def forward_solve(model, max_iter: int | None, fixed: bool = False) -> tuple[dict, str]:
    """(solve overrides, description): the settings stored with the weights (``--max-iter`` not
    given), else at most ``max_iter`` evaluations with tol 1e-3 and the default growth guard, or
    with ``fixed`` (``--fixed-budget``) exactly ``max_iter`` evaluations, no early stop."""
    solve = {} if max_iter is None else ({"max_iter": max_iter, "tol": 0.0, "patience": 0} if fixed
                                         else {"max_iter": max_iter, "tol": 1e-3})
    used = model.settings(solve)
    guard = "no early stop" if not used.get("patience", 6) and not used["tol"] else \
        f"tol {used['tol']:g}, growth patience {used.get('patience', 6)}"
    source = "as shipped with the weights" if max_iter is None else "--max-iter"
    return solve, f"{used['solver']}, {used['max_iter']} evaluations ({guard}; {source})"


VARIANTS = ("plain", "chunks0", "saga", "saga-chunks0")
"""Table 4's ODER variants: the 5-chunk draw, the finest stratified draw, SAGA on each."""


TABLE_WS = (10, 20, 40, 60, 90)
"""Table 4's w of b = 120: w/b = 1/12, 1/6, 1/3, 1/2, 3/4."""


def table(size: int, weights: str | None, max_iter: int | None, tv: bool = True, slices: str = "all",
          per_w: dict[int, str] | None = None, seeds: int = 5, red: str | None = None,
          variants: tuple[str, ...] = VARIANTS, fixed: bool = False, ws: tuple[int, ...] = TABLE_WS) -> None:
    """Table 4's rows. Each ODER row is run with ``seeds`` seeds of its view draws (0..seeds-1):
    the mean SNR / PSNR and the gap's mean and standard deviation over the seeds (one draw
    sequence decides a gap to a few tenths of a dB). Rows (``variants``): the supplement's 5-chunk
    draw (``plain``), the finest stratified draw (``chunks0``), SAGA's variance-reduced estimate on
    the 5-chunk draw (``saga``, ``-p variance=saga``) and on the finest draw (``saga-chunks0``), and with ``per_w`` ODER at w with weights trained at
    that w (the supplement trains one model per w), all against the same RED (DEQ): the map of
    ``weights`` with all views, or with ``red`` a model trained with all views (the supplement's
    RED (DEQ) is trained on its own), run with ``weights``' forward settings."""
    imgs, op, y, model = problem_on_slices(size, slices, weights)
    solve, how = forward_solve(model, max_iter, fixed)
    print(f"b = 120 views, no noise; weights: {weights or 'untrained (shipped dncnn as D)'}; forward: {how}; "
          f"ODER rows: mean over {seeds} seeds of the view draws (gap: mean +- sd)")
    print(f"{'method':42s} {'SNR':>7s} {'PSNR':>7s} {'gap':>13s} {'s':>6s}")

    def row(label: str, solve_one, ref: float | None = None, runs: int = 1) -> float:
        snrs, psnrs, t0 = [], [], time.perf_counter()
        for seed in range(runs):
            with torch.no_grad():
                a, b = scores(solve_one(seed), imgs)
            snrs.append(a)
            psnrs.append(b)
        sec = (time.perf_counter() - t0) / runs
        gaps = [ref - v for v in snrs] if ref is not None else []
        gap = "" if not gaps else (f"{gaps[0]:6.2f}" if runs == 1 else
                                   f"{statistics.mean(gaps):6.2f} +- {statistics.stdev(gaps):4.2f}")
        print(f"{label:42s} {statistics.mean(snrs):7.2f} {statistics.mean(psnrs):7.2f} {gap:>13s} {sec:6.1f}",
              flush=True)
        return statistics.mean(snrs)

    def oder(m: ODERMap, w: int, chunks: int = 5, variance: str = "plain"):
        def run(seed: int) -> torch.Tensor:
            m.w, m.chunks, m.seed, m.variance = w, chunks, seed, variance
            return m(y, op, solve=solve)[0]
        return run

    row("fbp (ramp)", lambda _: op.fbp(y))
    if tv:
        row("fista-tv (ct defaults)", lambda _: METHODS.get("fista-tv").factory().solve(op, y).x)
    if red is None:
        ref = row("RED (DEQ), b = 120", oder(model, 0))
    else:
        print(f"RED (DEQ): {red} (trained with all views)")
        ref = row("RED (DEQ), own weights", oder(load_map(red), 0))
    labels = {"plain": ("", 5, "plain"), "chunks0": (", chunks=0", 0, "plain"), "saga": (", saga", 5, "saga"),
              "saga-chunks0": (", saga, chunks=0", 0, "saga")}
    for variant in variants:
        suffix, chunks, variance = labels[variant]
        for w in ws:
            row(f"ODER w = {w} (w/b = {w / 120:.3f}){suffix}", oder(model, w, chunks, variance), ref, seeds)
    for w, path in sorted((per_w or {}).items()):
        row(f"ODER w = {w}, trained at w", oder(load_map(path), w), ref, seeds)
    for w, path in sorted((per_w or {}).items()):
        print(f"trained at w = {w}: {path}")


def lipschitz(size: int, weights: str | None, max_iter: int | None, ws: list[int], star_iter: int,
              slices: str = "all") -> None:
    """The supplement's Fig. 1 statistics: ``||T(x_{k-1}) - T(x*)|| / ||x_{k-1} - x*||`` over the
    iterates of RED (DEQ) and ODER at each w, T the full-batch map, x* its fixed point."""
    imgs, op, y, model = problem_on_slices(size, slices, weights)
    trained_w = model.w
    model.w = 0

    def full_map(z: torch.Tensor) -> torch.Tensor:
        return model.f(z, op, y)

    t0 = time.perf_counter()
    star: dict = {}
    with torch.no_grad():
        info = model.reconstruct_with_start(y, op, STAR_SOLVE | {"max_iter": star_iter, "patience": star_iter},
                                            trace=star)[1]
        z_star = star["z"]
        residual = float((torch.linalg.vector_norm((full_map(z_star) - z_star).flatten(1), dim=1)
                          / torch.linalg.vector_norm(z_star.flatten(1), dim=1)).max())
    print(f"Lipschitz over the iterates (supplement Fig. 1): T = the full map (b = 120) of "
          f"{f'{weights} (trained w = {trained_w})' if weights else 'the untrained map (shipped dncnn as D)'}; x* from "
          f"{info.steps} Anderson evaluations (tol {STAR_SOLVE['tol']:g}, "
          f"{'converged' if info.converged else info.diverged or 'not converged'}): "
          f"max ||T(x*) - x*|| / ||x*|| = {residual:.1e}; {time.perf_counter() - t0:.1f} s")
    star_snr, star_psnr = scores(model.image(z_star), imgs)
    print(f"x* itself: SNR {star_snr:.2f}, PSNR {star_psnr:.2f} dB (the fixed point, against the budgeted solves below)")
    solve, how = forward_solve(model, max_iter)
    print(f"forward solves: {how}")
    print(f"{'solve':36s} {'ratios':>7s} {'median':>7s} {'max':>7s} {'> 1':>7s} {'SNR':>7s} {'s':>6s}")
    for w in [0, *ws]:
        model.w = w
        trace: dict = {}
        t0 = time.perf_counter()
        with torch.no_grad():
            rec = model.reconstruct_with_start(y, op, solve, trace=trace)[0]
            model.w = 0
            ratios = secant_ratios(full_map, trace["iterates"], z_star)
        stats = ratio_summary(ratios)
        label = "RED (DEQ), b = 120" if w == 0 else f"ODER w = {w} (w/b = {w / 120:.3f}), {model.variance}"
        print(f"{label:36s} {stats['count']:7d} {stats['median']:7.3f} {stats['max']:7.3f} "
              f"{100 * stats['above_one']:6.1f}% {scores(rec, imgs)[0]:7.2f} {time.perf_counter() - t0:6.1f}",
              flush=True)


def fig4(size: int, weights: str | None, max_iter: int | None, slices: str = "all", w: int = 50, fixed: int = 50) -> None:
    """ODER (w of b = 180 per evaluation) against RED (DEQ) on ``fixed`` evenly spaced views."""
    imgs, op, y, model = problem_on_slices(size, slices, weights, views=180, step=1.0)
    idx = torch.round(torch.arange(fixed, dtype=torch.float64) * (180.0 / fixed)).long()
    sub = op.views_subset(idx)
    y_sub = y[:, idx]
    solve, how = forward_solve(model, max_iter)
    print(f"b = 180 views (1 degree apart), no noise; weights: "
          f"{f'{weights} (trained w = {model.w})' if weights else 'untrained (shipped dncnn as D)'}; every DEQ row: {how}; "
          f"RED's {fixed} fixed views: every {180 / fixed:g} degrees")
    print(f"{'method':34s} {'views/eval':>10s} {'SNR':>7s} {'PSNR':>7s} {'evals':>6s} {'s':>6s}")
    out: dict[str, float] = {}

    def row(label: str, per_eval: str, fn) -> None:
        t0 = time.perf_counter()
        with torch.no_grad():
            rec, info = fn()
        sec = time.perf_counter() - t0
        s_snr, s_psnr = scores(rec, imgs)
        out[label] = s_snr
        evals = info.steps if info is not None else None
        print(f"{label:34s} {per_eval:>10s} {s_snr:7.2f} {s_psnr:7.2f} {evals if evals is not None else '':>6} "
              f"{sec:6.1f}", flush=True)

    row("fbp (ramp), 180 views", "-", lambda: (op.fbp(y), None))
    row(f"fbp (ramp), {fixed} fixed views", "-", lambda: (sub.fbp(y_sub), None))

    def red(operator: ParallelBeamCT, meas: torch.Tensor):
        model.w = 0
        return model(meas, operator, solve=solve)

    def oder(variance: str):
        def run():
            model.w, model.variance = w, variance
            return model(y, op, solve=solve)
        return run

    row(f"RED (DEQ {fixed}/180)", str(fixed), lambda: red(sub, y_sub))
    print(f"ODER's draw: chunks={model.chunks} (as stored with the weights; 0: one view from each of w chunks)")
    for variance in VARIANCE:
        row(f"ODER (w = {w} of 180, {variance})", str(w), oder(variance))
    row("RED (DEQ 180/180)", "180", lambda: red(op, y))
    for variance in VARIANCE:
        label = f"ODER (w = {w} of 180, {variance})"
        gain, gap = out[label] - out[f"RED (DEQ {fixed}/180)"], out["RED (DEQ 180/180)"] - out[label]
        print(f"ODER ({variance}) - RED (DEQ {fixed}/180): {gain:+.2f} dB SNR (published: about +3 dB); "
              f"RED (DEQ 180/180) - ODER ({variance}): {gap:+.2f} dB (published: about 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--ws", default="10,20,40,60,120")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--backward-max-iter", type=int, default=10)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--given", default="", help=argparse.SUPPRESS)
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--no-tv", action="store_true", help="--table without the fista-tv row")
    parser.add_argument("--seeds", type=int, default=5, help="--table: seeds of ODER's view draws per row")
    parser.add_argument("--weights-w", action="append", default=[], metavar="W=PATH",
                        help="--table: also ODER at w with weights trained at w (repeatable)")
    parser.add_argument("--table-ws", default=",".join(map(str, TABLE_WS)), help="--table: ODER's w (of b = 120)")
    parser.add_argument("--fixed-budget", action="store_true",
                        help="--table: exactly --max-iter evaluations, no early stop (tol 0, patience 0)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"--table: ODER rows, comma-separated of {', '.join(VARIANTS)}")
    parser.add_argument("--weights-red", default=None,
                        help="--table: RED (DEQ) from these weights (trained with all views), not --weights at w = 0")
    parser.add_argument("--slices", choices=("all", "pair", "validation"), default="all",
                        help="the four CT test slices, 693_UNCI/UNCR only, or the validation images")
    parser.add_argument("--lipschitz", action="store_true", help="the Lipschitz ratios of --table alone")
    parser.add_argument("--no-lipschitz", action="store_true", help="--table without the Lipschitz ratios")
    parser.add_argument("--lipschitz-ws", default="20,40", help="ODER's w of the Lipschitz ratios")
    parser.add_argument("--star-iter", type=int, default=300, help="evaluations of the long solve giving x*")
    parser.add_argument("--fig4", action="store_true", help="Fig. 4: ODER w = 50 of 180 against RED on 50 views")
    parser.add_argument("--matrix-free", action="store_true",
                        help="training step: the matrix-free projector (geometries beyond MATRIX_BYTES)")
    args = parser.parse_args()
    if args.table or args.lipschitz or args.fig4:
        print(f"device cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared), torch "
              f"{torch.__version__}, 1 thread, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        max_iter = None if args.max_iter == parser.get_default("max_iter") else args.max_iter
        variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
        if not set(variants) <= set(VARIANTS):
            parser.error(f"--variants: choose from {', '.join(VARIANTS)}, got {args.variants}")
        if args.table:
            per_w = {int(k): v for k, v in (item.split("=", 1) for item in args.weights_w)}
            table(args.size, args.weights, max_iter, tv=not args.no_tv, slices=args.slices, per_w=per_w,
                  seeds=args.seeds, red=args.weights_red,
                  variants=variants, fixed=args.fixed_budget,
                  ws=tuple(int(v) for v in args.table_ws.split(",") if v.strip()))
        if (args.table and not args.no_lipschitz) or args.lipschitz:
            ws = [int(v) for v in args.lipschitz_ws.split(",") if v.strip()]
            lipschitz(args.size, args.weights, max_iter, ws, args.star_iter, slices=args.slices)
        if args.fig4:
            fig4(args.size, args.weights, max_iter, slices=args.slices)
        print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        return
    if args.one is not None:
        print(json.dumps(one(args.one, args.size, args.batch, args.steps, args.max_iter, args.backward_max_iter,
                             args.given, args.matrix_free)))
        return
    op, x, _ = problem(args.size, args.batch)
    with torch.no_grad():
        y = op.A(x)
    given = os.path.join(tempfile.mkdtemp(prefix="bench_oder_"), "problem.npz")
    np.savez(given, y=y.numpy(), L=operator_norm(op, x))
    print(f"device cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared), torch "
          f"{torch.__version__}, 1 thread, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"oder training step: {args.batch} x {args.size}x{args.size}, b = 120 views, forward {args.max_iter} "
          f"Nesterov evaluations, backward {args.backward_max_iter} Anderson steps; memory = growth of the peak RSS "
          f"(ru_maxrss) in a fresh process; projector: {'matrix-free' if args.matrix_free else 'sparse CSR matrix'}")
    print(f"{'w':>4} {'w/b':>6} {'saved for backward':>19} {'first-step peak growth':>24} {'later-step growth':>18} "
          f"{'s/step':>8}")
    for w in (int(v) for v in args.ws.split(",")):
        cmd = [sys.executable, __file__, "--one", str(w), "--size", str(args.size), "--batch", str(args.batch),
               "--steps", str(args.steps), "--max-iter", str(args.max_iter),
               "--backward-max-iter", str(args.backward_max_iter), "--given", given,
               *(["--matrix-free"] if args.matrix_free else [])]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"{w:>4} {w / 120:>6.3f} {r['saved_mib']:>15.1f} MiB {r['first_step_mib']:>20.1f} MiB {r['step_mib']:>14.1f} MiB "
              f"{r['seconds']:>8.2f}", flush=True)
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
