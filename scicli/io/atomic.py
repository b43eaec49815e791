"""Atomic writes: write to a temporary file beside the target, then move it into place.

Without ``force`` the move is a hard link of the temporary file to the target, which the
kernel refuses when the target exists: the no-clobber check and the final move are one step,
so two runs writing the same file at once cannot replace each other's output (the second one
fails with "exists"). With ``force`` the move is ``os.replace``.

Several files that belong together (an array and its JSON report) are written as one
:class:`WriteGroup`: every temporary file is written first, then all are moved into place;
when one move fails, the files this group already moved are removed again, so a report never
describes another run's array.

Every temporary file is registered while it exists, so that a signal handler can remove them
(:func:`remove_temp_files`) before the process exits.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from scicli.core.errors import DataError, ScicliError, UsageError

__all__ = ["WriteGroup", "atomic_write", "remove_stale_temp_files", "remove_temp_files", "write_text",
           "write_json"]

_LIVE_TEMPS: set[str] = set()
"""Temporary files being written now (removed by :func:`remove_temp_files` on a signal)."""


def _remove_quietly(path: Path | str) -> None:
    _LIVE_TEMPS.discard(str(path))
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_temp_files() -> None:
    """Remove every temporary file a write of this process has not finished (signal handlers)."""
    for name in list(_LIVE_TEMPS):
        _remove_quietly(name)


def remove_stale_temp_files(path: Path) -> int:
    """Remove the temporary files that writes of ``path`` left behind when their process was
    killed (``kill -9``: no handler runs). Only for a folder one process owns (a training run).
    Returns how many were removed."""
    path = Path(path)
    stale = list(path.parent.glob(f".{path.stem}.tmp-*{path.suffix}")) if path.parent.is_dir() else []
    for tmp in stale:
        _remove_quietly(tmp)
    return len(stale)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_target(path: Path, force: bool) -> None:
    if path.is_dir():
        raise UsageError(f"{path} is a directory; give a file name to write")
    if not force and os.path.lexists(path):
        raise UsageError(f"{path} exists; pass --force to overwrite")


def _make_temp(path: Path) -> Path:
    """An empty temporary file beside ``path`` whose name keeps the real suffix last."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp-", suffix=path.suffix)
        _LIVE_TEMPS.add(tmp_name)
        os.close(fd)
    except FileExistsError:
        raise UsageError(f"{path}: a part of this path is a file, not a folder") from None
    except NotADirectoryError:
        raise UsageError(f"{path}: a part of this path is a file, not a folder") from None
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    return Path(tmp_name)


@contextmanager
def _removed_on_failure(tmp: Path, path: Path) -> Iterator[None]:
    """Remove ``tmp`` when the block fails; an OSError becomes a one-line DataError naming ``path``."""
    try:
        yield
    except ScicliError:
        _remove_quietly(tmp)
        raise
    except OSError as exc:
        _remove_quietly(tmp)
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _fill(tmp: Path, path: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)``, flush it to disk and give it the usual mode; remove it on failure."""
    with _removed_on_failure(tmp, path):
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode


def _place(tmp: Path, path: Path, force: bool) -> None:
    """Move ``tmp`` to ``path``: replace with ``force``, else fail if ``path`` exists (atomically)."""
    with _removed_on_failure(tmp, path):
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise UsageError(f"{path} exists; pass --force to overwrite") from None
            except OSError as exc:  # a file system without hard links: reserve the name, then replace
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                try:
                    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
                except FileExistsError:
                    raise UsageError(f"{path} exists; pass --force to overwrite") from None
                os.replace(tmp, path)
        _remove_quietly(tmp)


class WriteGroup:
    """Files written together: :meth:`add` writes each one's temporary file, :meth:`commit`
    moves them all into place, or none (use as a context manager: leaving it without a commit,
    by an error or a signal, removes the temporary files)."""

    def __init__(self, *, force: bool = False) -> None:
        self.force = force
        self._staged: list[tuple[Path, Path]] = []
        self._targets: set[str] = set()

    def add(self, path: Path, write: Callable[[Path], None]) -> Path:
        """Write ``path``'s content to a temporary file beside it (moved by :meth:`commit`)."""
        path = Path(path)
        key = os.path.realpath(path)
        if key in self._targets:
            raise UsageError(f"{path} is written twice by one command; give each output its own name")
        _check_target(path, self.force)
        tmp = _make_temp(path)
        _fill(tmp, path, write)
        self._staged.append((tmp, path))
        self._targets.add(key)
        return path

    def staged(self, path: Path) -> Path:
        """The temporary file written for ``path`` (e.g. to record its checksum in a report
        written with it)."""
        key = os.path.realpath(path)
        for tmp, target in self._staged:
            if os.path.realpath(target) == key:
                return tmp
        raise KeyError(f"{path} is not staged in this group")

    def commit(self) -> None:
        """Move every staged file into place. On a failure (a name taken meanwhile, a signal)
        the files this group already moved are removed again, so no half of the group stays
        (with ``force`` a replaced file cannot be brought back: it keeps the new content)."""
        done: list[tuple[Path, os.stat_result]] = []
        staged, self._staged = self._staged, []
        try:
            for tmp, path in staged:
                info = os.stat(tmp)
                _place(tmp, path, self.force)
                done.append((path, info))
        except BaseException:
            for _tmp, _ in staged[len(done):]:
                _remove_quietly(_tmp)
            if not self.force:  # a no-clobber move created these names: take them back
                for path, info in done:
                    try:
                        now = os.stat(path)
                    except OSError:
                        continue
                    if (now.st_ino, now.st_dev) == (info.st_ino, info.st_dev):
                        _remove_quietly(path)
            raise

    def discard(self) -> None:
        """Remove the temporary files of a group that will not be committed."""
        for tmp, _ in self._staged:
            _remove_quietly(tmp)
        self._staged = []

    def __enter__(self) -> WriteGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def atomic_write(path: Path, write: Callable[[Path], None], *, force: bool = False,
                 group: WriteGroup | None = None) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``path``, then move it to ``path``.

    The temporary name keeps the real suffix last (``.recon.tmp-XXXX.tif``) so libraries that
    dispatch on the suffix (tifffile, imageio, ``scipy.io.savemat``) behave as for ``path``.
    Without ``force`` an existing ``path`` is a UsageError, also when it appears between the
    check and the move. On any failure the temporary file is removed and the exception
    re-raised (an OSError becomes a one-line DataError). With ``group`` the file is only
    staged: ``group.commit()`` moves it.
    """
    if group is not None:
        return group.add(path, write)
    with WriteGroup(force=force) as one:
        one.add(path, write)
        one.commit()
    return Path(path)


def write_text(path: Path, text: str, *, force: bool = False, group: WriteGroup | None = None) -> Path:
    """Atomically write ``text`` (UTF-8) to ``path``."""

    def _write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return atomic_write(Path(path), _write, force=force, group=group)


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


def write_json(path: Path, obj: Any, *, force: bool = False, group: WriteGroup | None = None) -> Path:
    """Atomically write ``obj`` as indented JSON (numpy values converted) to ``path``."""
    text = json.dumps(obj, indent=2, default=_json_default) + "\n"
    return write_text(path, text, force=force, group=group)
