"""DnCNN (Zhang, Zuo, Chen, Meng, Zhang 2017), noise-level conditional, without BatchNorm.

    r = CNN([x, sigma 1])      conv3x3-ReLU, (depth - 2) x conv3x3-ReLU, conv3x3
    D(x, sigma) = x - r        residual learning: the network predicts the noise

``sigma`` (the noise standard deviation on the [0, 1] scale, a scalar or one per image) enters
as a constant extra input channel, so one network serves a whole range of noise levels. No
BatchNorm: training and inference compute the same function and there is nothing to fold.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def noise_map(x: Tensor, sigma: Tensor | float) -> Tensor:
    """The constant (N, 1, H, W) channel ``sigma`` for an (N, C, H, W) batch (scalar or (N,))."""
    sig = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    return sig.expand(x.shape[0], 1, x.shape[-2], x.shape[-1])


def init_relu_net(module: nn.Module, last: nn.Conv2d, last_scale: float = 0.1) -> None:
    """He-normal init for the ReLU layers, zero biases, the output layer scaled by ``last_scale``
    (so that D starts at or near the identity)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    with torch.no_grad():
        last.weight.mul_(last_scale)


class DnCNN(nn.Module):
    """``D(x, sigma) = x - CNN([x, sigma])`` on (N, C, H, W); any H, W (zero-padded 3x3 convs)."""

    method = "dncnn"

    def __init__(self, depth: int = 10, width: int = 32, channels: int = 1) -> None:
        super().__init__()
        if depth < 2 or width < 1 or channels < 1:
            raise ValueError(f"DnCNN needs depth >= 2, width >= 1, channels >= 1 (got {depth}, {width}, {channels})")
        self.config: dict[str, Any] = {"depth": int(depth), "width": int(width), "channels": int(channels)}
        layers: list[nn.Module] = [nn.Conv2d(channels + 1, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True)]
        last = nn.Conv2d(width, channels, 3, padding=1)
        layers.append(last)
        self.body = nn.Sequential(*layers)
        init_relu_net(self, last)

    def forward(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """Denoise (N, C, H, W) images with noise level ``sigma`` ([0, 1] units, scalar or (N,))."""
        return x - self.body(torch.cat([x, noise_map(x, sigma)], dim=1))
