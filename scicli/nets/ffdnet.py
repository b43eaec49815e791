"""FFDNet (Zhang, Zuo, Zhang 2018), grayscale, the IPOL architecture.

    sub = unshuffle_2x2(x)                    4 sub-images at half resolution
    r   = CNN([sigma map, sub])               15 3x3 convs: conv-ReLU, 13 x conv-BN-ReLU, conv
    D(x, sigma) = x - shuffle_2x2(r)          the network predicts the noise

Odd heights and widths are padded by replicating the last row / column and cropped back.
``fuse()`` folds every BatchNorm into the preceding convolution for inference. Without autograd
on the CPU, each convolution + ReLU pair then runs as one oneDNN call (the ReLU as the
convolution's post-op: no second pass over the 64-channel activations; same numbers), where
this torch build has that operator (``torch.ops.mkldnn._convolution_pointwise``); otherwise, and
whenever gradients are recorded, the layers run one by one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv_relu_operator():  # noqa: ANN202
    """oneDNN's convolution with a fused pointwise post-op, or None where this torch lacks it."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return torch.ops.mkldnn._convolution_pointwise
    except (AttributeError, RuntimeError):
        return None


CONV_RELU = _conv_relu_operator()


class FFDNet(nn.Module):
    def __init__(self, channels: int = 64, depth: int = 15) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(5, channels, 3, padding=1, bias=False), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(channels, 4, 3, padding=1, bias=False))
        self.body = nn.Sequential(*layers)

    def forward(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """Denoise (M, 1, H, W) images with noise level ``sigma`` (scalar or (M,), [0, 1] units)."""
        M, _, H, W = x.shape
        ph, pw = H % 2, W % 2
        xp = F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x
        sub = F.pixel_unshuffle(xp, 2)
        sig = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
        noise_map = sig.expand(M, 1, sub.shape[-2], sub.shape[-1])
        residual = F.pixel_shuffle(self.run_body(torch.cat([noise_map, sub], dim=1)), 2)
        return (xp - residual)[..., :H, :W]

    def run_body(self, z: Tensor) -> Tensor:
        """``self.body(z)``; without autograd on the CPU (float32), every convolution followed by a
        ReLU is one fused oneDNN call on channels-last data."""
        if (CONV_RELU is None or torch.is_grad_enabled() or z.device.type != "cpu" or z.dtype != torch.float32
                or self.training):
            return self.body(z)
        layers = list(self.body)
        z = z.contiguous(memory_format=torch.channels_last)
        i = 0
        while i < len(layers):
            layer = layers[i]
            if (isinstance(layer, nn.Conv2d) and i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
                    and layer.padding == (1, 1) and layer.stride == (1, 1) and layer.groups == 1):
                z = CONV_RELU(z, layer.weight, layer.bias, [1, 1], [1, 1], [1, 1], 1, "relu", [None], "")
                i += 2
            else:
                z = layer(z)
                i += 1
        return z

    def load_ipol(self, state: dict[str, Tensor]) -> "FFDNet":
        """Load the original IPOL weights (keys ``module.intermediate_dncnn.itermediate_dncnn.N.*``)."""
        prefix = "module.intermediate_dncnn.itermediate_dncnn."
        mapped = {}
        for key, value in state.items():
            if not key.startswith(prefix):
                raise KeyError(key)
            mapped["body." + key[len(prefix):]] = value
        missing, unexpected = self.load_state_dict(mapped, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise KeyError(f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        return self

    @torch.no_grad()
    def fuse(self) -> "FFDNet":
        """Fold BatchNorm (eval statistics) into the convolutions: conv(x) * s + b."""
        fused: list[nn.Module] = []
        mods = list(self.body)
        i = 0
        while i < len(mods):
            m = mods[i]
            if isinstance(m, nn.Conv2d) and i + 1 < len(mods) and isinstance(mods[i + 1], nn.BatchNorm2d):
                bn = mods[i + 1]
                scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                conv = nn.Conv2d(m.in_channels, m.out_channels, 3, padding=1, bias=True)
                conv.weight.copy_(m.weight * scale.reshape(-1, 1, 1, 1))
                conv.bias.copy_(bn.bias - bn.running_mean * scale)
                fused.append(conv)
                i += 2
            else:
                fused.append(m)
                i += 1
        self.body = nn.Sequential(*fused)
        return self
