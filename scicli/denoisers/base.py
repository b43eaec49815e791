"""The denoiser interface: ``D(x, sigma)`` on (N, B, H, W) tensors, one batched call."""

from __future__ import annotations

import torch
from torch import Tensor


class Denoiser:
    """A denoiser for frames on [0, 1]; ``sigma`` is the noise level in [0, 1] units.

    Subclasses implement :meth:`denoise_frames` on (M, 1, H, W) and may hold a network;
    :meth:`to` moves it. All frames of all measurements go through one forward pass.
    """

    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Denoiser":
        self.device = torch.device(device)
        if dtype is not None:
            self.dtype = dtype
        return self

    def denoise_frames(self, x: Tensor, sigma: float) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor, sigma: float) -> Tensor:
        lead = x.shape[:-2]
        frames = x.reshape(-1, 1, *x.shape[-2:])
        return self.denoise_frames(frames, sigma).reshape(*lead, *x.shape[-2:])
