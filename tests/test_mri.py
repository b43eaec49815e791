"""Specification of the single-coil CS-MRI operator ``mri`` (scicli.physics.mri.MRI) and of the
complex-data support around it (readers/writers, channel-wise denoising of complex images, NMSE).

    y = S * F x        F = fft2(norm="ortho"), DC at [0, 0], y complex (N, H, W)
    real images:     A^T y = Re F^H (S y),  A A^T couples k and -k (closed form per pair)
    complex images:  A^H y = F^H (S y),     A A^H = diag(S^2)

The contract suite (tests/test_operator_contract.py) runs the real-image example; here the
complex mode, weighted asymmetric masks, odd and even sizes, and the file/denoiser paths.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from scicli.priors import DENOISERS
from scicli.core.errors import DataError, ScicliError, UsageError
from scicli.io import read_array
from scicli.io.writers import write_array
from scicli.metrics import frame_metrics, nmse
from scicli.physics import OPERATORS
from scicli.physics.base import inner
from scicli.physics.mri import MRI, cartesian_mask, radial_mask


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def weighted_mask(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Weights in [0, 2) on a random half of k-space: asymmetric under k -> -k, DC sampled."""
    rng = np.random.default_rng(seed)
    m = rng.random(shape) * 2 * (rng.random(shape) < 0.5)
    m[..., 0, 0] = 1.5
    return torch.from_numpy(m)


def real_matrix(op: MRI) -> torch.Tensor:
    """The real matrix of x -> (Re A x, Im A x) on one real (H, W) image."""
    M = op.dense()
    return torch.cat([M.real, M.imag])


def flat(y: torch.Tensor) -> torch.Tensor:
    y = y.reshape(-1)
    return torch.cat([y.real, y.imag]) if y.is_complex() else y


