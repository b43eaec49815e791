"""Seeding: derived seeds for reproducible random streams, and RNG states as plain data.

Every random draw of a run comes from a stream seeded by :func:`derive_seed` of the run's seed and
a purpose tag (and a step), so a resumed run or another process draws the same numbers; the global
RNG states are saved in checkpoints as tensors and plain lists (``weights_only`` loads them).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch

__all__ = ["derive_seed", "rng_state", "set_rng_state"]


def derive_seed(*parts: float) -> int:
    """A 64-bit seed from integers (and noise levels, by their milli-units)."""
    entropy = [int(round(p * 1000)) if isinstance(p, float) else int(p) for p in parts]
    return int(np.random.SeedSequence([e & 0xFFFFFFFF for e in entropy]).generate_state(1, np.uint64)[0])


def rng_state() -> dict[str, Any]:
    """torch / numpy / python global RNG states as tensors and plain lists."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                  float(gauss)],
        "python": [int(version), list(internal), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except RuntimeError:  # a different number of GPUs: keep the fresh seeds
            pass
