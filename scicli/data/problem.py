"""Assemble a reconstruction problem from files: measurements, the operator's arrays, optional
ground truth.

Everything is brought to measurements-first float32 (complex64 for k-space) on the [0, 1]
intensity scale. For video SCI:

    meas (K, H, W),  mask (B, H, W) or (K, B, H, W),  orig (K, B, H, W) or None

and for any registered operator (``--operator``), ``meas (K, *meas_shape)``, the arrays of its
roles (``mask``, ``phi``, ...), ``orig (K, C, H, W)``. The operator is named, or inferred from
the file (an ``operator`` entry written by ``scicli simulate``, else the shapes and keys).

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

import functools
import inspect
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import torch

from scicli.core.errors import DataError, UsageError
from scicli.io import list_keys, read_array
from scicli.io.layout import resolve, to_first
from scicli.io.readers import ROLE_NAMES
from scicli.physics import OPERATORS, LinearOperator
from scicli.core.params import coerce

SCALES = (1.0, 255.0, 4095.0, 65535.0)
CONTAINERS = (".mat", ".npz")


@dataclass
class Problem:
    """Inputs of one reconstruction, measurements first, intensities on [0, 1].

    ``arrays`` holds the operator's role arrays (``mask`` for video SCI, CASSI and MRI, ``phi``
    for block CS, ...); those named in ``batched`` carry one entry per measurement on their
    first axis, the others are shared by all K measurements.
    """

    meas: np.ndarray
    arrays: dict[str, np.ndarray]
    orig: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)
    operator: str = "video-sci"
    options: dict[str, Any] = field(default_factory=dict)
    batched: tuple[str, ...] = ()
    _shared: LinearOperator | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def mask(self) -> np.ndarray:
        """The operator's first role array (the masks, for video SCI)."""
        return self.arrays[next(iter(OPERATORS.get(self.operator).factory.roles))]

    def operator_for(self, lo: int = 0, hi: int | None = None) -> LinearOperator:
        """The forward operator of measurements ``lo:hi`` (built on the CPU, float32). Without
        batched arrays every measurement has the same operator: one instance serves them all
        (and whatever it caches, e.g. CT's system matrix, is built once per problem)."""
        if not self.batched and self._shared is not None:
            return self._shared
        arrays = {k: (v[lo:hi] if k in self.batched else v) for k, v in self.arrays.items()}
        meas_shape = (len(range(*slice(lo, hi).indices(self.meas.shape[0]))), *self.meas.shape[1:])
        op = OPERATORS.get(self.operator).factory.from_arrays(arrays, meas_shape=meas_shape, **self.options)
        if not self.batched:
            self._shared = op
        return op

    @functools.cached_property
    def x_shape(self) -> tuple[int, ...]:
        """Shape (C, H, W) of one reconstruction (C frames, bands or image channels); computed
        once, through the operator's adjoint."""
        y = torch.from_numpy(np.ascontiguousarray(self.meas[:1]))
        return tuple(self.operator_for(0, 1).A_adjoint(y).shape[1:])

    @property
    def frames(self) -> int:
        """Channels C of one reconstruction (frames B for video SCI)."""
        return self.x_shape[0]


def role_key(path: Path, role: str, aliases: tuple[str, ...] = ()) -> str | None:
    """The array in a .mat/.npz container that holds ``role`` by the field's names (or the
    operator's ``aliases``, or the role's own name), if any."""
    if path.suffix.lower() not in CONTAINERS:
        return None
    keys = list_keys(path)
    names = (*ROLE_NAMES.get(role, (role,)), *aliases)
    for name in names:
        if name in keys:
            return name
    lower = {k.lower(): k for k in keys}
    for name in names:
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


