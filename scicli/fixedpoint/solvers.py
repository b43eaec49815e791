"""Fixed-point solvers for ``z = f(z)``: plain (damped) iteration, Anderson acceleration, Broyden.

Every solver takes ``f`` (a map on tensors of shape (N, ...)) and a start ``z0`` and returns
``(z, info)``. The residual of sample i is ``||f(z_i) - z_i|| / (||f(z_i)|| + eps)``; the
iteration stops when the largest one is at most ``tol`` (converged), after ``max_iter``
evaluations of f, or when it diverges: a non-finite value, or a step ``||f(z) - z||`` that grew
for ``patience`` steps in a row (``patience=0``: never; a stochastic map such as ODER's
minibatch steps grows by chance). On divergence the returned z is the iterate of
smallest step ``||f(z) - z||`` seen, and ``info.diverged`` says why (callers warn; nothing is silent).

    fixed-point   z <- (1 - beta) z + beta f(z)
    anderson      keep the last m pairs (z_j, f(z_j)), residuals g_j = f(z_j) - z_j, and take
                  alpha = argmin ||sum_j alpha_j g_j||^2 + lam ||alpha||^2 * scale,  sum alpha = 1
                  z <- beta sum_j alpha_j f(z_j) + (1 - beta) sum_j alpha_j z_j
                  (Walker and Ni 2011; per sample, lam relative to the mean ||g_j||^2);
                  with ``restart = c > 0`` a sample whose ||g|| grew by more than c times in
                  one step forgets the pairs before it (restarted Anderson: an old pair of small
                  residual, such as a start the map is about to leave, would pull the mixture back)
    nesterov      z_k = f(s_k),  s_{k+1} = z_k + (q_{k-1} - 1) / q_k (z_k - z_{k-1}),
                  q_k = (1 + sqrt(1 + 4 q_{k-1}^2)) / 2, q_0 = 1   (Picard with Nesterov's
                  extrapolation: the forward pass of RED (DEQ) and ODER, Liu et al. 2022),
                  restarted (q = 1, no extrapolation) when ||f(s) - s|| grows (adaptive restart,
                  O'Donoghue and Candes 2015: momentum alone oscillates around the fixed point);
                  per sample (q and the restart of each image of a batch are its own)
    broyden       quasi-Newton on g(z) = f(z) - z = 0 with the "good" Broyden update of an
                  inverse Jacobian kept in low rank, J^-1 = -I + U V^T (the last m updates):
                  z <- z - beta J^-1 g(z)   (the first step is the plain one, J^-1 = -I), then
                  J^-1 += (dz - J^-1 dg) (dz^T J^-1) / (dz^T J^-1 dg)   (Sherman-Morrison);
                  per sample; an update with a vanishing denominator is skipped, and the memory
                  is cleared when a step makes ||g|| grow by more than 1.5 times (the model misled
                  it: restart from -I)

``make_solver(name, **options)`` checks option names and ranges (UsageError otherwise).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import Tensor

from scicli.core.errors import UsageError
from scicli.core.params import coerce
from scicli.core.registry import Registry

Map = Callable[[Tensor], Tensor]
FixedPointSolver = Callable[[Map, Tensor], "tuple[Tensor, Info]"]

FIXED_POINT: Registry = Registry("fixed-point solver")


@dataclass
class Info:
    """What a fixed-point solve did: residual per evaluation (max over the batch), the number
    of evaluations of f, whether it met the tolerance, and why it stopped early if it did."""

    residuals: list[float] = field(default_factory=list)
    steps: int = 0
    converged: bool = False
    diverged: str = ""  # empty, or the reason ("non-finite values", "residual grew ...")
    best_step: int = 0

    @property
    def residual(self) -> float:
        """The residual of the iterate the solver returned: the last evaluation, or after a
        divergence the one of smallest step."""
        if self.diverged:
            return self.residuals[self.best_step - 1] if self.best_step else math.inf
        return self.residuals[-1] if self.residuals else math.inf


@dataclass
class Options:
    """Options common to all solvers."""

    tol: float = 1e-3
    max_iter: int = 50
    beta: float = 1.0
    patience: int = 6

    def check(self, name: str) -> None:
        if not (self.tol >= 0 and math.isfinite(self.tol)):
            raise UsageError(f"{name}: tol must be >= 0, got {self.tol}")
        if self.max_iter < 1:
            raise UsageError(f"{name}: max_iter must be >= 1, got {self.max_iter}")
        if not 0 < self.beta <= 2:
            raise UsageError(f"{name}: beta (damping) must be in (0, 2], got {self.beta}")
        if self.patience < 0:
            raise UsageError(f"{name}: patience must be >= 0 (0: never stop on growth), got {self.patience}")


@dataclass
class AndersonOptions(Options):
    m: int = 5
    lam: float = 1e-4
    restart: float = 0.0
    """Forget a sample's older pairs when its ||f(z) - z|| grows by more than this factor in one
    step (0: never)."""

    def check(self, name: str) -> None:
        super().check(name)
        if self.m < 1:
            raise UsageError(f"{name}: m (history size) must be >= 1, got {self.m}")
        if not (self.lam >= 0 and math.isfinite(self.lam)):
            raise UsageError(f"{name}: lam (regularisation) must be >= 0, got {self.lam}")
        if not (self.restart == 0 or (self.restart >= 1 and math.isfinite(self.restart))):
            raise UsageError(f"{name}: restart (a growth factor) must be 0 (never) or >= 1, got {self.restart}")


BROYDEN_RESTART = 1.5
"""Broyden clears its memory for a sample whose ||f(z) - z|| grew by more than this factor in one
step (on Drop with deq-gap, 7 evaluations, beta 1.5: 39.65 dB; restarting on any growth: 39.26)."""


@dataclass
class BroydenOptions(Options):
    m: int = 8

    def check(self, name: str) -> None:
        super().check(name)
        if self.m < 1:
            raise UsageError(f"{name}: m (memory) must be >= 1, got {self.m}")


def relative_residual(fz: Tensor, z: Tensor) -> Tensor:
    """Per-sample relative residual ``||f(z) - z|| / (||f(z)|| + eps)``, shape (N,)."""
    diff = torch.linalg.vector_norm((fz - z).flatten(1), dim=1)
    return diff / (torch.linalg.vector_norm(fz.flatten(1), dim=1) + 1e-9)


class _Monitor:
    """Convergence / divergence bookkeeping shared by the solvers; keeps the best iterate."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.info = Info()
        self.best: Tensor | None = None
        self.best_value = math.inf
        self.last: Tensor | None = None
        self.grew = 0
        self.last_size = math.inf

    def update(self, fz: Tensor, z: Tensor) -> bool:
        """Record one evaluation; True when the solver must stop."""
        info = self.info
        info.steps += 1
        if not bool(torch.isfinite(fz).all()):
            info.diverged = f"non-finite values at evaluation {info.steps}"
            info.residuals.append(math.nan)
            return True
        r = float(relative_residual(fz.detach(), z.detach()).max())
        size = float(torch.linalg.vector_norm((fz - z).detach()))  # growth is judged on ||f(z) - z||
        self.grew = self.grew + 1 if size > self.last_size else 0
        self.last_size = size
        info.residuals.append(r)
        self.last = fz
        if size < self.best_value:  # keep f(z) of the smallest step: one more application of the map
            self.best_value, info.best_step = size, info.steps
            self.best = fz.detach().clone()
        if r <= self.opts.tol:
            info.converged = True
            return True
        if self.opts.patience and self.grew >= self.opts.patience:
            info.diverged = f"the step ||f(z) - z|| grew {self.grew} times in a row (smallest at step {info.best_step})"
            return True
        return False

    def result(self, z: Tensor) -> tuple[Tensor, Info]:
        """The last f(z); after a divergence f(z) of the smallest step seen (z itself if no
        finite evaluation happened)."""
        if self.info.diverged or self.last is None:
            return (self.best if self.best is not None else z), self.info
        return self.last, self.info


