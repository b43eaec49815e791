"""PSNR after every evaluation of a learned equilibrium map on the held-out validation split,
and for every cap k the scenes at or above pnp-gap / FFDNet: how the cap of ``max_iter`` is chosen.

    nice -n 19 env OMP_NUM_THREADS=1 python bench/bench_deq_trace.py [--method deq-gap]
        [--weights RUN/best.pt] [--evals 24] [--m 3] [--beta 1] [--restart 2] [--sequences ...] [--masks ...]
        [--reference VALIDATION.json] [--json OUT.json]

One solve per scene of ``--evals`` evaluations (tol 0: no early stop; the solver and its
options otherwise as the weights store them, ``--m`` / ``--beta`` / ``--restart`` override Anderson's). A
solve's output after k evaluations does not depend on the cap (Anderson's iterates only look
back), so one traced solve gives the result of every cap k <= evals: the image of the k-th
evaluation is what ``scicli reconstruct -p max_iter=k -p tol=0`` returns. The reference is
pnp-gap / FFDNet with its defaults, run here on the same scenes, or read from the JSON that
``bench/bench_validation.py --json`` wrote (its ``pnp-gap/ffdnet`` row). Printed: per scene the
PSNR at a few caps, and per cap the difference to the reference (min / median / mean), the
scenes at or above it, and the cap's share of the reference's time estimated from this run's
seconds per evaluation (``bench_validation.py`` times the chosen cap for real).

Choose caps on this split, never on the benchmark scenes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from scicli.data import validation
from scicli.methods import METHODS
from scicli.metrics import frame_metrics
from scicli.physics import VideoSCI
from scicli.weights.store import load_model

REFERENCE = "pnp-gap/ffdnet"
SHOWN = (4, 8, 10, 12, 14, 16, 20, 24)


def psnr(image: torch.Tensor, orig: np.ndarray) -> float:
    """Mean per-frame PSNR of a (1, B, H, W) estimate (the bench's convention: clipped, range 1)."""
    return float(frame_metrics(image[0].float().numpy(), orig)["psnr_mean"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="deq-gap", help="a learned equilibrium method (default deq-gap)")
    ap.add_argument("--weights", default=None, help="a checkpoint of it (default: the shipped weights)")
    ap.add_argument("--evals", type=int, default=24, help="evaluations per solve (default 24)")
    ap.add_argument("--m", type=int, default=None, help="Anderson's history (default: the weights')")
    ap.add_argument("--beta", type=float, default=None, help="the solver's damping (default: the weights')")
    ap.add_argument("--restart", type=float, default=None,
                    help="Anderson's restart growth factor (0: never; default: the weights')")
    ap.add_argument("--sequences", default=",".join(validation.VALIDATION_SEQUENCES))
    ap.add_argument("--masks", default=",".join(validation.MASKS))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared machine)")
    ap.add_argument("--reference", type=Path, default=None,
                    help=f"a bench_validation.py --json file whose {REFERENCE} row is the reference")
    ap.add_argument("--json", type=Path, default=None, help="write every number to this file")
    args = ap.parse_args(argv)
    if args.evals < 1:
        raise SystemExit("--evals must be >= 1")
    torch.set_num_threads(args.threads)

    model = load_model(args.method, args.weights).eval()
    solve = dict(model.config["solve"], max_iter=args.evals, tol=0.0, patience=0)
    solve.update({k: v for k, v in (("m", args.m), ("beta", args.beta), ("restart", args.restart)) if v is not None})
    scenes = validation.scenes([s for s in args.sequences.split(",") if s], [m for m in args.masks.split(",") if m])
    reference: dict[str, dict[str, float]] = {}
    if args.reference is not None:
        reference = json.loads(args.reference.read_text())["results"][REFERENCE]
        missing = [sc.name for sc in scenes if sc.name not in reference]
        if missing:
            raise SystemExit(f"--reference {args.reference}: no {REFERENCE} result for {', '.join(missing)}")
    pnp = None if reference else METHODS.get("pnp-gap").factory.from_command_line(denoiser="ffdnet")
    print(f"{args.method} ({args.weights or 'shipped weights'}), {args.evals} evaluations, solve {solve}")
    print(f"reference: {REFERENCE} ({args.reference or 'run here'}); {len(scenes)} scenes; torch "
          f"{torch.__version__}, {torch.get_num_threads()} thread(s), load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    t0 = time.perf_counter()
    traces: dict[str, dict[str, object]] = {}
    for i, scene in enumerate(scenes):
        op = VideoSCI(torch.from_numpy(scene.mask))
        y = torch.from_numpy(scene.y)[None]
        load = os.getloadavg()[0]
        if pnp is not None:
            t = time.perf_counter()
            result = pnp.solve(op, y)
            reference[scene.name] = {"psnr": psnr(result.x, scene.x), "seconds": time.perf_counter() - t}
        trace: dict[str, list[torch.Tensor]] = {}
        t = time.perf_counter()
        with torch.no_grad():
            _, info, _ = model.reconstruct_with_start(y, op, solve, None, trace)
        seconds = time.perf_counter() - t
        values = [psnr(model.image(im), scene.x) for im in trace["images"]]
        traces[scene.name] = {"psnr": values, "residuals": list(info.residuals), "seconds": seconds, "load": load}
        shown = "  ".join(f"{k}:{values[k - 1]:.2f}" for k in SHOWN if k <= len(values))
        print(f"[{i + 1}/{len(scenes)}] {scene.name} (load {load:.2f}) {REFERENCE} "
              f"{reference[scene.name]['psnr']:.2f}  {args.method} {shown}  ({seconds:.1f} s)", flush=True)
        if args.json is not None:
            args.json.write_text(json.dumps({"solve": solve, "reference": reference, "traces": traces}, indent=1))

    # seconds per evaluation of this run's solves; the reference's seconds from its own run
    per_eval = statistics.fmean(float(tr["seconds"]) / len(tr["psnr"]) for tr in traces.values())
    ref_seconds = statistics.fmean(reference[name]["seconds"] for name in traces)
    print()
    print(f"per cap k: {args.method} after k evaluations minus {REFERENCE} (dB: min / median / mean), "
          "scenes at or above, estimated time share (k x seconds per evaluation / the reference's seconds)")
    for k in range(1, args.evals + 1):
        d = [float(tr["psnr"][k - 1]) - reference[name]["psnr"] for name, tr in traces.items()]
        print(f"  k={k:<3} {min(d):+6.2f} {statistics.median(d):+6.2f} {statistics.fmean(d):+6.2f}  "
              f"{sum(x >= 0 for x in d)}/{len(d)}  ~x{k * per_eval / ref_seconds:.3f}")
    print(f"\nload average after the run {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
