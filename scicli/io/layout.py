"""Frame layouts: numpy users keep frames first, MATLAB users keep them last.

    first:  video (F, H, W), mask (B, H, W) or (K, B, H, W), measurements (K, H, W)
    last:   video (H, W, F), mask (H, W, B) or (H, W, B, K), measurements (H, W, K)

A 2-D array is one frame / one measurement in either layout. ``resolve`` finds the layouts
under which several arrays agree on the frame size (H, W). Where two readings fit, the one
whose frame and measurement counts are no larger than the frame's shorter side wins (a
(256, 256, 8) mask and (256, 256, 8) measurements are frames-last, not 256 frames of 256 x 8);
where that still leaves two, the user decides with ``--layout``.
"""

from __future__ import annotations

from itertools import product
from typing import Literal

import numpy as np

from scicli.core.errors import UsageError

Layout = Literal["first", "last"]
LAYOUTS: tuple[str, ...] = ("auto", "first", "last")


def spatial(shape: tuple[int, ...], layout: Layout) -> tuple[int, int]:
    """The frame size (H, W) of an array of ``shape`` read in ``layout``."""
    if len(shape) == 2:
        return (shape[0], shape[1])
    return (shape[-2], shape[-1]) if layout == "first" else (shape[0], shape[1])


def _frame_axes(shape: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
    """Lengths of the non-spatial axes of ``shape`` read in ``layout``."""
    if len(shape) == 2:
        return ()
    return tuple(shape[:-2]) if layout == "first" else tuple(shape[2:])


def to_first(arr: np.ndarray, layout: Layout) -> np.ndarray:
    """Reorder to frames first: 2-D -> (1, H, W); 3-D -> (F, H, W); 4-D -> (K, B, H, W)."""
    if arr.ndim == 2:
        return arr[None]
    if layout == "first":
        return arr
    if arr.ndim == 3:
        return np.moveaxis(arr, -1, 0)
    return np.transpose(arr, (3, 2, 0, 1))


def resolve(
    arrays: dict[str, tuple[tuple[int, ...], str]], layout: str = "auto"
) -> tuple[dict[str, Layout], tuple[int, int]]:
    """Choose a layout per array so that all agree on (H, W).

    ``arrays`` maps a label (e.g. ``"mask.npy"``) to (shape, description). With ``layout``
    'first' or 'last' that layout is imposed on every array; with 'auto' every combination is
    tried and exactly one frame size must fit. Returns ({label: layout}, (H, W)).
    """
    labels = list(arrays)
    if layout not in LAYOUTS:
        raise UsageError(f"--layout must be one of {', '.join(LAYOUTS)}, got '{layout}'")
    choices: list[tuple[Layout, ...]]
    if layout == "auto":
        choices = list(product(("first", "last"), repeat=len(labels)))
    else:
        choices = [tuple([layout] * len(labels))]  # type: ignore[list-item]
    fits: dict[tuple[Layout, ...], tuple[int, int]] = {}
    for combo in choices:
        sizes = {spatial(arrays[lab][0], lay) for lab, lay in zip(labels, combo)}
        if len(sizes) == 1:
            # a 2-D array reads the same in both layouts: count such readings once
            key = tuple("first" if len(arrays[lab][0]) == 2 else lay for lab, lay in zip(labels, combo))
            fits[key] = sizes.pop()
    described = "; ".join(f"{lab} {arrays[lab][1]} {arrays[lab][0]}" for lab in labels)
    if not fits:
        how = "in any layout" if layout == "auto" else f"with frames {layout}"
        raise UsageError(f"shapes do not fit together {how}: {described}")
    if len(fits) > 1:  # prefer readings whose frame axes are no longer than the frame's sides
        plausible = {
            c: hw for c, hw in fits.items()
            if all(n <= min(hw) for lab in labels for n in _frame_axes(arrays[lab][0], c[labels.index(lab)]))
        }
        fits = plausible or fits
    if len(fits) > 1:
        raise UsageError(
            f"cannot tell where the frame axis is: {described}; pass --layout first or --layout last"
        )
    (combo, hw), = fits.items()
    return dict(zip(labels, combo)), hw