Step = Callable[[int, Tensor, Tensor], Tensor]
"""``step(k, z_k, f(z_k)) -> z_{k+1}``: the update rule that tells one solver from another."""


def _iterate(f: Map, z0: Tensor, opts: Options, step: Step) -> tuple[Tensor, Info]:
    """The loop every solver runs: evaluate ``f(z_k)``, let a :class:`_Monitor` record it and
    stop (converged, diverged), else ``z_{k+1} = step(k, z_k, f(z_k))``, for at most
    ``max_iter`` evaluations (no step follows the last one); the monitor's result."""
    mon = _Monitor(opts)
    z = z0
    for k in range(opts.max_iter):
        fz = f(z)
        if mon.update(fz, z) or k == opts.max_iter - 1:
            break
        z = step(k, z, fz)
    return mon.result(z)


@FIXED_POINT.register("fixed-point", summary="damped Picard iteration z <- (1 - beta) z + beta f(z)",
                      options=Options)
def fixed_point(f: Map, z0: Tensor, opts: Options | None = None) -> tuple[Tensor, Info]:
    opts = opts or Options()
    beta = opts.beta

    def step(k: int, z: Tensor, fz: Tensor) -> Tensor:
        return fz if beta == 1 else (1 - beta) * z + beta * fz

    return _iterate(f, z0, opts, step)


