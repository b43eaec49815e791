"""Every output of a command, checked before any input is read or anything is computed.

:func:`check_outputs` is the one check all commands run on the files they will write:

* the suffix is one the writer supports;
* no part of the path is a file (``out.tif/x.npy``: "is a file, not a folder"), the file
  itself is not a directory, and the first existing folder on the way can be written;
* an existing file needs ``--force``;
* no two outputs are the same file;
* no output is the same file as any input (by real path and by inode, so symlinks and hard
  links count), even with ``--force``: scicli never overwrites what it reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from scicli.core.errors import UsageError

__all__ = ["Output", "check_outputs"]


@dataclass(frozen=True)
class Output:
    """A file a command will write: the option that names it, the path, the suffixes allowed
    (None: any)."""

    option: str
    path: Path
    suffixes: tuple[str, ...] | None = None


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _first_existing(path: Path) -> Path:
    """The nearest existing ancestor of ``path`` (a part that is a file included)."""
    probe = path.parent
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def _check_place(out: Output, force: bool) -> None:
    path = out.path
    if out.suffixes is not None and path.suffix.lower() not in out.suffixes:
        raise UsageError(f"{out.option} {path}: cannot write '{path.suffix or '(no suffix)'}' files "
                         f"(use {', '.join(out.suffixes)})")
    anchor = _first_existing(path)
    if os.path.lexists(anchor) and not anchor.is_dir():
        raise UsageError(f"{out.option} {path}: {anchor} is a file, not a folder")
    if anchor.is_dir() and not os.access(anchor, os.W_OK | os.X_OK):
        raise UsageError(f"{out.option} {path}: cannot write into {anchor} (permission denied)")
    if path.is_dir():
        raise UsageError(f"{out.option} {path} is a directory; give a file name to write")
    if os.path.lexists(path) and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite")


def check_outputs(outputs: Sequence[Output], inputs: Iterable[Path | None], *, force: bool) -> None:
    """Refuse, with a one-line UsageError, outputs that cannot or must not be written (see the
    module docstring). ``inputs`` are every file the command reads (None entries skipped;
    directories stand for the files in them)."""
    seen: dict[str, Output] = {}
    linked: dict[tuple[int, int], Output] = {}
    for out in outputs:
        key = os.path.realpath(out.path)
        ident = _identity(out.path)
        other = seen.get(key) or (linked.get(ident) if ident is not None else None)
        if other is not None:
            raise UsageError(f"{other.option} {other.path} and {out.option} {out.path} are the same file; "
                             "give each output its own name")
        seen[key] = out
        if ident is not None:
            linked[ident] = out
    read: list[Path] = []
    for src in inputs:
        if src is None:
            continue
        src = Path(src)
        if src.is_dir():
            read.extend(p for p in src.iterdir() if p.is_file())
        else:
            read.append(src)
    real = {os.path.realpath(p): p for p in read}
    inodes = {ident: p for p in read if (ident := _identity(p)) is not None}
    for key, out in seen.items():
        src = real.get(key)
        ident = _identity(out.path)
        if src is None and ident is not None:
            src = inodes.get(ident)
        if src is not None:
            raise UsageError(f"{out.option} {out.path} is the input {src}; scicli never overwrites its inputs "
                             "(not even with --force): choose another output name")
    for out in outputs:
        _check_place(out, force)
