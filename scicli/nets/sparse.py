"""Building blocks of the sparse-coding unrolled networks (Deep ADMM-Net, ADMM-CSNet; Yang, Sun,
Li, Xu, NIPS 2016 / TPAMI 2018): a learned piecewise-linear shrinkage and banks of learned
filters with their Fourier multipliers.

Piecewise-linear function (one per filter l) on ``N_c`` fixed positions ``p_i`` uniform in
``[-r, r]`` with learned values ``q_{l,i}``, extended with slope 1 outside:

    S(a) = a + q_1 - p_1                                     a < p_1
    S(a) = q_k + (a - p_k) (q_{k+1} - q_k) / (p_{k+1} - p_k)  p_k <= a <= p_{k+1}
    S(a) = a + q_{N_c} - p_{N_c}                             a > p_{N_c}

initialised to soft thresholding ``S(a) = sign(a) max(|a| - theta, 0)`` (exactly, when theta is
a multiple of the spacing ``2 r / (N_c - 1)``).

Filter banks: L filters of k x k applied as *circular* cross-correlations, so that each is
diagonalised by the 2-D DFT: ``F (h_l * x) = H_l(omega) F x`` with ``H_l = fft2(h_l embedded
at the origin)`` (unnormalised, with the unitary F of the operators). The initial filters are
the 2-D DCT-II basis of k x k without its constant member (k^2 - 1 filters: 8 for 3 x 3, as in
Deep ADMM-Net), orthonormal, so the bank is a tight frame on the zero-mean patches.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def soft_threshold(a: Tensor, theta: float | Tensor) -> Tensor:
    """``sign(a) max(|a| - theta, 0)``: the proximal map of ``theta ||.||_1``."""
    return torch.sign(a) * torch.clamp(a.abs() - theta, min=0.0)


def dct_filters(size: int = 3, count: int | None = None) -> Tensor:
    """The orthonormal 2-D DCT-II basis of ``size x size`` without the constant filter, by
    increasing frequency, as (count, size, size) float32 (count default ``size^2 - 1``; more
    than that repeats the basis)."""
    n = torch.arange(size, dtype=torch.float64)
    basis = torch.stack([torch.cos(math.pi * (n + 0.5) * k / size) for k in range(size)])
    basis = basis / torch.linalg.vector_norm(basis, dim=1, keepdim=True)
    order = sorted(((u, v) for u in range(size) for v in range(size) if (u, v) != (0, 0)),
                   key=lambda uv: (uv[0] + uv[1], uv[0]))
    count = len(order) if count is None else int(count)
    filters = [torch.outer(basis[u], basis[v]) for u, v in (order[i % len(order)] for i in range(count))]
    return torch.stack(filters).float()


class PiecewiseLinear(nn.Module):
    """``channels`` learned piecewise-linear functions applied channel-wise to (N, channels, ...).

    Parameters
    ----------
    channels : int
        Number of functions (one per filter).
    points : int
        Control points ``N_c`` (101 in Deep ADMM-Net).
    radius : float
        The positions are uniform in ``[-radius, radius]``.
    threshold : float
        The soft threshold theta the values start from.
    """

    def __init__(self, channels: int, points: int = 101, radius: float = 1.0, threshold: float = 0.1) -> None:
        super().__init__()
        if points < 2:
            raise ValueError(f"points must be >= 2, got {points}")
        self.points, self.radius = int(points), float(radius)
        self.register_buffer("positions", torch.linspace(-self.radius, self.radius, self.points), persistent=False)
        self.values = nn.Parameter(soft_threshold(self.positions, threshold).repeat(int(channels), 1).contiguous())

    @property
    def spacing(self) -> float:
        return 2 * self.radius / (self.points - 1)

    def segments(self) -> tuple[Tensor, Tensor]:
        """Slopes and intercepts (L, N_c + 1) of the N_c + 1 linear pieces: below p_1 (slope 1),
        the N_c - 1 intervals, above p_{N_c} (slope 1); ``S(a) = b_j + s_j a`` on piece j."""
        q, p = self.values, self.positions.to(self.values.dtype)
        inner = (q[:, 1:] - q[:, :-1]) / self.spacing
        ones = torch.ones_like(q[:, :1])
        slope = torch.cat([ones, inner, ones], dim=1)
        knots = torch.cat([p[:1], p[:-1], p[-1:]])  # a point of each piece
        at = torch.cat([q[:, :1], q[:, :-1], q[:, -1:]], dim=1)  # S there
        return slope, at - slope * knots

    def forward(self, a: Tensor) -> Tensor:
        """``S_l(a)`` for channel l = axis 1 of ``a``."""
        L = self.values.shape[0]
        if a.shape[1] != L:
            raise ValueError(f"expected {L} channels, got {a.shape[1]}")
        slope, intercept = (t.to(a.dtype).reshape(-1) for t in self.segments())
        with torch.no_grad():  # the piece of each value: 0 below p_1, j for [p_j, p_{j+1}), N_c above
            j = torch.floor((a - self.positions[0]) / self.spacing).clamp_(-1, self.points - 1).long() + 1
            j += (torch.arange(L, device=a.device) * (self.points + 1)).reshape((1, L) + (1,) * (a.ndim - 2))
        return intercept[j] + slope[j] * a


class FilterBank(nn.Module):
    """L learned k x k filters applied as circular cross-correlations: (N, 1, H, W) -> (N, L, H, W).

    ``forward`` is the bank ``D x``; :meth:`adjoint` is ``D^T c = sum_l h_l^T c_l``;
    :meth:`spectrum` is the (L, H, W) complex Fourier multipliers ``H_l(omega)`` for the unitary
    FFT, so ``F(D x)_l = H_l F x`` and ``F(D^T D x) = sum_l |H_l|^2 F x``."""

    def __init__(self, filters: int = 8, size: int = 3) -> None:
        super().__init__()
        if size % 2 != 1:
            raise ValueError(f"filter size must be odd, got {size}")
        self.size = int(size)
        self.weight = nn.Parameter(dct_filters(self.size, filters))

    @property
    def count(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: Tensor) -> Tensor:
        p = self.size // 2
        return F.conv2d(F.pad(x, (p, p, p, p), mode="circular"), self.weight.to(x.dtype)[:, None])

    def adjoint(self, c: Tensor) -> Tensor:
        """``D^T c = sum_l h_l^T c_l``, (N, L, H, W) -> (N, 1, H, W): the adjoint of a circular
        correlation is the circular correlation with the flipped kernel."""
        p = self.size // 2
        flipped = torch.flip(self.weight.to(c.dtype), dims=(-2, -1))[None]
        return F.conv2d(F.pad(c, (p, p, p, p), mode="circular"), flipped)

    def spectrum(self, height: int, width: int) -> Tensor:
        """``H_l(omega)`` on the H x W DFT grid, (L, H, W) complex: the kernel with its centre at
        [0, 0] (wrapped), transformed by the unnormalised FFT."""
        k, p = self.size, self.size // 2
        if height < k or width < k:
            raise ValueError(f"images of {height}x{width} are smaller than the {k}x{k} filters")
        kernel = torch.zeros(self.count, height, width, dtype=self.weight.dtype, device=self.weight.device)
        kernel = kernel.index_put((torch.arange(self.count, device=kernel.device)[:, None, None],
                                   (torch.arange(k, device=kernel.device) - p)[None, :, None] % height,
                                   (torch.arange(k, device=kernel.device) - p)[None, None, :] % width),
                                  self.weight)
        # correlation: (h * x)[n] = sum_m h[m] x[n + m]  ->  multiplier conj(fft(h)) for real h
        return torch.conj(torch.fft.fft2(kernel))
