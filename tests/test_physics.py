"""Specification of the video-SCI forward operator ``scicli.physics.VideoSCI``.

    A x   = sum_t M_t * x_t             (N, B, H, W) -> (N, H, W)
    A^T y = (M_1 * y, ..., M_B * y)     (N, H, W)    -> (N, B, H, W)
    A A^T = diag(R),  R = sum_t M_t^2   (guarded: R = 1 where no mask is open)

Masks are either shared, (B, H, W), or one set per measurement, (N, B, H, W).
"""

from __future__ import annotations

import pytest
import torch

from scicli.physics import VideoSCI

CUDA = pytest.param(
    "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
)
DEVICES = ["cpu", CUDA]

H, W = 11, 17  # deliberately non-square everywhere


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def binary_mask(shape: tuple[int, ...], seed: int = 0, p: float = 0.5, dtype=torch.float32) -> torch.Tensor:
    return (torch.rand(shape, generator=gen(seed)) < p).to(dtype)


def make_op(
    n: int | None,
    b: int,
    h: int = H,
    w: int = W,
    *,
    dtype=torch.float32,
    seed: int = 0,
    dead_pixels: bool = False,
    continuous: bool = False,
) -> VideoSCI:
    """Operator with a shared (n=None) or per-measurement (n given) mask.

    ``dead_pixels`` closes every mask at a few pixels (R == 0 there); ``continuous``
    draws gray-level masks in [0, 1) instead of binary ones.
    """
    shape = (b, h, w) if n is None else (n, b, h, w)
    if continuous:
        mask = torch.rand(shape, generator=gen(seed)).to(dtype)
    else:
        mask = binary_mask(shape, seed, dtype=dtype)
    if dead_pixels:
        mask[..., 0, 0] = 0
        mask[..., 3, 5] = 0
        mask[..., h - 1, w - 1] = 0
    return VideoSCI(mask)


def dense_A(op: VideoSCI, n: int) -> torch.Tensor:
    """The matrix of A on n measurements, (N H W) x (N B H W), built column by column (tiny problems)."""
    _, b, h, w = op.mask.shape
    eye = torch.eye(n * b * h * w, dtype=op.mask.dtype)
    return torch.stack([op.A(e.reshape(n, b, h, w)).flatten() for e in eye], dim=1)


def rand_x(n: int, op: VideoSCI, seed: int = 1) -> torch.Tensor:
    _, b, h, w = op.mask.shape
    return torch.randn(n, b, h, w, generator=gen(seed), dtype=op.mask.dtype).to(op.mask.device)


def rand_y(n: int, op: VideoSCI, seed: int = 2) -> torch.Tensor:
    _, _, h, w = op.mask.shape
    return torch.randn(n, h, w, generator=gen(seed), dtype=op.mask.dtype).to(op.mask.device)


# ------------------------------------------------------------------ construction and shapes
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-measurement"])
def test_shapes(shared: bool) -> None:
    n, b = 3, 8
    op = make_op(None if shared else n, b)
    assert op.mask.shape == ((1 if shared else n), b, H, W)
    assert op.energy.shape == op.R.shape == ((1 if shared else n), H, W)
    assert op.frames == b
    x = rand_x(n, op)
    y = op.A(x)
    assert y.shape == (n, H, W)
    assert op.A_adjoint(y).shape == (n, b, H, W)
    assert op.A_dagger(y).shape == (n, b, H, W)


def test_integer_and_bool_masks_become_float() -> None:
    m = binary_mask((4, H, W))
    for mask in (m.to(torch.uint8), m.bool()):
        op = VideoSCI(mask)
        assert op.mask.dtype == torch.float32
        torch.testing.assert_close(op.mask[0], m)


def test_mask_rank_is_checked() -> None:
    with pytest.raises(ValueError, match="mask must be"):
        VideoSCI(torch.ones(H, W))
    with pytest.raises(ValueError, match="mask must be"):
        VideoSCI(torch.ones(1, 1, 2, H, W))


def test_strided_mask_is_made_contiguous() -> None:
    frames_last = binary_mask((H, W, 8))
    op = VideoSCI(frames_last.permute(2, 0, 1))
    assert op.mask.is_contiguous()
    torch.testing.assert_close(op.mask[0], frames_last.permute(2, 0, 1))


