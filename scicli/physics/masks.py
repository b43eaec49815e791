"""Coded-aperture masks as CACTI systems make them."""

from __future__ import annotations

import numpy as np

from scicli.core.errors import UsageError

MASK_KINDS = ("random", "shifted")


def make_mask(kind: str, frames: int, height: int, width: int, *, density: float = 0.5,
              rng: np.random.Generator) -> np.ndarray:
    """Binary masks (B, H, W) uint8.

    ``random``: independent Bernoulli(density) patterns per frame (a DMD or LCoS modulator).
    ``shifted``: one Bernoulli pattern translated one pixel to the right per frame, as a
    piezo-moved lithographic mask does (the benchmark's masks are of this kind).
    """
    if not 0 < density <= 1:
        raise UsageError(f"--density must be in (0, 1], got {density}")
    if kind == "random":
        return (rng.random((frames, height, width)) < density).astype(np.uint8)
    if kind == "shifted":
        base = (rng.random((height, width + frames - 1)) < density).astype(np.uint8)
        return np.stack([base[:, frames - 1 - t: frames - 1 - t + width] for t in range(frames)])
    raise UsageError(f"unknown mask kind '{kind}' (use {', '.join(MASK_KINDS)} or a mask file)")
