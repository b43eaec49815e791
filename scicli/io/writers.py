"""Writers: frames-first arrays to .npy/.npz/.tif/.mat, previews to .png/.gif; all atomic.

Complex arrays (k-space, complex images) go to .npy, .npz and .mat (v5) as complex64 (dtype
'float32') or as given (dtype None); TIFF, PNG and GIF cannot hold them (a UsageError).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from scicli.core.errors import DataError, UsageError
from scicli.io.atomic import WriteGroup, atomic_write

__all__ = ["WRITE_SUFFIXES", "WRITE_DTYPES", "write_array", "write_preview"]

WRITE_SUFFIXES: tuple[str, ...] = (".npy", ".npz", ".tif", ".tiff", ".mat", ".png", ".gif")
WRITE_DTYPES: tuple[str, ...] = ("float32", "uint8", "uint16")
PREVIEW_SUFFIXES: tuple[str, ...] = (".png", ".gif")
_GAP = 2
_GAP_VALUE = 128  # mid-gray between montage tiles
_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")


def _check_range(path: Path, value_range: float) -> float:
    value_range = float(value_range)
    if not math.isfinite(value_range) or value_range <= 0:
        raise UsageError(f"{path}: value range must be a positive number, got {value_range}")
    return value_range


def _check_finite(path: Path, frames: np.ndarray) -> None:
    """A NaN/Inf result is never written (it would pass off garbage as a reconstruction)."""
    arr = np.asarray(frames)
    if arr.dtype.kind in "fc":
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise DataError(f"{path}: not written: the array holds {bad} NaN/Inf values")


def _scaled(frames: np.ndarray, value_range: float, top: int) -> np.ndarray:
    """Clip ``frames / value_range`` to [0, 1] and scale to 0..top (NaN -> 0), rounded."""
    x = np.nan_to_num(np.asarray(frames, dtype=np.float64), nan=0.0)
    return np.rint(np.clip(x / value_range, 0.0, 1.0) * top)


def _convert(frames: np.ndarray, dtype: str | None, value_range: float) -> np.ndarray:
    if dtype is None:
        return np.asarray(frames)
    if dtype == "float32":
        return np.asarray(frames, dtype=np.complex64 if np.iscomplexobj(frames) else np.float32)
    if dtype == "uint8":
        return _scaled(frames, value_range, 255).astype(np.uint8)
    return _scaled(frames, value_range, 65535).astype(np.uint16)


def _matlab_order(arr: np.ndarray) -> np.ndarray:
    """Frames-first to frames-last: (F,H,W) -> (H,W,F); (K,B,H,W) -> (H,W,B,K)."""
    if arr.ndim < 3:
        return arr
    lead = tuple(range(arr.ndim - 3, -1, -1))
    return np.ascontiguousarray(np.transpose(arr, (arr.ndim - 2, arr.ndim - 1) + lead))


def write_array(
    path: Path,
    frames: np.ndarray,
    *,
    force: bool = False,
    dtype: str | None = "float32",
    key: str = "recon",
    value_range: float = 1.0,
    group: WriteGroup | None = None,
) -> Path:
    """Write frames-first ``frames`` (values on 0..value_range) to ``path``, atomically.

    The suffix picks the format: .npy, .npz (under ``key``), .tif/.tiff (one page per frame),
    .mat (v5, frames last, under ``key``), .png/.gif (a preview via ``write_preview``).
    ``dtype`` 'uint8'/'uint16' rescale ``[0, value_range]`` to the full integer range; None
    keeps the array's own type.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise UsageError(
            f"{path}: cannot write '{path.suffix or '(no suffix)'}' files "
            f"(supported: {' '.join(WRITE_SUFFIXES)})"
        )
    if dtype is not None and dtype not in WRITE_DTYPES:
        raise UsageError(f"{path}: unknown dtype '{dtype}' (choose from {', '.join(WRITE_DTYPES)})")
    value_range = _check_range(path, value_range)
    _check_finite(path, frames)
    if np.iscomplexobj(frames):
        if suffix in (".tif", ".tiff") or suffix in PREVIEW_SUFFIXES:
            raise UsageError(f"{path}: {suffix} files cannot hold complex values; write .npy, .npz or .mat")
        if dtype not in (None, "float32"):
            raise UsageError(f"{path}: complex values cannot be written as {dtype} (use float32)")
    if suffix in PREVIEW_SUFFIXES:
        return write_preview(path, frames, force=force, value_range=value_range, group=group)
    if suffix in (".npz", ".mat") and not _KEY_RE.fullmatch(key):
        raise UsageError(
            f"{path}: invalid array name '{key}' (a letter, then letters, digits or _; "
            "at most 63 characters)"
        )
    arr = _convert(np.asarray(frames), dtype, value_range)

    def _write(tmp: Path) -> None:
        if suffix == ".npy":
            np.save(tmp, arr, allow_pickle=False)
        elif suffix == ".npz":
            np.savez_compressed(tmp, **{key: arr})
        elif suffix in (".tif", ".tiff"):
            import tifffile  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

            tifffile.imwrite(tmp, arr, photometric="minisblack")
        else:  # .mat
            import scipy.io  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

            scipy.io.savemat(str(tmp), {key: _matlab_order(arr)}, format="5",
                             do_compression=True)

    return atomic_write(path, _write, force=force, group=group)


