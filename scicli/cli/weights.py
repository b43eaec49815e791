"""``scicli weights``: ship a trained run as scicli's default weights, with its provenance; plot
learning curves. :mod:`scicli.cli.app` imports this module (and the training modules it needs)
only when ``scicli weights`` runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import typer

from scicli.cli.common import guarded, out
from scicli.core.errors import UsageError
from scicli.io.outputs import Output, check_outputs
from scicli.plots import learning_curve_figure, save_figure
from scicli.train.curve import learning_curve, project_steps
from scicli.train.ship import ship

app = typer.Typer(help="Shipped weights: turn a training run into scicli's default weights; plot learning curves.", no_args_is_help=True)


@app.command("ship")
@guarded
def ship_cmd(
    run: Path = typer.Argument(..., help="Training run directory (its best.pt) or a checkpoint file."),
    name: str = typer.Argument(..., help="Name of the shipped file scicli/weights/NAME.pt: the method, or METHOD@TAG for a variant that is chosen when the operator's settings fit it (e.g. ista-net-plus@cs30)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Also score ffdnet (denoisers) or untrained (reconstruction) on the run's validation split."),
    note: str = typer.Option("", "--note", help="Free text for the manifest (e.g. benchmark numbers)."),
    solve: Optional[list[str]] = typer.Option(None, "--solve", help="Reconstruction networks: inference setting KEY=VALUE stored with the weights (solver, max_iter, tol, m, lam, beta, patience, restart)."),
    companions: Optional[list[Path]] = typer.Option(None, "--with", help="A file the weights need (e.g. LISTA's dictionary), shipped beside them as NAME-FILENAME with its sha256."),
    options: Optional[list[str]] = typer.Option(None, "--option", help="Model setting KEY=VALUE that leaves the weights as they are, stored with them (oder: w, chunks, seed, variance)."),
) -> None:
    """Copy the model part of a run's best.pt into scicli/weights/ and record sha256, command, data
    licence, hardware and validation scores in scicli/weights/manifest.json."""
    entry = ship(run, name, baseline=baseline, note=note, solve=solve or (), companions=companions or (),
                 options=options or ())
    out.print_json(json.dumps(entry))


@app.command("curve")
@guarded
def curve_cmd(
    runs: list[Path] = typer.Argument(..., help="Training run directories (their log.jsonl)."),
    out_png: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the learning-curve figure (.png)."),
    target: Optional[float] = typer.Option(None, "--target", help="A validation score to reach: drawn, and the steps still needed projected. Validation is not the test set: to project a test goal, use --gain."),
    gain: Optional[float] = typer.Option(None, "--gain", help="Project the steps to gain this much more over each run's best validation score (e.g. a published test PSNR minus the shipped weights' test PSNR)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out."),
) -> None:
    """Validation score against training steps for one or more runs: a table (best score, steps,
    hours, and with --target or --gain the projected steps to reach it) and, with --out, a figure."""

    if target is not None and gain is not None:
        raise UsageError("--target and --gain exclude each other")
    for name, value in (("--target", target), ("--gain", gain)):
        if value is not None and not math.isfinite(value):
            raise UsageError(f"{name} {value}: must be a finite number")
    if gain is not None and gain <= 0:
        raise UsageError(f"--gain {gain}: must be > 0 (dB above the best validation score)")
    logs = [r / "log.jsonl" for r in runs]
    if out_png is not None:
        check_outputs([Output("--out", out_png, (".png",))], logs, force=force)
    curves = [learning_curve(r) for r in runs]
    for c in curves:
        base = "-" if c.baseline is None else f"{c.baseline:.2f}"
        line = (f"{c.label} ({c.method}): best {c.best:.2f} at step {int(c.steps[int(c.scores.argmax())])}, "
                f"last {c.scores[-1]:.2f} after {int(c.steps[-1])} steps ({c.seconds[-1] / 3600:.2f} h); "
                f"untrained start {base}")
        goal = target if gain is None else c.best + gain
        if goal is not None:
            line += f"; {goal:.2f}: " + projection(c, goal, project_steps(c, goal))
        out.print(line, soft_wrap=True, highlight=False)
    if out_png is not None:
        fig = learning_curve_figure([(c.label, c.steps, c.scores, c.baseline) for c in curves], target=target,
                                    title=", ".join(sorted({c.method for c in curves})))
        save_figure(out_png, fig, force=force)
        out.print(f"wrote {out_png}", highlight=False)


def projection(curve, goal: float, need: float | None) -> str:
    """The projection's sentence for one run."""
    done = int(curve.steps[-1])
    if curve.best >= goal:
        return f"reached at step {need:,.0f}"
    if need is None:
        return "not reached, and the last half of the curve does not rise: no projection"
    if need > 1000 * done:
        return f"beyond 1000 x the {done:,} steps so far (log-linear fit of the last half of the epochs)"
    hours = (need - done) * curve.seconds[-1] / max(done, 1) / 3600
    return (f"projected at ~{need:,.0f} steps, ~{hours:.1f} h more at this run's speed "
            "(log-linear fit of the last half of the epochs)")
