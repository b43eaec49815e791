"""unrolled-gap: K steps of the deq-gap map from the same start, trained by ordinary backprop
(GAP-net style, Meng, Yuan, Jalali 2021): :func:`scicli.methods.runners.unroll` of
:class:`scicli.methods.deq_gap.DEQGap`'s map. Its weights and deq-gap's fit each other.
"""

from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor

from scicli.fixedpoint import Info
from scicli.methods.deq_gap import DEQGap
from scicli.methods.learned import register_learned
from scicli.methods.runners import unroll


class UnrolledGap(DEQGap):
    """The deq-gap map run for exactly ``solve['iters']`` steps, recorded for backprop."""

    method = "unrolled-gap"
    unrolled = True

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = False,
                 solve: dict[str, Any] | None = None, **map_options: Any) -> None:
        solve = {"iters": 10, **(solve or {})}
        super().__init__(frames, channels, spectral_norm, solve, **map_options)

    def run(self, f, z0: Tensor, settings: dict[str, Any]) -> tuple[Tensor, Info]:
        return unroll(f, z0, int(settings["iters"]))


register_learned(UnrolledGap, "K unrolled GAP steps with a trained denoiser (GAP-net style, scicli train)")
