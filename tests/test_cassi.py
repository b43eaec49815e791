"""The CASSI operator and the spectral colour rendering.

* ``A`` against the literal per-pixel sum ``y(i, j) = sum_l M(i, j - d l) x_l(i, j - d l)``;
* ``R`` against a brute-force ``diag(A A^T)`` and the explicit dense ``A A^T`` being diagonal;
* ``from_arrays``: L from the measurement width, one-line UsageErrors naming shapes and d;
* gap-tv recovers a smooth synthetic cube from one simulated snapshot far better than the
  linear estimates ``A^T y`` and ``A^+ y``;
* ``scicli.color``: the CIE fit, flat spectra render grey, 450 nm bluish, 650 nm reddish.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from scicli.color import TSA_WAVELENGTHS, cassi_wavelengths, cie1931_cmf, cube_to_srgb
from scicli.core.errors import UsageError
from scicli.physics import OPERATORS
from scicli.methods import METHODS
from scicli.metrics import sample_psnr

CASSI = OPERATORS.get("cassi").factory


def reference_A(mask: np.ndarray, x: np.ndarray, d: int) -> np.ndarray:
    """The forward model written as the literal loop over sensor pixels and bands."""
    N, L, H, W = x.shape
    masks = np.broadcast_to(mask if mask.ndim == 3 else mask[None], (N, H, W))
    y = np.zeros((N, H, W + d * (L - 1)))
    for n in range(N):
        for i in range(H):
            for j in range(W + d * (L - 1)):
                for band in range(L):
                    jj = j - d * band
                    if 0 <= jj < W:
                        y[n, i, j] += masks[n, i, jj] * x[n, band, i, jj]
    return y


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("per_measurement", [False, True])
def test_forward_model_matches_the_literal_sum(d: int, per_measurement: bool) -> None:
    rng = np.random.default_rng(d)
    L, H, W, N = 4, 3, 6, 2
    mask = rng.random((N, H, W) if per_measurement else (H, W))
    x = rng.standard_normal((N, L, H, W))
    op = CASSI(torch.from_numpy(mask), bands=L, step=d)
    y = op.A(torch.from_numpy(x))
    assert y.shape == (N, H, W + d * (L - 1))
    np.testing.assert_allclose(y.numpy(), reference_A(mask, x, d), rtol=1e-12, atol=1e-12)
    # the adjoint is literal too: (A^T y)_l(i, j) = M(i, j) y(i, j + d l)
    v = rng.standard_normal(y.shape)
    back = op.A_adjoint(torch.from_numpy(v)).numpy()
    masks = np.broadcast_to(mask if mask.ndim == 3 else mask[None], (N, H, W))
    for band in range(L):
        np.testing.assert_allclose(back[:, band], masks * v[:, :, d * band:d * band + W], rtol=1e-12)


def test_R_is_the_brute_force_diagonal_of_AAt() -> None:
    rng = np.random.default_rng(5)
    L, H, W, d = 5, 3, 7, 2
    mask = (rng.random((H, W)) < 0.5).astype(np.float64)
    mask[1, :] = 0  # a closed row: its sensor row sees nothing, R guarded to 1 there
    op = CASSI(torch.from_numpy(mask), bands=L, step=d)
    Wy = W + d * (L - 1)
    R = np.zeros((H, Wy))
    for i in range(H):
        for j in range(Wy):
            R[i, j] = sum(mask[i, j - d * band] ** 2 for band in range(L) if 0 <= j - d * band < W)
    np.testing.assert_allclose(op.energy[0].numpy(), R, rtol=1e-12)
    assert torch.equal(op.R[0], torch.where(op.energy[0] == 0, torch.ones_like(op.energy[0]), op.energy[0]))
    assert (op.R[0, 1] == 1).all()
    M = op.dense()
    np.testing.assert_allclose((M @ M.T).numpy(), np.diag(R.reshape(-1)), atol=1e-12)
    assert op.norm() == pytest.approx(R.max())


def test_from_arrays_infers_the_bands_from_the_measurement_width() -> None:
    mask = np.ones((660, 660), np.float32)
    op = CASSI.from_arrays({"mask": mask}, meas_shape=(5, 660, 714))
    assert (op.bands, op.step, op.meas_shape) == (28, 2, (660, 714))
    assert op.options() == {"step": 2, "bands": 28}
    op3 = CASSI.from_arrays({"mask": mask[:20, :30]}, meas_shape=(1, 20, 42), step=3)
    assert op3.bands == 5
    again = CASSI.from_arrays(op3.arrays(), **op3.options())
    assert again.meas_shape == (20, 42)
    assert CASSI.from_arrays({"mask": np.ones((2, 4, 5))}, meas_shape=(2, 4, 9)).bands == 3
    assert CASSI.from_arrays({"mask": np.ones((4, 5), bool)}, bands=3).mask.dtype == torch.float32


@pytest.mark.parametrize("arrays, meas_shape, options, pattern", [
    ({"mask": np.ones((660, 660))}, (5, 660, 701), {},
     r"^CASSI measurement width 701 does not fit mask width 660 \+ 2 \(L - 1\) for any whole L >= 2"),
    ({"mask": np.ones((660, 660))}, (1, 660, 661), {}, r"width 661 .* mask width 660 \+ 2 .*d = 2"),
    ({"mask": np.ones((660, 660))}, (1, 660, 660), {}, r"for any whole L >= 2"),
    ({"mask": np.ones((660, 660))}, (1, 256, 714), {}, r"height 256 differs from the mask height 660"),
    ({"mask": np.ones((660, 660))}, (1, 660, 714), {"bands": 27},
     r"width 714 does not fit mask width 660 \+ 2 \(27 - 1\) = 712"),
    ({"mask": np.ones((660, 660))}, (1, 660, 714), {"step": 0}, r"step must be a whole number >= 1"),
    ({"mask": np.ones((660, 660))}, (1, 660, 714), {"step": 1.5}, r"step must be a whole number >= 1"),
    ({"mask": np.ones((3, 8, 8))}, (2, 8, 14), {}, r"3 CASSI masks for 2 measurements"),
    ({"mask": np.ones((2, 3, 8, 8))}, (2, 8, 14), {}, r"mask must be \(H, W\) or \(K, H, W\)"),
    ({}, (2, 8, 14), {}, r"needs a coded aperture"),
    ({"mask": np.ones((8, 8))}, None, {}, r"needs the number of bands"),
    ({"mask": np.ones((8, 8))}, (1, 8, 14), {"kind": "random"}, r"unknown option"),
    ({"mask": np.ones((8, 8))}, (8, 14), {}, r"must be \(K, H, W \+ d \(L - 1\)\)"),
])
def test_bad_shapes_are_one_line_usage_errors(arrays, meas_shape, options, pattern) -> None:
    with pytest.raises(UsageError, match=pattern) as info:
        CASSI.from_arrays(arrays, meas_shape=meas_shape, **options)
    assert "\n" not in str(info.value)


def test_wrong_tensor_shapes_are_refused() -> None:
    op = CASSI(torch.ones(4, 5), bands=3)
    with pytest.raises(UsageError, match=r"input must be \(N, 3, 4, 5\)"):
        op.A(torch.ones(1, 2, 4, 5))
    with pytest.raises(UsageError, match=r"measurements must be \(N, 4, 9\)"):
        op.A_adjoint(torch.ones(1, 4, 8))


def test_random_aperture_is_binary_with_the_density() -> None:
    op = CASSI.random((6, 64, 64), rng=np.random.default_rng(0), density=0.3, step=1)
    assert set(np.unique(op.arrays()["mask"])) <= {0.0, 1.0}
    assert abs(float(op.mask.mean()) - 0.3) < 0.03
    assert (op.bands, op.step, op.meas_shape) == (6, 1, (64, 69))
    with pytest.raises(UsageError, match="density"):
        CASSI.random((6, 8, 8), rng=np.random.default_rng(0), density=0.0)


def smooth_cube(L: int, H: int, W: int) -> np.ndarray:
    """A smooth spatio-spectral cube on [0, 1]: two spectral signatures mixed by smooth maps."""
    i, j = np.mgrid[0:H, 0:W] / H
    lam = np.linspace(0, 1, L)[:, None, None]
    x = 0.5 + 0.3 * np.sin(2 * np.pi * (i + 0.5 * j)) * np.cos(np.pi * lam) + 0.15 * np.cos(2 * np.pi * j) * lam
    return np.clip(x, 0, 1)


def test_gap_tv_recovers_a_smooth_cube_from_one_snapshot() -> None:
    L, H, W = 8, 32, 32
    op = CASSI.random((L, H, W), rng=np.random.default_rng(0), step=2).double()
    x = torch.from_numpy(smooth_cube(L, H, W))[None]
    y = op.A(x)
    result = METHODS.get("gap-tv").factory(iters=40, tv_weight=0.1).solve(op, y)
    psnr = float(sample_psnr(result.x, x))
    baselines = [float(sample_psnr(op.A_adjoint(y), x)), float(sample_psnr(op.A_dagger(y), x))]
    assert psnr > 30, psnr  # measured 36.0 dB
    assert psnr > max(baselines) + 15, (psnr, baselines)  # A^T y 5.8 dB, A^+ y 8.1 dB
    assert result.history[-1]["residual"] < 1e-2


# -- colour ------------------------------------------------------------------------------------
def test_cie_fit_matches_tabulated_values() -> None:
    # CIE 1931 2-degree table values: xbar(600), ybar(555), zbar(450), ybar(500), xbar(450)
    cmf = cie1931_cmf(np.array([600.0, 555.0, 450.0, 500.0, 450.0]))
    got = [cmf[0, 0], cmf[1, 1], cmf[2, 2], cmf[3, 1], cmf[4, 0]]
    np.testing.assert_allclose(got, [1.0622, 1.0000, 1.7721, 0.3230, 0.3362], atol=0.03)


def test_tsa_wavelengths() -> None:
    lam = cassi_wavelengths()
    assert lam.shape == (28,) and lam[0] == 453.3 and lam[-1] == 648.1
    assert np.all(np.diff(lam) > 0)
    np.testing.assert_array_equal(cassi_wavelengths(28), TSA_WAVELENGTHS)
    lam10 = cassi_wavelengths(10)
    assert lam10[0] == 453.3 and lam10[-1] == 648.1 and np.all(np.diff(lam10) > 0)
    stretched = cassi_wavelengths(28, span=(453.3, 709.3))
    assert stretched[0] == pytest.approx(453.3) and stretched[-1] == pytest.approx(709.3)


def test_flat_spectrum_renders_grey() -> None:
    lam = cassi_wavelengths(28)
    cube = np.ones((28, 4, 4)) * np.linspace(0.2, 1.0, 4)[None, :, None]  # flat spectra, 4 levels
    rgb = cube_to_srgb(cube, lam).astype(float)
    assert rgb.shape == (4, 4, 3) and rgb.dtype == float
    spread = rgb.max(axis=-1) - rgb.min(axis=-1)
    assert spread.max() <= 0.03 * 255
    assert rgb[0, 0, 0] < rgb[3, 0, 0]  # brighter spectrum, brighter grey


@pytest.mark.parametrize("nm, channel", [(450.0, 2), (650.0, 0)])
def test_narrow_band_hue(nm: float, channel: int) -> None:
    lam = cassi_wavelengths(28)
    band = int(np.argmin(np.abs(lam - nm)))
    cube = np.zeros((28, 1, 2))
    cube[:, 0, 0] = 1.0  # a white reference pixel sets the exposure
    cube[band, 0, 1] = 3.0
    rgb = cube_to_srgb(cube, lam, percentile=100).astype(int)[0, 1]
    others = [c for c in range(3) if c != channel]
    assert rgb[channel] > 2 * max(rgb[others]) and rgb[channel] > 100, rgb
