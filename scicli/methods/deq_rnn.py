"""deq-rnn: a recurrent convolutional cell in the GAP-TV step, solved to equilibrium.

On the state ``z = (x, e, h)`` (hidden state h of ``hidden`` channels):

    e' = e + (y - A x),   v = x + A^T((y + e' - A x) / R),   u = TV(v)
    s  = [u - mu, v - u, M, y / R - mu, h]          (mu: the mean of u; the image inputs centred)
    x' = u - N_x(s),      h' = tanh(N_h(s))

It sees the estimate, the data step, the masks and the normalised snapshot; the start is the
GAP-TV estimate (or ``y / R``), e = 0, h = 0. No pretrained network: a light map (a few TV
steps and one U-Net per evaluation), all its weights trained by ``scicli train``; untrained it
is GAP-TV itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from scicli.core.params import param
from scicli.methods.deq_gap import STARTS, DEQGap
from scicli.methods.learned import register_learned
from scicli.nets.unet import JointUNet
from scicli.physics import VideoSCI
from scicli.priors.tv import tv_chambolle


class DEQRnn(DEQGap):
    """A recurrent cell with hidden state h in the GAP-TV step, solved to equilibrium on (x, e, h)."""

    method = "deq-rnn"

    @dataclass
    class Options:
        """The cell's options at training."""

        hidden: int = param(8, "hidden-state channels of the cell", low=1)
        start: str = param("gap-tv", "the start: the gap-tv estimate or y / R (mean)", choices=STARTS)
        accelerate: bool = param(True, "accumulate the residual e (accelerated GAP)")
        tv_weight: float = param(0.1, "TV weight of the step's denoiser (0: none)", low=0)
        tv_iters: int = param(5, "Chambolle iterations of the step's TV", low=1)

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = False,
                 solve: dict[str, Any] | None = None, hidden: int = 8, start: str = "gap-tv",
                 accelerate: bool = True, centre: bool = True, tv_weight: float = 0.1, tv_iters: int = 5) -> None:
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        if tv_weight < 0 or tv_iters < 1:
            raise ValueError(f"need tv_weight >= 0 and tv_iters >= 1, got {tv_weight}, {tv_iters}")
        self.hidden, self.tv_weight, self.tv_iters = int(hidden), float(tv_weight), int(tv_iters)
        super().__init__(frames, channels, spectral_norm, solve, prior="none", start=start, accelerate=accelerate,
                         centre=centre)
        for key in ("prior", "sigma", "learned_start"):
            del self.config[key]
        self.config.update(hidden=self.hidden, tv_weight=self.tv_weight, tv_iters=self.tv_iters)

    def correction(self, channels: Sequence[int], spectral_norm: bool, centre: bool) -> nn.Module:
        B = self.frames  # centring is done on the image inputs in f, not on the masks and h
        return JointUNet(3 * B + 1 + self.hidden, B + self.hidden, channels, spectral_norm, centre=False)

    def lift(self, x: Tensor) -> Tensor:
        return torch.cat([super().lift(x), x.new_zeros((x.shape[0], self.hidden, *x.shape[-2:]))], dim=1)

    def denoise(self, v: Tensor) -> Tensor:
        """``u = TV(v)``: Chambolle TV per frame (``tv_iters`` dual steps, weight ``tv_weight``);
        v itself with ``tv_weight=0``. It makes the base iteration GAP-TV, a contraction on the
        null space of A where the plain GAP step is neutral (a bias of the cell would drift)."""
        if self.tv_weight <= 0:
            return v
        return tv_chambolle(v, self.tv_weight, n_iter=self.tv_iters, eps=0.0)

    def f(self, z: Tensor, op: VideoSCI, y: Tensor) -> Tensor:
        B = self.frames
        x, v, e = self.gap_step(z, op, y)
        u = self.denoise(v)
        h = z[:, z.shape[1] - self.hidden:]
        mu = u.mean(dim=(1, 2, 3), keepdim=True) if self.centre else u.new_zeros(())
        mask = op.mask.expand(x.shape[0], -1, -1, -1).to(x.dtype)
        out = self.net(torch.cat([u - mu, v - u, mask, op.gram_inverse(y).unsqueeze(1) - mu, h], dim=1))
        return self.state(u - out[:, :B], e, torch.tanh(out[:, B:]))


register_learned(DEQRnn, "deep-equilibrium recurrent cell in a GAP-TV step, seeing x, y and the masks")
