"""Specification of the TV denoiser ``scicli.priors.tv``.

``tv_chambolle(f, weight, n_iter, eps)`` solves, for every 2-D frame of ``f`` independently,
``min_u ||u - f||^2 / 2 + weight * TV(u)`` with Chambolle's dual projection, and must give the
same result as ``skimage.restoration.denoise_tv_chambolle(frame, weight, eps, max_num_iter)``,
including skimage's energy-based early stop, which is decided frame by frame.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.restoration import denoise_tv_chambolle

from scicli.priors import DENOISERS
from scicli.priors.tv import tv_chambolle

H, W = 24, 30  # non-square


def clean_image(h: int = H, w: int = W) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return 0.5 + 0.3 * np.sin(xx / 4.0) * np.cos(yy / 5.0)


def frame_stack(seed: int = 0) -> np.ndarray:
    """Five very different frames (F, H, W), float64: they converge at different speeds."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    clean = clean_image()
    return np.stack(
        [
            np.full((H, W), 0.4),  # constant: nothing to do, E_init = 0, never "stops"
            clean + 0.1 * rng.standard_normal((H, W)),
            clean + 0.3 * rng.standard_normal((H, W)),
            ((xx // 3 + yy // 3) % 2).astype(np.float64),  # checkerboard
            rng.random((H, W)),
        ]
    )


def skimage_tv(frames: np.ndarray, weight: float, n_iter: int, eps: float = 2e-4) -> np.ndarray:
    return np.stack([denoise_tv_chambolle(f, weight=weight, eps=eps, max_num_iter=n_iter) for f in frames])


def stopped_early(frames: np.ndarray, weight: float, n_iter: int, eps: float = 2e-4) -> list[bool]:
    """Which frames skimage stops before ``n_iter`` (its output differs from the eps=0 run)."""
    with_stop = skimage_tv(frames, weight, n_iter, eps)
    without = skimage_tv(frames, weight, n_iter, eps=0.0)
    return [not np.array_equal(a, b) for a, b in zip(with_stop, without)]


def tv_seminorm(u: np.ndarray) -> float:
    """Isotropic TV with forward differences (zero across the far border), summed over frames."""
    gh = np.zeros_like(u)
    gw = np.zeros_like(u)
    gh[..., :-1, :] = np.diff(u, axis=-2)
    gw[..., :, :-1] = np.diff(u, axis=-1)
    return float(np.sqrt(gh**2 + gw**2).sum())


# ------------------------------------------------------------------ equality with scikit-image
@pytest.mark.parametrize("n_iter", [1, 2, 5, 50, 200])
@pytest.mark.parametrize("weight", [0.05, 0.1, 0.3, 1.0])
def test_matches_skimage_frame_by_frame(weight: float, n_iter: int) -> None:
    frames = frame_stack()
    ours = tv_chambolle(torch.from_numpy(frames), weight, n_iter=n_iter).numpy()
    assert ours.dtype == np.float64
    np.testing.assert_allclose(ours, skimage_tv(frames, weight, n_iter), rtol=0, atol=1e-6)


@pytest.mark.parametrize("weight,n_iter", [(0.1, 200), (0.3, 200), (1.0, 50)])
def test_matches_skimage_when_early_stop_differs_between_frames(weight: float, n_iter: int) -> None:
    """Some frames of the stack hit skimage's eps stop, others run to the cap: each must match."""
    frames = frame_stack(seed=1)
    stops = stopped_early(frames, weight, n_iter)
    assert any(stops) and not all(stops), stops  # the case this test is about
    ours = tv_chambolle(torch.from_numpy(frames), weight, n_iter=n_iter).numpy()
    np.testing.assert_allclose(ours, skimage_tv(frames, weight, n_iter), rtol=0, atol=1e-6)


def test_frames_running_to_the_cap_are_not_stopped_early() -> None:
    """(weight 1, 50 iterations): the mildly noisy frame needs all 50; stopping it would show."""
    frames = frame_stack(seed=0)
    stops = stopped_early(frames, 1.0, 50)
    assert stops[1] is False and stops[2] is True
    ours = tv_chambolle(torch.from_numpy(frames), 1.0, n_iter=50).numpy()
    capped = skimage_tv(frames[1:2], 1.0, 50, eps=0.0)[0]
    np.testing.assert_allclose(ours[1], capped, rtol=0, atol=1e-6)


@pytest.mark.parametrize("n_iter", [5, 200])
def test_eps_zero_disables_the_early_stop(n_iter: int) -> None:
    frames = frame_stack()
    ours = tv_chambolle(torch.from_numpy(frames), 0.1, n_iter=n_iter, eps=0.0).numpy()
    np.testing.assert_allclose(ours, skimage_tv(frames, 0.1, n_iter, eps=0.0), rtol=0, atol=1e-6)


@pytest.mark.parametrize("eps", [1e-3, 1e-2])
def test_matches_skimage_for_other_eps(eps: float) -> None:
    frames = frame_stack()
    ours = tv_chambolle(torch.from_numpy(frames), 0.2, n_iter=100, eps=eps).numpy()
    np.testing.assert_allclose(ours, skimage_tv(frames, 0.2, 100, eps=eps), rtol=0, atol=1e-6)


def test_float32_close_to_skimage() -> None:
    frames = frame_stack().astype(np.float32)
    ours = tv_chambolle(torch.from_numpy(frames), 0.1, n_iter=20)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), skimage_tv(frames, 0.1, 20), rtol=0, atol=1e-5)


