"""Shared CLI plumbing: one-line errors, consoles, progress display, option parsing, signals.

The consoles print text as it is (``markup=False``): file names, keys and paths come from the
user and may hold ``[`` and ``]``; styling is added with :class:`rich.text.Text` only.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import signal
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

try:  # recent typer vendors click
    from typer._click.core import ParameterSource
    from typer._click.globals import get_current_context
except ImportError:  # pragma: no cover - older typer with click as a dependency
    from click.core import ParameterSource
    from click.globals import get_current_context

from scicli.core.errors import ScicliError, UsageError
from scicli.io.atomic import remove_temp_files
from scicli.io.limits import parse_size, set_memory_budget

F = TypeVar("F", bound=Callable[..., Any])

STATE = {"debug": bool(os.environ.get("SCICLI_DEBUG"))}
out = Console(markup=False)
err = Console(stderr=True, markup=False)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (temporary files removed), exit 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _on_signal(signum: int, _frame: object) -> None:
    remove_temp_files()
    raise Terminated(signum)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP end a command like SIGINT: no temporary file left, exit 143 / 129."""
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _on_signal)


def quiet_libraries(debug: bool) -> None:
    """Third-party log records (tifffile's warnings about a corrupt file, ...) are not shown
    without --debug: the one ``error:`` line says what is wrong."""
    root = logging.getLogger()
    if debug:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(levelname)s: %(message)s")
        return
    if not any(isinstance(h, logging.NullHandler) for h in root.handlers):
        root.addHandler(logging.NullHandler())  # no "last resort" printing of WARNING records


def fail(message: str, code: int) -> None:
    """Print ``error: message`` as one line on stderr and exit with ``code`` (message as is)."""
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def check_float(option: str, value: float | None, *, low: float | None = None, high: float | None = None,
                above: float | None = None) -> float | None:
    """A float option must be finite and in range (``low <= value <= high``, ``value > above``);
    None (not given) passes. One-line UsageError (exit 2) otherwise."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        raise UsageError(f"{option} must be a finite number, got {value}")
    if above is not None and value <= above:
        raise UsageError(f"{option} must be > {above:g}, got {value:g}")
    if low is not None and value < low:
        raise UsageError(f"{option} must be >= {low:g}, got {value:g}")
    if high is not None and value > high:
        raise UsageError(f"{option} must be <= {high:g}, got {value:g}")
    return value


def use_memory_budget(text: str | None) -> None:
    """``--max-memory SIZE`` (e.g. 4G): the largest array a reader allocates (default: half the RAM)."""
    set_memory_budget(None if text is None else parse_size(text))


def guarded(fn: F) -> F:
    """Turn ScicliErrors (and, without --debug, unexpected exceptions) into one line + exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except typer.Exit:
            raise
        except ScicliError as exc:
            if STATE["debug"]:
                raise
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            remove_temp_files()
            err.print("interrupted")
            raise typer.Exit(130)
        except Terminated as exc:
            remove_temp_files()
            err.print(f"terminated ({signal.Signals(exc.signum).name})")
            raise typer.Exit(128 + exc.signum)
        except Exception as exc:  # a bug or an environment failure: still one line
            if STATE["debug"]:
                raise
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            fail(f"{type(exc).__name__}: {text} (rerun with scicli --debug for the traceback)", 1)

    return wrapper  # type: ignore[return-value]


def parse_params(items: list[str] | None) -> dict[str, str]:
    """``-p name=value`` pairs to a dict; names use '_' or '-'."""
    params: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--param expects NAME=VALUE, got '{item}'")
        name, value = item.split("=", 1)
        params[name.strip().replace("-", "_")] = value.strip()
    return params


def with_ratio(operator_param: list[str] | None, ratio: float | None) -> list[str]:
    """The ``-O NAME=VALUE`` settings with ``--ratio R`` added as ``ratio=R`` (its shorthand)."""
    return [*(operator_param or []), *([f"ratio={ratio}"] if ratio is not None else [])]


def interactive(quiet: bool) -> bool:
    """Rich progress bars only on a terminal and without --quiet."""
    return not quiet and err.is_terminal and not os.environ.get("CI")


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Progress | None]:
    """A rich progress bar on stderr, or None for plain-line mode."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}", markup=False),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        yield bar


def plain(message: str) -> None:
    """A plain progress line on stderr (non-terminal or --quiet mode)."""
    print(message, file=sys.stderr, flush=True)


GIVEN = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def given_options() -> set[str]:
    """Names of the running command's parameters that the user gave (not defaults)."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return set()
    return {p.name for p in ctx.command.params if p.name and ctx.get_parameter_source(p.name) in GIVEN}


def command_argv() -> list[str]:
    """The running command as an argument list that reproduces it: ``scicli``, the subcommand,
    then every parameter the user gave, in its canonical spelling (first option name)."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return ["scicli", *sys.argv[1:]]
    argv = ["scicli", *ctx.command_path.split()[1:]]
    given = given_options()
    for p in ctx.command.params:
        if p.name not in given:
            continue
        value = ctx.params.get(p.name)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if p.param_type_name == "argument":
            argv.extend(str(v) for v in values)
        elif getattr(p, "is_flag", False):
            if value:
                argv.append(p.opts[0])
        else:
            for v in values:
                argv.extend([p.opts[0], str(v)])
    return argv


def cli_command() -> dict[str, Any]:
    """The ``command`` entry of a report written by the command line: argv and working folder."""
    return {"argv": command_argv(), "cwd": os.getcwd()}
