"""``video-sci``: the video snapshot compressive imaging (CACTI) forward operator.

A coded-aperture camera modulates B frames ``x_t`` by masks ``M_t`` and sums them:

    A x = sum_t M_t * x_t                      (N, B, H, W) -> (N, H, W)
    A^T y = (M_1 * y, ..., M_B * y)           (N, H, W)    -> (N, B, H, W)
    A A^T = diag(R),  R = sum_t M_t^2

Because ``A A^T`` is diagonal, the Euclidean projection onto ``{x : A x = y}`` and the
proximal map of ``||A x - y||^2`` are closed-form. Pixels where ``R == 0`` (no mask is open)
carry no information; ``R`` is set to 1 there so the divisions stay finite.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from scicli.core.errors import UsageError
from scicli.physics.base import DiagonalGramOperator, mask_stack, register_operator
from scicli.physics.masks import make_mask


@register_operator("video-sci", summary="video snapshot compressive imaging (CACTI): y = sum_t M_t x_t",
                   aliases=("cacti",))
class VideoSCI(DiagonalGramOperator):
    """Video-SCI operator for masks of shape (B, H, W) shared by all measurements, or
    (N, B, H, W), one mask set per measurement.

    Being an ``nn.Module`` with buffers, ``op.to(device, dtype)`` moves the masks.
    """

    roles = {"mask": "coded-aperture masks M_t, (B, H, W) or (K, B, H, W)"}

    def __init__(self, mask: Tensor) -> None:
        super().__init__()
        mask = mask_stack(mask, 3, "mask must be (B, H, W) or (N, B, H, W), got {shape}")
        self.register_buffer("mask", mask)
        self.set_gram_diagonal((mask * mask).sum(dim=1))  # R = sum_t M_t^2

    @property
    def frames(self) -> int:
        """Number of coded frames B in one snapshot."""
        return self.mask.shape[1]

    def signature(self) -> dict[str, Any]:
        """Learned weights fit one number B of frames per snapshot."""
        return {"frames": self.frames}

    def A(self, x: Tensor) -> Tensor:
        """Snapshot ``y = sum_t M_t * x_t``: (N, B, H, W) -> (N, H, W)."""
        return (self.mask * x).sum(dim=1)

    def A_adjoint(self, y: Tensor) -> Tensor:
        """Back-projection ``A^T y = (M_t * y)_t``: (N, H, W) -> (N, B, H, W)."""
        return self.mask * y.unsqueeze(1)

    # -- files, training, tests ---------------------------------------------------------
    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, meas_shape: tuple[int, ...] | None = None,
                    **options: Any) -> "VideoSCI":
        if options:
            raise UsageError(f"video-sci takes no options (got {', '.join(options)})")
        mask = arrays.get("mask")
        if mask is None:
            raise UsageError("video-sci needs a mask (B, H, W)")
        return cls(torch.from_numpy(np.ascontiguousarray(mask)))

    def arrays(self) -> dict[str, np.ndarray]:
        mask = self.mask[0] if self.mask.shape[0] == 1 else self.mask
        return {"mask": mask.detach().cpu().numpy()}

    @classmethod
    def random(cls, shape: tuple[int, ...], *, rng: np.random.Generator, kind: str = "random",
               density: float = 0.5, **options: Any) -> "VideoSCI":
        if options:
            raise UsageError(f"video-sci: unknown option(s) {', '.join(options)}")
        B, H, W = shape
        return cls(torch.from_numpy(make_mask(kind, B, H, W, density=density, rng=rng)).float())

    @classmethod
    def example(cls, *, rng: np.random.Generator, dtype: torch.dtype = torch.float64) -> "VideoSCI":
        mask = rng.random((2, 3, 5, 4))  # per-measurement gray masks, one dead pixel
        mask[:, :, 0, 0] = 0
        return cls(torch.from_numpy(mask).to(dtype))

    def example_input(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        n = self.mask.shape[0] if self.mask.shape[0] > 1 else n
        return torch.randn((n, *self.mask.shape[1:]), generator=generator, dtype=self.mask.dtype).to(self.mask.device)