@FIXED_POINT.register("nesterov", summary="Picard iteration with Nesterov extrapolation (RED / ODER forward)",
                      options=Options)
def nesterov(f: Map, z0: Tensor, opts: Options | None = None) -> tuple[Tensor, Info]:
    opts = opts or Options()
    n = z0.shape[0]  # per sample: one image's momentum never depends on the others of its batch
    z_prev = z0
    q = torch.ones(n, dtype=torch.float64, device=z0.device)
    last = torch.full((n,), math.inf, dtype=torch.float64, device=z0.device)

    def step(k: int, s: Tensor, fz: Tensor) -> Tensor:  # s: the extrapolated point f was applied to
        nonlocal z_prev, q, last
        size = torch.linalg.vector_norm((fz - s).detach().reshape(n, -1), dim=1).to(torch.float64)
        q = torch.where(size > last, torch.ones_like(q), q)  # restart the momentum of those that grew
        last = size
        q_next = (1.0 + torch.sqrt(1.0 + 4.0 * q * q)) / 2.0
        coef = ((q - 1.0) / q_next).to(fz.real.dtype).view(n, *([1] * (fz.dim() - 1)))  # real for complex fz
        s_next = fz + coef * (fz - z_prev)
        z_prev, q = fz, q_next
        return s_next

    return _iterate(f, z0, opts, step)


@FIXED_POINT.register("anderson", summary="Anderson acceleration (history m, damping beta, regularisation lam)",
                      options=AndersonOptions)
def anderson(f: Map, z0: Tensor, opts: AndersonOptions | None = None) -> tuple[Tensor, Info]:
    opts = opts or AndersonOptions()
    N = z0.shape[0]
    Z: list[Tensor] = []  # the last m iterates and their images, flattened per sample; a new
    F: list[Tensor] = []  # tensor each step (no in-place buffer), so a recorded solve backprops
    first = torch.zeros(N, dtype=torch.long)  # restart: per sample, the first step whose pair it still uses
    last_size: Tensor | None = None

    def step(k: int, z: Tensor, fz: Tensor) -> Tensor:
        nonlocal first, last_size
        Z.append(z.reshape(N, -1))
        F.append(fz.reshape(N, -1))
        if len(Z) > opts.m:
            del Z[0], F[0]
        n = len(Z)
        Zs, Fs = torch.stack(Z, dim=1), torch.stack(F, dim=1)  # (N, n, D): the pairs of steps k-n+1 .. k
        G = Fs - Zs  # residuals
        H = torch.bmm(G, G.transpose(1, 2))  # (N, n, n)
        ones = H.new_ones((N, n, 1))
        if opts.restart:
            size = torch.linalg.vector_norm(G[:, -1].detach(), dim=1).cpu()
            if last_size is not None:
                first = torch.where(size > opts.restart * last_size, k, first)
            last_size = size
            used = (torch.arange(k - n + 1, k + 1)[None, :] >= first[:, None]).to(device=H.device)  # (N, n)
            if not bool(used.all()):  # forgotten pairs: a decoupled unit row, right-hand side 0, weight 0
                pair = used[:, :, None] & used[:, None, :]
                H = torch.where(pair, H, torch.zeros((), dtype=H.dtype, device=H.device))
                H = H + torch.diag_embed((~used).to(H.dtype))
                ones = used.to(H.dtype)[:, :, None]
        kept = ones[:, :, 0]
        scale = ((H.diagonal(dim1=1, dim2=2) * kept).sum(dim=1) / kept.sum(dim=1)).clamp_min(1e-30)
        H = H + (opts.lam * scale)[:, None, None] * torch.eye(n, dtype=H.dtype, device=H.device)
        try:
            a = torch.linalg.solve(H, ones)
        except RuntimeError:  # singular even with regularisation: fall back to the plain step
            a = None
        if a is not None:
            a = a / a.sum(dim=1, keepdim=True)
        if a is None or not bool(torch.isfinite(a).all()):
            a = torch.zeros_like(ones)
            a[:, n - 1] = 1
        mixed_f = torch.bmm(a.transpose(1, 2), Fs).reshape_as(z0)
        if opts.beta == 1:
            return mixed_f
        mixed_z = torch.bmm(a.transpose(1, 2), Zs).reshape_as(z0)
        return opts.beta * mixed_f + (1 - opts.beta) * mixed_z

    return _iterate(f, z0, opts, step)


