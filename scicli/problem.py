"""Assemble a reconstruction problem from files: measurements, masks, optional ground truth.

Everything is brought to frames-first float32 on the [0, 1] intensity scale:

    meas (K, H, W),  mask (B, H, W) or (K, B, H, W),  orig (K, B, H, W) or None

Intensity scale (``max_value``): the field stores 0..255 data, so ``x = orig / 255`` and
``y = meas / 255``. Unless ``--max-value`` is given it is chosen by this rule:

* measurements: ``q = max(y / sum_t M_t)`` over pixels where a mask is open (the brightest
  frame value the snapshot can imply); the scale is the first of 1, 255, 4095, 65535 with
  ``q <= 1.5 * scale`` (1.5 leaves room for noise);
* videos (ground truth, reconstructions): uint8 -> 255; floats whose maximum is at most 2 are
  on [0, 1] (reconstructions overshoot a little); otherwise the first of 255, 4095, 65535
  holding the maximum.

Integer masks with values above 1 (e.g. 0/255 PNG masks) are divided by their maximum.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scicli.errors import DataError, UsageError
from scicli.io import list_keys, read_array
from scicli.io.layout import resolve, to_first
from scicli.io.readers import ROLE_NAMES

SCALES = (1.0, 255.0, 4095.0, 65535.0)
CONTAINERS = (".mat", ".npz")


@dataclass
class Problem:
    """Inputs of one reconstruction, frames first, float32, intensities on [0, 1]."""

    meas: np.ndarray
    mask: np.ndarray
    orig: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return self.mask.shape[-3]


def role_key(path: Path, role: str) -> str | None:
    """The array in a .mat/.npz container that holds ``role`` by the field's names, if any."""
    if path.suffix.lower() not in CONTAINERS:
        return None
    keys = list_keys(path)
    for name in ROLE_NAMES[role]:
        if name in keys:
            return name
    lower = {k.lower(): k for k in keys}
    for name in ROLE_NAMES[role]:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def parse_selection(text: str | None, count: int, what: str = "measurement") -> list[int]:
    """Indices from '0', '0,2,4', '1:3' or ':' (0-based, Python slices); all when None."""
    if text is None or text.strip() in ("", ":"):
        return list(range(count))
    picked: list[int] = []
    try:
        for part in text.split(","):
            if ":" in part:
                a, b = part.split(":", 1)
                picked.extend(range(count)[slice(int(a) if a.strip() else None, int(b) if b.strip() else None)])
            else:
                i = int(part)
                if not -count <= i < count:
                    raise IndexError(i)
                picked.append(i % count)
    except (ValueError, IndexError):
        raise UsageError(f"cannot select {what}s '{text}' out of {count} (use e.g. 0 or 0,2 or 1:3)") from None
    if not picked:
        raise UsageError(f"selection '{text}' picks no {what} out of {count}")
    return picked


def meas_scale(meas: np.ndarray, mask_energy: np.ndarray) -> float:
    """The intensity scale implied by snapshots ``meas`` (K, H, W) and ``sum_t M_t`` (…, H, W)."""
    open_ = mask_energy > 0
    ratio = np.where(open_, meas / np.where(open_, mask_energy, 1.0), 0.0)
    q = float(ratio.max()) if ratio.size else 0.0
    return next((s for s in SCALES if q <= 1.5 * s), SCALES[-1])


def orig_scale(orig: np.ndarray) -> float:
    """The intensity scale of a video: uint8 -> 255, else the smallest scale holding its max."""
    if orig.dtype == np.uint8:
        return 255.0
    top = float(orig.max()) if orig.size else 0.0
    if top <= (2.0 if orig.dtype.kind == "f" else 1.0):
        return 1.0
    return next((s for s in SCALES[1:] if top <= s), SCALES[-1])


def mask_values(mask: np.ndarray, label: str) -> np.ndarray:
    """Float32 mask values: integer masks scaled by their maximum (8-bit 0/255 masks become 0/1),
    float masks taken as given (calibrated gains may exceed 1); negative or all-zero: DataError."""
    if mask.dtype.kind in "iu" and mask.max() > 1:
        mask = mask / mask.max()
    mask = mask.astype(np.float32)
    if (mask < 0).any():
        raise DataError(f"{label}: mask has negative values")
    if not mask.any():
        raise DataError(f"{label}: the mask is all zeros (no light reaches the sensor)")
    return mask