def unflat(v: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    n = v.numel() // 2
    return torch.complex(v[:n], v[n:]).reshape(shape)


def complex_dense(op: MRI) -> torch.Tensor:
    """The complex matrix of A on one complex image (complex images)."""
    H, W = op.mask.shape[-2:]
    eye = torch.eye(H * W, dtype=torch.complex128).reshape(H * W, 1, H, W)
    return op.A(eye).reshape(H * W, -1).T


SIZES = [(4, 5), (5, 6), (6, 6), (3, 7)]


# ----------------------------------------------------------------------------- the map
def test_A_is_the_masked_unitary_fft() -> None:
    mask = weighted_mask((2, 6, 9))
    op = MRI(mask)
    x = torch.randn(2, 1, 6, 9, generator=gen(0), dtype=torch.float64)
    ref = mask.numpy() * np.fft.fft2(x[:, 0].numpy(), norm="ortho")
    np.testing.assert_allclose(op.A(x).numpy(), ref, rtol=1e-12, atol=1e-12)
    xc = torch.complex(x, torch.randn(x.shape, generator=gen(1), dtype=torch.float64))
    ref_c = mask.numpy() * np.fft.fft2(xc[:, 0].numpy(), norm="ortho")
    np.testing.assert_allclose(MRI(mask, complex_images=True).A(xc).numpy(), ref_c, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("complex_images", [False, True])
def test_adjointness_both_modes(complex_images: bool) -> None:
    op = MRI(weighted_mask((3, 7, 8)), complex_images=complex_images)
    assert op.adjointness_error(3, generator=gen(2)) < 1e-12
    if complex_images:  # complex-linear: the full complex inner product, with complex u
        u, v = op.example_input(3, generator=gen(3)), op.example_meas(3, generator=gen(4))
        assert u.is_complex()
        lhs = (torch.conj(op.A(u)) * v).sum()
        rhs = (torch.conj(u) * op.A_adjoint(v)).sum()
        assert abs(complex(lhs - rhs)) < 1e-10 * abs(complex(lhs))
    else:
        assert not op.A_adjoint(op.example_meas(3, generator=gen(4))).is_complex()


def test_zero_filled_start() -> None:
    mask = (torch.rand(9, 10, generator=gen(5)) < 0.4).double()
    x = torch.rand(2, 1, 9, 10, generator=gen(6), dtype=torch.float64)
    y = MRI(mask).A(x)
    ref = np.real(np.fft.ifft2(mask.numpy() * np.fft.fft2(x[:, 0].numpy())))
    np.testing.assert_allclose(MRI(mask).start(y)[:, 0].numpy(), ref, rtol=1e-12, atol=1e-12)
    ref_c = np.fft.ifft2(mask.numpy() * np.fft.fft2(x[:, 0].numpy()))
    np.testing.assert_allclose(MRI(mask, complex_images=True).start(y)[:, 0].numpy(), ref_c, atol=1e-12)


# ----------------------------------------------------------------------------- closed forms
def test_gram_inverse_complex_mode() -> None:
    op = MRI(weighted_mask((2, 6, 7)), complex_images=True)
    assert op.has_gram_inverse
    r = op.example_meas(2, generator=gen(7))
    for gamma in (1e-3, 0.5):
        g = op.gram_inverse(r, gamma)
        torch.testing.assert_close(op.A(op.A_adjoint(g)) + gamma * g, r, rtol=1e-10, atol=1e-10)
    s2 = op.mask ** 2
    expected = torch.where(s2 > 0, r / torch.where(s2 > 0, s2, 1), 0)
    torch.testing.assert_close(op.gram_inverse(r), expected)
    x, v = op.example_input(2, generator=gen(8)), op.example_input(2, generator=gen(9))
    y = op.A(x)
    torch.testing.assert_close(op.A(op.project(v, y)), y, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("size", SIZES)
def test_real_mode_gram_is_not_diagonal_but_closed_form(size: tuple[int, int]) -> None:
    """A A^T (real images) against the dense real matrix: it couples k and -k; the closed-form
    (A A^T + gamma)^-1 and the gamma = 0 pseudo-inverse match dense linear algebra."""
    op = MRI(weighted_mask(size, seed=sum(size)))
    M = real_matrix(op)  # (2HW, HW)
    G = M @ M.T
    off = G - torch.diag(torch.diag(G))
    assert off.abs().max() > 0.1  # not diagonal
    r = op.example_meas(1, generator=gen(10))[0]
    for gamma in (1e-3, 0.3):
        ref = torch.linalg.solve(G + gamma * torch.eye(G.shape[0], dtype=G.dtype), flat(r))
        torch.testing.assert_close(flat(op.gram_inverse(r[None], gamma)), ref, rtol=1e-8, atol=1e-8)
    ref0 = torch.linalg.pinv(G, hermitian=True) @ flat(r)
    torch.testing.assert_close(flat(op.gram_inverse(r[None])), ref0, rtol=1e-8, atol=1e-8)
    top = float(torch.linalg.eigvalsh(M.T @ M).max())
    assert op.norm() == pytest.approx(top, rel=1e-10)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("gamma", [1e-3, 0.05, 2.0])
def test_real_mode_prox_l2_against_a_dense_solve(size: tuple[int, int], gamma: float) -> None:
    op = MRI(weighted_mask(size, seed=3 * sum(size)))
    M = real_matrix(op)
    z = op.example_input(1, generator=gen(11))
    y = op.example_meas(1, generator=gen(12))
    ref = torch.linalg.solve(M.T @ M + gamma * torch.eye(M.shape[1], dtype=M.dtype),
                             M.T @ flat(y) + gamma * z.reshape(-1))
    out = op.prox_l2(z, y, gamma)
    assert not out.is_complex()
    torch.testing.assert_close(out.reshape(-1), ref, rtol=1e-9, atol=1e-9)
    # the Woodbury form with the closed-form gram inverse agrees
    wood = z + op.A_adjoint(op.gram_inverse(y - op.A(z), gamma))
    torch.testing.assert_close(wood, out, rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("gamma", [1e-2, 1.0])
def test_complex_mode_prox_and_norm_against_dense(gamma: float) -> None:
    op = MRI(weighted_mask((5, 6), seed=4), complex_images=True)
    M = complex_dense(op)
    z = op.example_input(1, generator=gen(13))
    y = op.example_meas(1, generator=gen(14))
    ref = torch.linalg.solve(M.conj().T @ M + gamma * torch.eye(M.shape[1], dtype=M.dtype),
                             M.conj().T @ y.reshape(-1) + gamma * z.reshape(-1))
    torch.testing.assert_close(op.prox_l2(z, y, gamma).reshape(-1), ref, rtol=1e-9, atol=1e-9)
    top = float(torch.linalg.eigvalsh(M.conj().T @ M).real.max())
    assert op.norm() == pytest.approx(top, rel=1e-10)


def test_dtype_device_and_batches() -> None:
    op = MRI(weighted_mask((3, 8, 8))).to(torch.float32)
    assert op.mask.dtype == torch.float32 and op.mask_neg.dtype == torch.float32
    x = torch.rand(3, 1, 8, 8)
    y = op.A(x)
    assert y.dtype == torch.complex64 and y.shape == (3, 8, 8)
    assert op.A_adjoint(y).dtype == torch.float32 and op.A_adjoint(y).shape == (3, 1, 8, 8)
    assert op.prox_l2(x, y, 0.1).shape == x.shape
    shared = MRI(weighted_mask((8, 8)))
    assert shared.A(torch.rand(5, 1, 8, 8, dtype=torch.float64)).shape == (5, 8, 8)


# ----------------------------------------------------------------------------- files and masks
def test_from_arrays_checks_and_centred() -> None:
    mask = weighted_mask((6, 8)).numpy()
    with pytest.raises(UsageError) as exc:
        MRI.from_arrays({"mask": mask}, meas_shape=(2, 6, 9))
    msg = str(exc.value)
    assert "\n" not in msg and "(6, 8)" in msg and "(2, 6, 9)" in msg
    with pytest.raises(UsageError, match="unknown option"):
        MRI.from_arrays({"mask": mask}, shift=True)
    with pytest.raises(UsageError, match="3 masks"):
        MRI.from_arrays({"mask": np.ones((3, 6, 8))}, meas_shape=(2, 6, 8))
    op = MRI.from_arrays({"mask": np.fft.fftshift(mask)}, meas_shape=(1, 6, 8), centred=True)
    np.testing.assert_array_equal(op.arrays()["mask"], mask)
    again = MRI.from_arrays(op.arrays(), **op.options())
    assert again.options() == {"complex_images": False}
    assert MRI.from_arrays({"mask": mask.astype(bool)}, complex_images=True).complex_images


@pytest.mark.parametrize("kind", ["cartesian", "radial"])
@pytest.mark.parametrize("ratio", [0.1, 0.25, 0.5])
def test_generated_masks_hit_the_ratio_and_hold_dc(kind: str, ratio: float) -> None:
    cls = OPERATORS.get("mri").factory
    op = cls.random((1, 64, 48), rng=np.random.default_rng(1), kind=kind, ratio=ratio)
    mask = op.arrays()["mask"]
    assert mask.shape == (64, 48) and set(np.unique(mask)) <= {0.0, 1.0}
    assert mask[0, 0] == 1
    assert abs(op.ratio - ratio) < 0.02
    again = cls.random((1, 64, 48), rng=np.random.default_rng(1), kind=kind, ratio=ratio)
    np.testing.assert_array_equal(again.arrays()["mask"], mask)


def test_cartesian_centre_lines_and_radial_spokes() -> None:
    mask = cartesian_mask(64, 32, 0.3, rng=np.random.default_rng(0), centre_fraction=0.1)
    rows = mask.any(axis=1)
    assert (mask[rows] == 1).all()  # whole lines
    assert rows[:4].all() and rows[-3:].all()  # the 6 or 7 lines nearest DC (wrapped)
    radial, n = radial_mask(64, 64, 0.2, rng=np.random.default_rng(0))
    assert radial[0, 0] == 1 and n >= 4
    centred = np.fft.fftshift(radial)
    assert centred[32, :].sum() + centred[:, 32].sum() > 0  # spokes pass the centre
    with pytest.raises(UsageError, match="kind"):
        MRI.random((1, 8, 8), rng=np.random.default_rng(0), kind="spiral")
    with pytest.raises(UsageError, match="ratio"):
        MRI.random((1, 8, 8), rng=np.random.default_rng(0), ratio=1.5)


@pytest.mark.parametrize("suffix", [".npy", ".mat", ".npz"])
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_arrays_round_trip(tmp_path: Path, suffix: str, dtype) -> None:
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((3, 5, 6)) + 1j * rng.standard_normal((3, 5, 6))).astype(dtype)
    path = write_array(tmp_path / f"k{suffix}", arr, dtype=None, key="meas")
    back = read_array(path, role="meas")
    if suffix == ".mat":  # MATLAB order (frames last)
        back = np.moveaxis(back, -1, 0)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, arr)
    as32 = read_array(write_array(tmp_path / f"f{suffix}", arr, key="meas"), role="meas")
    assert as32.dtype == np.complex64


def test_complex_mat73_reads_the_compound_dtype(tmp_path: Path) -> None:
    arr = np.arange(12.0).reshape(3, 4) + 1j * np.arange(12.0, 24.0).reshape(3, 4)
    comp = np.dtype([("real", "<f8"), ("imag", "<f8")])
    stored = np.empty(arr.T.shape, dtype=comp)  # MATLAB column-major: stored transposed
    stored["real"], stored["imag"] = arr.T.real, arr.T.imag
    path = tmp_path / "k.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("kspace", data=stored).attrs["MATLAB_class"] = b"double"
        f.create_dataset("mask_matrix", data=np.ones((4, 3), dtype=np.uint8)).attrs["MATLAB_class"] = b"uint8"
    np.testing.assert_array_equal(read_array(path, key="kspace"), arr)
    bad = stored.copy()
    bad["imag"][0, 0] = np.nan
    with h5py.File(tmp_path / "n.mat", "w", userblock_size=512) as f:
        f.create_dataset("y", data=bad).attrs["MATLAB_class"] = b"double"
    with pytest.raises(DataError, match="1 NaN/Inf"):
        read_array(tmp_path / "n.mat")


@pytest.mark.parametrize("suffix", [".tif", ".png", ".gif"])
def test_image_formats_refuse_complex(tmp_path: Path, suffix: str) -> None:
    with pytest.raises(UsageError) as exc:
        write_array(tmp_path / f"k{suffix}", np.ones((2, 4, 4), dtype=np.complex64))
    assert "complex" in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / f"k{suffix}").exists()


# ----------------------------------------------------------------------------- complex images elsewhere
@pytest.mark.parametrize("name", ["tv", "ffdnet"])
def test_complex_image_is_denoised_channel_wise(name: str) -> None:
    try:
        D = DENOISERS.get(name).factory()
    except ScicliError as exc:  # FFDNet weights not installed
        pytest.skip(str(exc))
    g = gen(15)
    x = torch.complex(torch.rand(2, 1, 24, 24, generator=g), torch.rand(2, 1, 24, 24, generator=g))
    sigma = 0.1
    out = D(x, sigma)
    assert out.is_complex() and out.shape == x.shape
    torch.testing.assert_close(out.real, D(x.real.contiguous(), sigma), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.imag, D(x.imag.contiguous(), sigma), rtol=1e-5, atol=1e-5)


def test_nmse_and_frame_metrics() -> None:
    ref = np.array([[3.0, 4.0]])
    assert nmse(ref + np.array([[0.0, 0.5]]), ref) == pytest.approx(0.1)
    assert nmse(ref * (1 + 1j), ref * 1j) == pytest.approx(1.0)
    frames = np.random.default_rng(0).random((2, 16, 16))
    m = frame_metrics(frames * 0.9, frames)
    assert {"psnr", "ssim", "psnr_mean", "ssim_mean", "convention", "nmse", "nmse_mean"} <= set(m)
    assert m["nmse"] == pytest.approx([0.1, 0.1]) and m["nmse_mean"] == pytest.approx(0.1)


def test_solver_psnr_of_a_complex_estimate_is_that_of_its_magnitude() -> None:
    from scicli.methods import METHODS
    from scicli.metrics import frame_psnr

    torch.manual_seed(0)
    gt = torch.rand(1, 1, 16, 16, dtype=torch.float64) * torch.exp(0.3j * torch.rand(1, 1, 16, 16))
    op = MRI(torch.from_numpy(cartesian_mask(16, 16, 0.5, rng=np.random.default_rng(0))).double(),
             complex_images=True)
    res = METHODS.get("admm-tv").factory(iters=3, tv_weight=0.05).solve(op, op.A(gt), gt=gt)
    assert res.x.is_complex()
    assert res.history[-1]["psnr"] == pytest.approx(float(frame_psnr(res.x.abs(), gt.abs()).mean()))
    assert inner(res.x, res.x) > 0
