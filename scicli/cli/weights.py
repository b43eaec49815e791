"""``scicli weights``: ship a trained run as scicli's default weights, with its provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from scicli.cli.common import guarded, out

app = typer.Typer(help="Shipped weights: turn a training run into scicli's default weights.", no_args_is_help=True)


@app.command("ship")
@guarded
def ship_cmd(
    run: Path = typer.Argument(..., help="Training run directory (its best.pt) or a checkpoint file."),
    name: str = typer.Argument(..., help="Name of the shipped file scicli/weights/NAME.pt: the method, or METHOD@TAG for a variant that is chosen when the operator's settings fit it (e.g. ista-net-plus@cs30)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Also score ffdnet (denoisers) or untrained (reconstruction) on the run's validation split."),
    note: str = typer.Option("", "--note", help="Free text for the manifest (e.g. benchmark numbers)."),
    solve: Optional[list[str]] = typer.Option(None, "--solve", help="Reconstruction networks: inference setting KEY=VALUE stored with the weights (solver, max_iter, tol, m, lam, beta)."),
    companions: Optional[list[Path]] = typer.Option(None, "--with", help="A file the weights need (e.g. LISTA's dictionary), shipped beside them as NAME-FILENAME with its sha256."),
) -> None:
    """Copy the model part of a run's best.pt into scicli/weights/ and record sha256, command, data
    licence, hardware and validation scores in scicli/weights/manifest.json."""
    from scicli.train.ship import ship  # noqa: PLC0415 (the training stack loads only for this command)

    entry = ship(run, name, baseline=baseline, note=note, solve=solve or (), companions=companions or ())
    out.print_json(json.dumps(entry))