def load_problem(
    meas_path: Path,
    mask_path: Path | None = None,
    orig_path: Path | None = None,
    *,
    meas_key: str | None = None,
    mask_key: str | None = None,
    orig_key: str | None = None,
    layout: str = "auto",
    max_value: float | None = None,
    select: str | None = None,
) -> Problem:
    """Read measurements, masks and (optionally) ground truth, check they fit, normalise.

    Mask and ground truth default to the arrays of the same name inside a .mat/.npz
    measurement file (the benchmark files carry all three).
    """
    meas_path = Path(meas_path)
    info: dict[str, Any] = {}
    meas = read_array(meas_path, key=meas_key, role="meas")
    info["meas"] = _source(meas_path, meas_key or role_key(meas_path, "meas"), meas)

    if mask_path is None:
        mask_key = mask_key or role_key(meas_path, "mask")
        if mask_key is None:
            raise UsageError(f"{meas_path}: no mask given and none inside the file; pass --mask FILE")
        mask_path = meas_path
    mask_path = Path(mask_path)
    mask = read_array(mask_path, key=mask_key, role="mask")
    info["mask"] = _source(mask_path, mask_key or role_key(mask_path, "mask"), mask)

    orig = None
    if orig_path is None and (orig_key or role_key(meas_path, "orig")):
        orig_path, orig_key = meas_path, orig_key or role_key(meas_path, "orig")
    if orig_path is not None:
        orig_path = Path(orig_path)
        orig = read_array(orig_path, key=orig_key, role="orig")
        info["orig"] = _source(orig_path, orig_key or role_key(orig_path, "orig"), orig)

    meas_label = info["meas"]["label"]
    mask_label = info["mask"]["label"]
    if meas.ndim not in (2, 3):
        raise UsageError(f"{meas_label}: measurements must be 2-D or 3-D, got shape {meas.shape}")
    if mask.ndim not in (3, 4):
        raise UsageError(f"{mask_label}: masks must be 3-D (B frames) or 4-D (B frames x K), got shape {mask.shape}")
    arrays = {meas_label: (meas.shape, "measurements"), mask_label: (mask.shape, "mask")}
    layouts, hw = resolve(arrays, layout)
    meas_f = to_first(meas, layouts[meas_label])
    mask_f = to_first(mask, layouts[mask_label])
    K, B = meas_f.shape[0], mask_f.shape[-3]
    if mask_f.ndim == 4 and mask_f.shape[0] != K:
        raise UsageError(
            f"{mask_label}: {mask_f.shape[0]} mask sets for {K} measurements in {meas_label}"
        )
    info["layout"] = {"meas": layouts[meas_label], "mask": layouts[mask_label]}
    mask_f = mask_values(mask_f, mask_label)

    idx = parse_selection(select, K)
    meas_f = meas_f[idx]
    if mask_f.ndim == 4:
        mask_f = mask_f[idx]
    scale_y = float(max_value) if max_value else meas_scale(meas_f.astype(np.float64), mask_f.sum(axis=-3))
    meas_f = (meas_f / scale_y).astype(np.float32)

    orig_f = None
    if orig is not None:
        orig_label = info["orig"]["label"]
        if orig.ndim not in (2, 3, 4):
            raise UsageError(f"{orig_label}: ground truth must be 2-D, 3-D or 4-D, got shape {orig.shape}")
        gl, ghw = resolve({orig_label: (orig.shape, "ground truth"), mask_label: (mask.shape, "mask")}, layout)
        if ghw != hw:
            raise UsageError(f"{orig_label}: frames are {ghw[0]}x{ghw[1]}, measurements {hw[0]}x{hw[1]}")
        orig_f = to_first(orig, gl[orig_label])
        if orig_f.ndim == 3:
            if orig_f.shape[0] < K * B:
                raise UsageError(
                    f"{orig_label}: {orig_f.shape[0]} frames, but {K} measurements of {B} frames need {K * B}"
                )
            orig_f = orig_f[: K * B].reshape(K, B, *hw)
        elif orig_f.shape[:2] != (K, B):
            raise UsageError(f"{orig_label}: shape {orig.shape} does not hold {K} x {B} frames")
        info["layout"]["orig"] = gl[orig_label]
        scale_x = float(max_value) if max_value else orig_scale(orig_f)
        orig_f = (orig_f[idx] / scale_x).astype(np.float32)
        info["orig_max_value"] = scale_x

    info.update(
        max_value=scale_y,
        max_value_rule="given" if max_value else "auto",
        measurements=idx,
        frames=B,
        size=list(hw),
    )
    return Problem(meas=np.ascontiguousarray(meas_f), mask=np.ascontiguousarray(mask_f),
                   orig=None if orig_f is None else np.ascontiguousarray(orig_f), info=info)


def _source(path: Path, key: str | None, arr: np.ndarray) -> dict[str, Any]:
    label = f"{path}[{key}]" if key and path.suffix.lower() in CONTAINERS else str(path)
    return {"file": str(path), "key": key, "shape": list(arr.shape), "dtype": str(arr.dtype), "label": label}
