"""The ``scicli`` command: one Typer app, one module per subcommand, imported only when it runs.

``scicli --help`` and ``scicli --version`` load neither torch nor any solver: the subcommands are
registered by name with their one-line help (:data:`COMMANDS`) and their module is imported
(:func:`importlib.import_module`) when the command is resolved, *after* the root options are
parsed. That order lets ``--threads`` / ``SCICLI_THREADS`` reach OpenMP before torch starts its
thread pool (:mod:`scicli.core.threads`).

Start-up and exit (issue 15): :func:`main` pauses Python's cyclic garbage collector while the
modules load (``import torch`` alone makes ~270 000 objects and no garbage; the collector would
walk them again and again), then freezes what the imports made (:func:`gc.freeze`: later
collections skip those objects) and resumes it before the command runs. At exit it freezes
everything again, so that the interpreter's shutdown does not walk the whole heap once more
(measured on the busy 2-core machine: shutdown 0.85 s -> 0.2 s).
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import warnings
from typing import Optional

import typer
from typer.core import TyperCommand, TyperGroup

try:  # recent typer vendors click
    from typer._click import Command, Context
    from typer._click.exceptions import ClickException, UsageError as ClickUsageError
except ImportError:  # pragma: no cover - older typer with click as a dependency
    from click import Command, Context
    from click.exceptions import ClickException, UsageError as ClickUsageError

from scicli import __version__
from scicli.cli.common import STATE, Terminated, install_signal_handlers, quiet_libraries
from scicli.core import threads as thread_settings
from scicli.core.errors import UsageError
from scicli.io.atomic import remove_temp_files

# main() pauses the cyclic garbage collector while the subcommand's modules load (see the module docstring)
COLLECTOR = {"paused": False}


def resume_collector() -> None:
    """End of start-up: freeze the objects the imports made (later collections skip them) and
    resume the collector :func:`main` paused; nothing when it was not paused (in-process use)."""
    if COLLECTOR["paused"]:
        COLLECTOR["paused"] = False
        gc.freeze()
        gc.enable()


# name: (module, attribute: a command function or a Typer sub-app, one-line help for `scicli --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "simulate": ("scicli.cli.simulate", "simulate_cmd", "Simulate a camera: y = A x + noise."),
    "reconstruct": ("scicli.cli.reconstruct", "reconstruct_cmd", "Reconstruct the B frames behind each snapshot."),
    "evaluate": ("scicli.cli.evaluate", "evaluate_cmd",
                 "Per-frame PSNR and SSIM (data range 1, frames clipped to [0, 1]) and their means."),
    "methods": ("scicli.cli.methods", "methods_cmd",
                "List forward operators, reconstruction methods (with their default parameters) and denoisers."),
    "train": ("scicli.cli.train", "train_cmd",
              "Train a denoiser (dncnn, unet, video) or a reconstruction network (see scicli methods)."),
    "weights": ("scicli.cli.weights", "app", "Shipped weights: turn a training run into scicli's default weights; plot learning curves."),
    "info": ("scicli.cli.info", "info_cmd",
             "Versions, devices, thread settings and the shipped weights (sha256 checked against the manifest)."),
}


def load_command(name: str) -> Command:
    """Import the module of subcommand ``name`` and build its click command (a group for a Typer sub-app)."""
    module, attribute, _ = COMMANDS[name]
    target = getattr(importlib.import_module(module), attribute)
    holder = typer.Typer(add_completion=False)
    holder.callback()(lambda: None)  # a callback makes ``holder`` a group whatever it holds
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]


class LazyGroup(TyperGroup):
    """A group whose :data:`COMMANDS` are listed from their one-line help and loaded when invoked."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Context, cmd_name: str) -> Optional[Command]:
        if cmd_name in self.commands or cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        return TyperCommand(cmd_name, help=COMMANDS[cmd_name][2])  # a stand-in for help listings

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[Optional[str], Optional[Command], list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        if name in COMMANDS and name not in self.commands:
            self.commands[name] = cmd = load_command(name)
            thread_settings.apply_torch()  # the module may have loaded torch: size its pools
            resume_collector()
        return name, cmd, rest


app = typer.Typer(
    name="scicli",
    cls=LazyGroup,
    help="Reconstruct images and video from compressive measurements: video SCI (CACTI), spectral SCI (CASSI), block CS, CS-MRI, sparse-view CT.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish, PowerShell)
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scicli {__version__}")
        raise typer.Exit()


def _threads(ctx: typer.Context, value: Optional[int]) -> Optional[int]:
    """Apply the thread settings while the root options are parsed: before any subcommand module
    (and so torch) is imported."""
    if ctx.resilient_parsing:
        return value
    try:
        thread_settings.apply_environment(thread_settings.plan(value))
    except UsageError as exc:
        raise ClickUsageError(str(exc), ctx) from None
    return value


@app.callback()
def root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    threads: Optional[int] = typer.Option(
        None, "--threads", callback=_threads, metavar="N",
        help="CPU threads for torch (precedence: --threads > env SCICLI_THREADS > OMP_NUM_THREADS > the CPUs "
             "this process may use, capped by a cgroup quota). Idle threads sleep (OMP_WAIT_POLICY=PASSIVE "
             "unless set), which keeps scicli fast on a busy, shared machine."),
) -> None:
    """y = sum_t M_t * x_t + noise: simulate snapshots, reconstruct the B frames, evaluate them."""
    STATE["debug"] = debug or bool(os.environ.get("SCICLI_DEBUG"))
    quiet_libraries(STATE["debug"])


# numpy's floating-point warnings ("overflow encountered in multiply") are symptoms: every result
# is checked for non-finite values and a failure names its cause in the one error line. They are
# held back and shown only when the command succeeds (or at once with --debug).
HELD_WARNINGS: list[str] = []


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Runtime warnings (e.g. a fixed-point solve that stopped early) as one ``warning:`` line."""
    text = f"warning: {message}"
    if issubclass(category, RuntimeWarning) and " encountered in " in str(message) and not STATE["debug"]:
        if text not in HELD_WARNINGS:
            HELD_WARNINGS.append(text)
        return
    print(text, file=sys.stderr)


def main() -> None:
    """Entry point: option-parsing mistakes also end in one ``error:`` line (exit 2)."""
    warnings.showwarning = _one_line_warning
    install_signal_handlers()
    if gc.isenabled():  # start-up: no collection while the modules load (resume_collector ends it)
        gc.disable()
        COLLECTOR["paused"] = True
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
    resume_collector()
    code = code if isinstance(code, int) else 0
    if code == 0:
        for text in HELD_WARNINGS:
            print(text, file=sys.stderr)
    HELD_WARNINGS.clear()
    gc.freeze()  # exit: the shutdown need not walk every object with the cycle collector again
    sys.exit(code)
