"""Training data: sources (still images and videos) and random-crop datasets over them.

A *source* is one file or one folder of frames, read with :func:`scicli.io.read_array`
(colour -> luminance) and scaled to [0, 1]: ``x = raw / s`` with s = 255 for 8-bit data,
the smallest of 4095 / 65535 holding the maximum for 16-bit data (``scicli.data.problem.orig_scale``).
Every source is a stack of frames ``(T, H, W)``; a still image has T = 1.

* :class:`PatchDataset` -- ``(1, P, P)`` patches for image denoisers: a random source
  (probability proportional to its pixel count), a random frame, a random crop, then one of the
  8 symmetries of the square (``rot90^k``, optionally mirrored).
* :class:`ClipDataset` -- ``(T, P, P)`` clips for video models: T consecutive frames of a video
  (same crop and symmetry for all frames, random direction of time); a still image becomes a
  clip by a smooth synthetic pan, ``x_t(r) = I(r + r0 + v t)`` with a constant velocity
  ``|v_i| <= max_shift`` px/frame, sampled by cubic-spline interpolation.

Sample ``i`` of epoch ``e`` is drawn from ``numpy.random.default_rng([seed, e, i])``: the same
seed gives the same samples whatever the order, the number of DataLoader workers, or a resume.

Validation uses whole source files held out by :func:`split_sources` and fixed centre crops
(:func:`center_crops`), no randomness.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from scicli.core.errors import DataError, UsageError
from scicli.io import read_array
from scicli.data.problem import orig_scale

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Source",
    "SourceCache",
    "list_sources",
    "split_sources",
    "center_crops",
    "PatchDataset",
    "ClipDataset",
    "dihedral",
]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES: tuple[str, ...] = (".gif", ".mp4", ".avi", ".mov", ".npy")
ARRAY_SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".mat")  # taken only when named directly
EIGHT_BIT_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".bmp", ".gif", ".mp4", ".avi", ".mov")
KIND_PREFIXES: tuple[str, ...] = ("images", "frames")


def _natural_key(text: str) -> list[object]:
    return [(0, int(p)) if p.isdigit() else (1, p.lower()) for p in re.split(r"(\d+)", text) if p]


# ----------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class Source:
    """One training file, or one folder of frames (``frames_dir``) read as a single video."""

    path: Path
    frames_dir: bool = False

    @property
    def name(self) -> str:
        return str(self.path)


def _to_frames(arr: np.ndarray, label: str) -> np.ndarray:
    """Any array read from a source -> (T, H, W).

    2-D: one frame. 3-D: frames first (T, H, W), unless the last axis is clearly the short
    one (H, W, T), the MATLAB layout. 4-D: (T, H, W, 3|4) colour -> luminance, else all
    leading axes are frames (e.g. (K, B, H, W)).
    """
    if arr.ndim == 2:
        return arr[None]
    if arr.ndim == 3:
        if arr.shape[-1] < min(arr.shape[:2]) and arr.shape[0] >= arr.shape[-1] * 4:
            return np.moveaxis(arr, -1, 0)
        return arr
    if arr.ndim == 4:
        if arr.shape[-1] in (3, 4):
            luma = np.array([0.299, 0.587, 0.114])
            return (arr[..., :3].astype(np.float64) @ luma).astype(np.float32)
        return arr.reshape(-1, *arr.shape[-2:])
    raise DataError(f"{label}: expected an image or a video (2 to 4 axes), got shape {tuple(arr.shape)}")


def _scale(arr: np.ndarray, suffix: str) -> float:
    """The value of full white: 255 for 8-bit files, else ``orig_scale`` (1, 255, 4095, 65535)."""
    if arr.dtype == np.uint8 or suffix in EIGHT_BIT_SUFFIXES:
        top = float(arr.max()) if arr.size else 0.0
        return 255.0 if top <= 255.0 else orig_scale(arr)
    if arr.dtype.kind == "f" and suffix in IMAGE_SUFFIXES:  # colour PNG/TIFF: luminance as float
        top = float(arr.max()) if arr.size else 0.0
        return 255.0 if top <= 255.0 else 65535.0
    return orig_scale(arr)


def load_source(source: Source) -> np.ndarray:
    """Read a source as (T, H, W) in a compact dtype: uint8 (x 1/255), uint16 (x 1/65535) or
    float32 already on [0, 1] (clipped). Use :func:`as_unit` on crops."""
    role = "orig" if source.path.suffix.lower() in (".npz", ".mat") else None
    arr = read_array(source.path, role=role)
    frames = _to_frames(arr, source.name)
    if frames.shape[-1] < 2 or frames.shape[-2] < 2 or frames.shape[0] < 1:
        raise DataError(f"{source.name}: frames of {frames.shape[-2]}x{frames.shape[-1]} are too small to train on")
    suffix = _images_in(source.path)[0].suffix.lower() if source.frames_dir else source.path.suffix.lower()
    scale = _scale(frames, suffix)
    if frames.dtype.kind == "f" and float(frames.min(initial=0.0)) < 0.0:
        raise DataError(f"{source.name}: negative intensities; expected an image or video")
    if scale == 255.0:
        return np.ascontiguousarray(np.clip(np.rint(frames), 0, 255).astype(np.uint8))
    if scale == 65535.0 and frames.dtype == np.uint16:
        return np.ascontiguousarray(frames)
    return np.ascontiguousarray(np.clip(frames / scale, 0.0, 1.0).astype(np.float32))


def as_unit(arr: np.ndarray) -> np.ndarray:
    """A crop of a loaded source as float32 on [0, 1]."""
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    return arr.astype(np.float32, copy=False)


def downscaled_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """``(round(H / factor), round(W / factor))``, at least 1 x 1."""
    return max(1, round(height / factor)), max(1, round(width / factor))


def check_downscale(factor: float) -> float:
    """``factor`` as a float when it is a finite number >= 1, else the one-line ``--downscale`` UsageError."""
    if not (factor >= 1.0 and math.isfinite(factor)):
        raise UsageError(f"--downscale must be a number >= 1, got {factor}")
    return float(factor)


def downscale(frames: np.ndarray, factor: float) -> np.ndarray:
    """(T, H, W) frames area-averaged by ``factor`` >= 1 to :func:`downscaled_size` (each output
    pixel the mean of the input pixels it covers, torch's ``area`` mode: what the validation
    scenes of :mod:`scicli.data.validation` do to DAVIS frames), in the frames' own dtype."""
    if factor == 1.0:
        return frames
    size = downscaled_size(frames.shape[-2], frames.shape[-1], factor)
    out = torch.nn.functional.interpolate(torch.from_numpy(as_unit(frames))[:, None], size=size, mode="area")
    unit = out[:, 0].numpy()
    if frames.dtype == np.uint8:
        return np.rint(unit * 255.0).astype(np.uint8)
    if frames.dtype == np.uint16:
        return np.rint(unit * 65535.0).astype(np.uint16)
    return np.ascontiguousarray(unit, dtype=np.float32)


