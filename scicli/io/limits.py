"""What a reader may open and allocate: regular files only, and a memory budget.

Every reader checks the size a file *declares* (an .npy header, a zip member, a TIFF series,
an HDF5 dataset, a MATLAB variable) against the file's own size and against the budget before
allocating anything, so a crafted header (a "zip bomb", a shape of 10^12 pixels) or a device
such as ``/dev/zero`` is a one-line error instead of unbounded memory. The budget is
``--max-memory`` (default: half of the machine's memory), per array.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path

import numpy as np

from scicli.core.errors import DataError, UsageError

__all__ = ["check_declared", "check_regular", "default_budget", "memory_budget", "parse_size",
           "set_memory_budget", "human"]

_DEFAULT_FRACTION = 0.5
_BUDGET: list[int | None] = [None]
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def default_budget() -> int:
    """Half of the machine's physical memory (4 GiB where it cannot be read)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return int(total * _DEFAULT_FRACTION)


def memory_budget() -> int:
    """The largest array (bytes) a reader allocates."""
    return _BUDGET[0] if _BUDGET[0] is not None else default_budget()


def set_memory_budget(nbytes: int | None) -> None:
    """Set the budget (None: the default)."""
    _BUDGET[0] = None if nbytes is None else int(nbytes)


def parse_size(text: str, option: str = "--max-memory") -> int:
    """``4G``, ``512M``, ``1.5GiB``, ``100000`` (bytes) -> bytes; a UsageError otherwise."""
    match = _SIZE_RE.fullmatch(str(text))
    if not match:
        raise UsageError(f"{option} {text}: expected a size like 4G, 512M or 1000000 (bytes)")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise UsageError(f"{option} {text}: must be a positive size")
    return int(value)


def human(nbytes: float) -> str:
    """Bytes as a short human-readable size (``1.5 GiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(nbytes) < 1024 or unit == "TiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} TiB"  # pragma: no cover


def check_regular(path: Path) -> None:
    """A path to read must be a regular file or a directory (symlinks followed): no devices,
    FIFOs or sockets, which can block or never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UsageError(f"file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = ("a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "not a regular file")
    raise UsageError(f"{path}: is {kind}; scicli reads only regular files")


def check_declared(label: str, shape: tuple[int, ...], dtype: np.dtype | str,
                   available: int | None = None) -> int:
    """Refuse an array whose declared ``shape`` x ``dtype`` exceeds the memory budget or, when
    ``available`` is given (the bytes the file holds for it, uncompressed formats), the file.
    Returns the declared size in bytes."""
    try:
        dims = [int(n) for n in shape]
        itemsize = np.dtype(dtype).itemsize
    except (TypeError, ValueError):
        raise DataError(f"{label}: unreadable shape {shape!r} or dtype {dtype!r}") from None
    if any(n < 0 for n in dims):
        raise DataError(f"{label}: negative dimension in shape {tuple(dims)}")
    nbytes = math.prod(dims) * itemsize
    shown = f"shape {tuple(dims)} of {np.dtype(dtype)}"
    if available is not None and nbytes > available:
        raise DataError(f"cannot read {label}: truncated: declares {shown} ({human(nbytes)}), the file holds {human(available)}")
    budget = memory_budget()
    if nbytes > budget:
        raise DataError(f"cannot read {label}: declares {shown} ({human(nbytes)}), more than the memory budget "
                        f"{human(budget)} (--max-memory)")
    return nbytes
