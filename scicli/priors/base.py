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


class Denoiser(nn.Module):
    """A denoiser ``D(x, sigma)`` for images on [0, 1]; ``sigma`` is the noise level in [0, 1] units.

    An ``nn.Module`` on ``(N, C, *spatial)``: every (H, W) frame of every channel and measurement
    goes through one batched call of :meth:`denoise_frames` on (M, 1, H, W). A network inside is
    frozen by ``requires_grad=False``, not by a ``no_grad`` of its own: the classical loops run
    without autograd anyway, and a learned reconstruction (deq-gap) differentiates through the
    denoiser's input while its weights stay fixed. ``.to(device, dtype)`` moves the network.
    """

    def denoise_frames(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        if x.is_complex():
            return complex_channels(lambda t: self(t, sigma), x)
        lead = x.shape[:-2]
        frames = x.reshape(-1, 1, *x.shape[-2:])
        return self.denoise_frames(frames, sigma).reshape(*lead, *x.shape[-2:])


class NetDenoiser(Denoiser):
    """A denoiser backed by a frozen network ``net(x, sigma)`` (always in eval mode), run
    channels-last in the network's own device and dtype (e.g. fp16 on a GPU while the iterate
    stays fp32); ``clip`` clamps the output to [0, 1]."""

    def __init__(self, net: nn.Module, clip: bool = False) -> None:
        super().__init__()
        self.net = net.requires_grad_(False).eval().to(memory_format=torch.channels_last)
        self.clip = clip

    def train(self, mode: bool = True) -> "NetDenoiser":
        """The network's statistics are frozen: it stays in eval mode."""
        super().train(mode)
        self.net.eval()
        return self

    @property
    def param_like(self) -> Tensor:
        """A parameter of the network: its device and dtype are the denoiser's."""
        return next(self.net.parameters())

    def run(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """``net(x, sigma)`` computed on the network's device/dtype, returned like ``x``."""
        p = self.param_like
        inp = x.to(device=p.device, dtype=p.dtype).contiguous(memory_format=torch.channels_last)
        if isinstance(sigma, Tensor):
            sigma = sigma.to(device=p.device, dtype=p.dtype)
        return self.net(inp, sigma).to(device=x.device, dtype=x.dtype).contiguous()

    def finish(self, out: Tensor) -> Tensor:
        return out.clamp(0, 1) if self.clip else out

    def denoise_frames(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        return self.finish(self.run(x, sigma))