class SourceCache:
    """Loaded sources, least recently used evicted beyond ``max_bytes`` (default 2 GiB), every
    frame area-averaged by ``downscale`` (>= 1) as it is loaded.

    Small image sets (Train400: 400 x 180 x 180 bytes = 13 MB) stay in memory for the run.
    """

    def __init__(self, max_bytes: int = 2 << 30, downscale: float = 1.0) -> None:
        self.max_bytes = max_bytes
        self.downscale = check_downscale(downscale)
        self._items: OrderedDict[Source, np.ndarray] = OrderedDict()
        self._bytes = 0

    def get(self, source: Source) -> np.ndarray:
        if source in self._items:
            self._items.move_to_end(source)
            return self._items[source]
        arr = downscale(load_source(source), self.downscale)
        self._items[source] = arr
        self._bytes += arr.nbytes
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return arr

    def shape(self, source: Source) -> tuple[int, int, int]:
        """(T, H, W) of a source: from the header where that is cheap (npy, frames folder)."""
        if source in self._items:
            return tuple(self._items[source].shape)  # type: ignore[return-value]
        suffix = source.path.suffix.lower()
        if source.frames_dir:  # frame count and the first frame's size; all frames must match
            files = _images_in(source.path)
            if files:
                first = read_array(files[0])
                if first.ndim == 2:
                    return (len(files), *downscaled_size(int(first.shape[0]), int(first.shape[1]), self.downscale))
        if suffix == ".npy" and not source.frames_dir:
            try:
                arr = np.load(source.path, mmap_mode="r", allow_pickle=False)
                if arr.ndim in (2, 3):
                    T, H, W = _to_frames(arr, source.name).shape
                    return (T, *downscaled_size(H, W, self.downscale))
            except Exception:  # noqa: BLE001 - fall back to a full read, which reports errors
                pass
        return tuple(self.get(source).shape)  # type: ignore[return-value]


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir()
         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: _natural_key(p.name),
    )


