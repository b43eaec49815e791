"""Blind estimates of the noise level of an image, for denoisers whose strength follows the iterate."""

from __future__ import annotations

from torch import Tensor

MAD_TO_STD = 0.6745
"""The median of |n| for n ~ N(0, 1): median absolute deviation / 0.6745 estimates a Gaussian's std."""


def noise_level(x: Tensor) -> Tensor:
    """Per-frame noise level of ``x`` (..., H, W): the median absolute diagonal Haar detail
    divided by 0.6745 (Donoho and Johnstone 1994),

        d_ij = (x_{2i,2j} - x_{2i,2j+1} - x_{2i+1,2j} + x_{2i+1,2j+1}) / 2,
        sigma = median_ij |d_ij| / 0.6745,

    an orthonormal high-pass, so white noise of std s gives d of std s, while smooth image
    content gives d close to 0 (edges are few: the median ignores them). A last odd row or
    column is left out. Shape ``x.shape[:-2]``; differentiable almost everywhere."""
    h, w = (x.shape[-2] // 2) * 2, (x.shape[-1] // 2) * 2
    if h == 0 or w == 0:
        raise ValueError(f"noise_level needs frames of at least 2 x 2, got {tuple(x.shape[-2:])}")
    x = x[..., :h, :w]
    d = (x[..., 0::2, 0::2] - x[..., 0::2, 1::2] - x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 2
    return d.abs().flatten(-2).median(dim=-1).values / MAD_TO_STD
