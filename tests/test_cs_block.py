"""Specification of the block compressive-sensing operator ``cs-block`` (ISTA-Net convention).

    x (N, 1, H, W) -> zero-pad right/bottom to a multiple of b -> row-major b x b blocks, each
    flattened row-major (ISTA-Net's img2col) -> y = blocks @ Phi^T, (N, n_blocks, m)
    A^T y = image of the blocks y @ Phi, cropped to H x W

The generic checks (adjointness, norm, prox_l2, A_dagger, gram_inverse, gradients, devices,
rebuild) are in test_operator_contract.py; this file pins the ISTA-Net conventions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from skimage import data, transform

from scicli.core.errors import UsageError
from scicli.physics import OPERATORS
from scicli.physics.cs_block import BlockCS, measurements_for
from scicli.methods import METHODS



@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Every computation here is small: one thread (restored afterwards for other test files)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

MATRICES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cs" / "sampling_matrix"


def orthonormal_phi(m: int, b: int = 33, seed: int = 0) -> np.ndarray:
    q, _ = torch.linalg.qr(torch.from_numpy(np.random.default_rng(seed).standard_normal((b * b, m))))
    return q.T.contiguous().numpy()


def make(H: int, W: int, m: int = 109, b: int = 33, *, qinit: bool = False, seed: int = 0) -> BlockCS:
    arrays = {"phi": orthonormal_phi(m, b, seed), "size": np.array([H, W])}
    if qinit:
        arrays["qinit"] = np.random.default_rng(seed + 1).standard_normal((b * b, m)) * 0.05
    return BlockCS.from_arrays(arrays, block=b)


# -- ISTA-Net's reference code (TEST_CS_ISTA_Net_plus.py), literally --------------------------------
def imread_cs_py(Iorg: np.ndarray, block_size: int = 33):
    row, col = Iorg.shape
    row_pad = block_size - np.mod(row, block_size)
    col_pad = block_size - np.mod(col, block_size)
    row_new, col_new = row + row_pad, col + col_pad
    Ipad = np.concatenate((Iorg, np.zeros([row, col_pad])), axis=1)
    Ipad = np.concatenate((Ipad, np.zeros([row_pad, col + col_pad])), axis=0)
    return Iorg, row, col, Ipad, row_new, col_new


def img2col_py(Ipad: np.ndarray, block_size: int) -> np.ndarray:
    row, col = Ipad.shape
    block_num = (row // block_size) * (col // block_size)
    img_col = np.zeros([block_size**2, block_num])
    count = 0
    for x in range(0, row - block_size + 1, block_size):
        for y in range(0, col - block_size + 1, block_size):
            img_col[:, count] = Ipad[x:x + block_size, y:y + block_size].reshape([-1])
            count += 1
    return img_col


def col2im_cs_py(X_col: np.ndarray, row: int, col: int, row_new: int, col_new: int, block_size: int = 33):
    X0_rec = np.zeros([row_new, col_new])
    count = 0
    for x in range(0, row_new - block_size + 1, block_size):
        for y in range(0, col_new - block_size + 1, block_size):
            X0_rec[x:x + block_size, y:y + block_size] = X_col[:, count].reshape([block_size, block_size])
            count += 1
    return X0_rec[:row, :col]


@pytest.mark.parametrize("H, W", [(70, 100), (40, 34), (10, 7)])
def test_block_order_matches_ista_net_img2col(H: int, W: int) -> None:
    op = make(H, W).to(torch.float64)
    img = np.random.default_rng(1).random((H, W))
    _, _, _, Ipad, _, _ = imread_cs_py(img)
    ref = img2col_py(Ipad, 33).T @ op.phi.numpy().T  # ISTA-Net: Phix = batch_x @ Phi^T
    y = op.A(torch.from_numpy(img)[None, None])
    assert y.shape == (1, op.n_blocks, 109)
    np.testing.assert_allclose(y[0].numpy(), ref, rtol=1e-12, atol=1e-12)


def test_block_order_on_an_image_made_of_its_block_numbers() -> None:
    """Block k (row by row) holds the value k; pixel (i, j) of a block is at i * b + j."""
    b, R, C = 4, 2, 3
    img = np.kron(np.arange(R * C, dtype=np.float64).reshape(R, C), np.ones((b, b)))
    op = BlockCS(torch.eye(b * b, dtype=torch.float64), (R * b, C * b), block=b)
    blocks = op.to_blocks(torch.from_numpy(img))
    torch.testing.assert_close(blocks, torch.arange(R * C, dtype=torch.float64)[:, None].expand(-1, b * b))
    ramp = np.arange(b * b, dtype=np.float64).reshape(b, b)
    blocks = op.to_blocks(torch.from_numpy(np.tile(ramp, (R, C))))
    torch.testing.assert_close(blocks, torch.from_numpy(ramp.reshape(-1)).expand(R * C, -1))


@pytest.mark.parametrize("H, W", [(33, 66), (34, 65), (10, 7), (70, 100)])
def test_padding_and_cropping(H: int, W: int) -> None:
    op = make(H, W).to(torch.float64)
    R, C = -(-H // 33), -(-W // 33)
    assert op.grid == (R, C) and op.n_blocks == R * C
    y = torch.randn(2, R * C, 109, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = op.A_adjoint(y)
    assert x.shape == (2, 1, H, W)
    # the adjoint is col2im of Phi^T y cropped to the original area (ISTA-Net's col2im_CS_py)
    for n in range(2):
        ref = col2im_cs_py((y[n].numpy() @ op.phi.numpy()).T, H, W, R * 33, C * 33)
        np.testing.assert_allclose(x[n, 0].numpy(), ref, rtol=1e-12, atol=1e-12)
    # the padding is zero: pixels outside the image never reach y
    img = torch.rand(1, 1, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    blocks = op.to_blocks(img[0, 0]).reshape(R, C, 33, 33).permute(0, 2, 1, 3).reshape(R * 33, C * 33)
    assert float(blocks[H:].abs().sum() + blocks[:, W:].abs().sum()) == 0.0
    torch.testing.assert_close(blocks[:H, :W], img[0, 0])
    assert op.adjointness_error(2, generator=torch.Generator().manual_seed(2)) < 1e-12


def test_batch_dims_device_and_dtype() -> None:
    op = make(40, 50).to(torch.float32)
    x = torch.rand(2, 3, 1, 40, 50)
    y = op.A(x)
    assert y.shape == (2, 3, 4, 109) and y.dtype == torch.float32
    torch.testing.assert_close(y[1, 2], op.A(x[1, 2:3])[0])
    assert op.A_adjoint(y).shape == x.shape
    g = op.gram_inverse(y, 0.1)
    torch.testing.assert_close(op.A(op.A_adjoint(g)) + 0.1 * g, y, rtol=1e-4, atol=1e-4)


def test_float64_phi_from_a_mat_file_works_on_float32_data() -> None:
    """Arrays keep their dtype (a .mat Phi is float64); the map follows its input's dtype."""
    op = make(40, 50, qinit=True)
    assert op.phi.dtype == torch.float64
    x = torch.rand(1, 1, 40, 50)
    y = op.A(x)
    assert y.dtype == torch.float32
    for out in (op.A_adjoint(y), op.start(y), op.gram_inverse(y, 0.1), op.A_dagger(y), op.prox_l2(x, y, 0.1)):
        assert out.dtype == torch.float32
    torch.testing.assert_close(y.double(), op.A(x.double()), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("gamma", [0.0, 0.01, 1.0])
def test_orthonormal_phi_gram_inverse_is_one_over_one_plus_gamma(gamma: float) -> None:
    op = make(66, 99).to(torch.float64)  # a multiple of 33: every block is whole
    r = torch.randn(2, op.n_blocks, 109, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(op.gram_inverse(r, gamma), r / (1 + gamma), rtol=1e-12, atol=1e-12)
    assert op.norm() == pytest.approx(1.0, rel=1e-12)


def test_partial_edge_blocks_have_their_own_exact_gram_inverse() -> None:
    """With H, W not multiples of b, A A^T is Phi D Phi^T on the edge blocks (D keeps the inside
    pixels): interior blocks still get 1 / (1 + gamma), edge blocks the exact inverse."""
    op = make(40, 50).to(torch.float64)  # 2 x 2 blocks: interior, right, bottom, corner
    assert len(op.kinds) == 4
    r = torch.randn(1, 4, 109, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for gamma in (1e-3, 0.5):
        g = op.gram_inverse(r, gamma)
        torch.testing.assert_close(g[:, 0], r[:, 0] / (1 + gamma), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(op.A(op.A_adjoint(g)) + gamma * g, r, rtol=1e-9, atol=1e-9)
    # the corner block sees 7 x 17 = 119 pixels > m: its Gram matrix is invertible; consistent
    # measurements are reproduced exactly by the projection
    y = op.A(torch.rand(1, 1, 40, 50, dtype=torch.float64))
    torch.testing.assert_close(op.A(op.project(torch.zeros(1, 1, 40, 50, dtype=torch.float64), y)), y)


def test_start_with_qinit_matches_ista_net() -> None:
    H, W = 70, 100
    op = make(H, W, qinit=True).to(torch.float64)
    img = np.random.default_rng(3).random((H, W))
    y = op.A(torch.from_numpy(img)[None, None])
    # ISTA-Net: x0 = Phix @ Qinit^T, then col2im_CS_py (crop)
    x0 = y[0].numpy() @ op.qinit.numpy().T
    ref = col2im_cs_py(x0.T, H, W, 99, 132)
    np.testing.assert_allclose(op.start(y)[0, 0].numpy(), ref, rtol=1e-12, atol=1e-12)
    # without Qinit the start is A^T y
    plain = make(H, W).to(torch.float64)
    torch.testing.assert_close(plain.start(y), plain.A_adjoint(y))


def test_random_is_seeded_orthonormal_and_m_follows_the_ratio() -> None:
    for ratio, m in [(0.01, 11), (0.1, 109), (0.25, 272), (0.3, 327), (0.4, 436), (0.5, 545)]:
        assert measurements_for(ratio) == m
    a = BlockCS.random((1, 40, 50), rng=np.random.default_rng(7), ratio=0.3)
    b = BlockCS.random((1, 40, 50), rng=np.random.default_rng(7), ratio=0.3)
    c = BlockCS.random((1, 40, 50), rng=np.random.default_rng(8), ratio=0.3)
    assert a.phi.shape == (327, 1089) and a.phi.dtype == torch.float32
    assert torch.equal(a.phi, b.phi) and not torch.equal(a.phi, c.phi)
    p = a.phi.double()
    torch.testing.assert_close(p @ p.T, torch.eye(327, dtype=torch.float64), rtol=0, atol=1e-5)
    small = BlockCS.random((1, 8, 8), rng=np.random.default_rng(0), ratio=0.5, block=4)
    assert small.phi.shape == (8, 16) and small.options() == {"block": 4}
    with pytest.raises(UsageError, match="ratio"):
        BlockCS.random((1, 40, 50), rng=np.random.default_rng(0), ratio=1.5)
    with pytest.raises(UsageError, match="grayscale"):
        BlockCS.random((3, 40, 50), rng=np.random.default_rng(0))


def test_rebuilds_with_and_without_qinit() -> None:
    op = make(40, 50, qinit=True)
    again = BlockCS.from_arrays(op.arrays(), meas_shape=(3, 4, 109), **op.options())
    assert again.size == (40, 50) and again.qinit is not None
    assert set(make(40, 50).arrays()) == {"phi", "size"}
    assert OPERATORS.get("cs-block").factory is BlockCS
    assert BlockCS.x_unit == "image" and BlockCS.optional_roles == ("qinit",)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_bad_shapes_are_one_line_usage_errors() -> None:
    phi = orthonormal_phi(109)
    size = np.array([40, 50])
    with pytest.raises(UsageError) as e:
        BlockCS.from_arrays({"phi": np.zeros((109, 1000)), "size": size})
    assert one_line(e) == "sampling matrix (109, 1000): its width must be the block size squared, 33 x 33 = 1089"
    with pytest.raises(UsageError, match=r"\(1089, 109\).*transposed"):
        BlockCS.from_arrays({"phi": phi.T, "size": size})
    with pytest.raises(UsageError, match="pass block=8"):
        BlockCS.from_arrays({"phi": np.zeros((10, 64)), "size": size})
    with pytest.raises(UsageError, match=r"Qinit \(1089, 100\).*\(1089, 109\)"):
        BlockCS.from_arrays({"phi": phi, "size": size, "qinit": np.zeros((1089, 100))})
    with pytest.raises(UsageError, match="transposed"):
        BlockCS.from_arrays({"phi": phi, "size": size, "qinit": np.zeros((109, 1089))})
    with pytest.raises(UsageError) as e:
        BlockCS.from_arrays({"phi": phi, "size": size}, meas_shape=(1, 5, 109))
    assert "2 x 2 = 4 blocks" in one_line(e) and "(1, 5, 109)" in one_line(e)
    with pytest.raises(UsageError, match="m = 109"):
        BlockCS.from_arrays({"phi": phi, "size": size}, meas_shape=(1, 4, 108))
    with pytest.raises(UsageError, match="size must be two whole numbers"):
        BlockCS.from_arrays({"phi": phi, "size": np.array([40.5, 50])})
    with pytest.raises(UsageError, match="needs the image size"):
        BlockCS.from_arrays({"phi": phi})
    with pytest.raises(UsageError, match="needs a sampling matrix"):
        BlockCS.from_arrays({"size": size})
    with pytest.raises(UsageError, match="unknown option"):
        BlockCS.from_arrays({"phi": phi, "size": size}, ratio=0.1)
    op = BlockCS.from_arrays({"phi": phi, "size": np.array([[40.0, 50.0]])}, meas_shape=(2, 4, 109))
    with pytest.raises(UsageError, match=r"\(N, 1, 40, 50\)"):
        op.A(torch.zeros(1, 1, 41, 50, dtype=torch.float64))
    with pytest.raises(UsageError, match=r"\(N, 4, 109\)"):
        op.A_adjoint(torch.zeros(1, 5, 109, dtype=torch.float64))


@pytest.mark.skipif(not (MATRICES / "phi_0_30_1089.mat").is_file(), reason="ISTA-Net matrices not available")
def test_ista_net_matrices_load() -> None:
    phi = scipy.io.loadmat(str(MATRICES / "phi_0_30_1089.mat"))["phi"]
    qinit = scipy.io.loadmat(str(MATRICES / "Initialization_Matrix_30.mat"))["Qinit"]
    op = BlockCS.from_arrays({"phi": phi, "size": np.array([321, 481]), "qinit": qinit}, meas_shape=(1, 150, 327))
    assert op.m == measurements_for(0.3) == 327 and op.norm() == pytest.approx(1.0, rel=1e-9)


def test_admm_tv_beats_the_back_projection() -> None:
    img = transform.resize(data.camera().astype(np.float64) / 255, (66, 90), anti_aliasing=True)
    x = torch.from_numpy(img).float()[None, None]
    op = BlockCS.random((1, 66, 90), rng=np.random.default_rng(0), ratio=0.3)
    y = op.A(x)

    def psnr(z: torch.Tensor) -> float:
        return float(10 * torch.log10(1 / ((z.clamp(0, 1) - x) ** 2).mean()))

    base = psnr(op.A_adjoint(y))
    res = METHODS.get("admm-tv").factory(iters=30, tv_weight=0.02, gamma=0.05).solve(op, y)
    assert res.x.shape == x.shape
    assert psnr(res.x) > base + 5, (psnr(res.x), base)


def test_random_instances_start_from_the_ar1_lmmse_initialiser() -> None:
    """The data-free Qinit is R Phi^T (Phi R Phi^T)^-1 (so Phi Qinit = I: the start reproduces the
    measurements) and starts far closer to a natural image than A^T y."""
    from skimage import data

    op = BlockCS.random((1, 66, 66), rng=np.random.default_rng(0), ratio=0.25)
    phi, q = op.phi.double(), op.qinit.double()
    assert torch.allclose(phi @ q, torch.eye(op.m, dtype=torch.float64), atol=1e-4)
    idx = torch.arange(33, dtype=torch.float64)
    k = 0.8 ** (idx[:, None] - idx[None, :]).abs()
    R = 0.05 * torch.kron(k, k) + 0.44 ** 2
    assert torch.allclose(q, R @ phi.T @ torch.linalg.inv(phi @ R @ phi.T), atol=1e-5)
    x = torch.from_numpy(data.camera()[200:266, 200:266].astype("float32") / 255)[None, None]
    y = op.A(x)
    assert torch.allclose(op.A(op.start(y)), y, atol=1e-4)
    err = lambda z: float(((z - x) ** 2).mean())  # noqa: E731
    assert err(op.start(y)) < 0.1 * err(op.A_adjoint(y))