def _scan(folder: Path, top: bool, kind: str, out: list[Source]) -> None:
    """Collect the sources under ``folder`` (see :func:`list_sources` for the rules)."""
    try:
        entries = sorted(folder.iterdir(), key=lambda p: _natural_key(p.name))
    except OSError as exc:
        raise DataError(f"cannot list {folder}: {exc.strerror or exc}") from None
    images = _images_in(folder)
    if images:
        numbered = all(p.stem.isdigit() for p in images) and len(images) > 1
        as_frames = kind == "frames" or (kind == "auto" and (not top or numbered))
        if as_frames:
            out.append(Source(folder, frames_dir=True))
        else:
            out.extend(Source(p) for p in images)
    for p in entries:
        if p.name.startswith("."):
            continue
        if p.is_dir():
            _scan(p, False, kind, out)
        elif p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES:
            out.append(Source(p))


def list_sources(paths: Iterable[str | Path], kind: str = "auto", exclude: Iterable[str] = ()) -> list[Source]:
    """Every training source under ``paths`` (files or folders), in a fixed order.

    * a file: an image (png, jpg, bmp, tif; colour -> luminance), a multi-page TIFF, a .npy
      (H, W) / (T, H, W) array, a gif / mp4 / avi / mov video, or a .npz / .mat ('orig' array);
    * a folder: its image files are still images, one source each, unless ``kind`` is
      'frames', or all their names are numbers (00000.jpg, 00001.jpg, ...): then the folder is
      one video; image files in sub-folders are frames of one video per sub-folder (the DAVIS
      layout); npy / gif / mp4 files anywhere are videos;
    * a path may be prefixed ``images:`` or ``frames:`` to force how its folder is read;
    * a source any of whose path components (a folder or file name, or a file's stem) is in
      ``exclude`` is left out: ``exclude=("bmx-trees",)`` drops that DAVIS sequence (a held-out
      validation split, :mod:`scicli.data.validation`); a name that matches nothing is an error.

    No data at all is a :class:`UsageError`.
    """
    if kind not in ("auto", *KIND_PREFIXES):
        raise ValueError(f"kind must be auto, images or frames, not {kind!r}")
    sources: list[Source] = []
    for raw in paths:
        text = str(raw)
        k = kind
        for prefix in KIND_PREFIXES:
            if text.startswith(prefix + ":") and not Path(text).exists():
                k, text = prefix, text[len(prefix) + 1:]
        path = Path(text)
        if not path.exists():
            raise UsageError(f"--data {path}: no such file or folder")
        if path.is_dir():
            found: list[Source] = []
            _scan(path, k != "frames", k, found)
            if not found:
                raise UsageError(
                    f"--data {path}: no training data (images {' '.join(IMAGE_SUFFIXES)}, "
                    f"videos {' '.join(VIDEO_SUFFIXES)}, or sub-folders of frames)"
                )
            sources.extend(found)
        elif path.suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES + ARRAY_SUFFIXES:
            sources.append(Source(path))
        else:
            raise UsageError(f"--data {path}: unsupported file type '{path.suffix or '(none)'}'")
    unique = list(dict.fromkeys(sources))  # the same file named twice counts once
    unique = _excluded(unique, exclude)
    if not unique:
        raise UsageError("no training data: pass --data DIR (images, frame folders or videos)")
    return unique


def _excluded(sources: list[Source], exclude: Iterable[str]) -> list[Source]:
    """``sources`` without those named in ``exclude`` (see :func:`list_sources`)."""
    names = {str(n) for n in exclude}
    if not names:
        return sources

    def hit(s: Source) -> set[str]:
        return names & {*s.path.parts, s.path.stem}

    used = set().union(*(hit(s) for s in sources))
    unused = sorted(names - used)
    if unused:
        raise UsageError(f"--exclude {', '.join(unused)}: no training source has that name")
    return [s for s in sources if not hit(s)]


