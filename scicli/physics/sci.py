"""The video-SCI (CACTI) forward operator.

A coded-aperture camera modulates B frames ``x_t`` by masks ``M_t`` and sums them:

    A x = sum_t M_t * x_t                      (N, B, H, W) -> (N, H, W)
    A^T y = (M_1 * y, ..., M_B * y)           (N, H, W)    -> (N, B, H, W)
    A A^T = diag(R),  R = sum_t M_t^2

Because ``A A^T`` is diagonal, the Euclidean projection onto ``{x : A x = y}`` and the
proximal map of ``||A x - y||^2`` are closed-form (:meth:`VideoSCI.project`,
:meth:`VideoSCI.prox_l2`). Pixels where ``R == 0`` (no mask is open) carry no information;
``R`` is set to 1 there so the divisions stay finite.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class VideoSCI(nn.Module):
    """Video-SCI operator for masks of shape (B, H, W) shared by all measurements, or
    (N, B, H, W), one mask set per measurement.

    Being an ``nn.Module`` with buffers, ``op.to(device, dtype)`` moves the masks.
    """

    def __init__(self, mask: Tensor) -> None:
        super().__init__()
        if mask.ndim == 3:
            mask = mask.unsqueeze(0)
        if mask.ndim != 4:
            raise ValueError(f"mask must be (B, H, W) or (N, B, H, W), got {tuple(mask.shape)}")
        if not torch.is_floating_point(mask):
            mask = mask.float()
        mask = mask.contiguous()  # strided views (from frames-last files) slow every product
        energy = (mask * mask).sum(dim=1)
        self.register_buffer("mask", mask)
        self.register_buffer("energy", energy)  # sum_t M_t^2, unguarded
        self.register_buffer("R", torch.where(energy == 0, torch.ones_like(energy), energy))

    @property
    def frames(self) -> int:
        """Number of coded frames B in one snapshot."""
        return self.mask.shape[1]

    def A(self, x: Tensor) -> Tensor:
        """Snapshot ``y = sum_t M_t * x_t``: (N, B, H, W) -> (N, H, W)."""
        return (self.mask * x).sum(dim=1)

    def A_adjoint(self, y: Tensor) -> Tensor:
        """Back-projection ``A^T y = (M_t * y)_t``: (N, H, W) -> (N, B, H, W)."""
        return self.mask * y.unsqueeze(1)

    def A_dagger(self, y: Tensor) -> Tensor:
        """Minimum-norm solution ``A^T (y / R)`` of ``A x = y``."""
        return self.A_adjoint(y / self.R)

    def project(self, v: Tensor, y: Tensor, step: float = 1.0) -> Tensor:
        """Euclidean projection onto ``{x : A x = y}``: ``v + A^T((y - A v) / R)``.

        ``step`` scales the correction (1 gives the exact projection).
        """
        return v + step * self.A_adjoint((y - self.A(v)) / self.R)

    def prox_l2(self, z: Tensor, y: Tensor, gamma: float) -> Tensor:
        """``argmin_x ||A x - y||^2 / 2 + gamma/2 ||x - z||^2 = z + A^T((y - A z) / (R + gamma))``.

        This is the Woodbury form of ``(A^T A + gamma I)^{-1} (A^T y + gamma z)``; the zero-sum
        guard does not apply here since ``gamma > 0`` keeps the division finite.
        """
        return z + self.A_adjoint((y - self.A(z)) / (self.energy + gamma))

    def norm(self) -> float:
        """Spectral norm squared ``||A^T A|| = max R`` (Lipschitz constant of the data term)."""
        return float(self.energy.max())


def adjointness_error(op: VideoSCI, n: int, *, generator: torch.Generator | None = None) -> float:
    """Relative adjointness error ``|<A u, v> - <u, A^T v>| / (|<A u, v>| + eps)`` on random u, v."""
    _, B, H, W = op.mask.shape
    dtype, device = op.mask.dtype, op.mask.device
    u = torch.randn(n, B, H, W, generator=generator, dtype=dtype).to(device)
    v = torch.randn(n, H, W, generator=generator, dtype=dtype).to(device)
    lhs = (op.A(u) * v).sum()
    rhs = (u * op.A_adjoint(v)).sum()
    return float((lhs - rhs).abs() / (lhs.abs() + torch.finfo(dtype).eps))
