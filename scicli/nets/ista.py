"""The learned proximal blocks of ISTA-Net, ISTA-Net+ (Zhang & Ghanem, CVPR 2018) and FISTA-Net
(Xiang, Dong, Yang, IEEE TMI 2021): a learned sparsifying transform F, a soft threshold and its
learned left inverse F~, on single-channel images (architectures only; the gradient step that
feeds them is the method's).

ISTA-Net (one phase's proximal map of the gradient-step output r):

    x = F~(soft(F(r), theta)),          F = conv(1 -> w) - ReLU - conv(w -> w),
                                       F~ = conv(w -> w) - ReLU - conv(w -> 1)

ISTA-Net+ (and FISTA-Net) add a conv D before, a conv G after and a residual:

    x = r + G(F~(soft(F(D(r)), theta))),   D: conv(1 -> w), F, F~: conv(w -> w) - ReLU - conv(w -> w),
                                          G: conv(w -> 1)

with ``soft(u, theta) = sign(u) max(|u| - theta, 0)``. The symmetry (constraint) residual is
``F~(F(v)) - v`` for the transform's input v (r, or D(r) for ISTA-Net+): F~ is trained to be a
left inverse of F by adding ``gamma sum_k ||F~(F(v_k)) - v_k||^2`` to the loss. All convolutions
are 3 x 3 with zero padding and no bias, Xavier-normal initialised as in the papers' code, except
G, which starts at zero (unlike the papers): an untrained ISTA-Net+ phase is then the plain
gradient step ``x = r``, so short training runs start from the linear estimate refined by K
gradient steps instead of from the random residuals of nine Xavier-initialised branches.
"""

from __future__ import annotations

from torch import Tensor, nn

KERNEL = 3


def conv(cin: int, cout: int) -> nn.Conv2d:
    """A 3 x 3 convolution, zero padding, no bias, Xavier-normal weights."""
    layer = nn.Conv2d(cin, cout, KERNEL, padding=KERNEL // 2, bias=False)
    nn.init.xavier_normal_(layer.weight)
    return layer


def soft_threshold(u: Tensor, theta: Tensor | float) -> Tensor:
    """``sign(u) max(|u| - theta, 0)``: the proximal map of ``theta ||u||_1``."""
    return u.sign() * (u.abs() - theta).clamp_min(0)


class Transform(nn.Sequential):
    """``conv(cin -> width) - ReLU - conv(width -> cout)``: ISTA-Net's F and F~."""

    def __init__(self, cin: int, width: int, cout: int) -> None:
        super().__init__(conv(cin, width), nn.ReLU(), conv(width, cout))


class ISTAProx(nn.Module):
    """One phase's learned proximal block: ``x = F~(soft(F(r), theta))`` (``plus=False``, ISTA-Net)
    or ``x = r + G(F~(soft(F(D(r)), theta)))`` (``plus=True``, ISTA-Net+ and FISTA-Net), on
    (N, 1, H, W) images with ``width`` feature channels.

    :meth:`forward` returns the output and the symmetry residual ``F~(F(v)) - v`` of the
    transform's input v (r, or D(r)); None with ``symmetry=False`` (inference: one pass of F~ less)."""

    def __init__(self, width: int = 32, plus: bool = True) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.plus = bool(plus)
        if self.plus:
            self.D = conv(1, width)
            self.F = Transform(width, width, width)
            self.F_inv = Transform(width, width, width)
            self.G = conv(width, 1)
            nn.init.zeros_(self.G.weight)  # the residual branch starts at zero: an untrained phase is an ISTA step
        else:
            self.F = Transform(1, width, width)
            self.F_inv = Transform(width, width, 1)

    def forward(self, r: Tensor, theta: Tensor | float, symmetry: bool = True) -> tuple[Tensor, Tensor | None]:
        v = self.D(r) if self.plus else r
        u = self.F(v)
        out = self.F_inv(soft_threshold(u, theta))
        sym = self.F_inv(u) - v if symmetry else None
        return (r + self.G(out) if self.plus else out), sym