def split_sources(sources: Sequence[Source], val_fraction: float, seed: int) -> tuple[list[Source], list[Source]]:
    """Hold out whole files: ``max(1, round(f n))`` of the n sources (a seeded choice) validate.

    ``val_fraction == 0`` keeps everything for training. Splitting needs at least two sources.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise UsageError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    sources = list(sources)
    if val_fraction == 0.0:
        return sources, []
    n = len(sources)
    n_val = max(1, int(round(val_fraction * n)))
    if n - n_val < 1:
        raise UsageError(
            f"found {n} data file(s): a held-out validation file needs at least 2 "
            "(add data or pass --val-fraction 0)"
        )
    order = np.random.default_rng([int(seed), 0x5A11]).permutation(n)
    held = set(int(i) for i in order[:n_val])
    return ([s for i, s in enumerate(sources) if i not in held],
            [s for i, s in enumerate(sources) if i in held])


# ----------------------------------------------------------------------------- crops
def dihedral(arr: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """One of the 8 symmetries of the square on the last two axes: ``rot90^k`` then a mirror."""
    out = np.rot90(arr, k, axes=(-2, -1))
    if flip:
        out = out[..., ::-1]
    return np.ascontiguousarray(out)


def _pad_to(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Mirror-pad the last two axes (bottom / right) up to at least ``height`` x ``width``."""
    while arr.shape[-2] < height or arr.shape[-1] < width:
        ph = min(max(0, height - arr.shape[-2]), arr.shape[-2])
        pw = min(max(0, width - arr.shape[-1]), arr.shape[-1])
        arr = np.pad(arr, [(0, 0)] * (arr.ndim - 2) + [(0, ph), (0, pw)], mode="symmetric")
    return arr