def meas_peak(meas: np.ndarray, mask_energy: np.ndarray, quantile: float = 1.0) -> float:
    """The frames' peak intensity implied by snapshots ``meas`` (K, H, W) and ``sum_t M_t``
    (…, H, W): the largest (or the ``quantile``) of ``y / sum_t M_t`` over open pixels."""
    open_ = mask_energy > 0
    ratio = np.where(open_, meas / np.where(open_, mask_energy, 1.0), 0.0)
    if not ratio.size:
        return 0.0
    return float(ratio.max() if quantile >= 1.0 else np.quantile(ratio, quantile))


def meas_scale(meas: np.ndarray, mask_energy: np.ndarray) -> float:
    """The intensity scale implied by snapshots ``meas`` (K, H, W) and ``sum_t M_t`` (…, H, W)."""
    q = meas_peak(meas, mask_energy)
    return next((s for s in SCALES if q <= 1.5 * s), SCALES[-1])


def check_meas_scale(peak: float, scale: float, label: str) -> None:
    """A ``--max-value`` far below the frames' peak that the measurements imply is an error:
    the solvers would work on frames :data:`OVERSHOOT` or more times brighter than 1."""
    if peak > OVERSHOOT * scale:
        raise DataError(f"{label}: the measurements imply frames up to {peak:.3g}, more than {OVERSHOOT:g} x "
                        f"--max-value {scale:g}; pass the frames' peak value with --max-value, or leave it out")


def orig_scale(orig: np.ndarray) -> float:
    """The intensity scale of a video: uint8 -> 255, else the smallest scale holding its max."""
    if orig.dtype == np.uint8:
        return 255.0
    top = float(orig.max()) if orig.size else 0.0
    if top <= (2.0 if orig.dtype.kind == "f" else 1.0):
        return 1.0
    return next((s for s in SCALES[1:] if top <= s), SCALES[-1])


def given_scale(max_value: float | None) -> float | None:
    """``--max-value``: None (automatic) or a finite number > 0; anything else is a UsageError
    (NaN gives all-NaN output, 0 or a negative value a zero or inverted one)."""
    if max_value is None:
        return None
    value = float(max_value)
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"--max-value must be a finite number > 0, got {max_value}")
    return value


OVERSHOOT = 4.0
"""Images may exceed their intensity scale (a reconstruction's overshoot), but not by more than
this factor: beyond it ``--max-value`` is taken to be wrong, not the data."""


