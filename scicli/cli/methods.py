"""``scicli methods``: the registered solvers with their defaults."""

from __future__ import annotations

import typer
from rich.table import Table

from scicli.cli.common import guarded, out
from scicli.solvers import SOLVERS


@guarded
def methods_cmd(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Explain every parameter."),
) -> None:
    """List reconstruction methods with their default parameters."""
    table = Table(title="reconstruction methods (--method)")
    table.add_column("method", style="bold")
    table.add_column("trainable")
    table.add_column("what it does")
    table.add_column("defaults")
    for entry in SOLVERS.entries():
        cls = entry.factory
        params = cls.describe()
        name = entry.name + (f" ({', '.join(entry.aliases)})" if entry.aliases else "")
        defaults = ", ".join(f"{n}={_fmt(d)}" for n, d, _ in params)
        table.add_row(name, "yes" if getattr(cls, "trainable", False) else "no", entry.summary, defaults)
    out.print(table)
    if verbose:
        for entry in SOLVERS.entries():
            out.print(f"\n[bold]{entry.name}[/]: {entry.summary}")
            for n, d, h in entry.factory.describe():
                out.print(f"  {n:<12} {_fmt(d):<8} {h}", highlight=False)
    out.print("Set any parameter with --param NAME=VALUE (or the named options of `scicli reconstruct --help`).",
              highlight=False)


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
