"""ODER's training cost against the views per iteration: peak memory and seconds of one training
step for w in {10, 20, 40, 60, 120} of b = 120 views (w = b is RED (DEQ)).

    python bench/bench_oder.py [--size 128] [--batch 2] [--ws 10,20,40,60,120] [--steps 2]
                               [--max-iter 20] [--backward-max-iter 10]
    python bench/bench_oder.py --table [--weights RUN/best.pt] [--size 128] [--max-iter 40]
                               (Table 4's shape on the DICOM test slices)

``--table``: the CT test slices (pydicom-data's 693_UNCI.dcm and 693_UNCR.dcm, windowed
[-1000, 1000] HU, resized to ``--size``), b = 120 views, no noise: FBP (ramp), fista-tv (the ct
defaults), RED (DEQ) and ODER at w/b = 1/12, 1/6, 1/3, 1/2, 3/4, 1 with the same weights
(``--weights``; default: the untrained map, i.e. the shipped dncnn as D: RED (Denoising)'s
prior run as the DEQ). SNR is the supplement's (eq. 15: the best affine fit ``a x_hat + c`` of the
truth, ``20 log10(||x|| / ||x - a x_hat - c||)``), PSNR on [0, 1] with the result clipped.

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

import numpy as np  # noqa: E402
import torch  # noqa: E402
from skimage.data import shepp_logan_phantom  # noqa: E402
from skimage.transform import resize  # noqa: E402

from scicli.io.dicom import read_dicom  # noqa: E402
from scicli.methods import METHODS  # noqa: E402
from scicli.methods.red_deq import _NORMS, ODERMap, operator_norm  # noqa: E402
from scicli.metrics import psnr, snr  # noqa: E402
from scicli.weights.store import load_model  # noqa: E402
from scicli.physics.ct import ParallelBeamCT  # noqa: E402


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def problem(size: int, batch: int) -> tuple[ParallelBeamCT, torch.Tensor, torch.Tensor]:
    img = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    x = torch.from_numpy(np.stack([img, np.flipud(img)][:batch] * ((batch + 1) // 2))[:batch, None]).float()
    return ParallelBeamCT(torch.arange(120, dtype=torch.float64) * 1.5, (size, size)).float(), x, None


def one(w: int, size: int, batch: int, steps: int, max_iter: int, back_iter: int, given: str) -> dict:
    """One training-step measurement; y and ||A||^2 come from the parent (``given``), so the full
    operator's system is built here only where the step itself needs it (w = b)."""
    torch.set_num_threads(1)
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


def table(size: int, weights: str | None, max_iter: int, tv: bool = True) -> None:
    import data_store  # noqa: PLC0415 (pydicom-data, bench extra)

    torch.set_num_threads(1)
    folder = os.path.join(os.path.dirname(data_store.__file__), "data")
    names = ["693_UNCI.dcm", "693_UNCR.dcm"]
    imgs = np.stack([resize(read_dicom(os.path.join(folder, n)), (size, size), anti_aliasing=True) for n in names])
    x = torch.from_numpy(imgs[:, None]).float()
    op = ParallelBeamCT(torch.arange(120, dtype=torch.float64) * 1.5, (size, size)).float()
    with torch.no_grad():
        y = op.A(x)
    model = (ODERMap() if weights is None else load_model("oder", weights)).float().eval()  # untrained: shipped D
    print(f"test slices {', '.join(names)} at {size}x{size}, b = 120 views, no noise; weights: "
          f"{weights or 'untrained (shipped dncnn as D)'}; forward at most {max_iter} Nesterov evaluations")
    print(f"{'method':28s} {'SNR':>7s} {'PSNR':>7s} {'gap':>6s} {'s':>6s}")

    def row(label: str, rec: torch.Tensor, sec: float, ref: float | None = None) -> float:
        r = rec.detach().numpy()[:, 0]
        s_snr = float(np.mean([snr(a, b) for a, b in zip(r, imgs)]))
        s_psnr = float(np.mean([psnr(a, b) for a, b in zip(r, imgs)]))
        gap = "" if ref is None else f"{ref - s_snr:6.2f}"
        print(f"{label:28s} {s_snr:7.2f} {s_psnr:7.2f} {gap:>6s} {sec:6.1f}", flush=True)
        return s_snr

    t0 = time.perf_counter()
    row("fbp (ramp)", op.fbp(y), time.perf_counter() - t0)
    if tv:
        t0 = time.perf_counter()
        row("fista-tv (ct defaults)", METHODS.get("fista-tv").factory().solve(op, y).x, time.perf_counter() - t0)
    solve = {"max_iter": max_iter, "tol": 1e-3}
    model.w = 0
    t0 = time.perf_counter()
    with torch.no_grad():
        ref = row("RED (DEQ), b = 120", model(y, op, solve=solve)[0], time.perf_counter() - t0)
    for w in (10, 20, 40, 60, 90, 120):
        model.w = w
        t0 = time.perf_counter()
        with torch.no_grad():
            row(f"ODER w = {w} (w/b = {w / 120:.3f})", model(y, op, solve=solve)[0], time.perf_counter() - t0, ref)


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
    args = parser.parse_args()
    if args.table:
        print(f"device cpu, torch {torch.__version__}, 1 thread, load average "
              f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        table(args.size, args.weights, args.max_iter, tv=not args.no_tv)
        return
    if args.one is not None:
        print(json.dumps(one(args.one, args.size, args.batch, args.steps, args.max_iter, args.backward_max_iter,
                             args.given)))
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
          "(ru_maxrss) in a fresh process")
    print(f"{'w':>4} {'w/b':>6} {'saved for backward':>19} {'first-step peak growth':>24} {'later-step growth':>18} "
          f"{'s/step':>8}")
    for w in (int(v) for v in args.ws.split(",")):
        cmd = [sys.executable, __file__, "--one", str(w), "--size", str(args.size), "--batch", str(args.batch),
               "--steps", str(args.steps), "--max-iter", str(args.max_iter),
               "--backward-max-iter", str(args.backward_max_iter), "--given", given]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"{w:>4} {w / 120:>6.3f} {r['saved_mib']:>15.1f} MiB {r['first_step_mib']:>20.1f} MiB {r['step_mib']:>14.1f} MiB "
              f"{r['seconds']:>8.2f}", flush=True)
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