@FIXED_POINT.register("broyden", summary="Broyden quasi-Newton on f(z) - z (memory m, damping beta)",
                      options=BroydenOptions)
def broyden(f: Map, z0: Tensor, opts: BroydenOptions | None = None) -> tuple[Tensor, Info]:
    opts = opts or BroydenOptions()
    N = z0.shape[0]
    U = z0.new_zeros((N, z0[0].numel(), 0))  # J^-1 = -I + U V^T, columns: the updates kept
    V = z0.new_zeros((N, z0[0].numel(), 0))
    previous: tuple[Tensor, Tensor] | None = None  # (z, g) of the evaluation before, flattened

    def inv_j(vec: Tensor) -> Tensor:  # J^-1 vec, vec (N, D)
        return -vec + torch.bmm(U, torch.bmm(V.transpose(1, 2), vec[:, :, None]))[:, :, 0]

    def inv_j_t(vec: Tensor) -> Tensor:  # J^-T vec
        return -vec + torch.bmm(V, torch.bmm(U.transpose(1, 2), vec[:, :, None]))[:, :, 0]

    def step(k: int, z_in: Tensor, fz: Tensor) -> Tensor:
        nonlocal U, V, previous
        z, g = z_in.reshape(N, -1), (fz - z_in).reshape(N, -1)
        if previous is not None:  # update J^-1 with the secant pair (dz, dg)
            dz, dg = z - previous[0], g - previous[1]
            jdg = inv_j(dg)
            v = inv_j_t(dz)
            denom = (v * dg).sum(dim=1, keepdim=True)
            ok = denom.abs() > 1e-10 * dz.norm(dim=1, keepdim=True) * dg.norm(dim=1, keepdim=True)
            u = torch.where(ok, (dz - jdg) / torch.where(ok, denom, torch.ones_like(denom)), torch.zeros_like(dz))
            grew = g.norm(dim=1) > BROYDEN_RESTART * previous[1].norm(dim=1)
            if bool(grew.any()):  # the low-rank model misled these samples: restart them from -I
                keep = (~grew).to(U.dtype)[:, None, None]
                U, V = U * keep, V * keep
                u = u * (~grew).to(u.dtype)[:, None]
            U = torch.cat([U, u[:, :, None]], dim=2)[:, :, -opts.m:]
            V = torch.cat([V, v[:, :, None]], dim=2)[:, :, -opts.m:]
        previous = z, g
        return (z - opts.beta * inv_j(g)).reshape_as(z0)

    return _iterate(f, z0, opts, step)


def make_options(name: str, **options: Any) -> Options:
    """Options of solver ``name``; unknown names or bad values are one-line UsageErrors."""
    cls = FIXED_POINT.get(name).extra["options"]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)} for the '{name}' fixed-point solver "
                         f"(its options: {', '.join(fields)})")
    values = {}
    for key, value in options.items():
        kind = type(fields[key].default)
        values[key] = coerce(key, value, kind, f"{name}: {key}={value} is not a valid {kind.__name__}")
    opts = cls(**values)
    opts.check(name)
    return opts


def make_solver(name: str = "anderson", **options: Any) -> FixedPointSolver:
    """``solve(f, z0) -> (z, info)`` for the registered solver ``name`` with checked options."""
    entry = FIXED_POINT.get(name)
    opts = make_options(name, **options)

    def solve(f: Map, z0: Tensor) -> tuple[Tensor, Info]:
        return entry.factory(f, z0, opts)

    return solve


def settings_options(settings: dict[str, Any], tol: float, max_iter: int) -> dict[str, Any]:
    """Options for the solver named ``settings['solver']``: ``tol`` and ``max_iter`` as given,
    every other option it has (beta, m, lam, ...) taken from ``settings`` when present there."""
    cls = FIXED_POINT.get(settings["solver"]).extra["options"]
    shared = {f.name: settings[f.name] for f in dataclasses.fields(cls)
              if f.name in settings and f.name not in ("tol", "max_iter")}
    return {**shared, "tol": tol, "max_iter": max_iter}
