"""The ``scicli`` command: one Typer app, one module per subcommand."""

from __future__ import annotations

import os
import sys
import warnings

import typer

try:  # recent typer vendors click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer with click as a dependency
    from click.exceptions import ClickException

from scicli import __version__
from scicli.cli.common import STATE, Terminated, install_signal_handlers, quiet_libraries
from scicli.io.atomic import remove_temp_files
from scicli.cli.evaluate import evaluate_cmd
from scicli.cli.info import info_cmd
from scicli.cli.methods import methods_cmd
from scicli.cli.reconstruct import reconstruct_cmd
from scicli.cli.simulate import simulate_cmd
from scicli.cli.train import train_cmd
from scicli.cli.weights import app as weights_app

app = typer.Typer(
    name="scicli",
    help="Reconstruct video from snapshot compressive imaging (CACTI) measurements.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scicli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """y = sum_t M_t * x_t + noise: simulate snapshots, reconstruct the B frames, evaluate them."""
    STATE["debug"] = debug or bool(os.environ.get("SCICLI_DEBUG"))
    quiet_libraries(STATE["debug"])


app.command("simulate")(simulate_cmd)
app.command("reconstruct")(reconstruct_cmd)
app.command("evaluate")(evaluate_cmd)
app.command("methods")(methods_cmd)
app.command("info")(info_cmd)
app.command("train")(train_cmd)
app.add_typer(weights_app, name="weights")


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Runtime warnings (e.g. a fixed-point solve that stopped early) as one ``warning:`` line."""
    print(f"warning: {message}", file=sys.stderr)


def main() -> None:
    """Entry point: option-parsing mistakes also end in one ``error:`` line (exit 2)."""
    warnings.showwarning = _one_line_warning
    install_signal_handlers()
    try:
        code = app(standalone_mode=False)
    except ClickException as exc:
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else "scicli"
        message = exc.format_message().strip()
        if "\n" in message:  # e.g. no arguments: show the help text as it is
            print(message, file=sys.stderr)
        else:
            print(f"error: {message} (see {command} --help)", file=sys.stderr)
        code = exc.exit_code
    except typer.Abort:
        print("aborted", file=sys.stderr)
        code = 130
    except Terminated as exc:  # a signal outside a command (while parsing options)
        remove_temp_files()
        code = 128 + exc.signum
    sys.exit(code if isinstance(code, int) else 0)
