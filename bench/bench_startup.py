"""Start-up cost of the ``scicli`` command (issue 15, part 2).

For this checkout (and, with ``--compare DIR``, another checkout such as /work/main: "before"),
in fresh processes, medians over ``--repeat`` runs:

* ``import torch`` alone (the floor every torch program pays);
* ``scicli --help`` and ``scicli --version``: wall time, and whether torch was imported
  (``python -X importtime``);
* ``scicli reconstruct MAT --method gap-tv`` (all measurements): the whole process's wall time
  against the solve time printed in its report. Goal: wall <= torch import + 1.3 x solve.

Run from the repository root::

    python bench/bench_startup.py                       # this checkout
    python bench/bench_startup.py --compare /work/main  # before (main) and after, side by side

The machine's load average is printed with every row: on a shared machine the numbers move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MAT = ROOT / ".." / "shared" / "data" / "benchmark" / "drop40_cacti.mat"


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def run(tree: Path, args: list[str], env_extra: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of ``python ARGS`` with ``tree`` first on the import path."""
    env = {**os.environ, "PYTHONPATH": str(tree), **(env_extra or {})}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=tree)
    return time.perf_counter() - t0, proc


def torch_import(tree: Path) -> float:
    """Seconds ``import torch`` takes in a fresh interpreter (measured inside it)."""
    _, proc = run(tree, ["-c", "import time; t = time.perf_counter(); import torch; print(time.perf_counter() - t)"])
    return float(proc.stdout.strip())


def cli_light(tree: Path, option: str) -> tuple[float, bool, int]:
    """``scicli OPTION``: wall seconds, whether torch was imported, how many modules were imported."""
    wall, proc = run(tree, ["-X", "importtime", "-m", "scicli", option])
    modules = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return wall, "torch" in modules, len(modules)


def reconstruct(tree: Path, mat: Path, out: Path) -> tuple[float, float]:
    """Whole-process wall seconds and the report's solve seconds of gap-tv on all measurements."""
    wall, proc = run(tree, ["-m", "scicli", "reconstruct", str(mat.resolve()), "--method", "gap-tv", "--out",
                            str(out), "--force", "--quiet"])
    if proc.returncode != 0:
        raise SystemExit(f"reconstruct failed in {tree}:\n{proc.stderr}")
    return wall, float(json.loads(out.with_suffix(".json").read_text())["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mat", type=Path, default=DEFAULT_MAT, help="benchmark file (default: drop40_cacti.mat)")
    parser.add_argument("--compare", type=Path, action="append", default=[],
                        help="another scicli checkout to measure first (e.g. /work/main: 'before')")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()
    trees = [*args.compare, ROOT]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, affinity {len(os.sched_getaffinity(0))}, "
          f"load {load()}; thread environment: " + ", ".join(
              f"{k}={os.environ[k]}" for k in ("SCICLI_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY") if k in os.environ)
          + f"; medians of {args.repeat}")
    header = (f"{'checkout':<28} {'torch import':>12} {'--help':>8} {'torch?':>6} {'modules':>7} {'--version':>9} "
              f"{'reconstruct':>11} {'solve':>7} {'goal':>7} {'ok':>3}  load")
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for tree in trees:
            torch_s, help_s, version_s, walls, solves, loads = [], [], [], [], [], []
            torch_loaded, modules = False, 0
            for _ in range(args.repeat):
                torch_s.append(torch_import(tree))
                wall, loaded, n = cli_light(tree, "--help")
                help_s.append(wall)
                torch_loaded, modules = torch_loaded or loaded, n
                version_s.append(cli_light(tree, "--version")[0])
                wall, solve = reconstruct(tree, args.mat, Path(tmp) / "recon.tif")
                walls.append(wall)
                solves.append(solve)
                loads.append(load())
            t, w, s = statistics.median(torch_s), statistics.median(walls), statistics.median(solves)
            goal = t + 1.3 * s
            print(f"{str(tree)[-28:]:<28} {t:>11.2f}s {statistics.median(help_s):>7.2f}s "
                  f"{'yes' if torch_loaded else 'no':>6} {modules:>7} {statistics.median(version_s):>8.2f}s "
                  f"{w:>10.2f}s {s:>6.2f}s {goal:>6.2f}s {'yes' if w <= goal else 'no':>3}  {' '.join(loads)}",
                  flush=True)
    print("goal: reconstruct (whole process) <= torch import + 1.3 x solve (the report's seconds)")


if __name__ == "__main__":
    main()