# ------------------------------------------------------------------ batching
def test_batched_over_N_and_B_equals_per_frame() -> None:
    rng = np.random.default_rng(3)
    stack = clean_image()[None] + 0.2 * rng.standard_normal((6, H, W))
    batch = torch.from_numpy(stack.reshape(2, 3, H, W))
    out = tv_chambolle(batch, 0.15, n_iter=30)
    assert out.shape == (2, 3, H, W)
    for n in range(2):
        for b in range(3):
            single = tv_chambolle(batch[n, b], 0.15, n_iter=30)
            torch.testing.assert_close(out[n, b], single, rtol=0, atol=1e-12)
            ref = denoise_tv_chambolle(stack[3 * n + b], weight=0.15, max_num_iter=30)
            np.testing.assert_allclose(out[n, b].numpy(), ref, rtol=0, atol=1e-6)


def test_input_is_not_modified() -> None:
    f = torch.from_numpy(frame_stack())
    before = f.clone()
    tv_chambolle(f, 0.3, n_iter=10)
    torch.testing.assert_close(f, before, rtol=0, atol=0)


def test_zero_iterations_returns_a_copy() -> None:
    f = torch.from_numpy(frame_stack())
    out = tv_chambolle(f, 0.3, n_iter=0)
    torch.testing.assert_close(out, f, rtol=0, atol=0)
    assert out.data_ptr() != f.data_ptr()


@pytest.mark.parametrize("weight", [0.0, -0.1])
def test_nonpositive_weight_is_rejected(weight: float) -> None:
    with pytest.raises(ValueError, match="weight"):
        tv_chambolle(torch.zeros(1, 4, 4), weight, n_iter=5)


# ------------------------------------------------------------------ what TV denoising does
@pytest.mark.parametrize("weight", [0.05, 0.1, 0.3])
def test_decreases_tv_and_approaches_the_clean_image(weight: float) -> None:
    rng = np.random.default_rng(4)
    clean = np.stack([clean_image(), np.roll(clean_image(), 3, axis=1)])
    noisy = clean + 0.1 * rng.standard_normal(clean.shape)
    out = tv_chambolle(torch.from_numpy(noisy), weight, n_iter=100).numpy()
    assert tv_seminorm(out) < tv_seminorm(noisy)
    assert np.mean((out - clean) ** 2) < np.mean((noisy - clean) ** 2)


def test_constant_frame_is_a_fixed_point() -> None:
    f = torch.full((2, 3, H, W), 0.7, dtype=torch.float64)
    torch.testing.assert_close(tv_chambolle(f, 0.5, n_iter=50), f, rtol=0, atol=0)


def test_mean_is_preserved() -> None:
    """The divergence of the dual field sums to zero, so each frame keeps its mean."""
    f = torch.from_numpy(frame_stack())
    out = tv_chambolle(f, 0.3, n_iter=50)
    torch.testing.assert_close(out.mean(dim=(-2, -1)), f.mean(dim=(-2, -1)), rtol=0, atol=1e-12)


# ------------------------------------------------------------------ registry entry
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_registered_denoiser_preserves_shape_and_dtype(dtype: torch.dtype) -> None:
    D = DENOISERS.get("tv").factory()
    x = torch.rand(2, 3, H, W, generator=torch.Generator().manual_seed(0)).to(dtype)
    out = D(x, 0.1)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.isfinite(out).all()
    # default: 5 Chambolle iterations with skimage's eps
    torch.testing.assert_close(out, tv_chambolle(x, 0.1, n_iter=5), rtol=0, atol=0)


def test_registered_denoiser_takes_its_options() -> None:
    D = DENOISERS.get("tv").factory(n_iter=40, eps=0.0)
    x = torch.from_numpy(frame_stack())
    np.testing.assert_allclose(D(x, 0.2).numpy(), skimage_tv(x.numpy(), 0.2, 40, eps=0.0), rtol=0, atol=1e-6)
    assert "tv" in DENOISERS.names()


def test_with_autograd_it_is_the_same_denoiser_and_its_gradient_is_right() -> None:
    f = torch.rand(2, 3, 9, 7, dtype=torch.float64)
    plain = tv_chambolle(f, 0.1, n_iter=5, eps=0.0)
    recorded = tv_chambolle(f.clone().requires_grad_(), 0.1, n_iter=5, eps=0.0)
    assert recorded.requires_grad and torch.allclose(plain, recorded, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: tv_chambolle(t, 0.1, n_iter=4, eps=0.0),
                                    (torch.rand(1, 2, 6, 5, dtype=torch.float64, requires_grad=True),))
    flat = torch.ones(1, 1, 5, 5, requires_grad=True)  # |grad u| = 0 everywhere: still finite
    tv_chambolle(flat, 0.1, n_iter=3, eps=0.0).sum().backward()
    assert torch.isfinite(flat.grad).all()