def to_unit(values: np.ndarray, scale: float, label: str, dtype: Any = None, images: bool = True) -> np.ndarray:
    """``values / scale`` (cast to ``dtype`` if given): data brought to the [0, 1] scale scicli
    works on. A :class:`DataError` naming the file, never an array passed on to a solver or a
    metric, when that overflows, or for images (``images``; measurements are sums of frames and
    may exceed 1) when a value exceeds :data:`OVERSHOOT` times the scale: a ``--max-value`` far
    below the data's peak would otherwise be clipped to a plausible-looking score."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = values / scale
        if dtype is not None:
            out = out.astype(dtype)
    finite = bool(np.isfinite(out).all())
    top = float(np.abs(values).max()) if values.size and (images or not finite) else 0.0
    if not finite:
        raise DataError(f"{label}: dividing by the intensity scale {scale:g} (--max-value) overflows "
                        f"{np.dtype(out.dtype).name} (largest |value| {top:.3g}); pass the data's peak value "
                        "with --max-value")
    if images and top > OVERSHOOT * scale:
        raise DataError(f"{label}: values up to {top:.3g}, more than {OVERSHOOT:g} x the intensity scale "
                        f"{scale:g} (--max-value); pass the data's peak value with --max-value")
    return out


NEGATIVE_SHARE = 0.01
"""Negative measurements count as significant above this share of the total |y|."""


def warn_negative(meas: np.ndarray, label: str) -> None:
    """Warn (once per file) when measurements that should be intensities have a significant
    negative part (a wrong offset or sign, or a differenced / dark-subtracted file)."""
    if np.iscomplexobj(meas) or meas.dtype.kind == "u" or not meas.size:
        return
    values = meas.astype(np.float64, copy=False)
    total = float(np.abs(values).sum())
    negative = float(-values[values < 0].sum())
    if total > 0 and negative > NEGATIVE_SHARE * total:
        warnings.warn(f"{label}: {100 * negative / total:.1f}% of the measurement signal is negative "
                      f"(min {values.min():.3g}); intensities should be >= 0: check the file's offset or sign",
                      RuntimeWarning, stacklevel=2)


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
    orig_array: np.ndarray | None = None,
) -> Problem:
    """Read measurements, masks and (optionally) ground truth, check they fit, normalise.

    Mask and ground truth default to the arrays of the same name inside a .mat/.npz
    measurement file (the benchmark files carry all three); ``orig_array`` is a ground truth
    already in memory (instead of ``orig_path``).
    """
    meas_path = Path(meas_path)
    max_value = given_scale(max_value)
    info: dict[str, Any] = {}
    meas = read_array(meas_path, key=meas_key, role="meas")
    info["meas"] = _source(meas_path, meas_key or role_key(meas_path, "meas"), meas)
    warn_negative(meas, info["meas"]["label"])

    if mask_path is None:
        mask_key = mask_key or role_key(meas_path, "mask")
        if mask_key is None:
            raise UsageError(f"{meas_path}: no mask given and none inside the file; pass --mask FILE")
        mask_path = meas_path
    mask_path = Path(mask_path)
    mask = read_array(mask_path, key=mask_key, role="mask")
    info["mask"] = _source(mask_path, mask_key or role_key(mask_path, "mask"), mask)

    orig = _ground_truth(meas_path, orig_path, orig_key, orig_array, info)
    return video_problem(meas, mask, orig, info, layout=layout, max_value=max_value, select=select)


def _ground_truth(meas_path: Path, orig_path: Path | None, orig_key: str | None, orig_array: np.ndarray | None,
                  info: dict[str, Any]) -> np.ndarray | None:
    """The ground truth of a problem read from files: ``orig_array`` (in memory), the file
    ``orig_path``, or the ``orig`` array inside the measurement file; None without one.
    Records where it came from in ``info['orig']``."""
    if orig_array is not None:
        if orig_path is not None:
            raise UsageError(f"give the ground truth as a file ({orig_path}) or as an array, not both")
        orig = np.asarray(orig_array)
        info["orig"] = {"file": None, "key": None, "shape": list(orig.shape), "dtype": str(orig.dtype),
                        "label": "orig"}
        return orig
    if orig_path is None and (orig_key or role_key(meas_path, "orig")):
        orig_path, orig_key = meas_path, orig_key or role_key(meas_path, "orig")
    if orig_path is None:
        return None
    orig_path = Path(orig_path)
    orig = read_array(orig_path, key=orig_key, role="orig")
    info["orig"] = _source(orig_path, orig_key or role_key(orig_path, "orig"), orig)
    return orig


def video_problem(meas: np.ndarray, mask: np.ndarray, orig: np.ndarray | None, info: dict[str, Any], *,
                  layout: str = "auto", max_value: float | None = None, select: str | None = None) -> Problem:
    """A video SCI problem from arrays already read (``info`` labels them: ``info['meas']['label']``,
    ...): layouts resolved, masks scaled, measurements selected and brought to [0, 1] by the
    rules of the module docstring. :func:`load_problem` and the Python API share it."""
    max_value = given_scale(max_value)
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
    if max_value:
        scale_y = float(max_value)
        check_meas_scale(meas_peak(meas_f.astype(np.float64), mask_f.sum(axis=-3), 0.999), scale_y, meas_label)
    else:
        scale_y = meas_scale(meas_f.astype(np.float64), mask_f.sum(axis=-3))
    meas_f = to_unit(meas_f, scale_y, meas_label, np.float32, images=False)

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
        orig_f = to_unit(orig_f[idx], scale_x, orig_label, np.float32)
        info["orig_max_value"] = scale_x

    info.update(
        max_value=scale_y,
        max_value_rule="given" if max_value else "auto",
        measurements=idx,
        frames=B,
        size=list(hw),
    )
    mask_f = np.ascontiguousarray(mask_f)
    return Problem(meas=np.ascontiguousarray(meas_f), arrays={"mask": mask_f},
                   orig=None if orig_f is None else np.ascontiguousarray(orig_f), info=info,
                   batched=("mask",) if mask_f.ndim == 4 else ())


def _source(path: Path, key: str | None, arr: np.ndarray) -> dict[str, Any]:
    label = f"{path}[{key}]" if key and path.suffix.lower() in CONTAINERS else str(path)
    return {"file": str(path), "key": key, "shape": list(arr.shape), "dtype": str(arr.dtype), "label": label}


# ----------------------------------------------------------------------------- any operator
OPERATOR_KEY = "operator"
"""The entry of a ``.npz`` written by ``scicli simulate`` that names its operator; its scalar
options are stored as ``option_<name>`` entries."""


SETTING_BYTES = 1 << 16
"""The largest stored operator name or setting (a few bytes in a simulate ``.npz``)."""


def _container_entries(path: Path) -> tuple[str | None, dict[str, Any]]:
    """The operator name and options stored in a simulate ``.npz`` (None when absent)."""
    if path.suffix.lower() != ".npz" or OPERATOR_KEY not in list_keys(path):  # list_keys: regular files only
        return None, {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            small = [i.filename for i in npz.zip.infolist() if i.file_size > SETTING_BYTES]
            if any(name.removesuffix(".npy") == OPERATOR_KEY or name.startswith("option_") for name in small):
                raise DataError(f"cannot read {path}: its operator settings are implausibly large")
            name = str(npz[OPERATOR_KEY])
            options = {k[len("option_"):]: npz[k].item() for k in npz.files if k.startswith("option_")}
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    return name, options


def infer_operator(meas_path: Path, mask_path: Path | None = None) -> str:
    """The operator of a measurement file: the ``operator`` entry of a simulate ``.npz``, else
    the one whose role arrays the file (or ``--mask``) holds, else ``video-sci``."""
    named, _ = _container_entries(Path(meas_path))
    if named is not None:
        return OPERATORS.get(named).name
    keys = {k.lower() for p in (meas_path, mask_path) if p is not None for k in _keys(Path(p))}
    for entry in OPERATORS.entries():
        cls = entry.factory
        if cls.name != "video-sci" and cls.recognise(keys):
            return cls.name
    return "video-sci"


def _keys(path: Path) -> list[str]:
    return list_keys(path) if path.suffix.lower() in CONTAINERS else []


def load_operator_problem(
    meas_path: Path,
    operator: str,
    mask_path: Path | None = None,
    orig_path: Path | None = None,
    *,
    meas_key: str | None = None,
    mask_key: str | None = None,
    orig_key: str | None = None,
    max_value: float | None = None,
    select: str | None = None,
    options: dict[str, Any] | None = None,
    orig_array: np.ndarray | None = None,
) -> Problem:
    """Read a problem for any registered operator (measurements first, K leading).

    The first role (``--mask``) comes from ``mask_path`` or from inside the measurement file;
    further roles from the same container as the first, else the measurement file. A
    measurement array with one axis fewer than the operator's measurements is one measurement.
    The intensity scale is ``max_value``, else the first of 1, 255, 4095, 65535 holding the
    99.9th percentile of ``|A^+ y|`` within a factor 1.5 (the rule of video SCI, on the
    minimum-norm estimate; a percentile, since pixels the operator barely sees blow ``A^+ y`` up).
    """
    cls = OPERATORS.get(operator).factory
    meas_path = Path(meas_path)
    max_value = given_scale(max_value)
    _, stored = _container_entries(meas_path)
    opts = operator_options(cls, {**stored, **(options or {})})
    info: dict[str, Any] = {"operator": cls.name}
    meas_key = meas_key or role_key(meas_path, "meas", cls.role_aliases.get("meas", ()))
    meas = read_array(meas_path, key=meas_key, role="meas")
    info["meas"] = _source(meas_path, meas_key, meas)
    if cls.nonnegative_meas:
        warn_negative(meas, info["meas"]["label"])
    roles = list(cls.roles)
    arrays: dict[str, np.ndarray] = {}
    for i, role in enumerate(roles + list(cls.optional_roles)):
        first = i == 0
        sources = ([Path(mask_path)] if (first and mask_path is not None) else
                   [Path(p) for p in dict.fromkeys(q for q in (mask_path, meas_path) if q is not None)])
        found = None
        for src in sources:
            key = mask_key if (first and mask_key) else role_key(src, role, cls.role_aliases.get(role, ()))
            if key is None and first and src.suffix.lower() not in CONTAINERS:
                found = (src, None)
            elif key is not None:
                found = (src, key)
            if found:
                break
        if found is None:
            if role in cls.optional_roles:
                continue
            hint = "pass --mask FILE" if first else f"put a '{role}' array in {sources[0]}"
            raise UsageError(f"{meas_path}: operator '{cls.name}' needs its {role} ({cls.roles[role]}); {hint}")
        src, key = found
        arr = read_array(src, key=key, role=role if (key is None and role in ROLE_NAMES) else None)
        info[role] = _source(src, key, arr)
        arrays[role] = arr
    orig = _ground_truth(meas_path, orig_path, orig_key, orig_array, info)
    return operator_problem(cls.name, meas, arrays, orig, info, options=opts, max_value=max_value, select=select)


def operator_problem(operator: str, meas: np.ndarray, arrays: dict[str, np.ndarray], orig: np.ndarray | None,
                     info: dict[str, Any], *, options: dict[str, Any] | None = None, max_value: float | None = None,
                     select: str | None = None) -> Problem:
    """A problem of any registered operator from arrays already read (``info`` labels them, as
    :func:`load_operator_problem` does): shapes checked, measurements selected and scaled to
    [0, 1] (rule in :func:`load_operator_problem`). The Python API shares it."""
    cls = OPERATORS.get(operator).factory
    max_value = given_scale(max_value)
    opts = operator_options(cls, dict(options or {}))
    info = {"operator": cls.name, **info}
    single_ndim = cls.meas_ndim
    if meas.ndim == single_ndim:
        meas = meas[None]
    elif meas.ndim != single_ndim + 1:
        raise UsageError(f"{info['meas']['label']}: {cls.name} measurements must be {single_ndim}-D "
                         f"(one) or {single_ndim + 1}-D (K first), got shape {meas.shape}")
    K = meas.shape[0]
    if "mask" in arrays:
        arrays["mask"] = mask_values(arrays["mask"], info["mask"]["label"])
    batched = tuple(r for r, a in arrays.items() if cls.role_ndim.get(r) is not None
                    and a.ndim == cls.role_ndim[r] + 1)
    for r in batched:
        if arrays[r].shape[0] != K:
            raise UsageError(f"{info[r]['label']}: {arrays[r].shape[0]} {r} arrays for {K} measurements")
    idx = parse_selection(select, K)
    meas = meas[idx]
    arrays = {r: (a[idx] if r in batched else a) for r, a in arrays.items()}
    meas = meas.astype(np.complex64 if np.iscomplexobj(meas) else np.float32)
    problem = Problem(meas=meas, arrays=arrays, orig=None, info=info, operator=cls.name, options=opts,
                      batched=batched)
    op = problem.operator_for()  # checks that the arrays and measurements fit (one-line errors)
    scale = float(max_value) if max_value else None
    if scale is None or cls.x_has_peak:  # the peak the measurements imply: chooses or checks the scale
        with torch.no_grad():  # a high quantile, not the max: pixels the operator barely sees blow up A^+ y
            est = op.A_dagger(torch.from_numpy(meas)).abs().flatten().float()
            q = float(torch.quantile(est[:: max(1, est.numel() // 1_000_000)], 0.999))
        if scale is None:
            scale = next((s for s in SCALES if q <= 1.5 * s), SCALES[-1])
        else:
            check_meas_scale(q, scale, info["meas"]["label"])
    problem.meas = to_unit(meas, scale, info["meas"]["label"], meas.dtype, images=False)
    if orig is not None:
        problem.orig = _operator_orig(orig, info, problem, idx, K, max_value)
    info.update(max_value=scale, max_value_rule="given" if max_value else "auto", measurements=idx,
                channels=problem.x_shape[0], size=list(problem.x_shape[1:]), options=opts)
    return problem


def operator_options(cls: type[LinearOperator], given: dict[str, Any], factory: str = "from_arrays") -> dict[str, Any]:
    """Operator settings (``--operator-param``, or stored by simulate) checked against the keyword
    options of ``cls.from_arrays`` (or ``cls.random``) and converted to the type of their defaults."""
    params = cls.settings(factory)
    out: dict[str, Any] = {}
    for name, value in given.items():
        if name not in params:
            known = ", ".join(params) or "none"
            what = " for random instances" if factory == "random" else ""
            raise UsageError(f"operator '{cls.name}' has no setting '{name}'{what} (its settings: {known})")
        default = params[name].default
        kind = type(default) if default not in (None, inspect.Parameter.empty) else str
        if kind is str and not isinstance(value, str):
            kind = type(value)
        out[name] = coerce(name, value, kind)
    return out


def _operator_orig(orig: np.ndarray, info: dict[str, Any], problem: Problem, idx: list[int],
                   K: int, max_value: float | None) -> np.ndarray:
    """Ground truth (K, C, H, W) for the selected measurements, on [0, 1]."""
    label = info["orig"]["label"]
    C, H, W = problem.x_shape
    if orig.shape[-2:] != (H, W):
        raise UsageError(f"{label}: images are {orig.shape[-2]}x{orig.shape[-1]}, the measurements are of {H}x{W}")
    if orig.ndim == 2:
        orig = orig[None, None]
    elif orig.ndim == 3:
        orig = orig.reshape(-1, C, H, W) if orig.shape[0] % C == 0 else orig
    if orig.ndim != 4 or orig.shape[1:] != (C, H, W) or orig.shape[0] < K:
        raise UsageError(f"{label}: shape {orig.shape} does not hold {K} x {C} images of {H}x{W}")
    scale = float(max_value) if max_value else orig_scale(np.abs(orig) if np.iscomplexobj(orig) else orig)
    info["orig_max_value"] = scale
    out = to_unit(orig[:K][idx], scale, label, np.complex64 if np.iscomplexobj(orig) else np.float32,
                  images=OPERATORS.get(problem.operator).factory.x_has_peak)
    return np.ascontiguousarray(out)


def operator_arrays(path: Path, operator: str) -> dict[str, np.ndarray]:
    """The role arrays of ``operator`` that file ``path`` holds (training on a fixed instance,
    ``scicli train --mask FILE``): every role found by its names in a ``.mat``/``.npz`` (the first
    role also as the file's only array, or as a plain array file); a mask scaled as for
    reconstruction. Without the first role it is a one-line UsageError; the operator's
    :meth:`~scicli.physics.LinearOperator.for_images` checks the rest."""
    cls = OPERATORS.get(operator).factory
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    for i, role in enumerate([*cls.roles, *cls.optional_roles]):
        key = role_key(path, role, cls.role_aliases.get(role, ()))
        if key is None and i == 0 and (path.suffix.lower() not in CONTAINERS or len(_keys(path)) == 1):
            arrays[role] = read_array(path, None, role if role in ROLE_NAMES else None)
        elif key is not None:
            arrays[role] = read_array(path, key)
    first = next(iter(cls.roles))
    if first not in arrays:
        raise UsageError(f"--mask {path}: no {first} array ({cls.roles[first]}) for operator '{cls.name}' in it")
    if "mask" in arrays:
        arrays["mask"] = mask_values(arrays["mask"], str(path))
    return arrays
