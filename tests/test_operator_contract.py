"""The operator contract: every registered forward operator passes the same checks.

On a tiny random instance (``Operator.example``), in float64, against the dense matrix of A:

* adjointness: ``|<A u, v> - <u, A^T v>| / (||A u|| ||v||) < 1e-10``;
* ``norm()`` is the largest eigenvalue of ``A^T A``;
* ``prox_l2(z, y, gamma)`` solves ``(A^T A + gamma I) x = A^T y + gamma z``;
* ``A_dagger(y)`` is the pseudo-inverse solution;
* where declared, ``gram_inverse`` is ``(A A^T + gamma I)^-1`` and ``project`` lands on ``{A x = y}``;
  where not, GAP refuses the operator in one line;
* gradients flow through ``A`` and ``A_adjoint`` (gradcheck);
* ``.to(dtype)`` and ``.to(device)`` move everything; ``from_arrays(op.arrays())`` rebuilds it.

Complex measurements (k-space) are checked as the real-linear map ``x -> (Re A x, Im A x)``.
An unregistered dense operator without a closed-form inverse checks the base class's conjugate
gradients and power iteration, and that GAP refuses it in one line while ADMM, RED and FISTA run.
Adding an operator: one file in ``scicli/physics/`` and its name in ``CONTRACT`` below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scicli.core.errors import UsageError
from scicli.methods import METHODS
from scicli.physics import OPERATORS, LinearOperator

CONTRACT = ["cassi", "cs-block", "ct", "dictionary", "mri", "video-sci"]
"""Every registered operator, by name: the suite runs each through the same checks."""

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def make(name: str, seed: int = 0):
    return OPERATORS.get(name).factory.example(rng=np.random.default_rng(seed), dtype=torch.float64)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def real_dense(op) -> torch.Tensor:
    """The real matrix of A on one sample (complex rows split into real and imaginary parts)."""
    M = op.dense()
    return torch.cat([M.real, M.imag]) if M.is_complex() else M


def flat_real(y: torch.Tensor) -> torch.Tensor:
    y = y.reshape(-1)
    return torch.cat([y.real, y.imag]) if y.is_complex() else y


def _single(name: str):
    """A one-measurement instance (dense checks need one sample)."""
    op = make(name)
    x = op.example_input(1)
    if x.shape[0] == 1:
        return op
    arrays = {k: (v[:1] if v.ndim and v.shape[0] == x.shape[0] else v) for k, v in op.arrays().items()}
    return type(op).from_arrays(arrays, **op.options()).to(torch.float64)


def test_every_registered_operator_is_in_the_contract() -> None:
    assert sorted(CONTRACT) == OPERATORS.names()


@pytest.mark.parametrize("name", CONTRACT)
def test_adjointness(name: str) -> None:
    op = make(name)
    assert op.adjointness_error(2, generator=gen(0)) < 1e-10


@pytest.mark.parametrize("name", CONTRACT)
def test_adjoint_is_the_transpose_of_the_dense_matrix(name: str) -> None:
    op = _single(name)
    M = op.dense()
    y = op.example_meas(1, generator=gen(2))
    ref = (M.conj().T @ y.reshape(-1)).real if M.is_complex() else M.T @ y.reshape(-1)
    torch.testing.assert_close(op.A_adjoint(y).reshape(-1), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", CONTRACT)
def test_norm_is_the_top_eigenvalue_of_AtA(name: str) -> None:
    op = _single(name)
    M = real_dense(op)
    top = float(torch.linalg.eigvalsh(M.T @ M).max())
    assert op.norm() == pytest.approx(top, rel=1e-6)


@pytest.mark.parametrize("name", CONTRACT)
@pytest.mark.parametrize("gamma", [1e-2, 1.0])
def test_prox_l2_against_a_dense_solve(name: str, gamma: float) -> None:
    op = _single(name)
    M = real_dense(op)
    z = op.example_input(1, generator=gen(3))
    y = op.example_meas(1, generator=gen(4))
    rhs = M.T @ flat_real(y) + gamma * z.reshape(-1)
    ref = torch.linalg.solve(M.T @ M + gamma * torch.eye(M.shape[1], dtype=M.dtype), rhs)
    if op.has_gram_inverse:  # closed form: to rounding
        torch.testing.assert_close(op.prox_l2(z, y, gamma).reshape(-1), ref, rtol=1e-7, atol=1e-8)
    else:  # conjugate gradients, run to a tight tolerance
        out = op.prox_l2(z, y, gamma, max_iter=500, tol=1e-12).reshape(-1)
        torch.testing.assert_close(out, ref, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("name", CONTRACT)
def test_A_dagger_is_the_pseudo_inverse(name: str) -> None:
    op = _single(name)
    M = real_dense(op)
    y = op.A(op.example_input(1, generator=gen(5)))  # consistent measurements
    ref = torch.linalg.pinv(M) @ flat_real(y)
    out = op.A_dagger(y) if op.has_gram_inverse else op.A_dagger(y, max_iter=500, tol=1e-12)
    torch.testing.assert_close(out.reshape(-1), ref, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", CONTRACT)
def test_gram_inverse_where_declared(name: str) -> None:
    op = make(name)
    x = op.example_input(2, generator=gen(6))
    y = op.A(x)
    if not op.has_gram_inverse:
        with pytest.raises(UsageError, match="no closed-form"):
            op.gram_inverse(y)
        with pytest.raises(UsageError, match="GAP"):
            op.require_gram_inverse("GAP")
        return
    r = op.example_meas(x.shape[0], generator=gen(7))
    for gamma in (1e-3, 0.5):
        g = op.gram_inverse(r, gamma)
        torch.testing.assert_close(op.A(op.A_adjoint(g)) + gamma * g, r, rtol=1e-9, atol=1e-9)
    # gamma = 0: the projection lands on {A x = y} (rows that see nothing stay consistent too)
    v = op.example_input(x.shape[0], generator=gen(8))
    torch.testing.assert_close(op.A(op.project(v, y)), y, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", CONTRACT)
def test_gradients_through_A_and_A_adjoint(name: str) -> None:
    op = make(name)
    x = op.example_input(op.example_input(1).shape[0], generator=gen(9)).requires_grad_(True)
    y = op.example_meas(x.shape[0], generator=gen(10)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: op.A(t), (x,))
    assert torch.autograd.gradcheck(lambda t: op.A_adjoint(t), (y,))


@pytest.mark.parametrize("name", CONTRACT)
@pytest.mark.parametrize("device", DEVICES)
def test_moves_with_to(name: str, device: str) -> None:
    op64 = make(name)
    op = make(name).to(device=device, dtype=torch.float32)
    x = op64.example_input(2, generator=gen(11))
    y32 = op.A(x.to(device=device, dtype=torch.float32))
    assert y32.device.type == device
    assert y32.dtype in (torch.float32, torch.complex64)
    torch.testing.assert_close(y32.cpu().to(op64.A(x).dtype), op64.A(x), rtol=1e-4, atol=1e-4)
    assert op.adjointness_error(2, generator=gen(12)) < 1e-4


@pytest.mark.parametrize("name", CONTRACT)
def test_rebuilds_from_its_arrays(name: str) -> None:
    op = make(name)
    again = type(op).from_arrays(op.arrays(), **op.options()).to(torch.float64)
    x = op.example_input(2, generator=gen(13))
    torch.testing.assert_close(again.A(x), op.A(x))


@pytest.mark.parametrize("name", CONTRACT)
def test_random_instances_are_seeded(name: str) -> None:
    cls = OPERATORS.get(name).factory
    ex = make(name)
    shape = tuple(ex.example_input(1).shape[1:])
    a = cls.random(shape, rng=np.random.default_rng(3))
    b = cls.random(shape, rng=np.random.default_rng(3))
    x = a.example_input(1, generator=gen(14)).float()
    torch.testing.assert_close(a.A(x), b.A(x))


# ------------------------------------------------------------ an operator without (A A^T)^-1
class Dense(LinearOperator):
    """A generic dense operator (unregistered, tests only): no closed-form inverse, so the base
    class's conjugate gradients and power iteration do the work, and GAP must refuse it."""

    name = "dense-test"

    def __init__(self, M: torch.Tensor, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.register_buffer("M", M)
        self.shape = shape

    def A(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1) @ self.M.T

    def A_adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return (y @ self.M).reshape(y.shape[0], *self.shape)

    def example_input(self, n: int = 1, *, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn((n, *self.shape), generator=generator, dtype=self.M.dtype)


def dense_op(rows: int = 12, shape: tuple[int, int, int] = (1, 4, 5)) -> Dense:
    M = torch.randn(rows, int(np.prod(shape)), generator=gen(20), dtype=torch.float64)
    return Dense(M, shape)


def test_without_a_closed_form_cg_and_power_iteration_are_exact() -> None:
    op = dense_op()
    M = op.M
    assert op.adjointness_error(2, generator=gen(21)) < 1e-12
    assert op.norm() == pytest.approx(float(torch.linalg.eigvalsh(M.T @ M).max()), rel=1e-6)
    z, y = op.example_input(2, generator=gen(22)), torch.randn(2, 12, generator=gen(23), dtype=torch.float64)
    ref = torch.linalg.solve(M.T @ M + 0.3 * torch.eye(20, dtype=M.dtype), (y @ M + 0.3 * z.reshape(2, -1)).T).T
    torch.testing.assert_close(op.prox_l2(z, y, 0.3).reshape(2, -1), ref, rtol=1e-7, atol=1e-8)
    yc = op.A(op.example_input(2, generator=gen(24)))
    torch.testing.assert_close(op.A_dagger(yc).reshape(2, -1), (torch.linalg.pinv(M) @ yc.T).T, rtol=1e-6, atol=1e-7)


def test_gap_refuses_an_operator_without_a_closed_form_and_admm_red_run() -> None:
    op = dense_op().to(torch.float32)
    x = torch.rand(1, 1, 4, 5, generator=gen(25))
    y = op.A(x)
    with pytest.raises(UsageError, match="GAP needs a closed-form"):
        METHODS.get("gap-tv").factory().solve(op, y)
    for name, params in (("admm-tv", {"iters": 20}), ("red", {"denoiser": "tv", "sigma": (10.0,), "iters": (20.0,)}),
                         ("fista-tv", {"iters": 20})):
        out = METHODS.get(name).factory(**params).solve(op, y).x
        assert out.shape == x.shape and torch.isfinite(out).all(), name
