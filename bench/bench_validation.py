"""Video SCI methods side by side on the held-out DAVIS validation split (one run, one table).

    nice -n 19 env OMP_NUM_THREADS=1 python bench/bench_validation.py [--threads 1]
        [--sequences bmx-trees,parkour,...] [--masks drop40,random] [--extra] [--untrained]
        [--row LABEL=METHOD[,KEY=VALUE...]] [--only LABEL,...] [--lipschitz] [--json OUT.json]

Scenes: :func:`scicli.data.validation.scenes` (B = 8 middle frames of each held-out sequence,
central square averaged down to 256 x 256, the drop40 mask and a seeded random mask, no
noise). Default rows: gap-tv, pnp-gap with FFDNet, deq-gap and deq-rnn (shipped weights), each
with its defaults as a user gets them; ``--extra`` adds red with FFDNet and pnp-gap with the
shipped unet, dncnn and video denoisers; ``--untrained`` adds deq-gap / deq-rnn with freshly
initialised learned parts (same config and budget); ``--row`` adds any method with settings
(e.g. ``--row deq30=deq-gap,max_iter=30``). Each row warms up once (a 64 x 64 corner of the first
scene), then one timed solve per scene; scenes run mask by mask (all drop40 ones first), and
``--json`` is rewritten after every scene. Printed: PSNR / SSIM (per frame, mean; skimage convention) / seconds
per scene and row, the load average before each scene, the medians and means per row, and
each row's difference to pnp-gap / ffdnet. ``--lipschitz`` adds the learned maps' empirical
Lipschitz constants (at the fixed point and over the iterates).

Settings of scicli are chosen on this split, never on the benchmark scenes. The shipped deq-gap
weights were trained on the other 13 DAVIS 2016 sequences; the deq-rnn and video weights on all
20, these held-out ones included, so their rows here are optimistic.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from scicli.core.errors import ScicliError
from scicli.data import validation
from scicli.methods import METHODS
from scicli.metrics import frame_metrics
from scicli.physics import VideoSCI
from scicli.weights.store import build_model, load_checkpoint

DEFAULT_ROWS = ["gap-tv=gap-tv", "pnp-gap/ffdnet=pnp-gap,denoiser=ffdnet", "deq-gap=deq-gap", "deq-rnn=deq-rnn"]
EXTRA_ROWS = ["red/ffdnet=red,denoiser=ffdnet", "pnp-gap/unet=pnp-gap,denoiser=unet",
              "pnp-gap/dncnn=pnp-gap,denoiser=dncnn", "pnp-gap/video=pnp-gap,denoiser=video"]
REFERENCE = "pnp-gap/ffdnet"


def parse_row(text: str) -> tuple[str, str, dict[str, str]]:
    """``LABEL=METHOD[,KEY=VALUE...]`` -> (label, method, params as typed)."""
    label, _, spec = text.partition("=")
    method, *pairs = spec.split(",")
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--row {text}: '{pair}' is not KEY=VALUE")
        params[key.strip()] = value.strip()
    return label.strip(), method.strip(), params


def untrained_copy(method: str, folder: Path) -> str:
    """A checkpoint of the shipped config of ``method`` with freshly initialised weights."""
    ckpt = load_checkpoint(Path(validation.__file__).resolve().parents[1] / "weights" / f"{method}.pt")
    fresh = build_model(ckpt["method"], dict(ckpt["config"]))
    out = folder / f"{method}-untrained.pt"
    torch.save({**{k: ckpt[k] for k in ("format", "format_version", "method", "config") if k in ckpt},
                "model": fresh.state_dict()}, out)
    return str(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", default=",".join(validation.VALIDATION_SEQUENCES))
    ap.add_argument("--masks", default=",".join(validation.MASKS))
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared machine)")
    ap.add_argument("--extra", action="store_true", help="add red/ffdnet and pnp-gap with unet, dncnn, video")
    ap.add_argument("--untrained", action="store_true", help="add deq-gap / deq-rnn with untrained learned parts")
    ap.add_argument("--row", action="append", default=[], help="LABEL=METHOD[,KEY=VALUE...] (repeatable)")
    ap.add_argument("--only", default="", help="run only these labels (comma-separated)")
    ap.add_argument("--lipschitz", action="store_true", help="learned maps: empirical Lipschitz constants")
    ap.add_argument("--power", type=int, default=10, help="--lipschitz: power iterations (default 10)")
    ap.add_argument("--json", type=Path, default=None, help="write every number to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # unconverged solves: counted in the table

    specs = DEFAULT_ROWS + (EXTRA_ROWS if args.extra else []) + list(args.row)
    rows = [parse_row(s) for s in specs]
    tmp = tempfile.TemporaryDirectory()
    if args.untrained:
        rows += [(f"{m} (untrained)", m, {"weights": untrained_copy(m, Path(tmp.name))}) for m in ("deq-gap", "deq-rnn")]
    if args.only:
        keep = [s.strip() for s in args.only.split(",")]
        rows = [r for r in rows if r[0] in keep]

    t0 = time.perf_counter()
    scenes = validation.scenes([s for s in args.sequences.split(",") if s], [m for m in args.masks.split(",") if m])
    kinds = [m for m in args.masks.split(",") if m]
    scenes.sort(key=lambda sc: kinds.index(sc.mask_kind))  # mask by mask: a partial run covers every sequence
    print(f"validation split: {len(scenes)} scenes ({args.sequences}; masks {args.masks}), B=8, 256x256, "
          f"read in {time.perf_counter() - t0:.1f} s")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, "
          f"nice {os.nice(0)}, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("evaluation: per-frame PSNR / SSIM (data range 1, skimage SSIM), mean over the 8 frames; seconds = one solve")
    print("rows: " + "; ".join(f"{label} = {method} {params or ''}" for label, method, params in rows))

    solvers: dict[str, Any] = {}
    probes: dict[str, Any] = {}  # --lipschitz: the same learned solver with power iterations (not timed)
    for label, method, params in rows:
        try:
            solvers[label] = METHODS.get(method).factory.from_command_line(**params)
            if args.lipschitz and "lipschitz" in getattr(solvers[label].params, "__dataclass_fields__", {}):
                probes[label] = METHODS.get(method).factory.from_command_line(**params, lipschitz=str(args.power))
        except ScicliError as exc:
            print(f"{label}: skipped ({exc})")
    results: dict[str, dict[str, dict[str, float]]] = {label: {} for label in solvers}
    loads: dict[str, float] = {}
    for i, scene in enumerate(scenes):
        op = VideoSCI(torch.from_numpy(scene.mask))
        y = torch.from_numpy(scene.y)[None]
        loads[scene.name] = os.getloadavg()[0]
        for label, solver in solvers.items():
            if i == 0:  # warm-up on a 64 x 64 corner: first-call allocations, not a full solve
                small = VideoSCI(torch.from_numpy(scene.mask[:, :64, :64].copy()))
                solver.solve(small, small.A(torch.from_numpy(scene.x[None, :, :64, :64].copy())))
            t = time.perf_counter()
            result = solver.solve(op, y)
            seconds = time.perf_counter() - t
            m = frame_metrics(result.x[0].float().numpy(), scene.x)
            rec = {"psnr": m["psnr_mean"], "ssim": m["ssim_mean"], "seconds": seconds,
                   "iterations": result.iterations, "converged": bool(result.converged)}
            rec.update(result.diagnostics)
            if label in probes:
                rec.update(probes[label].solve(op, y).diagnostics)
            results[label][scene.name] = rec
        line = "  ".join(f"{label} {results[label][scene.name]['psnr']:.2f}/{results[label][scene.name]['seconds']:.1f}s"
                         for label in solvers)
        print(f"[{i + 1}/{len(scenes)}] {scene.name} (load {loads[scene.name]:.2f}): {line}", flush=True)
        if args.json is not None:  # after every scene: a run stopped early keeps what it measured
            args.json.write_text(json.dumps({"rows": [[lb, m, p] for lb, m, p in rows], "loads": loads,
                                             "results": results}, indent=1))

    labels = list(solvers)
    width = max(12, *(len(s.name) for s in scenes))
    print()
    print("PSNR (dB) / SSIM / seconds per scene")
    print(f"{'scene':<{width}} {'load':>5} " + " ".join(f"{label:>24}" for label in labels))
    for scene in scenes:
        cells = [f"{r['psnr']:6.2f} {r['ssim']:.4f} {r['seconds']:6.2f}s"
                 for r in (results[label][scene.name] for label in labels)]
        print(f"{scene.name:<{width}} {loads[scene.name]:5.2f} " + " ".join(f"{c:>24}" for c in cells))
    summary: dict[str, dict[str, float]] = {}
    for label in labels:
        recs = list(results[label].values())
        summary[label] = {f"{stat}_{key}": fn([r[key] for r in recs])
                          for key in ("psnr", "ssim", "seconds") for stat, fn in
                          (("median", statistics.median), ("mean", statistics.fmean))}
    for stat in ("median", "mean"):
        cells = [f"{summary[lb][stat + '_psnr']:6.2f} {summary[lb][stat + '_ssim']:.4f} "
                 f"{summary[lb][stat + '_seconds']:6.2f}s" for lb in labels]
        print(f"{stat:<{width}} {'':>5} " + " ".join(f"{c:>24}" for c in cells))
    if REFERENCE in results:
        print()
        print(f"difference to {REFERENCE}: PSNR dB (min / median / max over scenes, scenes >= it), mean time ratio")
        ref = results[REFERENCE]
        for label in labels:
            if label == REFERENCE:
                continue
            d = [results[label][s.name]["psnr"] - ref[s.name]["psnr"] for s in scenes]
            ratio = statistics.fmean(results[label][s.name]["seconds"] for s in scenes) / statistics.fmean(
                ref[s.name]["seconds"] for s in scenes)
            print(f"  {label:<24} {min(d):+6.2f} {statistics.median(d):+6.2f} {max(d):+6.2f}  "
                  f"{sum(x >= 0 for x in d)}/{len(d)}  time x{ratio:.3f}")
    if args.lipschitz:
        print()
        print(f"empirical Lipschitz constants of the learned maps (median over scenes; {args.power} power "
              "iterations): at the final state ||J|| and rho(J), over the iterates the secant ratios "
              "||f(z_k) - f(z*)|| / ||z_k - z*|| (max, share > 1); solves that did not reach tol")
        for label in labels:
            recs = [r for r in results[label].values() if "lipschitz_fixed_point" in r]
            if recs:
                print(f"  {label:<24} ||J(z*)|| {statistics.median(r['lipschitz_fixed_point'] for r in recs):.3f}  "
                      f"rho(J(z*)) {statistics.median(r['spectral_radius_fixed_point'] for r in recs):.3f}  "
                      f"iterates max {statistics.median(r['lipschitz_iterates_max'] for r in recs):.3f}  "
                      f"share>1 {statistics.median(r['lipschitz_iterates_above_one'] for r in recs):.2f}  "
                      f"unconverged {sum(not r['converged'] for r in recs)}/{len(recs)}")
    print(f"\nload average after the runs {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"total {time.perf_counter() - t0:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": [[lb, m, p] for lb, m, p in rows], "loads": loads,
                                         "results": results, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
