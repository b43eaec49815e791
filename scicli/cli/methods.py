"""``scicli methods``: the registered operators, solvers (with their defaults) and denoisers."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from scicli.cli.common import guarded, out
from scicli.priors import DENOISERS
from scicli.physics import OPERATORS
from scicli.methods import METHODS


@guarded
def methods_cmd(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Explain every parameter."),
) -> None:
    """List forward operators, reconstruction methods (with their default parameters) and denoisers."""
    otable = Table(title="forward operators (--operator)")
    otable.add_column("operator", style="bold")
    otable.add_column("what it models")
    otable.add_column("arrays (--mask is the first)")
    otable.add_column("GAP")
    otable.add_column("settings (--operator-param)")
    for entry in OPERATORS.entries():
        cls = entry.factory
        roles = ", ".join([*cls.roles, *(f"[{r}]" for r in cls.optional_roles)])
        settings = ", ".join(f"{n}={format_default(p.default)}" for n, p in cls.settings().items())
        otable.add_row(entry.name, entry.summary, roles, "yes" if cls.has_gram_inverse else "no", settings or "-")
    out.print(otable)
    table = Table(title="reconstruction methods (--method)")
    table.add_column("method", style="bold")
    table.add_column("trainable")
    table.add_column("what it does")
    table.add_column("defaults")
    for entry in METHODS.entries():
        cls = entry.factory
        params = cls.describe()
        name = entry.name + (f" ({', '.join(entry.aliases)})" if entry.aliases else "")
        defaults = ", ".join(f"{n}={format_default(d)}" for n, d, _ in params)
        table.add_row(name, "yes" if getattr(cls, "trainable", False) else "no", entry.summary, defaults)
    out.print(table)
    if verbose:
        for entry in METHODS.entries():
            out.print(Text.assemble("\n", (entry.name, "bold"), f": {entry.summary}"))
            for n, d, h in entry.factory.describe():
                out.print(f"  {n:<12} {format_default(d):<8} {h}", highlight=False)
    dtable = Table(title="denoisers (--denoiser, for pnp-gap, pnp-admm, red)")
    dtable.add_column("denoiser", style="bold")
    dtable.add_column("trainable")
    dtable.add_column("what it does")
    for entry in DENOISERS.entries():
        trainable = "yes" if entry.extra.get("trainable") else "no"
        dtable.add_row(entry.name, trainable, entry.summary)
    out.print(dtable)
    out.print("Set any parameter with --param NAME=VALUE (or the named options of `scicli reconstruct --help`).",
              highlight=False)


def format_default(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(f"{v:g}" for v in value)
    if value == "":
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)

