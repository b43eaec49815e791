"""What every learned reconstruction method shares: the map's base class, its solver, its registration.

A learned method is one file (``deq_gap.py``, ``deq_rnn.py``, ``unrolled_gap.py``, ...) holding
a :class:`LearnedMap` subclass, a map ``z' = f(z; y, A)`` on a state z that holds the estimate
(:class:`VideoMap`: the video SCI maps, whose first B channels are the video), and one
:func:`register_learned` call. The map's options are a dataclass of
:func:`scicli.core.params.param` fields (``Options``: what ``scicli train -p NAME=VALUE``
sets); it is run by a runner of :mod:`scicli.methods.runners` (``equilibrium`` for a DEQ,
``unroll`` for an unrolled network) and trained through named hooks:

    forward(y, A)                    the reconstruction and the runner's record
    training_loss(y, A, x)           the loss against the ground truth (MSE, plus a method's own terms)
    reconstruct_with_start(y, A)     the same and the start's estimate (a learned start's loss)
    start_estimate(y, A)             the start alone (to train a learned start by itself)
    one_step(x, y, A)                one application of the map to an estimate (denoising pre-training)

The weights file (``--weights RUN/best.pt``, or ``scicli/weights/<method>.pt`` when scicli ships
one) holds the method, the map's config and its weights; the fixed-point settings a user gives
override the ones stored with it.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from scicli.core.errors import UsageError
from scicli.core.params import param
from scicli.fixedpoint import (Info, iterate_ratios, jacobian_norm_and_radius, jacobian_norm_estimate, jacobian_penalty,
                               make_options, ratio_summary, secant_ratios, settings_options)
from scicli.methods.base import Solver
from scicli.methods.registry import register
from scicli.methods.runners import Callback, Result, equilibrium
from scicli.metrics import frame_psnr
from scicli.physics import LinearOperator, VideoSCI
from scicli.physics.base import signature_mismatch
from scicli.weights.store import load_model, register_model, shipped_variants

DEFAULT_SOLVE: dict[str, Any] = {"solver": "anderson", "max_iter": 30, "tol": 1e-3, "m": 5, "lam": 1e-4,
                                 "beta": 1.0, "backward": "implicit", "backward_max_iter": 30,
                                 "backward_tol": 1e-4, "patience": 6, "restart": 0.0}
"""Fixed-point settings of a DEQ (training defaults; stored in the config)."""
INFERENCE_KEYS = ("solver", "max_iter", "tol", "m", "lam", "beta", "patience", "restart")
"""The settings that shape a forward solve (what ``reconstruct -p`` and ``ship --solve`` may set)."""


@dataclass
class JacobianRegularisation:
    """Training options every equilibrium map shares (``-p NAME=VALUE`` of ``scicli train``,
    stored in the config's ``solve`` only when set; off by default, so nothing else changes).

    With ``jac_weight = lambda > 0`` a training solve adds to the loss, at the equilibrium z* of
    its forward solve, the Jacobian regulariser of Bai, Koltun and Kolter (ICML 2021):

        lambda ||eps^T J_f(z*)||^2 / n,   eps ~ N(0, I),   n = z*.numel()

    a Hutchinson estimate of ``lambda ||J_f(z*)||_F^2 / n`` (one vector-Jacobian product,
    :func:`scicli.fixedpoint.jacobian_penalty`), which pulls the map towards a contraction
    near its fixed point while keeping its initialisation (unlike spectral normalisation).

    With ``jac_norm = kappa > 0`` as well, the penalty is instead a hinge on the spectral norm,
    the quantity a contraction bounds (``||J|| < 1``; the ODER supplement's Lemma 1):

        lambda mean_i max(0, ||J_i(z*_i) v_i|| - kappa)^2

    with v_i the top right singular vector of sample i's Jacobian estimated by ``jac_power``
    power steps (:func:`scicli.fixedpoint.jacobian_norm_estimate`; warm-started from the
    previous training step's vectors when the shapes agree). Either penalty is of the map's
    mean map (:meth:`LearnedMap.mean_map`: for ODER the full-batch T, not one draw of views)."""

    jac_weight: float = param(0.0, "Jacobian regularisation weight lambda: add lambda ||eps^T J_f(z*)||^2 / n "
                              "(eps ~ N(0, I), a Hutchinson estimate of ||J_f(z*)||_F^2 / n at the equilibrium "
                              "z*) to the training loss (0: off)", low=0)
    jac_every: int = param(1, "apply the Jacobian penalty at every K-th training solve only", low=1)
    jac_norm: float = param(0.0, "with jac_weight: penalise instead max(0, ||J_f(z*)|| - kappa)^2, the spectral norm "
                            "above kappa (e.g. 0.98 for a contraction; 0: the Frobenius penalty)", low=0)
    jac_power: int = param(4, "power steps of the spectral-norm estimate of jac_norm (warm-started)", low=1)


JACOBIAN_DEFAULTS: dict[str, Any] = {f.name: f.default for f in dataclasses.fields(JacobianRegularisation)}
"""The Jacobian regularisation settings and their (off) defaults."""


def weights_misfit(method: str, config: dict[str, Any], op: LinearOperator,
                   default_operator: str | None = None) -> str:
    """Why weights with ``config`` (its ``operator`` and ``signature``) do not fit ``op``, as one
    line, or "" when they fit."""
    name = config.get("operator", default_operator)
    if name is not None and op.name != name:
        return f"{method} weights are for operator '{name}'; they do not apply to '{op.name}'"
    actual = op.signature()
    bad = signature_mismatch(config.get("signature", {}), actual)
    if not bad:
        return ""
    have = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in actual.items())
    return (f"{method} weights are for {op.name} with {', '.join(bad)}; this one has {have} "
            f"(train weights for it with scicli train --operator {op.name})")


class LearnedMap(nn.Module):
    """Base of the learned maps ``f(z; y, A)``: a state z whose estimate is :meth:`image`.

    Subclasses set ``method`` and ``Options`` and implement :meth:`f`; :meth:`start` (the
    operator's linear estimate), :meth:`lift` / :meth:`image` (the estimate is the state) and
    :meth:`run` (the equilibrium runner) have defaults. The config stores what the weights were
    trained for: ``operator`` (a name, or None for any) and ``signature`` (the operator's
    :meth:`~scicli.physics.LinearOperator.signature`, e.g. m for block CS), so that weights
    applied to another operator or sampling ratio are refused in one line."""

    method: ClassVar[str] = ""
    operator: ClassVar[str | None] = None
    unrolled: ClassVar[bool] = False
    """True for a map run a fixed number of times rather than to its fixed point."""
    score: ClassVar[str] = "psnr"
    """What the validation scores of its runs are (named so in the shipped weights' manifest)."""
    SETTINGS: ClassVar[tuple[str, ...]] = ()
    """Options that leave the weights as they are (how the map is evaluated, e.g. ODER's views
    per evaluation): ``scicli weights ship --option`` may store other values with the weights."""
    STATIONARY: ClassVar[int] = 1 << 30
    """The evaluation index of the stationary map (past any learned schedule): Lipschitz probes."""

    @dataclass
    class Options:
        """The map's own options (none here)."""

    def __init__(self, solve: dict[str, Any] | None = None, operator: str | None = None,
                 signature: dict[str, Any] | None = None) -> None:
        super().__init__()
        settings = dict(DEFAULT_SOLVE)
        unknown = sorted(set(solve or {}) - set(settings) - {"iters"} - set(JACOBIAN_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown solve settings {unknown}")
        settings.update(solve or {})
        for key, default in JACOBIAN_DEFAULTS.items():  # stored only when set: configs without it are unchanged
            if key in settings and settings[key] == default:
                del settings[key]
        self.jac_weight = float(settings.get("jac_weight", 0.0))
        self.jac_every = int(settings.get("jac_every", 1))
        self.jac_norm = float(settings.get("jac_norm", 0.0))
        self.jac_power = int(settings.get("jac_power", 4))
        if self.jac_norm < 0 or self.jac_power < 1:
            raise ValueError(f"need jac_norm >= 0 and jac_power >= 1, got {self.jac_norm}, {self.jac_power}")
        self._jac_vector: Tensor | None = None  # the power iteration's warm start (not saved)
        self.last_jac_norm: float | None = None
        """The largest estimated ``||J_f(z*)||`` of the last penalised solve (``jac_norm`` on)."""
        if self.jac_weight < 0 or self.jac_every < 1:
            raise ValueError(f"need jac_weight >= 0 and jac_every >= 1, got {self.jac_weight}, {self.jac_every}")
        if self.jac_weight and self.unrolled:
            raise ValueError(f"jac_weight applies to equilibrium maps; {self.method or 'this map'} is unrolled")
        if self.jac_every > 1:  # a buffer: saved with the weights, so --resume keeps the cadence
            self.register_buffer("jac_solves", torch.zeros((), dtype=torch.long))
        self.pending_penalty: Tensor | None = None
        """The weighted Jacobian penalty of the last training solve, until :meth:`take_penalty`."""
        self.last_penalty: float | None = None
        """Its value (unweighted), for a log."""
        self.config: dict[str, Any] = {"solve": settings}
        self.evaluation = 0
        """The index of the map's next evaluation within the current solve (0 first). A map
        whose first evaluations differ from the rest (a learned schedule) reads it in :meth:`f`;
        past its :meth:`scheduled` evaluations every map is stationary."""
        if operator is not None:
            self.config["operator"] = str(operator)
        if signature:
            self.config["signature"] = dict(signature)

    # -- the map ------------------------------------------------------------------------
    def start(self, op: LinearOperator, y: Tensor) -> Tensor:
        """The start state: the operator's linear estimate (:meth:`LinearOperator.start`)."""
        return self.lift(op.start(y))

    def f(self, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        raise NotImplementedError

    def mean_map(self, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        """The deterministic map whose fixed point the solve seeks: :meth:`f` itself, except for
        a stochastic map (ODER: the full-batch T whose expectation one draw of views is).
        What the Jacobian penalty and the Lipschitz report measure."""
        return self.f(z, op, y)

    def lift(self, x: Tensor) -> Tensor:
        """The state of an estimate x (x itself; a map with more state adds it at zero)."""
        return x

    def scheduled(self) -> int:
        """How many first evaluations of a solve differ from the stationary map (0: none)."""
        return 0

    def image(self, z: Tensor) -> Tensor:
        """The estimate of state z (z itself)."""
        return z

    def run(self, f, z0: Tensor, settings: dict[str, Any]) -> tuple[Tensor, Info]:
        """Solve ``z = f(z)`` from z0 (:func:`scicli.methods.runners.equilibrium`)."""
        return equilibrium(f, z0, settings)

    # -- what the weights fit -------------------------------------------------------------
    def check(self, op: LinearOperator, y: Tensor) -> None:
        """A one-line UsageError for an operator the weights do not fit."""
        problem = weights_misfit(self.method, self.config, op, default_operator=self.operator)
        if problem:
            raise UsageError(problem)

    # -- the hooks ----------------------------------------------------------------------
    def _prime(self) -> None:
        """Inside ``parametrize.cached()``: compute the normalised weights once, with autograd
        when it is on, so the no-grad forward solve and the recorded steps share them."""
        for m in self.modules():
            if parametrize.is_parametrized(m, "weight"):
                m.weight  # noqa: B018 - the access fills the cache

    def settings(self, solve: dict[str, Any] | None) -> dict[str, Any]:
        """The stored fixed-point settings updated by ``solve``."""
        return {**self.config["solve"], **(solve or {})}

    def forward(self, y: Tensor, op: LinearOperator, solve: dict[str, Any] | None = None,
                z0: Tensor | None = None) -> tuple[Tensor, Info]:
        """The reconstruction of measurements y from the start state (or ``z0``) and the
        runner's record."""
        x, info, _ = self.reconstruct_with_start(y, op, solve, z0)
        return x, info

    def reconstruct_with_start(self, y: Tensor, op: LinearOperator, solve: dict[str, Any] | None = None,
                               z0: Tensor | None = None, trace: dict[str, Any] | None = None
                               ) -> tuple[Tensor, Info, Tensor]:
        """The reconstruction, the record and the start's estimate (with its gradient when the
        start is learned). A ``trace`` dict receives the states the map was evaluated at
        (``iterates``), their images (``images``) and the final state (``z``), detached."""
        self.check(op, y)

        def f(z: Tensor) -> Tensor:
            fz = self.f(z, op, y)
            self.evaluation += 1
            if trace is not None:
                trace.setdefault("iterates", []).append(z.detach())
                trace.setdefault("images", []).append(fz.detach())
            return fz

        with parametrize.cached():
            self._prime()
            start = self.start(op, y) if z0 is None else z0
            self.evaluation = 0
            z, info = self.run(f, start, self.settings(solve))
            self.regularise(lambda s: self.mean_map(s, op, y), z)
        if trace is not None:
            trace["z"] = z.detach()
        return self.image(z), info, self.image(start)

    def lipschitz(self, y: Tensor, op: LinearOperator, trace: dict[str, Any], iters: int = 10) -> dict[str, float]:
        """Empirical Lipschitz constants of the map at the end of a traced solve (the largest
        over the batch; :mod:`scicli.fixedpoint.lipschitz`): ``lipschitz_fixed_point`` ||J||
        and ``spectral_radius_fixed_point`` rho(J) at the final state z*, and over the
        iterates z_k the secant ratios ``||f(z_k) - f(z*)|| / ||z_k - z*||``: their largest
        (``lipschitz_iterates_max``) and the share above 1 (``lipschitz_iterates_above_one``).
        All of the stationary mean map (:meth:`mean_map`: for ODER the full-batch T, as in the
        supplement's Fig. 1, evaluated anew at the iterates, not one draw of views): iterates of
        a learned schedule's first evaluations are left out."""
        z = trace["z"]
        skip = self.scheduled()
        self.evaluation = self.STATIONARY

        def f(s: Tensor) -> Tensor:
            return self.mean_map(s, op, y)

        # a stochastic map (one that has its own mean map, ODER) recorded images of its draws:
        # the ratios of its mean map evaluate it at the iterates (the supplement's Fig. 1)
        stochastic = type(self).mean_map is not LearnedMap.mean_map
        with parametrize.cached():
            self._prime()
            norm, radius = jacobian_norm_and_radius(f, z, iters)
            iterates = trace.get("iterates", [])[skip:]
            ratios = (secant_ratios(f, iterates, z) if stochastic
                      else iterate_ratios(f, iterates, trace.get("images", [])[skip:], z))
        stats = ratio_summary(ratios)
        return {"lipschitz_fixed_point": float(norm.max()), "spectral_radius_fixed_point": float(radius.max()),
                "lipschitz_iterates_max": stats["max"], "lipschitz_iterates_above_one": stats["above_one"],
                "power_iterations": int(iters)}

    def regularise(self, f: Callable[[Tensor], Tensor], z_star: Tensor) -> None:
        """After a training solve (train mode, autograd on, ``jac_weight > 0``, every
        ``jac_every``-th solve): keep ``jac_weight ||eps^T J_f(z*)||^2 / n`` at the equilibrium
        z* as :attr:`pending_penalty` (:class:`JacobianRegularisation`); never at inference."""
        if not (self.jac_weight > 0 and self.training and torch.is_grad_enabled()) or self.unrolled:
            return
        if self.jac_every > 1:  # the penalty at training solves 0, K, 2K, ...
            count = int(self.jac_solves)
            self.jac_solves.add_(1)
            if count % self.jac_every:
                return
        if self.jac_norm > 0:
            norms, self._jac_vector = jacobian_norm_estimate(f, z_star, self.jac_power, self._jac_vector)
            self.last_jac_norm = float(norms.detach().max())
            penalty = torch.relu(norms - self.jac_norm).square().mean()
        else:
            penalty = jacobian_penalty(f, z_star)
        self.last_penalty = float(penalty.detach())
        self.pending_penalty = self.jac_weight * penalty

    def take_penalty(self) -> Tensor | None:
        """The pending Jacobian penalty of the last training solve (None: none), cleared: what a
        training loss adds (:meth:`training_loss`; the video task adds it to its own loss)."""
        penalty, self.pending_penalty = self.pending_penalty, None
        return penalty

    def with_penalty(self, loss: Tensor) -> Tensor:
        """``loss`` plus the pending Jacobian penalty of the last training solve, if any (taken)."""
        penalty = self.take_penalty()
        return loss if penalty is None else loss + penalty

    def start_estimate(self, y: Tensor, op: LinearOperator) -> Tensor:
        """The start's estimate alone (no solve)."""
        self.check(op, y)
        with parametrize.cached():
            self._prime()
            return self.image(self.start(op, y))

    def one_step(self, x: Tensor, y: Tensor, op: LinearOperator) -> Tensor:
        """One application of the map to the estimate x (other state at zero)."""
        self.check(op, y)
        with parametrize.cached():
            self._prime()
            self.evaluation = 0
            return self.image(self.f(self.lift(x), op, y))

    def training_loss(self, y: Tensor, op: LinearOperator, x: Tensor) -> Tensor:
        """The loss of one batch against the ground truth x: ``mean ||x*(y, A) - x||^2`` (a
        method with an extra term, e.g. ISTA-Net's symmetry loss, adds it here), plus the Jacobian
        penalty of the solve when ``jac_weight > 0`` (:class:`JacobianRegularisation`)."""
        return self.with_penalty(torch.nn.functional.mse_loss(self(y, op)[0], x))


class VideoMap(LearnedMap):
    """A learned map for video SCI with B frames per snapshot and a joint-frame U-Net of
    ``channels`` scales: the state's first B channels are the video, the start ``y / R``."""

    operator = "video-sci"

    def __init__(self, frames: int = 8, channels: Sequence[int] = (32, 64, 128), spectral_norm: bool = False,
                 solve: dict[str, Any] | None = None, centre: bool = False) -> None:
        super().__init__(solve)
        if frames < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        self.frames = int(frames)
        self.config = {"frames": self.frames, "channels": [int(c) for c in channels],
                       "spectral_norm": bool(spectral_norm), "solve": self.config["solve"], "centre": bool(centre)}
        self.centre = bool(centre)

    def mean_start(self, op: VideoSCI, y: Tensor) -> Tensor:
        """``x_t = y / R`` for every frame (the per-pixel mean of the open frames)."""
        return op.gram_inverse(y).unsqueeze(1).expand(-1, self.frames, -1, -1).contiguous()

    def start(self, op: VideoSCI, y: Tensor) -> Tensor:
        """The state of :meth:`mean_start`."""
        return self.lift(self.mean_start(op, y))

    def image(self, z: Tensor) -> Tensor:
        """The video of state z: its first B channels."""
        return z[:, : self.frames]

    def check(self, op: LinearOperator, y: Tensor) -> None:
        if not isinstance(op, VideoSCI):
            raise UsageError(f"{self.method} is a video-sci network; it does not apply to operator '{op.name}'")
        if op.frames != self.frames:
            raise UsageError(f"{self.method} weights are for B={self.frames} frames per snapshot; "
                             f"this mask has B={op.frames} (train weights for it with --frames {op.frames})")


def load_reconstructor(method: str, weights: str | Path | None) -> nn.Module:
    """The eval-mode network of ``weights`` (a checkpoint file or run directory, default: the
    shipped file) for ``method``."""
    return load_model(method, weights, option="--weights RUN/best.pt")


class LearnedSolver(Solver):
    """Runs a trained map; the history lists the runner's residual per evaluation (and the PSNR
    of the result against a given ground truth)."""

    method: ClassVar[str] = ""
    trainable = True

    def __init__(self, **overrides: Any) -> None:
        super().__init__(**overrides)  # self.given: what the user set; the rest comes from the weights' settings
        if hasattr(self.params, "solver"):  # fixed-point options checked before any data is read
            st = {**DEFAULT_SOLVE, "max_iter": 1, **self.settings()}
            make_options(st["solver"], **settings_options(st, st["tol"], st["max_iter"]))
        self.model = load_reconstructor(self.method, self.params.weights)
        self.variant_file: Path | None = None  # set when fit_weights switches to a shipped METHOD@TAG

    def settings(self) -> dict[str, Any]:
        """The fixed-point settings the user gave (-p solver= max_iter= tol= m= lam= beta=,
        iters=); everything else is what was stored with the weights."""
        p = self.params
        out = {k: getattr(p, k) for k in (*INFERENCE_KEYS, "iters") if k in self.given and hasattr(p, k)}
        if not out.get("max_iter", 1):  # max_iter=0: the stored budget
            del out["max_iter"]
        if not out.get("iters", 1):
            del out["iters"]
        return out

    def effective_settings(self) -> dict[str, Any]:
        """The settings a solve uses: those stored with the weights, updated by the user's."""
        return self.model.settings(self.settings())

    def command_line_params(self) -> dict[str, Any]:
        """The parameters as the command line quotes them, the fixed-point settings as the solve
        used them (stored with the weights unless given), not the defaults of the parameter
        list: a report's parameters, given back with ``--from-report``, rerun the same solve."""
        out = super().command_line_params()
        used = self.effective_settings()
        for key in (*INFERENCE_KEYS, "iters"):
            if key in out and key in used:
                out[key] = used[key]
        return out

    def total_iters(self) -> int:
        used = self.effective_settings()
        return int(used.get("iters", 10)) if self.model.unrolled else int(used["max_iter"])

    def fit_weights(self, op: LinearOperator) -> None:
        """Without ``-p weights=``: when the default shipped weights do not fit ``op`` (another
        operator setting, e.g. block CS at 30 % instead of 10 %), switch to the shipped variant
        ``METHOD@TAG`` that does; otherwise :meth:`LearnedMap.check` says why none fits."""
        if self.params.weights or not weights_misfit(self.method, self.model.config, op, self.model.operator):
            return
        for path, config in shipped_variants(self.method):
            if not weights_misfit(self.method, config, op, self.model.operator):
                self.model = load_reconstructor(self.method, path)
                self.variant_file = Path(path)  # what the report's provenance names
                return

    @torch.no_grad()
    def solve(self, op: LinearOperator, y: Tensor, *, x0: Tensor | None = None, gt: Tensor | None = None,
              callback: Callback | None = None) -> Result:
        self.fit_weights(op)
        self.model.check(op, y)
        real = y.real.dtype if y.is_complex() else y.dtype  # k-space is complex, the weights are real
        model = self.model.to(device=y.device, dtype=real)
        z0 = None if x0 is None else model.lift(x0 if x0.is_complex() else x0.to(real))
        power = int(getattr(self.params, "lipschitz", 0))
        trace: dict[str, Any] | None = {} if power else None
        if trace is None:
            x, info = model(y, op, solve=self.settings(), z0=z0)
        else:  # an equilibrium map (the -p lipschitz parameter is theirs): the solve keeps its iterates
            x, info, _ = model.reconstruct_with_start(y, op, solve=self.settings(), z0=z0, trace=trace)
        history = [{"iter": k, "fixed_point_residual": r} for k, r in enumerate(info.residuals, start=1)]
        if gt is not None and history:
            history[-1]["psnr"] = float(frame_psnr(x, gt).mean())
        if callback is not None:
            total = max(len(history), 1)
            for k, rec in enumerate(history, start=1):
                callback(k, total, rec)
        used = self.effective_settings()
        diagnostics: dict[str, Any] = {}
        if not model.unrolled:
            diagnostics = {"fixed_point_residual": info.residual, "tol": float(used["tol"]),
                           "max_iter": int(used["max_iter"])}
        if info.diverged:
            warnings.warn(f"{self.method}: the fixed-point solve stopped early ({info.diverged}); "
                          f"returning the best iterate (step {info.best_step})", RuntimeWarning, stacklevel=2)
        elif not info.converged and not model.unrolled:
            warnings.warn(f"{self.method}: the fixed-point solve did not converge: residual {info.residual:.2e} > "
                          f"tol {float(used['tol']):g} after {info.steps} evaluations (the cap max_iter); "
                          "raise -p max_iter= or -p tol=", RuntimeWarning, stacklevel=3)
        if trace is not None:
            with torch.enable_grad():
                diagnostics.update(model.lipschitz(y, op, trace, power))
        return Result(x=x, history=history, iterations=info.steps, converged=info.converged, diagnostics=diagnostics)


def equilibrium_params() -> type:
    """The ``-p`` parameters of a DEQ method at reconstruction: weights and fixed-point settings."""
    stored = "; default: as stored with the weights"

    @dataclass
    class DEQParams:
        weights: str = param("", "trained weights (a scicli train checkpoint; default: the shipped file)")
        solver: str = param("anderson", "fixed-point solver: anderson, broyden or fixed-point" + stored)
        max_iter: int = param(0, "most evaluations of the map (0: the budget stored with the weights)", low=0)
        tol: float = param(1e-3, "stop at relative residual ||f(z) - z|| / ||f(z)|| <= tol" + stored, low=0)
        m: int = param(5, "Anderson history size" + stored, low=1)
        lam: float = param(1e-4, "Anderson regularisation (relative)" + stored, low=0)
        beta: float = param(1.0, "relaxation: z <- (1 - beta) z + beta f(z) (mixed, for Anderson)" + stored,
                            positive=True)
        patience: int = param(6, "stop (and keep the iterate of smallest step) when ||f(z) - z|| grew this many "
                                 "evaluations in a row; 0: never (a budget of exactly max_iter)" + stored, low=0)
        restart: float = param(0.0, "Anderson: forget the older pairs when ||f(z) - z|| grew by more than this factor "
                                    "in one step (0: never)" + stored, low=0)
        lipschitz: int = param(0, "power iterations for the map's empirical Lipschitz constant at the fixed point "
                                  "and over the iterates, written to the report (0: off; each costs about 6 "
                                  "evaluations of the map)", low=0)

    return DEQParams


def unrolled_params() -> type:
    """The ``-p`` parameters of an unrolled method at reconstruction: weights and the step count."""

    @dataclass
    class UnrolledParams:
        weights: str = param("", "trained weights (a scicli train checkpoint; default: the shipped file)")
        iters: int = param(0, "unrolled steps (0: as trained)", low=0)

    return UnrolledParams


def option_fields(model: type[LearnedMap]) -> list[dataclasses.Field]:
    """The declared options of a learned map (``-p NAME=VALUE`` of ``scicli train``)."""
    return list(dataclasses.fields(model.Options))


def register_learned(model: type[LearnedMap], summary: str) -> type[LearnedSolver]:
    """Register a learned map under ``model.method``: its builder in the weights store and its
    solver (parameters by the runner: unrolled or equilibrium) in :data:`METHODS`."""
    register_model(model.method, kind="reconstruction", summary=(model.__doc__ or model.method).splitlines()[0])(model)
    params = unrolled_params() if model.unrolled else equilibrium_params()
    solver = type(f"{model.__name__}Solver", (LearnedSolver,), {"method": model.method, "Params": params,
                                                                 "__doc__": summary})
    register(model.method, summary=summary, trainable=True)(solver)
    return solver
