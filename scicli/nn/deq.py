"""Learned reconstruction maps for video SCI, solved to a fixed point (DEQ) or unrolled.

With the projection ``P(x) = x + A^T((y - A x) / R)`` onto ``{A x = y}``:

    deq-gap       f(x) = D(P(x)),  D(z) = z - N(z)                    (DE-GAP, Zhao et al. 2023)
    deq-rnn       f(x, h) = (P(x) - N_x(s), tanh(N_h(s))),  s = [x, P(x) - x, M, y / R, h]
                  a recurrent convolutional cell that sees the estimate, the data residual,
                  the masks and the normalised snapshot; its hidden state h is part of the
                  fixed point
    unrolled-gap  K steps of the deq-gap map from the same start, ordinary backprop (GAP-net)

All B frames are one joint input (temporal correlations are what SCI lives on): a 2x2
pixel-unshuffle, a U-Net over ``channels`` scales, a pixel-shuffle back. The U-Net's output
layer starts at zero, so an untrained map is the projection itself. ``spectral_norm``
constrains every hidden convolution to unit spectral norm (Miyato et al. 2018), which keeps
the map close to non-expansive and the fixed point well defined. Fully convolutional: any
H x W; B is fixed by the weights. The start is ``x_t = y / R`` for every frame.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from scicli.deq import Info, make_solver, relative_residual, settings_options, solve_fixed_point
from scicli.nn.unet import UNetBody
from scicli.physics import VideoSCI

DEFAULT_SOLVE: dict[str, Any] = {"solver": "anderson", "max_iter": 30, "tol": 1e-3, "m": 5, "lam": 1e-4,
                                 "beta": 1.0, "backward": "implicit", "backward_max_iter": 30,
                                 "backward_tol": 1e-4}
"""Fixed-point settings of a DEQ (training defaults; stored in the config)."""


class JointUNet(nn.Module):
    """``cin`` -> ``cout`` channels at full resolution through a U-Net at half resolution."""

    def __init__(self, cin: int, cout: int, channels: Sequence[int], spectral: bool) -> None:
        super().__init__()
        self.body = UNetBody(4 * cin, channels, 4 * cout)
        self.multiple = 2 * self.body.multiple
        if spectral:
            for m in self.body.modules():
                if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m is not self.body.head:
                    _spectral_norm(m)

    def forward(self, h: Tensor) -> Tensor:
        H, W = h.shape[-2:]
        ph, pw = (-H) % self.multiple, (-W) % self.multiple
        if ph or pw:
            h = F.pad(h, (0, pw, 0, ph), mode="replicate")
        out = F.pixel_shuffle(self.body.run(F.pixel_unshuffle(h, 2), None), 2)
        return out[..., :H, :W]


class SCIEquilibrium(nn.Module):
    """Base: a map ``f(z; y, A)`` on a state z whose first B channels are the video estimate."""

    method = ""

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = True,
                 solve: dict[str, Any] | None = None) -> None:
        super().__init__()
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        settings = dict(DEFAULT_SOLVE)
        unknown = sorted(set(solve or {}) - set(settings) - {"iters"})
        if unknown:
            raise ValueError(f"unknown solve settings {unknown}")
        settings.update(solve or {})
        self.frames = int(frames)
        self.config: dict[str, Any] = {"frames": self.frames, "channels": [int(c) for c in channels],
                                       "spectral_norm": bool(spectral_norm), "solve": settings}

    # -- the map ------------------------------------------------------------------------
    def start(self, op: VideoSCI, y: Tensor) -> Tensor:
        """``x_t = y / R`` for every frame (the per-pixel mean of the open frames)."""
        x = (y / op.R).unsqueeze(1).expand(-1, self.frames, -1, -1)
        return x.contiguous()

    def f(self, z: Tensor, op: VideoSCI, y: Tensor) -> Tensor:
        raise NotImplementedError

    def image(self, z: Tensor) -> Tensor:
        return z[:, : self.frames]

    # -- solving ------------------------------------------------------------------------
    def check(self, op: VideoSCI, y: Tensor) -> None:
        if op.frames != self.frames:
            raise ValueError(f"these weights are for B={self.frames} frames per snapshot, the mask has B={op.frames}")

    def _prime(self) -> None:
        """Inside ``parametrize.cached()``: compute the normalised weights once, with autograd
        when it is on, so the no-grad forward solve and the recorded steps share them."""
        for m in self.modules():
            if parametrize.is_parametrized(m, "weight"):
                m.weight  # noqa: B018 - the access fills the cache

    def forward(self, y: Tensor, op: VideoSCI, solve: dict[str, Any] | None = None,
                z0: Tensor | None = None, one_step: Tensor | None = None) -> tuple[Tensor, Info]:
        """The reconstruction (N, B, H, W) of snapshots y (N, H, W) and the solver's record.

        ``one_step``: instead, one application of the map to this video (hidden state 0), used
        to pre-train the map as a denoiser of perturbed ground truth."""
        self.check(op, y)
        s = {**self.config["solve"], **(solve or {})}
        with parametrize.cached():
            self._prime()
            if one_step is not None:
                return self.image(self.f(self.lift(one_step), op, y)), Info()
            z, info = self.run(lambda z: self.f(z, op, y), self.start(op, y) if z0 is None else z0, s)
        return self.image(z), info

    def lift(self, x: Tensor) -> Tensor:
        """The state of a video estimate x (the video itself; deq-rnn adds a zero hidden state)."""
        return x

    def run(self, f, z0: Tensor, s: dict[str, Any]) -> tuple[Tensor, Info]:
        solver = make_solver(s["solver"], **settings_options(s, s["tol"], s["max_iter"]))
        back = make_solver(s["solver"], **settings_options(s, s["backward_tol"], s["backward_max_iter"]))
        return solve_fixed_point(f, z0, solver, s["backward"], back)


class DEQGap(SCIEquilibrium):
    """``f(x) = D(P(x))`` with the learned residual denoiser ``D(z) = z - N(z)``."""

    method = "deq-gap"

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = True,
                 solve: dict[str, Any] | None = None) -> None:
        super().__init__(frames, channels, spectral_norm, solve)
        self.net = JointUNet(self.frames, self.frames, channels, spectral_norm)

    def f(self, z: Tensor, op: VideoSCI, y: Tensor) -> Tensor:
        p = op.project(z, y)
        return p - self.net(p)


class UnrolledGap(DEQGap):
    """The deq-gap map run for exactly ``solve['iters']`` steps, recorded for backprop."""

    method = "unrolled-gap"

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = True,
                 solve: dict[str, Any] | None = None) -> None:
        solve = {"iters": 10, **(solve or {})}
        super().__init__(frames, channels, spectral_norm, solve)

    def run(self, f, z0: Tensor, s: dict[str, Any]) -> tuple[Tensor, Info]:
        info = Info()
        z = z0
        for _ in range(int(s["iters"])):
            fz = f(z)
            info.residuals.append(float(relative_residual(fz.detach(), z.detach()).max()))
            info.steps += 1
            z = fz
        info.best_step = info.steps
        info.converged = True  # a fixed number of steps is the method itself
        return z, info


class DEQRnn(SCIEquilibrium):
    """A recurrent convolutional cell with hidden state h (``hidden`` channels) solved to
    equilibrium: ``x' = P(x) - N_x(s)``, ``h' = tanh(N_h(s))``, s = [x, P(x) - x, M, y/R, h]."""

    method = "deq-rnn"

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = True,
                 solve: dict[str, Any] | None = None, hidden: int = 8) -> None:
        super().__init__(frames, channels, spectral_norm, solve)
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        self.hidden = int(hidden)
        self.config["hidden"] = self.hidden
        B = self.frames
        self.net = JointUNet(3 * B + 1 + self.hidden, B + self.hidden, channels, spectral_norm)

    def start(self, op: VideoSCI, y: Tensor) -> Tensor:
        return self.lift(super().start(op, y))

    def lift(self, x: Tensor) -> Tensor:
        return torch.cat([x, x.new_zeros((x.shape[0], self.hidden, *x.shape[-2:]))], dim=1)

    def f(self, z: Tensor, op: VideoSCI, y: Tensor) -> Tensor:
        B = self.frames
        x, h = z[:, :B], z[:, B:]
        p = op.project(x, y)
        mask = op.mask.expand(x.shape[0], -1, -1, -1)
        s = torch.cat([x, p - x, mask.to(x.dtype), (y / op.R).unsqueeze(1), h], dim=1)
        out = self.net(s)
        return torch.cat([p - out[:, :B], torch.tanh(out[:, B:])], dim=1)


RECONSTRUCTORS: dict[str, type[SCIEquilibrium]] = {m.method: m for m in (DEQGap, DEQRnn, UnrolledGap)}
