"""Shared CLI plumbing: one-line errors, consoles, progress display, option parsing."""

from __future__ import annotations

import functools
import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from scicli.core.errors import ScicliError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

STATE = {"debug": bool(os.environ.get("SCICLI_DEBUG"))}
out = Console()
err = Console(stderr=True)


def fail(message: str, code: int) -> None:
    """Print ``error: message`` as one line on stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


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
            fail(escape(str(exc)), exc.exit_code)
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130)
        except Exception as exc:  # a bug or an environment failure: still one line
            if STATE["debug"]:
                raise
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            fail(escape(f"{type(exc).__name__}: {text} (rerun with scicli --debug for the traceback)"), 1)

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
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    with bar:
        yield bar


def plain(message: str) -> None:
    """A plain progress line on stderr (non-terminal or --quiet mode)."""
    print(message, file=sys.stderr, flush=True)