def center_crops(
    sources: Sequence[Source], size: int, frames: int = 1, cache: SourceCache | None = None
) -> list[np.ndarray]:
    """Fixed validation items: the centre ``min(size, H) x min(size, W)`` crop of the middle
    ``frames`` frames of every source (a still image is repeated), float32 (frames, h, w)."""
    cache = cache or SourceCache()
    items = []
    for source in sources:
        arr = cache.get(source)
        T, H, W = arr.shape
        h, w = min(size, H), min(size, W)
        top, left = (H - h) // 2, (W - w) // 2
        start = max(0, (T - frames) // 2)
        idx = [min(start + t, T - 1) for t in range(frames)]
        items.append(as_unit(arr[idx, top:top + h, left:left + w]))
    return items


class _RandomCrops(Dataset):
    """Shared machinery: sources, per-source sampling weights, per-sample generators."""

    def __init__(self, sources: Sequence[Source], patch: int, length: int, seed: int,
                 cache: SourceCache | None) -> None:
        if patch < 2:
            raise UsageError(f"--patch must be at least 2, got {patch}")
        if not sources:
            raise UsageError("no training data left after the validation split")
        self.sources = list(sources)
        self.patch = int(patch)
        self.seed = int(seed)
        self.epoch = 0
        self.cache = cache or SourceCache()
        self.shapes = [self.cache.shape(s) for s in self.sources]
        pixels = np.array([t * h * w for t, h, w in self.shapes], dtype=np.float64)
        self._cdf = np.cumsum(pixels / pixels.sum())
        self.length = int(length) if length else self.default_length()

    def default_length(self) -> int:
        """One epoch = as many patches as it takes to cover the training pixels once."""
        pixels = sum(t * h * w for t, h, w in self.shapes)
        return max(1, math.ceil(pixels / self.patch ** 2))

    def set_epoch(self, epoch: int) -> None:
        """Samples depend on (seed, epoch, index): a new epoch draws new crops."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def pick(self, rng: np.random.Generator) -> int:
        return min(int(np.searchsorted(self._cdf, rng.random(), side="right")), len(self.sources) - 1)


class PatchDataset(_RandomCrops):
    """Random ``(1, P, P)`` float32 patches on [0, 1] with random flips and 90-degree rotations.

    ``length`` samples per epoch (default: :meth:`default_length`); a video contributes each of
    its frames as an image.
    """

    def __init__(self, sources: Sequence[Source], patch: int = 64, length: int | None = None, seed: int = 0,
                 augment: bool = True, cache: SourceCache | None = None) -> None:
        super().__init__(sources, patch, length or 0, seed, cache)
        self.augment = augment

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = self.rng(index)
        arr = self.cache.get(self.sources[self.pick(rng)])
        P = self.patch
        t = int(rng.integers(arr.shape[0]))
        frame = _pad_to(arr[t], P, P)
        top = int(rng.integers(frame.shape[0] - P + 1))
        left = int(rng.integers(frame.shape[1] - P + 1))
        crop = frame[top:top + P, left:left + P]
        if self.augment:
            crop = dihedral(crop, int(rng.integers(4)), bool(rng.integers(2)))
        return torch.from_numpy(as_unit(np.ascontiguousarray(crop))[None])


class ClipDataset(_RandomCrops):
    """Random ``(T, P, P)`` float32 clips on [0, 1]: T consecutive frames of a video, or a
    still image panned smoothly by at most ``max_shift`` px/frame in each direction.

    Videos shorter than T frames play forwards then backwards (ping-pong). Augmentation: the
    8 square symmetries (one per clip) and, for videos, the direction of time.
    """

    def __init__(self, sources: Sequence[Source], frames: int = 8, patch: int = 64, length: int | None = None,
                 seed: int = 0, max_shift: float = 2.0, augment: bool = True,
                 cache: SourceCache | None = None) -> None:
        if frames < 1:
            raise UsageError(f"clips need at least 1 frame, got {frames}")
        if max_shift < 0:
            raise UsageError(f"max_shift must be >= 0, got {max_shift}")
        self.frames = int(frames)
        self.max_shift = float(max_shift)
        self.augment = augment
        super().__init__(sources, patch, length or 0, seed, cache)

    def default_length(self) -> int:
        pixels = sum(t * h * w for t, h, w in self.shapes)
        return max(1, math.ceil(pixels / (self.patch ** 2 * self.frames)))

    def __getitem__(self, index: int) -> torch.Tensor:
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = self.rng(index)
        arr = self.cache.get(self.sources[self.pick(rng)])
        clip = self._video_clip(arr, rng) if arr.shape[0] > 1 else self._panned_clip(arr[0], rng)
        if self.augment:
            clip = dihedral(clip, int(rng.integers(4)), bool(rng.integers(2)))
        return torch.from_numpy(np.ascontiguousarray(clip))

    def _video_clip(self, arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        T, n, P = self.frames, arr.shape[0], self.patch
        if n >= T:
            start = int(rng.integers(n - T + 1))
            idx = np.arange(start, start + T)
        else:  # ping-pong through a short video: 0 1 2 1 0 1 ...
            period = 2 * (n - 1)
            phase = np.arange(T) % period
            idx = np.where(phase < n, phase, period - phase)
        if self.augment and rng.integers(2):
            idx = idx[::-1]
        H, W = max(arr.shape[1], P), max(arr.shape[2], P)
        top = int(rng.integers(H - P + 1))
        left = int(rng.integers(W - P + 1))
        crop = _pad_to(arr[idx], P, P)[:, top:top + P, left:left + P]
        return as_unit(np.ascontiguousarray(crop))

    def _panned_clip(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x_t = I(r + r0 + v t): constant velocity v, sub-pixel shifts by cubic splines."""
        from scipy.ndimage import shift as nd_shift  # noqa: PLC0415 (heavy optional dependency)

        T, P = self.frames, self.patch
        v = rng.uniform(-self.max_shift, self.max_shift, size=2)
        pos = np.arange(T)[:, None] * v[None, :]  # (T, 2) offsets of the window, px
        pos -= pos.min(axis=0)
        margin = 2  # spline support around the window
        extent = np.ceil(pos.max(axis=0)).astype(int) + P + 2 * margin
        img = _pad_to(image, int(extent[0]), int(extent[1]))
        r0 = int(rng.integers(img.shape[0] - extent[0] + 1))
        c0 = int(rng.integers(img.shape[1] - extent[1] + 1))
        region = as_unit(img[r0:r0 + extent[0], c0:c0 + extent[1]])
        clip = np.empty((T, P, P), dtype=np.float32)
        for t in range(T):
            whole = np.floor(pos[t]).astype(int)
            frac = pos[t] - whole
            r, c = whole[0] + margin, whole[1] + margin
            window = region[r - margin:r + P + margin, c - margin:c + P + margin]
            if frac.any():
                window = nd_shift(window, -frac, order=3, mode="mirror")
            clip[t] = window[margin:margin + P, margin:margin + P]
        return np.clip(clip, 0.0, 1.0, out=clip)
