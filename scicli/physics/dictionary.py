"""``dictionary``: sparse coding, a signal as a combination of the atoms of a dictionary.

A signal y of n values (a 10 x 10 image patch, flattened row-major) is modelled as

    y = D z,        D = [d_1, ..., d_m]  (n, m), usually overcomplete (m > n), atoms ||d_j|| = 1

with a sparse code z of m coefficients. The unknown x of the operator contract is the code,
shaped ``(N, m, 1, 1)`` (m channels of a 1 x 1 image), and the measurement is the signal,
``(N, n)``:

    A z   = D z                 (N, m, 1, 1) -> (N, n)
    A^T y = D^T y               (N, n)       -> (N, m, 1, 1)

``A A^T = D D^T`` is one n x n matrix, eigendecomposed once, ``D D^T = U diag(lam) U^T``, so
``gram_inverse`` is closed-form, ``(D D^T + gamma I)^-1 r = U diag(1 / (lam + gamma)) U^T r``
(the pseudo-inverse for gamma = 0 where D has fewer than n independent atoms), and
``norm() = ||D||^2 = max lam``, the Lipschitz constant L of ISTA / FISTA on
``||y - D z||^2 / 2 + alpha ||z||_1`` (Daubechies, Defrise, De Mol 2004; Beck and Teboulle
2009) and of LISTA's initialisation (Gregor and LeCun 2010).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from scicli.core.errors import DataError, UsageError
from scicli.physics.base import LinearOperator, register_operator

DEFAULT_SIGNAL = 100
"""n of a random dictionary: a 10 x 10 patch."""


@register_operator("dictionary", summary="sparse coding: y = D z, a signal from the atoms of a dictionary D (n, m)")
class Dictionary(LinearOperator):
    """Sparse-coding operator of one dictionary ``D`` (n, m), shared by all measurements.

    x (the code) is ``(N, m, 1, 1)`` (any leading dims before the last three), y (the signal)
    ``(N, n)``. As an ``nn.Module`` with buffers, ``op.to(device, dtype)`` moves D and the
    eigendecomposition of ``D D^T``.
    """

    roles = {"dictionary": "dictionary D (n, m), one atom per column"}
    role_ndim = {"dictionary": 2}
    meas_ndim = 1
    has_gram_inverse = True
    x_unit = "atom"
    x_has_peak = False

    def __init__(self, dictionary: Tensor) -> None:
        super().__init__()
        if dictionary.ndim != 2 or min(dictionary.shape) < 1:
            raise ValueError(f"dictionary must be (n, m), got {tuple(dictionary.shape)}")
        if not torch.is_floating_point(dictionary):
            dictionary = dictionary.float()
        self.register_buffer("D", dictionary.contiguous())
        d64 = dictionary.detach().to("cpu", torch.float64)
        lam, U = torch.linalg.eigh(d64 @ d64.T)
        rcond = 10 * max(d64.shape) * torch.finfo(torch.float64).eps
        nonzero = lam > rcond * lam.abs().max().clamp_min(1e-300)
        lam = torch.where(nonzero, lam, torch.zeros_like(lam))
        self.register_buffer("eigvec", U.to(device=dictionary.device, dtype=dictionary.dtype))
        self.register_buffer("eigval", lam.to(device=dictionary.device, dtype=dictionary.dtype))
        self.register_buffer("nonzero", nonzero.to(dictionary.device))  # bool: not cast by .to(dtype)
        self._norm = float(lam.max())

    # -- sizes ------------------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Values per signal (rows of D)."""
        return self.D.shape[0]

    @property
    def m(self) -> int:
        """Atoms (columns of D): the length of a code."""
        return self.D.shape[1]

    def _check_x(self, x: Tensor) -> None:
        if x.ndim < 4 or tuple(x.shape[-3:]) != (self.m, 1, 1):
            raise UsageError(f"dictionary: codes must be (N, {self.m}, 1, 1), got {tuple(x.shape)}")

    def _check_y(self, y: Tensor) -> None:
        if y.ndim < 2 or y.shape[-1] != self.n:
            raise UsageError(f"dictionary: signals must be (N, {self.n}), got {tuple(y.shape)}")

    @staticmethod
    def _as(t: Tensor, like: Tensor) -> Tensor:
        return t if t.dtype == like.dtype else t.to(like.dtype)

    # -- the map ------------------------------------------------------------------------------
    def A(self, x: Tensor) -> Tensor:
        """``y = D z``: (N, m, 1, 1) -> (N, n)."""
        self._check_x(x)
        return x.flatten(-3) @ self._as(self.D, x).T

    def A_adjoint(self, y: Tensor) -> Tensor:
        """``D^T y``: (N, n) -> (N, m, 1, 1)."""
        self._check_y(y)
        return (y @ self._as(self.D, y))[..., None, None]

    def gram_inverse(self, r: Tensor, gamma: float = 0.0) -> Tensor:
        """``(D D^T + gamma I)^-1 r`` from ``D D^T = U diag(lam) U^T``; for gamma = 0 the
        pseudo-inverse (zero on the null space of ``D D^T``)."""
        self._check_y(r)
        lam, U = self._as(self.eigval, r), self._as(self.eigvec, r)
        if gamma > 0:
            scale = 1.0 / (lam + gamma)
        else:
            scale = torch.where(self.nonzero, 1.0 / torch.where(self.nonzero, lam, torch.ones_like(lam)),
                                torch.zeros_like(lam))
        return ((r @ U) * scale) @ U.T

    def norm(self, **_: Any) -> float:
        """``||D||^2``, the largest eigenvalue of ``D D^T`` (and of ``D^T D``)."""
        return self._norm

    # -- files, training, tests -------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, meas_shape: tuple[int, ...] | None = None,
                    **options: Any) -> "Dictionary":
        if options:
            raise UsageError(f"dictionary: unknown option(s) {', '.join(options)} (it takes none)")
        D = arrays.get("dictionary")
        if D is None:
            raise UsageError("operator 'dictionary' needs a dictionary D (n, m), one atom per column")
        D = np.asarray(D)
        if D.ndim != 2 or min(D.shape) < 1:
            raise UsageError(f"dictionary {tuple(D.shape)}: must be one (n, m) matrix, one atom per column")
        if not np.issubdtype(D.dtype, np.number) or np.iscomplexobj(D):
            raise UsageError(f"dictionary {tuple(D.shape)}: must be real numbers, got {D.dtype}")
        if not np.isfinite(D).all():
            raise DataError(f"dictionary {tuple(D.shape)}: contains NaN or Inf")
        if meas_shape is not None:
            meas_shape = tuple(int(s) for s in meas_shape)
            if len(meas_shape) != 2 or meas_shape[1] != D.shape[0]:
                hint = " (transposed dictionary?)" if len(meas_shape) == 2 and meas_shape[1] == D.shape[1] else ""
                raise UsageError(f"signals {meas_shape} do not fit a dictionary {tuple(D.shape)} (n, m): "
                                 f"expected (K, {D.shape[0]}){hint}")
        t = torch.from_numpy(np.ascontiguousarray(D))
        return cls(t if torch.is_floating_point(t) else t.float())

    def arrays(self) -> dict[str, np.ndarray]:
        return {"dictionary": self.D.detach().cpu().numpy()}

    def signature(self) -> dict[str, Any]:
        """Learned encoders (LISTA's W_e (m, n) and S (m, m)) fit one signal length n and one
        number m of atoms."""
        return {"n": self.n, "m": self.m}

    @classmethod
    def random(cls, shape: tuple[int, ...], *, rng: np.random.Generator, n: int = DEFAULT_SIGNAL,
               **options: Any) -> "Dictionary":
        """A Gaussian dictionary (n, m) with unit-norm atoms for codes of ``shape`` (m, 1, 1),
        float32."""
        if options:
            raise UsageError(f"dictionary: unknown option(s) {', '.join(options)} (it takes: n)")
        if len(shape) != 3 or tuple(shape[1:]) != (1, 1) or shape[0] < 1:
            raise UsageError(f"dictionary codes are (m, 1, 1), got shape {tuple(shape)}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise UsageError(f"dictionary: n must be a whole number >= 1, got {n!r}")
        D = rng.standard_normal((int(n), int(shape[0])))
        D /= np.linalg.norm(D, axis=0, keepdims=True)
        return cls(torch.from_numpy(D).float())

    @classmethod
    def example(cls, *, rng: np.random.Generator, dtype: torch.dtype = torch.float64) -> "Dictionary":
        """n = 4, m = 6 (overcomplete), unit-norm Gaussian atoms."""
        D = rng.standard_normal((4, 6))
        D /= np.linalg.norm(D, axis=0, keepdims=True)
        return cls(torch.from_numpy(D).to(dtype))

    def example_input(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn((n, self.m, 1, 1), generator=generator, dtype=self.D.dtype).to(self.D.device)