def test_forward_is_the_masked_sum() -> None:
    """A x is literally sum_t M_t x_t, A^T y is M_t y for every t (reference loop)."""
    n, b = 2, 5
    op = make_op(n, b, dtype=torch.float64)
    x, y = rand_x(n, op), rand_y(n, op)
    ref_y = torch.zeros(n, H, W, dtype=torch.float64)
    for t in range(b):
        ref_y += op.mask[:, t] * x[:, t]
    torch.testing.assert_close(op.A(x), ref_y, rtol=0, atol=1e-12)
    ref_x = torch.stack([op.mask[:, t] * y for t in range(b)], dim=1)
    torch.testing.assert_close(op.A_adjoint(y), ref_x, rtol=0, atol=0)


def test_shared_mask_equals_repeated_per_measurement_mask() -> None:
    n, b = 3, 6
    shared = make_op(None, b)
    repeated = VideoSCI(shared.mask.expand(n, b, H, W).clone())
    x, y = rand_x(n, shared), rand_y(n, shared)
    torch.testing.assert_close(shared.A(x), repeated.A(x))
    torch.testing.assert_close(shared.A_adjoint(y), repeated.A_adjoint(y))
    torch.testing.assert_close(shared.project(x, y), repeated.project(x, y))


# ------------------------------------------------------------------ adjointness
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)], ids=["f32", "f64"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-meas"])
@pytest.mark.parametrize("n", [1, 3])
@pytest.mark.parametrize("b", [1, 8, 10, 14, 24])
def test_adjointness(b: int, n: int, shared: bool, dtype: torch.dtype, tol: float) -> None:
    """<A u, v> == <u, A^T v> for random u, v (relative error)."""
    op = make_op(None if shared else n, b, dtype=dtype, seed=b + 10 * n)
    err = op.adjointness_error(n, generator=gen(b * n))
    assert err < tol


@pytest.mark.parametrize("device", DEVICES)
def test_adjointness_on_device(device: str) -> None:
    op = make_op(3, 8).to(device)
    assert op.mask.device.type == device
    assert op.adjointness_error(3, generator=gen(0)) < 1e-5
    x, y = rand_x(3, op), rand_y(3, op)
    assert op.A(x).device.type == device
    assert op.A_adjoint(y).device.type == device


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-meas"])
def test_adjoint_is_the_matrix_transpose(shared: bool) -> None:
    """The dense matrix of A^T is the transpose of the dense matrix of A (tiny problem)."""
    n, b, h, w = 2, 3, 3, 4
    op = make_op(None if shared else n, b, h, w, dtype=torch.float64, continuous=True)
    ny = n * h * w
    A = dense_A(op, n)  # (ny, nx)
    rows = [op.A_adjoint(e.reshape(n, h, w)).flatten() for e in torch.eye(ny, dtype=torch.float64)]
    At = torch.stack(rows, dim=1)  # (nx, ny)
    torch.testing.assert_close(At, A.T, rtol=0, atol=0)


# ------------------------------------------------------------------ A A^T = diag(R)
@pytest.mark.parametrize("continuous", [False, True], ids=["binary", "gray"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-meas"])
def test_AAt_is_diag_R(shared: bool, continuous: bool) -> None:
    n, b = 3, 8
    op = make_op(None if shared else n, b, dtype=torch.float64, dead_pixels=True, continuous=continuous)
    v = rand_y(n, op)
    AAtv = op.A(op.A_adjoint(v))
    open_ = (op.energy > 0).expand_as(v)
    torch.testing.assert_close(AAtv[open_], (op.R * v).expand_as(v)[open_], rtol=1e-12, atol=1e-12)
    # everywhere, including closed pixels, A A^T is the unguarded energy sum_t M_t^2
    torch.testing.assert_close(AAtv, op.energy * v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.energy, (op.mask**2).sum(dim=1))


def test_R_of_binary_mask_counts_open_frames() -> None:
    mask = binary_mask((8, H, W))
    op = VideoSCI(mask)
    torch.testing.assert_close(op.energy[0], mask.sum(dim=0))


# ------------------------------------------------------------------ zero-sum guard
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-meas"])
def test_zero_sum_guard(shared: bool) -> None:
    """Pixels where no mask is open: energy 0, R guarded to 1, A_dagger finite (and 0 there)."""
    n, b = 2, 8
    op = make_op(None if shared else n, b, dead_pixels=True)
    dead = op.energy == 0
    assert dead.sum() >= 3 * op.energy.shape[0]
    assert torch.all(op.R[dead] == 1)
    torch.testing.assert_close(op.R[~dead], op.energy[~dead], rtol=0, atol=0)
    assert torch.all(op.R > 0)
    y = rand_y(n, op) + 1.0  # nonzero even where nothing was measured
    xd = op.A_dagger(y)
    assert torch.isfinite(xd).all()
    assert torch.all(xd[dead.unsqueeze(1).expand_as(xd)] == 0)
    x = rand_x(n, op)
    assert torch.isfinite(op.project(x, y)).all()
    assert torch.isfinite(op.prox_l2(x, y, 0.01)).all()


def test_all_closed_mask_does_not_divide_by_zero() -> None:
    op = VideoSCI(torch.zeros(4, H, W))
    assert torch.all(op.R == 1) and torch.all(op.energy == 0)
    y = torch.ones(1, H, W)
    assert torch.all(op.A_dagger(y) == 0)
    assert op.norm() == 0.0


def test_A_dagger_is_a_minimum_norm_solution() -> None:
    n, b = 3, 8
    op = make_op(n, b, dtype=torch.float64, dead_pixels=True)
    y = op.A(rand_x(n, op))  # consistent: y == 0 on dead pixels
    xd = op.A_dagger(y)
    torch.testing.assert_close(op.A(xd), y, rtol=1e-12, atol=1e-12)
    # xd lies in range(A^T): xd == A^T (y / R)
    torch.testing.assert_close(xd, op.A_adjoint(y / op.R))
    # any other solution xd + (I - A^T R^-1 A) z is at least as long
    z = rand_x(n, op, seed=7)
    other = xd + z - op.A_dagger(op.A(z))
    torch.testing.assert_close(op.A(other), y, rtol=1e-12, atol=1e-12)
    assert torch.linalg.vector_norm(other) >= torch.linalg.vector_norm(xd)


# ------------------------------------------------------------------ projection
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)], ids=["f32", "f64"])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-meas"])
def test_project_satisfies_the_measurements(shared: bool, dtype: torch.dtype, tol: float) -> None:
    n, b = 3, 8
    op = make_op(None if shared else n, b, dtype=dtype, dead_pixels=True)
    y = op.A(rand_x(n, op, seed=3))  # consistent data
    v = rand_x(n, op, seed=4)
    x = op.project(v, y)
    torch.testing.assert_close(op.A(x), y, rtol=tol, atol=tol * b)
    # idempotent: projecting a feasible point leaves it where it is
    torch.testing.assert_close(op.project(x, y), x, rtol=tol, atol=tol * b)


