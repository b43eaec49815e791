"""A small noise-level-conditional U-Net denoiser with residual output.

    level 0:      [x, sigma 1] -> conv-ReLU -> conv-ReLU                  = e_0   (c_0 channels)
    level l > 0:  e_{l-1} -> stride-2 conv-ReLU -> conv-ReLU              = e_l   (c_l, H / 2^l)
    decoder:      d_L = e_L;  d_{l} = convs(e_l + up(d_{l+1}))   (2x2 transposed conv, additive skip)
    D(x, sigma) = x - conv(d_0)                                          (predicts the noise)

Inputs of any H, W are padded (edge replication) to a multiple of 2^(L) and cropped back,
with L = len(channels) - 1 down-samplings.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from scicli.nets.dncnn import init_relu_net, noise_map


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True))


class UNetBody(nn.Module):
    """The encoder-decoder shared by the image U-Net and the video fusion:
    ``cin`` input channels -> ``len(channels)`` scales -> ``cout`` output channels.

    :meth:`run` pads (edge replication) to a multiple of 2^(scales - 1) and crops back.
    """

    def __init__(self, cin: int, channels: Sequence[int], cout: int) -> None:
        super().__init__()
        chans = [int(c) for c in channels]
        if not 1 <= len(chans) <= 6 or min(chans) < 1:
            raise ValueError(f"a U-Net needs 1 to 6 scales of >= 1 channels, got {chans}")
        self.multiple = 2 ** (len(chans) - 1)
        self.down = nn.ModuleList([_block(cin, chans[0])])
        self.down.extend(_block(chans[i - 1], chans[i], stride=2) for i in range(1, len(chans)))
        self.up = nn.ModuleList(nn.ConvTranspose2d(chans[i], chans[i - 1], 2, stride=2) for i in range(1, len(chans)))
        self.fuse = nn.ModuleList(_block(chans[i - 1], chans[i - 1]) for i in range(1, len(chans)))
        self.head = nn.Conv2d(chans[0], cout, 3, padding=1)
        init_relu_net(self, self.head, last_scale=0.0)  # the body's output starts at zero

    def pad(self, x: Tensor) -> Tensor:
        H, W = x.shape[-2:]
        ph, pw = (-H) % self.multiple, (-W) % self.multiple
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def run(self, h: Tensor, sigma: Tensor | float | None) -> Tensor:
        """``head(decoder(encoder([h, sigma map])))`` on an already padded ``h``
        (no sigma channel when ``sigma`` is None)."""
        if sigma is not None:
            h = torch.cat([h, noise_map(h, sigma)], dim=1)
        skips = []
        for block in self.down:
            h = block(h)
            skips.append(h)
        for i in range(len(self.up) - 1, -1, -1):
            h = self.fuse[i](skips[i] + self.up[i](h))
        return self.head(h)


class UNet(UNetBody):
    """``D(x, sigma) = x - UNet([x, sigma])`` with ``len(channels)`` scales (default 16/32/64)."""

    method = "unet"

    def __init__(self, channels: Sequence[int] = (16, 32, 64), in_channels: int = 1) -> None:
        if in_channels < 1:
            raise ValueError(f"UNet needs >= 1 input channels, got {in_channels}")
        super().__init__(in_channels + 1, channels, in_channels)  # D = identity at the start
        self.config: dict[str, Any] = {"channels": [int(c) for c in channels], "in_channels": int(in_channels)}

    def forward(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """Denoise (N, C, H, W) images with noise level ``sigma`` ([0, 1] units, scalar or (N,))."""
        H, W = x.shape[-2:]
        xp = self.pad(x)
        return (xp - self.run(xp, sigma))[..., :H, :W]


class JointUNet(nn.Module):
    """``cin`` -> ``cout`` channels at full resolution through a U-Net at half resolution."""

    def __init__(self, cin: int, cout: int, channels: Sequence[int], spectral: bool, centre: bool = False) -> None:
        super().__init__()
        self.centre = bool(centre)
        self.body = UNetBody(4 * cin, channels, 4 * cout)
        self.multiple = 2 * self.body.multiple
        if spectral:
            for m in self.body.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m is not self.body.head:
                    _spectral_norm(m)

    def forward(self, h: Tensor) -> Tensor:
        """``centre``: the input's per-sample mean is removed first (the output is a correction
        that needs no DC; a DC-free input trains several times faster)."""
        if self.centre:
            h = h - h.mean(dim=(1, 2, 3), keepdim=True)
        H, W = h.shape[-2:]
        ph, pw = (-H) % self.multiple, (-W) % self.multiple
        if ph or pw:
            h = F.pad(h, (0, pw, 0, ph), mode="replicate")
        out = F.pixel_shuffle(self.body.run(F.pixel_unshuffle(h, 2), None), 2)
        return out[..., :H, :W]
