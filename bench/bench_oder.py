"""ODER's training cost against the views per iteration: peak memory and seconds of one training
step for w in {10, 20, 40, 60, 120} of b = 120 views (w = b is RED (DEQ)).

    python bench/bench_oder.py [--size 128] [--batch 2] [--ws 10,20,40,60,120] [--steps 2]
                               [--max-iter 20] [--backward-max-iter 10]

One step = the loss of ``oder`` (w chunk-drawn views per evaluation, DnCNN 10 x 32 started from
the shipped dncnn) on a batch of ``--batch`` Shepp-Logan / ellipse images of ``--size`` pixels
through parallel-beam CT with b = 120 views, forward (Nesterov, ``--max-iter`` evaluations),
implicit backward (Anderson, ``--backward-max-iter``), and an Adam update.

Memory: each w runs in a fresh subprocess; after the set-up (model, operator, data, one warm-up
step) it reads the peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``), then
runs ``--steps`` steps and reports the growth of that peak, i.e. the memory a step needs beyond
what the set-up and warm-up already held. Because the warm-up step itself raised the peak, the
growth of the first-step peak is also reported (measured before the warm-up: "first step").
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
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from skimage.data import shepp_logan_phantom  # noqa: E402
from skimage.transform import resize  # noqa: E402

from scicli.methods.red_deq import ODERMap  # noqa: E402
from scicli.physics.ct import ParallelBeamCT  # noqa: E402


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def one(w: int, size: int, batch: int, steps: int, max_iter: int, back_iter: int) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    img = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    x = torch.from_numpy(np.stack([img, np.flipud(img)][:batch] * ((batch + 1) // 2))[:batch, None]).float()
    op = ParallelBeamCT(torch.arange(120, dtype=torch.float64) * 1.5, (size, size)).float()
    with torch.no_grad():
        y = op.A(x)
    model = ODERMap(w=w, solve={"max_iter": max_iter, "backward_max_iter": back_iter, "tol": 1e-6})
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-5)

    def step() -> None:
        opt.zero_grad()
        model.training_loss(y, op, x).backward()
        opt.step()

    before_first = peak_mib()
    step()  # warm-up
    first = peak_mib() - before_first
    base = peak_mib()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"w": w, "first_step_mib": first, "step_mib": peak_mib() - base, "seconds": statistics.median(times),
            "peak_mib": peak_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--ws", default="10,20,40,60,120")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--backward-max-iter", type=int, default=10)
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.size, args.batch, args.steps, args.max_iter, args.backward_max_iter)))
        return
    print(f"device cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, shared), torch "
          f"{torch.__version__}, 1 thread, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"oder training step: {args.batch} x {args.size}x{args.size}, b = 120 views, forward {args.max_iter} "
          f"Nesterov evaluations, backward {args.backward_max_iter} Anderson steps; memory = growth of the peak RSS "
          "(ru_maxrss) in a fresh process")
    print(f"{'w':>4} {'w/b':>6} {'first-step peak growth':>24} {'later-step growth':>18} {'s/step':>8}")
    for w in (int(v) for v in args.ws.split(",")):
        cmd = [sys.executable, __file__, "--one", str(w), "--size", str(args.size), "--batch", str(args.batch),
               "--steps", str(args.steps), "--max-iter", str(args.max_iter),
               "--backward-max-iter", str(args.backward_max_iter)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        print(f"{w:>4} {w / 120:>6.3f} {r['first_step_mib']:>20.1f} MiB {r['step_mib']:>14.1f} MiB "
              f"{r['seconds']:>8.2f}", flush=True)
    print(f"load average at the end {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
