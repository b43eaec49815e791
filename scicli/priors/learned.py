"""Denoisers trained by ``scicli train``: ``dncnn`` and ``unet``, ``D(x, sigma) = x - net([x, sigma])``.

Weights come from a checkpoint (a run's ``best.pt``, a run directory, or any ``.pt`` written by
scicli), read with ``torch.load(weights_only=True)``: the model is rebuilt from the stored
``(method, config)`` and nothing in the file is executed. Without ``weights`` the shipped file
``scicli/weights/<name>.pt`` is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor

from scicli.priors.base import NetDenoiser
from scicli.priors.registry import register
from scicli.weights.store import load_model

class LearnedDenoiser(NetDenoiser):
    """A scicli-trained residual denoiser, all frames in one forward pass, no gradients.

    ``sigma`` is the noise level in [0, 1] units (25/255 ...). No clipping by default (as for
    FFDNet, the PnP iterate may leave [0, 1]).
    """

    name: ClassVar[str] = ""

    def __init__(self, weights: str | Path | None = None, clip: bool = False) -> None:
        super().__init__(load_model(self.name, weights), clip)

    def denoise_frames(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        """Frames whose values span more than 1 (early PnP iterates: A^T y reaches B) are mapped
        to [0, 1] first: ``D(x) = s * D((x - a) / s, sigma / s) + a`` with a = min, s = max - min,
        the affine equivariance a denoiser trained on [0, 1] images lacks by itself."""
        lo = x.amin(dim=(-2, -1), keepdim=True)
        span = x.amax(dim=(-2, -1), keepdim=True) - lo
        wide = span > 1
        a = torch.where(wide, lo, torch.zeros_like(lo))
        s = torch.where(wide, span, torch.ones_like(span))
        sig = sigma / s.reshape(-1)
        return self.finish(self.run((x - a) / s, sig) * s + a)


@register("dncnn", summary="DnCNN, sigma-conditional, trained by `scicli train --method dncnn`; the shipped "
                          "weights (a short CPU run) are an example to train from: in pnp-gap they are 2 to 4 dB "
                          "below ffdnet, use ffdnet for quality", trainable=True)
class DnCNNDenoiser(LearnedDenoiser):
    name = "dncnn"


@register("unet", summary="small U-Net, sigma-conditional, trained by `scicli train --method unet`; the shipped "
                         "weights (a short CPU run) are fast but in pnp-gap below ffdnet and at times below gap-tv: "
                         "an example to train from, not for quality", trainable=True)
class UNetDenoiser(LearnedDenoiser):
    name = "unet"


@register("video", summary="multi-frame: FFDNet per frame + temporal fusion trained by `scicli train --method video`; "
                          "on the held-out split pnp-gap with it is +0.37 dB over plain ffdnet on average (median +0.05, "
                          "below it on 2 of 14 scenes) at 1.55x the time: prefer deq-gap", trainable=True)
class VideoDenoiserWrapper(LearnedDenoiser):
    """``D(x, sigma)`` on (N, B, H, W): each frame denoised with its T-frame window (reflected at
    the snapshot's ends), FFDNet then the learned fusion, all windows in one forward pass."""

    name = "video"

    def forward(self, x: Tensor, sigma: Tensor | float) -> Tensor:
        p = self.param_like
        out = self.net.denoise_video(x.to(device=p.device, dtype=p.dtype), sigma)
        return self.finish(out.to(device=x.device, dtype=x.dtype))
