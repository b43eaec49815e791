"""The contract every forward operator of scicli fulfils.

A forward operator is a linear map ``A`` from an image batch ``x`` of shape ``(N, C, H, W)``
(C frames, spectral bands or image channels) to measurements ``y`` of shape
``(N, *meas_shape)``, real or complex, with its adjoint ``A^T`` (``A^H`` for complex
measurements: the adjoint for the real inner product ``Re <y, A x> = <A^H y, x>``).

Solvers use only what this class declares:

    A, A_adjoint            the map and its adjoint
    norm()                  ||A||^2 = largest eigenvalue of A^T A (power iteration by default)
    gram_inverse(r, gamma)  (A A^T + gamma I)^-1 r, closed form, only where ``has_gram_inverse``
                            (GAP-type methods require it and refuse operators without it)
    project(v, y, step)     v + step * A^T (A A^T)^-1 (y - A v), the projection onto {A x = y}
    A_dagger(y)             minimum-norm solution of A x = y (closed form or conjugate gradients)
    prox_l2(z, y, gamma)    argmin_x ||A x - y||^2 / 2 + gamma / 2 ||x - z||^2
                            (Woodbury with the closed-form inverse, else conjugate gradients)
    start(y)                the operator's linear estimate to start iterations from (A^T y)

and, for files and training, class-level facts: the names of the arrays that define an
instance (``roles``), how to build one from those arrays (:meth:`from_arrays`) and how to draw
a random instance (:meth:`random`). A new operator is one file: subclass, implement ``A``,
``A_adjoint`` and those class methods, and decorate with ``@register_operator``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from scicli.core.errors import UsageError
from scicli.core.registry import Registry

OPERATORS: Registry = Registry("operator")
"""Forward operators by name (``--operator NAME``); entries are :class:`LinearOperator` subclasses."""


def register_operator(name: str, *, summary: str, aliases: tuple[str, ...] = ()):
    """Class decorator: register a :class:`LinearOperator` subclass under ``name``."""

    def deco(cls: type[LinearOperator]) -> type[LinearOperator]:
        cls.name = name
        OPERATORS.register(name, summary=summary, aliases=aliases)(cls)
        return cls

    return deco


def inner(a: Tensor, b: Tensor) -> Tensor:
    """Real inner product ``Re sum conj(a) b`` over everything (real or complex tensors)."""
    if a.is_complex() or b.is_complex():
        return (torch.conj(a) * b).real.sum()
    return (a * b).sum()


def batch_norm(t: Tensor) -> Tensor:
    """Euclidean norm of every sample of a batch (N, ...) -> (N,), real or complex."""
    return torch.linalg.vector_norm(t.reshape(t.shape[0], -1), dim=1)


def _bdot(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample real inner products, shaped to broadcast against (N, ...)."""
    prod = (torch.conj(a) * b).real if (a.is_complex() or b.is_complex()) else a * b
    return prod.reshape(prod.shape[0], -1).sum(dim=1).reshape(-1, *([1] * (a.ndim - 1)))


def conjugate_gradient(apply, b: Tensor, x0: Tensor | None = None, *, max_iter: int = 100,
                       tol: float = 1e-6) -> Tensor:
    """Solve ``apply(x) = b`` for a symmetric positive (semi-)definite ``apply``, per sample.

    Starting from zero on a consistent system, the iterates stay in the range of ``apply`` (the
    minimum-norm solution for normal equations). Stops when every sample's relative residual
    ``||b - apply(x)|| / ||b||`` is below ``tol`` or after ``max_iter`` steps.
    """
    x = torch.zeros_like(b) if x0 is None else x0.clone()
    r = b - apply(x) if x0 is not None else b.clone()
    p = r.clone()
    rr = _bdot(r, r)
    b_norm2 = _bdot(b, b).clamp_min(torch.finfo(b.real.dtype if b.is_complex() else b.dtype).tiny)
    for _ in range(max_iter):
        if bool((rr <= tol * tol * b_norm2).all()):
            break
        Ap = apply(p)
        pAp = _bdot(p, Ap)
        alpha = torch.where(pAp > 0, rr / pAp.clamp_min(1e-300 if pAp.dtype == torch.float64 else 1e-30),
                            torch.zeros_like(rr))
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = _bdot(r, r)
        p = r + torch.where(rr > 0, rr_new / rr.clamp_min(1e-300 if rr.dtype == torch.float64 else 1e-30),
                            torch.zeros_like(rr)) * p
        rr = rr_new
    return x


