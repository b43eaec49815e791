"""Where a result came from: the git commit of a source checkout, read without running git.

A checkout has ``.git`` beside the ``scicli`` package: a directory, or (a worktree, a
submodule) a file ``gitdir: PATH``. ``HEAD`` there holds a commit id or ``ref: refs/...``, whose
id is in a loose ref file or in ``packed-refs`` (of the common directory for a worktree). An
installed package (no ``.git``) has no commit: :func:`git_commit` returns None.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["git_commit"]

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SMALL = 1 << 16  # HEAD, a ref file or commondir: a few bytes; packed-refs read up to 16 MB
_PACKED = 1 << 24


def _read(path: Path, limit: int = _SMALL) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def _git_dir(root: Path) -> Path | None:
    dot = root / ".git"
    if dot.is_dir():
        return dot
    text = _read(dot)
    if text and text.startswith("gitdir:"):
        target = Path(text[len("gitdir:"):].strip())
        target = target if target.is_absolute() else (root / target)
        return target if target.is_dir() else None
    return None


def _resolve_ref(git_dir: Path, ref: str) -> str | None:
    common = git_dir
    text = _read(git_dir / "commondir")
    if text:
        common = Path(text) if Path(text).is_absolute() else (git_dir / text)
    for base in dict.fromkeys((git_dir, common)):
        loose = _read(base / ref)
        if loose and _SHA.match(loose):
            return loose
    packed = _read(common / "packed-refs", _PACKED)
    for line in (packed or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref and _SHA.match(parts[0]):
            return parts[0]
    return None


def git_commit(root: Path | None = None) -> str | None:
    """The commit id checked out at ``root`` (default: the folder above the ``scicli``
    package), or None when it is not a git checkout or the id cannot be read."""
    root = Path(__file__).resolve().parents[2] if root is None else Path(root)
    git_dir = _git_dir(root)
    if git_dir is None:
        return None
    head = _read(git_dir / "HEAD")
    if not head:
        return None
    if head.startswith("ref:"):
        return _resolve_ref(git_dir, head[len("ref:"):].strip())
    return head if _SHA.match(head) else None
