"""RED as a deep-equilibrium model (``red-deq``) and its online variant ODER (``oder``, Liu, Xu,
Gan, Shoushtari and Kamilov, NeurIPS 2022), on any operator.

The map is the RED gradient step with a learned denoiser D (a DnCNN started from scicli's shipped
``dncnn`` weights, sigma fixed):

    T(x) = x - gamma (grad g(x) + tau (x - D(x))),   grad g(x) = A^T (A x - y) / L,   L = ||A||^2

(the data term is normalised by L, so its Hessian has eigenvalues in [0, 1] and T is a
contraction for ``gamma < 2 / (1 + tau)`` when D is non-expansive; ``-p gamma=`` is the step as a
fraction of ``1 / (1 + tau)``). red-deq solves ``x = T(x)`` with the Nesterov-accelerated
fixed-point iteration from the operator's start (FBP for CT) and is trained end to end with the
implicit gradient (Anderson for the backward linear fixed point, or ``backward=jfb``).

``oder`` is the same map whose data term uses, at every evaluation, only w of the b views (rows
of the measurement), drawn by the supplement's chunked draw: the b views split into ``chunks``
(5) equal consecutive chunks, w / chunks drawn without replacement from each (``-p chunks=0``: w
chunks, one view from each, the finest stratification); with A_w the rows
drawn, ``grad g_w(x) = (b / w) A_w^T (A_w x - y_w) / L`` (an unbiased estimate of grad g). The
forward solve draws anew at every evaluation; the backward pass differentiates one recorded
evaluation (one draw), so its memory and cost scale with w, not b. ``w = 0`` (or w = b) is
red-deq exactly. ``-p variance=saga`` replaces the fresh draw by SAGA's variance-reduced
estimate (a table of every view's last residual, corrected by the draw; :class:`ODERMap`), at the
same cost per evaluation. Default tau 0.02: the untrained map (the shipped dncnn as D, 30 evaluations)
on validation images (two phantoms and a Train400 image, 128 x 128, CT with 120 views) gave
31.74 / 32.89 / 32.55 dB at tau 0.1 / 0.02 / 0.005 (FBP 32.16; 28.6 on the test slices at 0.5).
The shipped weights of both methods are one map (tau 0.3, trained with all 120 views through 100
evaluations); oder's add w = 40, ``variance=saga``, ``chunks=0`` (docs/benchmarks.md).
Needs an operator with ``views`` and ``views_subset`` (ct); at inference
``reconstruct -p w=`` sets w (0: all views).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor

from scicli.core.errors import UsageError
from scicli.core.params import param
from scicli.fixedpoint import make_solver, settings_options
from scicli.fixedpoint.implicit import solve_fixed_point
from scicli.fixedpoint.solvers import Info
from scicli.methods.learned import LearnedMap, LearnedSolver, equilibrium_params, register_learned
from scicli.methods.registry import register
from scicli.nets.dncnn import DnCNN
from scicli.physics import LinearOperator
from scicli.weights.store import load_model, register_model

RED_SOLVE: dict[str, Any] = {"solver": "nesterov", "max_iter": 40, "tol": 1e-3, "backward": "implicit",
                             "backward_max_iter": 30, "backward_tol": 1e-2}
"""Forward: Nesterov, relative change 1e-3 (the supplement's); backward: Anderson, 1e-2."""

_NORMS: "weakref.WeakKeyDictionary[LinearOperator, float]" = weakref.WeakKeyDictionary()


def operator_norm(op: LinearOperator, like: Tensor) -> float:
    """``||A||^2`` by power iteration (30 steps at most, relative tolerance 1e-4), once per
    operator instance."""
    if op not in _NORMS:
        with torch.no_grad():
            _NORMS[op] = float(op.norm(like=like[:1].detach(), max_iter=30, tol=1e-4,
                                       generator=torch.Generator().manual_seed(0)))
    return _NORMS[op]


def chunked_draw(b: int, w: int, chunks: int, generator: torch.Generator) -> Tensor:
    """w of b indices, sorted: ``range(b)`` split into ``chunks`` consecutive near-equal chunks and
    ``w / chunks`` drawn without replacement from each (the remainder one more from the first
    chunks). ``chunks = 0`` means w chunks, one view drawn from each: the finest stratification,
    every draw spread evenly over the angles. ``w >= b`` gives all indices."""
    if w >= b:
        return torch.arange(b)
    if not 1 <= w:
        raise UsageError(f"oder: w must be >= 1, got {w}")
    chunks = w if int(chunks) == 0 else max(1, min(int(chunks), w))
    bounds = torch.linspace(0, b, chunks + 1).round().long().tolist()
    out = []
    for c in range(chunks):
        lo, hi = bounds[c], bounds[c + 1]
        k = w // chunks + (1 if c < w % chunks else 0)
        out.append(lo + torch.randperm(hi - lo, generator=generator)[: min(k, hi - lo)])
    return torch.sort(torch.cat(out)).values


class REDMap(LearnedMap):
    """RED (DEQ): ``x = x - gamma (A^T (A x - y) / L + tau (x - D(x)))`` with a DnCNN D."""

    method: ClassVar[str] = "red-deq"

    @dataclass
    class Options:
        tau: float = param(0.02, "RED weight tau of x - D(x)", positive=True)
        gamma: float = param(1.0, "step gamma as a fraction of 1 / (1 + tau)", positive=True, high=1.9)
        sigma: float = param(5 / 255, "noise level of the denoiser D", positive=True, level=True)
        pretrained: bool = param(True, "start D from the shipped dncnn weights")

    def __init__(self, tau: float = 0.02, gamma: float = 1.0, sigma: float = 5 / 255, pretrained: bool = True,
                 depth: int = 10, width: int = 32, solve: dict[str, Any] | None = None, operator: str | None = None,
                 signature: dict[str, Any] | None = None) -> None:
        super().__init__({**RED_SOLVE, **(solve or {})}, operator, signature)
        if not (tau > 0 and gamma > 0 and sigma > 0):
            raise ValueError(f"need tau, gamma, sigma > 0, got {tau}, {gamma}, {sigma}")
        self.tau, self.gamma, self.sigma = float(tau), float(gamma), float(sigma)
        self.denoiser = DnCNN(depth, width, 1)
        if pretrained:
            shipped = load_model("dncnn", None)
            if shipped.config == self.denoiser.config:
                self.denoiser.load_state_dict(shipped.state_dict())
        # the run's own setting (a checkpoint's weights replace D's start when it is rebuilt), so
        # that the command a shipped manifest reconstructs from the config is the one that trained it
        self.config.update(tau=self.tau, gamma=self.gamma, sigma=self.sigma, pretrained=bool(pretrained),
                           depth=int(depth), width=int(width))

    def denoise(self, x: Tensor) -> Tensor:
        """``D(x)`` at the fixed noise level sigma."""
        return self.denoiser(x, self.sigma)

    def data_gradient(self, op: LinearOperator, z: Tensor, y: Tensor) -> Tensor:
        """The data term's gradient, unnormalised: ``A^T (A z - y)`` (all views)."""
        return op.A_adjoint(op.A(z) - y)

    def f(self, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        """``T(z) = z - gamma / (1 + tau) (G(z) / L + tau (z - D(z)))`` with G the data gradient
        of :meth:`data_gradient` (``A^T (A z - y)``, or ODER's estimate of it)."""
        L = operator_norm(op, z)
        grad = self.data_gradient(op, z, y) / L + self.tau * (z - self.denoise(z))
        return z - (self.gamma / (1.0 + self.tau)) * grad

    def run(self, f, z0: Tensor, settings: dict[str, Any]) -> tuple[Tensor, Info]:
        """Forward with ``settings['solver']`` (Nesterov by default), backward ``settings['backward']``
        (implicit: Anderson on the adjoint fixed point; jfb; neumann:K)."""
        s = settings
        forward = make_solver(s["solver"], **settings_options(s, s["tol"], s["max_iter"]))
        anderson = {**s, "solver": "anderson"}
        back = make_solver("anderson", **settings_options(anderson, s["backward_tol"], s["backward_max_iter"]))
        return solve_fixed_point(f, z0, forward, s["backward"], back)

    def check(self, op: LinearOperator, y: Tensor) -> None:
        """RED's weights are a denoiser and two scalars: they fit any instance of the operator they
        were trained on (any number of views or image size); another operator is refused."""
        name = self.config.get("operator")
        if name is not None and op.name != name:
            raise UsageError(f"{self.method} weights are for operator '{name}'; they do not apply to '{op.name}'")


VARIANCE = ("plain", "saga")
"""ODER's estimates of the data gradient: a fresh draw (``plain``) or SAGA's table (``saga``)."""


class ODERMap(REDMap):
    """ODER: RED (DEQ) whose data term uses w chunk-drawn views per evaluation.

    ``variance="plain"`` (the supplement's): ``G_w(z) = (b / w) A_J^T (A_J z - y_J)``, an
    unbiased estimate of ``A^T (A z - y)`` whose noise does not fall as the iterates settle.
    ``variance="saga"`` (Defazio, Bach and Lacoste-Julien, 2014): a table keeps every view's last
    residual ``r_j = A_j z_(k_j) - y_j`` and ``S = A^T r``; an evaluation draws J and uses

        G(z) = S + (b / w) A_J^T (A_J z - y_J - r_J),

    then stores ``r_J = A_J z - y_J`` (and updates S). It is unbiased too (each view is drawn with
    probability w / b), and it is exact when the table was filled at z, so its noise vanishes at
    a fixed point. Same cost per evaluation as ``plain`` (one forward and one adjoint of w
    views), plus one of all views at the start of each solve, whose first evaluation uses the
    exact gradient.
    """

    method: ClassVar[str] = "oder"
    SETTINGS: ClassVar[tuple[str, ...]] = ("w", "chunks", "seed", "variance")

    @dataclass
    class Options(REDMap.Options):
        w: int = param(40, "views drawn per evaluation (0: all, i.e. red-deq)", low=0)
        chunks: int = param(5, "equal chunks of the views, w / chunks drawn from each (0: w chunks, one view "
                                "from each)", low=0)
        seed: int = param(0, "seed of the view draws (reset at every reconstruction in eval mode)", low=0)
        variance: str = param("plain", "data-gradient estimate: plain (a fresh draw) or saga (a fresh draw "
                                       "corrects a table of every view's last residual)", choices=VARIANCE)

    def __init__(self, w: int = 40, chunks: int = 5, seed: int = 0, variance: str = "plain", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if variance not in VARIANCE:
            raise ValueError(f"variance must be one of {', '.join(VARIANCE)}, got {variance!r}")
        self.w, self.chunks, self.seed, self.variance = int(w), int(chunks), int(seed), str(variance)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.table: tuple[Tensor, Tensor] | None = None  # SAGA's (r, S) of the solve under way
        self.config.update(w=self.w, chunks=self.chunks, seed=self.seed, variance=self.variance)

    def draw(self, op: LinearOperator) -> Tensor | None:
        """A fresh chunked draw of w of the b views, or None for all of them (w = 0 or w >= b)."""
        b = getattr(op, "views", None)
        if self.w == 0 or (b is not None and self.w >= b):
            return None
        if b is None or not hasattr(op, "views_subset"):
            raise UsageError(f"oder with w={self.w} needs an operator with views ({op.name} has none); use w=0")
        return chunked_draw(int(b), self.w, self.chunks, self.generator)

    def reset_table(self) -> None:
        """Forget SAGA's table: the next evaluation fills it with all views."""
        self.table = None

    def data_gradient(self, op: LinearOperator, z: Tensor, y: Tensor) -> Tensor:
        """ODER's estimate of ``A^T (A z - y)`` from one draw of w views (class docstring)."""
        idx = self.draw(op)
        if idx is None:
            return super().data_gradient(op, z, y)
        b = float(op.views)
        sub, rows = op.views_subset(idx), idx.to(y.device)
        if self.variance == "plain":
            return (b / idx.numel()) * sub.A_adjoint(sub.A(z) - y[:, rows])
        if self.table is None or self.table[0].shape != y.shape or self.table[0].device != y.device:
            r = op.A(z) - y  # the draw above is still taken: the draw sequence is the same either way
            self.table = (r.detach(), op.A_adjoint(r).detach())
            return op.A_adjoint(r)  # the exact gradient, with its graph
        r_new = sub.A(z) - y[:, rows]
        r, S = self.table
        change = sub.A_adjoint(r_new - r[:, rows])
        r = r.clone()
        r[:, rows] = r_new.detach()
        self.table = (r, S + change.detach())
        return S + (b / idx.numel()) * change

    def mean_map(self, z: Tensor, op: LinearOperator, y: Tensor) -> Tensor:
        """The full-batch T (all b views), whose unbiased estimate every evaluation draws."""
        w, self.w = self.w, 0
        try:
            return self.f(z, op, y)
        finally:
            self.w = w

    def reconstruct_with_start(self, y: Tensor, op: LinearOperator, solve: dict[str, Any] | None = None,
                               z0: Tensor | None = None, trace: dict[str, Any] | None = None
                               ) -> tuple[Tensor, Info, Tensor]:
        if not self.training:  # reproducible reconstructions
            self.generator.manual_seed(self.seed)
        self.reset_table()  # each solve starts its own SAGA table
        try:
            return super().reconstruct_with_start(y, op, solve, z0, trace)
        finally:
            self.reset_table()


register_learned(REDMap, "RED (DEQ): RED fixed point with a learned DnCNN, Nesterov forward, implicit backward")

register_model("oder", kind="reconstruction", summary="ODER: online RED (DEQ) with w chunk-drawn views")(ODERMap)


@register("oder", summary="ODER: online RED (DEQ), w chunk-drawn views per iteration (-p w=, 0: all)",
          trainable=True)
class ODERSolver(LearnedSolver):
    """The trained ODER map; ``-p w=`` sets the views per iteration at inference (-1: as trained)."""

    method = "oder"

    @dataclass
    class Params(equilibrium_params()):
        w: int = param(-1, "views per iteration at inference (-1: as trained, 0: all)", low=-1)
        variance: str = param("trained", "data-gradient estimate at inference: plain, saga (variance-reduced: "
                                         "a table of every view's last residual) or as trained",
                              choices=("trained", *VARIANCE))

    def solve(self, op: LinearOperator, y: Tensor, **kwargs: Any):
        trained = self.model.w, self.model.variance
        if self.params.w >= 0:
            self.model.w = int(self.params.w)
        if self.params.variance != "trained":
            self.model.variance = self.params.variance
        try:
            return super().solve(op, y, **kwargs)
        finally:
            self.model.w, self.model.variance = trained