class LinearOperator(nn.Module):
    """Base class of forward operators (an ``nn.Module``: ``op.to(device, dtype)`` moves its arrays).

    Subclasses set ``roles`` and implement :meth:`A`, :meth:`A_adjoint`, :meth:`from_arrays`,
    :meth:`arrays`, :meth:`random` and :meth:`example`; they override :meth:`gram_inverse`
    (and set ``has_gram_inverse``) where ``(A A^T)^-1`` has a closed form, and :meth:`norm`
    where ``||A||^2`` has one.
    """

    name: ClassVar[str] = ""
    roles: ClassVar[dict[str, str]] = {}
    """Arrays that define an instance, besides the measurements: role -> description. The first
    is the one ``--mask FILE`` names on the command line."""
    optional_roles: ClassVar[tuple[str, ...]] = ()
    """Roles that may be absent (e.g. a learned linear initialiser)."""
    role_ndim: ClassVar[dict[str, int]] = {}
    """Axes of a role array shared by all measurements; one more axis (leading) is one per measurement."""
    role_aliases: ClassVar[dict[str, tuple[str, ...]]] = {}
    """Further names of role arrays (and of ``meas``) inside .mat/.npz files of this operator's
    data; a file holding one of them is recognised as this operator's."""
    channels: ClassVar[int | None] = None
    """Channels C of x when fixed by the operator (1 for grey images); None: from the data."""
    meas_ndim: ClassVar[int] = 2
    """Axes of one measurement (2 for a snapshot (H, W'), k-space (H, W) or blocks (n, m))."""
    has_gram_inverse: ClassVar[bool] = False
    """True when :meth:`gram_inverse` is closed-form (GAP-type methods need it)."""
    complex_meas: ClassVar[bool] = False
    """True when the measurements are complex (k-space)."""
    x_unit: ClassVar[str] = "frame"
    """What one channel of x is, for reports: frame, band, image."""
    x_has_peak: ClassVar[bool] = True
    """Whether x is an intensity image with a peak value (``--max-value``); False for unknowns
    such as sparse codes, whose scale is checked for overflow only."""
    method_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    """Per-method parameter defaults on this operator, ``{method: {param: value}}`` (e.g. the TV
    weight chosen for CT on validation data): a solver uses them for the parameters its user did
    not set (:meth:`scicli.methods.Solver.params_for`)."""
    nonnegative_meas: ClassVar[bool] = True
    """Whether noiseless measurements are >= 0 (intensities through a non-negative mask); a file
    with a significant negative part then draws a warning (block CS and MRI set False)."""

    # -- the map --------------------------------------------------------------------------
    def A(self, x: Tensor) -> Tensor:
        """``y = A x``: (N, C, H, W) -> (N, *meas_shape)."""
        raise NotImplementedError

    def A_adjoint(self, y: Tensor) -> Tensor:
        """``A^T y`` (``A^H y``): (N, *meas_shape) -> (N, C, H, W)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.A(x)

    # -- capabilities with generic defaults ---------------------------------------------------
    def gram_inverse(self, r: Tensor, gamma: float = 0.0) -> Tensor:
        """``(A A^T + gamma I)^-1 r`` in closed form (where ``has_gram_inverse``)."""
        raise UsageError(
            f"operator '{self.name}' has no closed-form (A A^T)^-1: GAP-type methods do not apply "
            f"(use admm-tv, gd-tv, pnp-admm or red)"
        )

    def require_gram_inverse(self, method: str) -> None:
        """One-line refusal for a method that needs the closed-form ``(A A^T)^-1``."""
        if not self.has_gram_inverse:
            raise UsageError(
                f"{method} needs a closed-form (A A^T)^-1, which operator '{self.name}' lacks "
                f"(use admm-tv, gd-tv, pnp-admm or red)"
            )

    def project(self, v: Tensor, y: Tensor, step: float = 1.0) -> Tensor:
        """``v + step * A^T (A A^T)^-1 (y - A v)``: for step 1 the Euclidean projection onto ``{A x = y}``."""
        return v + step * self.A_adjoint(self.gram_inverse(y - self.A(v)))

    def A_dagger(self, y: Tensor, *, max_iter: int = 100, tol: float = 1e-6) -> Tensor:
        """Minimum-norm least-squares solution of ``A x = y``: ``A^T (A A^T)^-1 y`` in closed
        form, else conjugate gradients on ``A^T A x = A^T y`` from zero."""
        if self.has_gram_inverse:
            return self.A_adjoint(self.gram_inverse(y))
        return conjugate_gradient(lambda x: self.A_adjoint(self.A(x)), self.A_adjoint(y), max_iter=max_iter, tol=tol)

    def prox_l2(self, z: Tensor, y: Tensor, gamma: float, *, max_iter: int = 100, tol: float = 1e-6) -> Tensor:
        """``argmin_x ||A x - y||^2 / 2 + gamma / 2 ||x - z||^2 = (A^T A + gamma I)^-1 (A^T y + gamma z)``.

        With a closed-form inverse this is the Woodbury form ``z + A^T (A A^T + gamma I)^-1 (y - A z)``;
        otherwise conjugate gradients on the normal equations, warm-started at z.
        """
        if not gamma > 0:
            raise UsageError(f"prox_l2 needs gamma > 0, got {gamma}")
        if self.has_gram_inverse:
            return z + self.A_adjoint(self.gram_inverse(y - self.A(z), gamma))
        rhs = self.A_adjoint(y) + gamma * z
        return conjugate_gradient(lambda x: self.A_adjoint(self.A(x)) + gamma * x, rhs, z, max_iter=max_iter, tol=tol)

    def start(self, y: Tensor) -> Tensor:
        """The linear estimate iterations start from: ``A^T y``."""
        return self.A_adjoint(y)

    def norm(self, *, max_iter: int = 200, tol: float = 1e-7, like: Tensor | None = None,
             generator: torch.Generator | None = None) -> float:
        """``||A||^2``, the largest eigenvalue of ``A^T A`` (the Lipschitz constant of the gradient
        of ``||A x - y||^2 / 2``), by power iteration from a random start shaped like ``like``
        (default: the operator's :meth:`example_input`)."""
        x = self.example_input(generator=generator) if like is None else torch.randn(
            like.shape, generator=generator, dtype=like.real.dtype if like.is_complex() else like.dtype
        ).to(like.device)
        x = x / torch.linalg.vector_norm(x)
        value = 0.0
        for _ in range(max_iter):
            z = self.A_adjoint(self.A(x))
            new = float(inner(x, z))
            x = z / torch.linalg.vector_norm(z).clamp_min(1e-30)
            if abs(new - value) <= tol * max(abs(new), 1e-30):
                value = new
                break
            value = new
        return value

    # -- checks ------------------------------------------------------------------------------
    def example_input(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        """A random x batch this operator accepts (for power iteration and the contract tests)."""
        raise NotImplementedError

    def example_meas(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        """A random y batch in this operator's measurement space (complex where it is)."""
        y = self.A(self.example_input(n, generator=generator))
        noise = torch.randn(y.shape + ((2,) if y.is_complex() else ()), generator=generator,
                            dtype=y.real.dtype if y.is_complex() else y.dtype).to(y.device)
        return torch.view_as_complex(noise) if y.is_complex() else noise

    def adjointness_error(self, n: int = 2, *, generator: torch.Generator | None = None) -> float:
        """Relative error ``|<A u, v> - <u, A^T v>| / (||A u|| ||v||)`` on random u, v."""
        u = self.example_input(n, generator=generator)
        v = self.example_meas(n, generator=generator)
        Au = self.A(u)
        lhs, rhs = inner(Au, v), inner(u, self.A_adjoint(v))
        scale = torch.linalg.vector_norm(Au) * torch.linalg.vector_norm(v)
        return float((lhs - rhs).abs() / scale.clamp_min(1e-300))

    # -- files and training ----------------------------------------------------------------------
    @classmethod
    def settings(cls, factory: str = "from_arrays") -> dict[str, inspect.Parameter]:
        """The keyword settings of ``cls.from_arrays`` (or ``cls.random``): what
        ``--operator-param NAME=VALUE`` may set, with their defaults."""
        return {name: p for name, p in inspect.signature(getattr(cls, factory)).parameters.items()
                if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in ("meas_shape", "rng")}

    @classmethod
    def recognise(cls, keys: set[str]) -> bool:
        """True when a container with these (lower-case) entry names holds this operator's data:
        one of its ``role_aliases``, or all its roles other than the generic ``mask``."""
        if any(a.lower() in keys for names in cls.role_aliases.values() for a in names):
            return True
        specific = [r for r in cls.roles if r != "mask"]
        return bool(specific) and all(r.lower() in keys for r in specific)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, meas_shape: tuple[int, ...] | None = None,
                    **options: Any) -> "LinearOperator":
        """An instance from the arrays of its ``roles`` (checked: one-line UsageError on a misfit);
        ``meas_shape`` (K, ...) of the measurements it is for, where the operator needs it to
        check or complete its shape (e.g. the number of CASSI bands)."""
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays of its ``roles`` (what ``scicli simulate`` writes beside the measurements)."""
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        """Scalar settings that, with :meth:`arrays`, rebuild this instance."""
        return {}

    def signature(self) -> dict[str, Any]:
        """What learned weights depend on: the facts of this instance a network trained on another
        would not fit (B frames, m measurements per block, a sampling ratio). Whole numbers must
        be equal, fractions within 10 % relative (:func:`signature_mismatch`): random masks of one
        nominal ratio vary a little."""
        return {}

    @classmethod
    def for_images(cls, arrays: dict[str, np.ndarray], shape: tuple[int, ...], **options: Any) -> "LinearOperator":
        """An instance from the arrays of a file (``--mask FILE`` of training) for images of
        ``shape`` (C, H, W): :meth:`from_arrays`, completed by the shape where the arrays leave
        it open (the image size of block CS)."""
        return cls.from_arrays(arrays, **options)

    @classmethod
    def random(cls, shape: tuple[int, ...], *, rng: np.random.Generator, **options: Any) -> "LinearOperator":
        """A random instance for images of ``shape`` (C, H, W) (``scicli simulate`` and training)."""
        raise NotImplementedError

    @classmethod
    def example(cls, *, rng: np.random.Generator, dtype: torch.dtype = torch.float64) -> "LinearOperator":
        """A tiny random instance (contract tests, dense checks)."""
        raise NotImplementedError

    # -- dense form (tiny instances only) -------------------------------------------------------------
    def dense(self) -> Tensor:
        """The matrix of A on one sample (``numel(y) x numel(x)``), column by column: tests only."""
        x = self.example_input(1)
        cols = []
        basis = torch.zeros(x.numel(), dtype=x.dtype, device=x.device)
        for i in range(x.numel()):
            basis.zero_()
            basis[i] = 1
            cols.append(self.A(basis.reshape(x.shape)).reshape(-1))
        return torch.stack(cols, dim=1)


class DiagonalGramOperator(LinearOperator):
    """An operator with ``A A^T = diag(R)`` (video SCI, CASSI): subclasses call
    :meth:`set_gram_diagonal` with ``R`` once, and get the closed-form inverse and norm.

    Entries where ``R == 0`` (no mask open) carry no information; the guarded copy sets them to
    1 so that ``gamma = 0`` divisions stay finite (and leave those entries of r unchanged)."""

    has_gram_inverse = True

    def set_gram_diagonal(self, energy: Tensor) -> None:
        """Register ``energy`` (R, unguarded) and ``R`` (guarded) as buffers: they move with ``.to``."""
        self.register_buffer("energy", energy)
        self.register_buffer("R", torch.where(energy == 0, torch.ones_like(energy), energy))

    def gram_inverse(self, r: Tensor, gamma: float = 0.0) -> Tensor:
        """``(A A^T + gamma)^-1 r = r / (R + gamma)``; for gamma = 0 the guarded R."""
        return r / (self.energy + gamma) if gamma > 0 else r / self.R

    def norm(self, **_: Any) -> float:
        """``||A||^2 = ||A A^T|| = max R`` (the Lipschitz constant of the data term)."""
        return float(self.energy.max())


def signature_mismatch(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """``NAME VALUE`` for every fact of ``expected`` that ``actual`` does not match (floats within
    10 % relative, everything else equal)."""
    out = []
    for key, want in expected.items():
        have = actual.get(key)
        if isinstance(want, float) and isinstance(have, (int, float)) and not isinstance(have, bool):
            same = abs(float(have) - want) <= 0.1 * max(abs(want), 1e-12)
        else:
            same = have == want
        if not same:
            out.append(f"{key} {want:g}" if isinstance(want, float) else f"{key} {want}")
    return out


def check_finite_positive(name: str, value: float) -> float:
    """A finite value > 0, else a UsageError naming the option."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UsageError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def mask_stack(mask: Tensor, ndim: int, complaint: str, error: type[Exception] = ValueError) -> Tensor:
    """A mask shared by all measurements (``ndim`` axes) or one per measurement (``ndim + 1``
    axes, the first N) as the stack ``(N, ...)``, N = 1 for a shared one, in floating point and
    contiguous (strided views, e.g. from frames-last files, slow every product).

    Any other number of axes raises ``error(complaint.format(shape=tuple(mask.shape)))``.
    """
    if mask.ndim == ndim:
        mask = mask.unsqueeze(0)
    if mask.ndim != ndim + 1:
        raise error(complaint.format(shape=tuple(mask.shape)))
    if not torch.is_floating_point(mask):
        mask = mask.float()
    return mask.contiguous()
