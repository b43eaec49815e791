"""The denoiser interface: ``D(x, sigma)`` on (N, B, H, W) tensors, one batched call.

Complex images are denoised as two real channels: ``D(x) = D(Re x) + i D(Im x)``
(``torch.view_as_real`` and back), in the same batched call.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn


def complex_channels(denoise: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``denoise`` (real (..., H, W) -> (..., H, W)) applied to the real and imaginary parts of a
    complex ``x`` as two extra channels, one call; a real ``x`` goes straight through."""
    if not x.is_complex():
        return denoise(x)
    parts = torch.view_as_real(x).movedim(-1, -3).contiguous()  # (..., 2, H, W)
    return torch.view_as_complex(denoise(parts).movedim(-3, -1).contiguous())


class Denoiser:
    """A denoiser for frames on [0, 1]; ``sigma`` is the noise level in [0, 1] units.

    Subclasses implement :meth:`denoise_frames` on (M, 1, H, W) and may hold a network;
    :meth:`to` moves it. All frames of all measurements go through one forward pass.
    """

    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float32

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "Denoiser":
        """Move to ``device``; a complex ``dtype`` (that of k-space data) means its real
        counterpart, since complex images are denoised as real channels."""
        self.device = torch.device(device)
        if dtype is not None:
            self.dtype = dtype.to_real() if dtype.is_complex else dtype
        return self

    def denoise_frames(self, x: Tensor, sigma: float) -> Tensor:
        raise NotImplementedError

    def __call__(self, x: Tensor, sigma: float) -> Tensor:
        if x.is_complex():
            return complex_channels(lambda t: self(t, sigma), x)
        lead = x.shape[:-2]
        frames = x.reshape(-1, 1, *x.shape[-2:])
        return self.denoise_frames(frames, sigma).reshape(*lead, *x.shape[-2:])


class NetDenoiser(Denoiser):
    """A denoiser backed by a frozen network ``net(x, sigma)``: channels-last, no gradients,
    run on the denoiser's device and dtype; ``clip`` clamps the output to [0, 1]."""

    def __init__(self, net: nn.Module, clip: bool = False) -> None:
        self.net = net.requires_grad_(False)
        self.clip = clip
        self.net.to(memory_format=torch.channels_last)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "NetDenoiser":
        super().to(device, dtype)
        self.net.to(device=self.device, dtype=self.dtype)
        return self

    def run(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """``net(x, sigma)`` computed on the denoiser's device/dtype, returned like ``x``."""
        inp = x.to(device=self.device, dtype=self.dtype).contiguous(memory_format=torch.channels_last)
        return self.net(inp, sigma).to(device=x.device, dtype=x.dtype).contiguous()

    def finish(self, out: Tensor) -> Tensor:
        return out.clamp_(0, 1) if self.clip else out

    @torch.no_grad()
    def denoise_frames(self, x: Tensor, sigma: float) -> Tensor:
        return self.finish(self.run(x, sigma))
