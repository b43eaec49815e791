"""The denoiser interface: ``D(x, sigma)`` on (N, B, H, W) tensors, one batched call."""

from __future__ import annotations

import torch
from torch import Tensor, nn


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