def _montage(frames: np.ndarray) -> np.ndarray:
    """Tile (F,H,W) uint8 frames in a grid of ceil(sqrt(F)) columns with mid-gray gaps."""
    count, height, width = frames.shape
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    canvas = np.full(
        (rows * height + (rows - 1) * _GAP, cols * width + (cols - 1) * _GAP),
        _GAP_VALUE, dtype=np.uint8,
    )
    for i, frame in enumerate(frames):
        r, c = divmod(i, cols)
        y, x = r * (height + _GAP), c * (width + _GAP)
        canvas[y:y + height, x:x + width] = frame
    return canvas


def write_preview(
    path: Path,
    frames: np.ndarray,
    *,
    force: bool = False,
    value_range: float = 1.0,
    group: WriteGroup | None = None,
) -> Path:
    """Write a uint8 preview: a montage grid (.png) or an animation at 10 fps (.gif).

    Values are clipped to [0, value_range] and scaled to 0..255; leading axes beyond
    (H, W) are flattened into frames.
    """
    import imageio.v3 as iio  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PREVIEW_SUFFIXES:
        raise UsageError(
            f"{path}: previews are written as {' or '.join(PREVIEW_SUFFIXES)}, "
            f"not '{path.suffix or '(no suffix)'}'"
        )
    value_range = _check_range(path, value_range)
    arr = np.asarray(frames)
    if np.iscomplexobj(arr):
        raise UsageError(f"{path}: {suffix} previews cannot show complex values; preview the magnitude")
    if arr.ndim < 2 or arr.size == 0:
        raise UsageError(f"{path}: cannot preview an array of shape {tuple(arr.shape)}")
    stack = _scaled(arr.reshape((-1,) + arr.shape[-2:]), value_range, 255).astype(np.uint8)

    def _write(tmp: Path) -> None:
        if suffix == ".png":
            iio.imwrite(tmp, _montage(stack))
        else:
            iio.imwrite(tmp, stack, is_batch=True, duration=100, loop=0)

    return atomic_write(path, _write, force=force, group=group)


def write_rgb(path: Path, images: np.ndarray, *, force: bool = False, group: WriteGroup | None = None) -> Path:
    """Write RGB image(s) (H, W, 3) or (K, H, W, 3), uint8, as one ``.png`` (several side by side)."""
    import imageio.v3 as iio  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"{path}: colour previews are written as .png")
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise UsageError(f"{path}: expected uint8 RGB images (K, H, W, 3), got {arr.dtype} {tuple(arr.shape)}")
    gap = np.full((arr.shape[1], _GAP, 3), _GAP_VALUE, dtype=np.uint8)
    row = np.concatenate([part for k, img in enumerate(arr) for part in ((gap, img) if k else (img,))], axis=1)
    return atomic_write(path, lambda tmp: iio.imwrite(tmp, row), force=force, group=group)
