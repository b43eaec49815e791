"""A validation split of DAVIS 2016 by sequence, and the video SCI scenes simulated from it.

Settings of the video SCI methods (budgets, noise levels, step sizes, learned weights) are
chosen on scenes their tuning never saw; the benchmark scenes (``drop40_cacti.mat`` and the
other published ones) only report. The split holds out whole sequences, so that no frame of
a validation scene, nor a neighbour of one, is trained on:

    validation   VALIDATION_SEQUENCES: six with fast motion (bmx-trees, dance-twirl,
                 drift-chicane, motocross-jump, parkour, soapbox) and one slow (blackswan)
    training     every other sequence of the folder (``training_sequences``; ``scicli train
                 --data DAVIS --exclude NAME ...`` leaves the validation ones out)

A scene (:func:`simulate`) is B consecutive frames from the middle of a sequence, read as
luminance ``x = frame / 255``, the central square crop (480 x 480 of the 854 x 480 frames)
averaged down to ``size x size`` (256: the scale of the benchmark scenes, motion shrinks by
480 / 256 = 1.9), coded by a mask M (B, H, W) and summed without noise:

    y = sum_t M_t * x_t

with M either the mask of the benchmark file (``"drop40"``: the shifted lithographic mask
of drop40_cacti.mat) or a seeded Bernoulli(1/2) mask (``"random"``: a new pattern per frame,
seeded by the sequence's index so that every run draws the same masks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from scicli.core.errors import DataError, UsageError
from scicli.data.datasets import IMAGE_SUFFIXES, _natural_key
from scicli.io import read_array
from scicli.physics.masks import make_mask

VALIDATION_SEQUENCES: tuple[str, ...] = ("bmx-trees", "dance-twirl", "drift-chicane", "motocross-jump", "parkour",
                                         "soapbox", "blackswan")
"""The held-out DAVIS 2016 sequences: fast motion (the first six) and one slow scene."""
MASKS: tuple[str, ...] = ("drop40", "random")
"""The mask kinds of the validation scenes."""

ROOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
DAVIS_ROOT = ROOT / "DAVIS2016_val_480p"
"""The DAVIS 2016 folder of the shared data (one sub-folder of numbered JPEG frames per sequence)."""
DROP40 = ROOT / "benchmark" / "drop40_cacti.mat"
"""The benchmark file whose mask the ``drop40`` scenes use."""


@dataclass(frozen=True)
class Scene:
    """One simulated validation measurement: ``y = sum_t mask_t * x_t`` (float32 arrays)."""

    sequence: str
    mask_kind: str
    first_frame: int
    x: np.ndarray  # (B, H, W) on [0, 1]
    mask: np.ndarray  # (B, H, W)
    y: np.ndarray  # (H, W)

    @property
    def name(self) -> str:
        return f"{self.sequence}/{self.mask_kind}"


def sequences(root: str | Path = DAVIS_ROOT) -> list[str]:
    """The sequence folders of a DAVIS-layout folder, in natural order."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder (expected DAVIS sequence folders of numbered frames)")
    return sorted((p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_natural_key)


def training_sequences(root: str | Path = DAVIS_ROOT, held_out: Iterable[str] = VALIDATION_SEQUENCES) -> list[str]:
    """The sequences of ``root`` left for training: all but the held-out ones."""
    out = set(held_out)
    return [s for s in sequences(root) if s not in out]


def _frames(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: _natural_key(p.name))


def square_downscale(frame: np.ndarray, size: int) -> np.ndarray:
    """The central ``s x s`` square (s = the shorter side) averaged down to ``size x size``
    (area interpolation: every output pixel the mean of the input pixels it covers)."""
    h, w = frame.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = torch.from_numpy(np.ascontiguousarray(frame[top:top + s, left:left + s], dtype=np.float32))
    if s == size:
        return square.numpy()
    if s < size:
        raise DataError(f"frames of {h}x{w} are smaller than the {size}x{size} scenes")
    out = torch.nn.functional.interpolate(square[None, None], size=(size, size), mode="area")
    return out[0, 0].numpy()


def clip(folder: str | Path, frames: int = 8, size: int = 256) -> tuple[np.ndarray, int]:
    """``frames`` consecutive frames from the middle of a sequence folder as (B, size, size)
    luminance on [0, 1], and the index of the first one."""
    folder = Path(folder)
    files = _frames(folder) if folder.is_dir() else []
    if len(files) < frames:
        raise DataError(f"{folder}: {len(files)} frames, need at least {frames}")
    first = (len(files) - frames) // 2
    out = []
    for p in files[first:first + frames]:
        arr = np.asarray(read_array(p), dtype=np.float32)
        if arr.ndim == 3:  # a colour array the reader kept: luminance (ITU-R BT.601)
            arr = arr[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        out.append(square_downscale(arr / 255.0, size))
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32), first


def drop40_mask(path: str | Path = DROP40) -> np.ndarray:
    """The (B, H, W) float32 mask of the benchmark file (MATLAB layout H x W x B)."""
    mask = read_array(Path(path), role="mask")
    return np.ascontiguousarray(np.moveaxis(mask, -1, 0)).astype(np.float32)


def mask_for(kind: str, index: int, frames: int, size: int, seed: int = 0,
             benchmark: str | Path = DROP40) -> np.ndarray:
    """The mask of scene ``index``: the benchmark's (``drop40``) or a seeded random one."""
    if kind == "drop40":
        mask = drop40_mask(benchmark)
        if mask.shape != (frames, size, size):
            raise UsageError(f"the drop40 mask is {mask.shape}; the scenes need ({frames}, {size}, {size})")
        return mask
    if kind == "random":
        return make_mask("random", frames, size, size, rng=np.random.default_rng([seed, index])).astype(np.float32)
    raise UsageError(f"unknown validation mask '{kind}' (use {', '.join(MASKS)})")


def simulate(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The noiseless snapshot ``y = sum_t mask_t * x_t`` (float32)."""
    return (mask.astype(np.float64) * x.astype(np.float64)).sum(axis=0).astype(np.float32)


def scenes(names: Sequence[str] = VALIDATION_SEQUENCES, masks: Sequence[str] = MASKS, root: str | Path = DAVIS_ROOT,
           frames: int = 8, size: int = 256, seed: int = 0, benchmark: str | Path = DROP40) -> list[Scene]:
    """The validation scenes: every sequence of ``names`` under ``root`` with every mask kind."""
    root = Path(root)
    known = set(sequences(root))
    missing = [n for n in names if n not in known]
    if missing:
        raise UsageError(f"{root}: no sequence {', '.join(missing)}")
    out = []
    for index, name in enumerate(names):
        x, first = clip(root / name, frames, size)
        for kind in masks:
            mask = mask_for(kind, index, frames, size, seed, benchmark)
            out.append(Scene(name, kind, first, x, mask, simulate(x, mask)))
    return out
