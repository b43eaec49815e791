"""Atomic writes: write to a temporary file beside the target, then rename it into place."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from scicli.core.errors import DataError, ScicliError, UsageError

__all__ = ["atomic_write", "write_text", "write_json"]


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        pass


def atomic_write(path: Path, write: Callable[[Path], None], *, force: bool = False) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then rename it to ``path``.

    The temporary name keeps the real suffix last (``.recon.tmp-XXXX.tif``) so libraries that
    dispatch on the suffix (tifffile, imageio, ``scipy.io.savemat``) behave as for ``path``.
    Without ``force`` an existing ``path`` is a UsageError. On any failure the temporary file
    is removed and the exception re-raised (an OSError becomes a one-line DataError).
    """
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give a file name to write")
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}.tmp-", suffix=path.suffix
        )
        os.close(fd)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except ScicliError:
        _remove_quietly(tmp)
        raise
    except OSError as exc:
        _remove_quietly(tmp)
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str, *, force: bool = False) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""

    def _write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return atomic_write(Path(path), _write, force=force)


def _json_default(obj: Any) -> Any:
    """Convert numpy scalars/arrays and paths to plain JSON values."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def write_json(path: Path, obj: Any, *, force: bool = False) -> Path:
    """Atomically write ``obj`` as indented JSON (numpy values converted) to ``path``."""
    text = json.dumps(obj, indent=2, default=_json_default) + "\n"
    return write_text(path, text, force=force)