def test_project_is_orthogonal() -> None:
    """v - P(v) is orthogonal to every feasible direction, so P(v) is the closest feasible point."""
    n, b = 2, 8
    op = make_op(n, b, dtype=torch.float64, dead_pixels=True)
    y = op.A(rand_x(n, op, seed=3))
    v = rand_x(n, op, seed=4)
    pv = op.project(v, y)
    for seed in range(5, 10):
        other = op.project(rand_x(n, op, seed=seed), y)  # another feasible point
        inner = ((v - pv) * (other - pv)).sum()
        assert abs(float(inner)) < 1e-10
        assert torch.linalg.vector_norm(v - other) >= torch.linalg.vector_norm(v - pv)


def test_project_step_scales_the_correction() -> None:
    n, b = 2, 8
    op = make_op(n, b, dtype=torch.float64)
    y, v = rand_y(n, op), rand_x(n, op)
    full = op.project(v, y)
    torch.testing.assert_close(op.project(v, y, step=0.5), v + 0.5 * (full - v))
    torch.testing.assert_close(op.project(v, y, step=0.0), v)


# ------------------------------------------------------------------ prox of the data term
@pytest.mark.parametrize("gamma", [1e-3, 0.01, 1.0, 10.0])
@pytest.mark.parametrize("shared", [True, False], ids=["shared", "per-meas"])
def test_prox_l2_solves_the_normal_equations(shared: bool, gamma: float) -> None:
    """x = prox(z) satisfies (A^T A + gamma I) x = A^T y + gamma z (float64 residual)."""
    n, b = 3, 8
    op = make_op(None if shared else n, b, dtype=torch.float64, dead_pixels=True)
    z, y = rand_x(n, op), rand_y(n, op)
    x = op.prox_l2(z, y, gamma)
    lhs = op.A_adjoint(op.A(x)) + gamma * x
    rhs = op.A_adjoint(y) + gamma * z
    rel = torch.linalg.vector_norm(lhs - rhs) / torch.linalg.vector_norm(rhs)
    assert rel < 1e-12


