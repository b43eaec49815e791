"""DICOM slices (``.dcm``) as images on [0, 1], through the optional ``dicom`` extra (pydicom).

A CT slice stores integers ``v``; ``RescaleSlope`` s and ``RescaleIntercept`` b map them to
Hounsfield units ``HU = s v + b`` (air -1000, water 0, bone ~ +1000). scicli works on [0, 1],
so a CT slice is windowed:

    x = clip((HU - lo) / (hi - lo), 0, 1),   (lo, hi) = HU_WINDOW = (-1000, 1000) by default

(``--hu-window LO,HI`` on ``simulate`` and ``reconstruct`` changes it). Other modalities (MR,
...) carry no Hounsfield scale: their rescaled values are divided by the largest value the
stored bits can hold (``2^BitsStored - 1``, times the slope, plus the intercept), so they too
land on [0, 1].

A multi-frame file (``read_dicom(..., frames=True)``; e.g. an Enhanced CT Image) may keep the
rescale in its functional groups instead of the top level: each frame's slope and intercept are
taken from the top level if present, else from that frame's
``PerFrameFunctionalGroupsSequence[i].PixelValueTransformationSequence``, else from the
``SharedFunctionalGroupsSequence``'s, else (1, 0).

Hostile or unusual files are refused in one line before any pixel data is loaded: not DICOM,
no pixel data, colour (SamplesPerPixel != 1), multi-frame, a compressed transfer syntax without
an installed decoder, or a declared Rows x Columns x bits larger than the file (uncompressed
syntaxes) or than the memory budget (:mod:`scicli.io.limits`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from scicli.core.errors import DataError, ScicliError, UsageError
from scicli.io.limits import check_declared

__all__ = ["HU_WINDOW", "frame_rescale", "hu_window", "parse_hu_window", "read_dicom", "set_hu_window", "to_unit"]

HU_WINDOW: tuple[float, float] = (-1000.0, 1000.0)
"""Default Hounsfield window mapped to [0, 1]: air (-1000 HU) -> 0, +1000 HU (bone) -> 1."""
_WINDOW: list[tuple[float, float]] = [HU_WINDOW]
EXTRA_HINT = "reading DICOM (.dcm) needs the 'dicom' extra: pip install 'scicli[dicom]'"


def hu_window() -> tuple[float, float]:
    """The Hounsfield window (lo, hi) in use."""
    return _WINDOW[0]


def set_hu_window(window: tuple[float, float] | None) -> None:
    """Set the window of :func:`read_dicom` (None: the default :data:`HU_WINDOW`)."""
    if window is None:
        _WINDOW[0] = HU_WINDOW
        return
    lo, hi = (float(v) for v in window)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise UsageError(f"--hu-window: need finite LO < HI, got {lo:g},{hi:g}")
    _WINDOW[0] = (lo, hi)


def parse_hu_window(text: str | None) -> tuple[float, float] | None:
    """``"-1000,1000"`` -> (-1000.0, 1000.0); None stays None; anything else a UsageError."""
    if text is None:
        return None
    parts = str(text).replace(":", ",").split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise UsageError(f"--hu-window {text}: expected LO,HI in Hounsfield units, e.g. -1000,1000") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise UsageError(f"--hu-window {text}: need finite LO < HI")
    return lo, hi


def to_unit(hu: np.ndarray, window: tuple[float, float] | None = None) -> np.ndarray:
    """``clip((HU - lo) / (hi - lo), 0, 1)`` as float32."""
    lo, hi = window or hu_window()
    return np.clip((np.asarray(hu, dtype=np.float64) - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _pydicom() -> Any:
    try:
        import pydicom  # noqa: PLC0415 (optional extra, loaded by the format that needs it)
    except ImportError:
        raise DataError(EXTRA_HINT) from None
    return pydicom


def _number(ds: Any, name: str, default: float) -> float:
    value = ds.get(name, None)
    try:
        value = float(value) if value is not None and str(value).strip() != "" else default
    except (TypeError, ValueError):
        raise DataError(f"unreadable {name} {value!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{name} is not finite")
    return value


def _check_header(ds: Any, path: Path, *, frames: bool) -> int:
    """Refuse what cannot be read safely; returns the number of frames."""
    pydicom = _pydicom()
    from pydicom.pixels import get_decoder  # noqa: PLC0415 (optional extra)

    if "PixelData" not in ds:
        raise DataError(f"{path}: DICOM without pixel data (not an image)")
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    syntax = pydicom.uid.UID(str(syntax)) if syntax else pydicom.uid.ImplicitVRLittleEndian
    if syntax.is_compressed:
        try:
            available = get_decoder(syntax).is_available
        except NotImplementedError:
            available = False
        if not available:
            raise DataError(f"{path}: compressed DICOM ({syntax.name}) and no decoder for it is installed "
                            "(e.g. pip install pylibjpeg pylibjpeg-openjpeg)")
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise DataError(f"{path}: colour DICOM (SamplesPerPixel {samples}); scicli reads grayscale slices")
    n_frames = int(str(ds.get("NumberOfFrames", 1) or 1).strip() or 1)
    if n_frames < 1 or (n_frames > 1 and not frames):
        raise DataError(f"{path}: multi-frame DICOM ({n_frames} frames); scicli reads single slices")
    rows, cols = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if rows < 1 or cols < 1 or bits not in (8, 16, 32):
        raise DataError(f"{path}: unsupported image header (Rows {rows}, Columns {cols}, BitsAllocated {bits})")
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}[bits]
    check_declared(str(path), (n_frames, rows, cols), dtype,
                   None if syntax.is_compressed else os.path.getsize(path))
    check_declared(str(path), (n_frames, rows, cols), np.float64)  # the float copy made below
    return n_frames


def _rescale(item: Any) -> tuple[float, float] | None:
    """(RescaleSlope, RescaleIntercept) of a dataset or sequence item that has either, else None."""
    if "RescaleSlope" not in item and "RescaleIntercept" not in item:
        return None
    return _number(item, "RescaleSlope", 1.0), _number(item, "RescaleIntercept", 0.0)


def _group_rescale(group: Any) -> tuple[float, float] | None:
    """(slope, intercept) of one functional group's PixelValueTransformationSequence, or None."""
    seq = group.get("PixelValueTransformationSequence", None) if group is not None else None
    return _rescale(seq[0]) if seq else None


