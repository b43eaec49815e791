"""Several ``scicli reconstruct`` at once on a shared CPU machine (issue 15, part 2).

Starts 1, 2 and 4 processes of ``scicli reconstruct MAT --method gap-tv --measurements 0`` at the
same moment and times them until the last one ends (whole processes: start-up included), for
each thread setting side by side, interleaved so that both see the same background load:

* ``before``: torch's stock behaviour made explicit: one thread per CPU that spins while idle
  (``OMP_WAIT_POLICY=ACTIVE``, ``SCICLI_THREADS`` = CPUs);
* ``after``: scicli's default (no thread variable set: passive waiting, threads from the
  affinity mask / cgroup quota; see ``scicli --help``);
* ``one-thread`` (with ``--modes``): ``SCICLI_THREADS=1``.

Printed per row: wall seconds until all N processes ended, throughput (reconstructions per
minute), the ratio of the wall time to that of one process in the same mode (goal for ``after``:
4 processes <= 2.5 x one), the mean solve seconds from the reports, and the load average
before the row started (``uptime``'s three figures).

    python bench/bench_concurrency.py                          # drop40, measurement 0
    python bench/bench_concurrency.py --measurements all --counts 1,2,4,8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MAT = ROOT / ".." / "shared" / "data" / "benchmark" / "drop40_cacti.mat"
THREAD_VARIABLES = ("SCICLI_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                    "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def modes(cpus: int) -> dict[str, dict[str, str]]:
    """Extra environment of each mode (on top of an environment without thread variables)."""
    return {
        "before": {"OMP_WAIT_POLICY": "ACTIVE", "SCICLI_THREADS": str(cpus)},
        "after": {},
        "one-thread": {"SCICLI_THREADS": "1"},
    }


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def batch(n: int, extra: dict[str, str], mat: Path, measurements: str | None, out: Path,
          timeout: float) -> tuple[float, list[float]]:
    """Start ``n`` reconstructions at once; wall seconds until the last ends, and each report's solve seconds."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update({"PYTHONPATH": str(ROOT), **extra})
    select = [] if measurements in (None, "all") else ["--measurements", measurements]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "scicli", "reconstruct", str(mat.resolve()), "--method", "gap-tv",
                               *select, "--out", str(out / f"r{i}.tif"), "--force", "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for i in range(n)]
    for p in procs:
        _, err = p.communicate(timeout=timeout)
        if p.returncode != 0:
            raise SystemExit(f"a reconstruction failed:\n{err}")
    wall = time.perf_counter() - t0
    solves = [float(json.loads((out / f"r{i}.json").read_text())["seconds"]) for i in range(n)]
    return wall, solves


def main() -> None:
    cpus = len(os.sched_getaffinity(0))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mat", type=Path, default=DEFAULT_MAT, help="benchmark file (default: drop40_cacti.mat)")
    parser.add_argument("--measurements", default="0", help="which measurements each process solves: 0 (default), all, 0:2")
    parser.add_argument("--counts", default="1,2,4", help="numbers of processes started at once (default 1,2,4)")
    parser.add_argument("--modes", default="before,after", help=f"thread settings to compare: {', '.join(modes(cpus))}")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one process may take")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    chosen = {m: modes(cpus)[m] for m in args.modes.split(",")}
    print(f"{args.mat.name}, gap-tv, measurements {args.measurements}; {os.cpu_count()} CPUs ({cpus} in the affinity "
          f"mask); python {sys.version.split()[0]}")
    for name, extra in chosen.items():
        print(f"  {name:<10} " + (" ".join(f"{k}={v}" for k, v in extra.items()) or "(no thread variable: scicli's default)"))
    print(f"{'mode':<10} {'N':>2} {'wall s':>8} {'recon/min':>9} {'x one':>6} {'solve s':>8}  load before (1/5/15 min)")
    one: dict[str, float] = {}
    rows: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            for name, extra in chosen.items():
                before = load()
                wall, solves = batch(n, extra, args.mat, args.measurements, Path(tmp), args.timeout)
                if n == 1:
                    one[name] = wall
                rows[name, n] = wall
                ratio = f"{wall / one[name]:.2f}" if name in one else "-"
                print(f"{name:<10} {n:>2} {wall:>8.2f} {60 * n / wall:>9.2f} {ratio:>6} "
                      f"{sum(solves) / len(solves):>8.2f}  {before}", flush=True)
    print(f"load after: {load()}")
    if "after" in chosen and 1 in counts and 4 in counts:
        ratio = rows["after", 4] / rows["after", 1]
        print(f"goal (after): 4 processes <= 2.5 x one: {ratio:.2f} x -> {'met' if ratio <= 2.5 else 'not met'}")


if __name__ == "__main__":
    main()