def test_prox_l2_matches_a_dense_solve() -> None:
    """Tiny problem: the Woodbury form equals the explicit solve of the normal equations."""
    n, b, h, w, gamma = 1, 3, 2, 3, 0.05
    op = make_op(n, b, h, w, dtype=torch.float64, continuous=True)
    nx = n * b * h * w
    A = dense_A(op, n)
    z = torch.randn(n, b, h, w, generator=gen(5), dtype=torch.float64)
    y = torch.randn(n, h, w, generator=gen(6), dtype=torch.float64)
    normal = A.T @ A + gamma * torch.eye(nx, dtype=torch.float64)
    expected = torch.linalg.solve(normal, A.T @ y.flatten() + gamma * z.flatten())
    torch.testing.assert_close(op.prox_l2(z, y, gamma).flatten(), expected, rtol=1e-10, atol=1e-12)


def test_prox_l2_tends_to_the_projection_as_gamma_vanishes() -> None:
    n, b = 2, 8
    op = make_op(n, b, dtype=torch.float64)  # no dead pixels: the projection is unguarded
    z, y = rand_x(n, op), rand_y(n, op)
    torch.testing.assert_close(op.prox_l2(z, y, 1e-10), op.project(z, y), rtol=1e-7, atol=1e-7)


# ------------------------------------------------------------------ dtype / device moves
def test_to_float64_moves_buffers() -> None:
    op = make_op(2, 8, dead_pixels=True)
    op64 = op.to(torch.float64)
    for name in ("mask", "energy", "R"):
        assert getattr(op64, name).dtype == torch.float64, name
    assert {name for name, _ in op64.named_buffers()} == {"mask", "energy", "R"}
    x = rand_x(2, op64)
    assert op64.A(x).dtype == torch.float64
    assert op64.adjointness_error(2, generator=gen(0)) < 1e-12


@pytest.mark.parametrize("device", DEVICES)
def test_to_device_moves_buffers(device: str) -> None:
    cpu = make_op(2, 8, dead_pixels=True)
    op = make_op(2, 8, dead_pixels=True).to(device)
    for name in ("mask", "energy", "R"):
        assert getattr(op, name).device.type == device, name
    x, y = rand_x(2, cpu), rand_y(2, cpu)
    torch.testing.assert_close(op.A(x.to(device)).cpu(), cpu.A(x))
    torch.testing.assert_close(op.project(x.to(device), y.to(device)).cpu(), cpu.project(x, y))
    torch.testing.assert_close(op.prox_l2(x.to(device), y.to(device), 0.01).cpu(), cpu.prox_l2(x, y, 0.01))
    assert op.norm() == cpu.norm()


# ------------------------------------------------------------------ operator norm
@pytest.mark.parametrize("continuous", [False, True], ids=["binary", "gray"])
def test_norm_is_max_energy(continuous: bool) -> None:
    op = make_op(3, 10, dead_pixels=True, continuous=continuous)
    assert isinstance(op.norm(), float)
    assert op.norm() == pytest.approx(float(op.energy.max()))


@pytest.mark.parametrize("continuous", [False, True], ids=["binary", "gray"])
def test_norm_is_top_eigenvalue_of_AtA(continuous: bool) -> None:
    """Power iteration on A^T A (tiny problem) converges to ||A||^2 = max R."""
    n, b, h, w = 2, 4, 3, 5
    op = make_op(n, b, h, w, dtype=torch.float64, continuous=continuous, seed=3)
    x = torch.randn(n, b, h, w, generator=gen(9), dtype=torch.float64)
    lam = 0.0
    for _ in range(500):
        x = op.A_adjoint(op.A(x))
        lam = float(torch.linalg.vector_norm(x))
        x = x / lam
    assert lam == pytest.approx(op.norm(), rel=1e-6)
    # cross-check with the dense spectrum
    A = dense_A(op, n)
    assert float(torch.linalg.eigvalsh(A.T @ A).max()) == pytest.approx(op.norm(), rel=1e-10)