def frame_rescale(ds: Any, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame ``(slopes, intercepts)``, each (n_frames,): the top-level RescaleSlope /
    RescaleIntercept where the file has them, else each frame's functional group (per-frame
    before shared, as an Enhanced CT Image stores them), else (1, 0)."""
    top = _rescale(ds)
    if top is not None:
        return np.full(n_frames, top[0]), np.full(n_frames, top[1])
    shared_seq = ds.get("SharedFunctionalGroupsSequence", None)
    shared = _group_rescale(shared_seq[0]) if shared_seq else None
    per_frame = ds.get("PerFrameFunctionalGroupsSequence", None) or []
    pairs = []
    for i in range(n_frames):
        own = _group_rescale(per_frame[i]) if i < len(per_frame) else None
        pairs.append(own or shared or (1.0, 0.0))
    slopes, intercepts = (np.array(v, dtype=np.float64) for v in zip(*pairs))
    return slopes, intercepts


def read_dicom(path: Path, *, frames: bool = False) -> np.ndarray:
    """One DICOM slice (H, W) on [0, 1] as float32 (``frames=True``: (F, H, W), multi-frame allowed).

    CT: Hounsfield units ``RescaleSlope * v + RescaleIntercept`` through the window
    :func:`hu_window` (see the module). Other modalities: the rescaled value over its largest
    storable value. Refusals are one-line :class:`~scicli.core.errors.DataError`s."""
    path = Path(path)
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(path, defer_size=1024)  # large values (pixel data) stay on disk until used
        n_frames = _check_header(ds, path, frames=frames)
        slopes, intercepts = frame_rescale(ds, n_frames)
        raw = np.asarray(ds.pixel_array)
    except ScicliError:
        raise
    except Exception as exc:  # noqa: BLE001 - pydicom raises many types on corrupt input
        text = str(exc).strip().splitlines()
        msg = text[0] if text and text[0] else type(exc).__name__
        raise DataError(f"cannot read {path}: {msg[:160]}") from None
    raw = raw.reshape(n_frames, *raw.shape[-2:]) if frames else raw
    if raw.ndim != (3 if frames else 2):
        raise DataError(f"{path}: pixel data of shape {raw.shape}, expected one grayscale slice")
    shape = (-1, 1, 1) if frames else ()
    slope, intercept = (v.reshape(shape) if frames else float(v[0]) for v in (slopes, intercepts))
    values = raw.astype(np.float64) * slope + intercept
    if str(ds.get("Modality", "")).upper() == "CT":
        return to_unit(values)
    stored = int(ds.get("BitsStored", 0) or 0) or raw.dtype.itemsize * 8
    top = np.abs(slope) * (2.0 ** stored - 1) + intercept
    if np.all(np.asarray(top) > 0):
        return np.clip(values / top, 0.0, 1.0).astype(np.float32)
    return values.astype(np.float32)

