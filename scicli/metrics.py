"""Image quality metrics for reconstructed video: PSNR and SSIM, per frame.

Conventions (GUIDE section 2): frames are compared one 2-D frame at a time, both the
reconstruction and the reference are clipped to ``[0, data_range]`` first, and per-frame
scores are averaged with an arithmetic mean over frames.

- PSNR: ``10 log10(data_range^2 / mse)``, ``mse = mean((x - ref)^2)``; ``inf`` if ``mse == 0``.
- SSIM (Wang et al. 2004), mean of the local index
  ``((2 mu_x mu_r + C1)(2 s_xr + C2)) / ((mu_x^2 + mu_r^2 + C1)(s_x^2 + s_r^2 + C2))``,
  ``C1 = (K1 L)^2``, ``C2 = (K2 L)^2``, ``L = data_range``, ``K1 = 0.01``, ``K2 = 0.03``:

  * ``'skimage'``: scikit-image defaults, 7x7 uniform window, sample covariance (N-1).
    This is what the published tables use.
  * ``'matlab'``: the Wang et al. / MATLAB ``ssim`` variant, 11x11 Gaussian window with
    sigma 1.5, population covariance (N). No automatic downsampling is applied.

- SNR (the ODER supplement's, eq. 15): the truth against the best affine fit of the estimate,
  ``max_{a, c} 20 log10(||ref|| / ||ref - a x - c||)`` (a, c by least squares; no clipping), so
  a global gain or offset of the estimate is not penalised; ``inf`` for a perfect affine fit.
- NMSE (Deep ADMM-Net's tables): ``||x - ref|| / ||ref||`` (Euclidean norms, not squared, no
  clipping; complex values allowed).

Everything is computed in float64 with numpy (and scikit-image for the SSIM filter).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from skimage.metrics import structural_similarity
from torch import Tensor

SSIM_CONVENTIONS: dict[str, str] = {
    "skimage": (
        "scikit-image structural_similarity defaults: 7x7 uniform window, "
        "K1=0.01, K2=0.03, sample covariance"
    ),
    "matlab": (
        "Wang et al. 2004 / MATLAB ssim: 11x11 Gaussian window sigma=1.5, "
        "K1=0.01, K2=0.03, population covariance, no downsampling"
    ),
}


def _clip64(a: np.ndarray, data_range: float) -> np.ndarray:
    """Return ``a`` as float64 clipped to ``[0, data_range]``."""
    return np.clip(np.asarray(a, dtype=np.float64), 0.0, float(data_range))


def _check_range(data_range: float) -> float:
    data_range = float(data_range)
    if not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"data_range must be a positive finite number, got {data_range}")
    return data_range


def psnr(x: np.ndarray, ref: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / mse)``.

    Both inputs are clipped to ``[0, data_range]`` before the mean squared error is taken
    over all elements. Returns ``float('inf')`` when the clipped arrays are identical.
    """
    data_range = _check_range(data_range)
    x64, r64 = _clip64(x, data_range), _clip64(ref, data_range)
    if x64.shape != r64.shape:
        raise ValueError(f"psnr: shapes differ: {x64.shape} vs {r64.shape}")
    mse = float(np.mean((x64 - r64) ** 2))
    if mse == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


def nmse(x: np.ndarray, ref: np.ndarray) -> float:
    """Normalised error ``||x - ref|| / ||ref||`` over all elements (Euclidean norms, not squared;
    no clipping; real or complex). ``inf`` for a zero reference unless ``x`` equals it (then 0)."""
    x_a, r_a = np.asarray(x), np.asarray(ref)
    if x_a.shape != r_a.shape:
        raise ValueError(f"nmse: shapes differ: {x_a.shape} vs {r_a.shape}")
    dt = np.complex128 if (np.iscomplexobj(x_a) or np.iscomplexobj(r_a)) else np.float64
    x64, r64 = x_a.astype(dt), r_a.astype(dt)
    err, norm = float(np.linalg.norm((x64 - r64).ravel())), float(np.linalg.norm(r64.ravel()))
    if norm == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / norm


def snr(x: np.ndarray, ref: np.ndarray) -> float:
    """Affine-fit SNR in dB: ``20 log10(||ref|| / ||ref - a x - c||)`` with ``(a, c)`` the least
    squares fit of ``ref`` by ``a x + c`` over all elements (real arrays, float64, no clipping).
    ``inf`` when the fit is exact (a constant ``x`` is fitted by its best constant, the mean)."""
    x64, r64 = np.asarray(x, dtype=np.float64).ravel(), np.asarray(ref, dtype=np.float64).ravel()
    if x64.shape != r64.shape:
        raise ValueError(f"snr: shapes differ: {np.shape(x)} vs {np.shape(ref)}")
    design = np.stack([x64, np.ones_like(x64)], axis=1)
    coef, *_ = np.linalg.lstsq(design, r64, rcond=None)
    residual = float(np.linalg.norm(r64 - design @ coef))
    if residual <= 1e-15 * max(float(np.linalg.norm(r64)), 1e-300):
        return float("inf")
    return float(20.0 * np.log10(float(np.linalg.norm(r64)) / residual))


def ssim(
    x: np.ndarray,
    ref: np.ndarray,
    data_range: float = 1.0,
    convention: str = "skimage",
) -> float:
    """Structural similarity of one 2-D frame (see the module docstring for the maths).

    ``convention`` is ``'skimage'`` (7x7 uniform window, the field's default) or
    ``'matlab'`` (11x11 Gaussian window, sigma 1.5, population covariance).
    Both frames are clipped to ``[0, data_range]`` first.
    """
    if convention not in SSIM_CONVENTIONS:
        raise ValueError(
            f"unknown SSIM convention {convention!r}; expected one of "
            f"{', '.join(repr(c) for c in SSIM_CONVENTIONS)}"
        )
    data_range = _check_range(data_range)
    x64, r64 = _clip64(x, data_range), _clip64(ref, data_range)
    if x64.ndim != 2 or r64.ndim != 2:
        raise ValueError(f"ssim expects 2-D frames, got shapes {x64.shape} and {r64.shape}")
    if x64.shape != r64.shape:
        raise ValueError(f"ssim: shapes differ: {x64.shape} vs {r64.shape}")
    if convention == "skimage":
        value = structural_similarity(x64, r64, data_range=data_range)
    else:
        value = structural_similarity(
            x64,
            r64,
            data_range=data_range,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            K1=0.01,
            K2=0.03,
        )
    return float(value)


def convention_text(data_range: float = 1.0, ssim_convention: str = "skimage") -> str:
    """One line describing how the scores were computed, for reports."""
    return (
        f"per-frame PSNR/SSIM on frames clipped to [0, {float(data_range):g}], "
        f"data_range={float(data_range):g}, mean over frames; "
        f"SSIM '{ssim_convention}': {SSIM_CONVENTIONS[ssim_convention]}"
    )


def short_convention(ssim_convention: str = "skimage") -> str:
    """A few words for table captions, e.g. 'per frame, [0, 1] clipped, SSIM skimage 7x7'."""
    window = {"skimage": "7x7 uniform", "matlab": "11x11 Gaussian"}[ssim_convention]
    return f"per frame, clipped to [0, 1], SSIM {ssim_convention} ({window})"


def frame_metrics(
    recon: np.ndarray,
    orig: np.ndarray,
    data_range: float = 1.0,
    ssim_convention: str = "skimage",
) -> dict[str, Any]:
    """Per-frame PSNR and SSIM of frames-first arrays ``(F, H, W)`` and their means.

    A single 2-D frame ``(H, W)`` is treated as ``F = 1``. Returns
    ``{'psnr': [F floats], 'ssim': [F floats], 'nmse': [F floats], 'snr': [F floats], 'psnr_mean': float,
    'ssim_mean': float, 'nmse_mean': float, 'snr_mean': float, 'convention': {...}}`` where the means are
    arithmetic means over frames and ``convention`` describes the evaluation
    (``convention['text']`` is one line). NMSE is :func:`nmse` and SNR :func:`snr` per frame,
    unclipped; for complex arrays PSNR, SSIM and SNR are those of the magnitudes (NMSE of the
    complex values).
    """
    if ssim_convention not in SSIM_CONVENTIONS:
        raise ValueError(
            f"unknown SSIM convention {ssim_convention!r}; expected one of "
            f"{', '.join(repr(c) for c in SSIM_CONVENTIONS)}"
        )
    data_range = _check_range(data_range)
    recon_a, orig_a = np.asarray(recon), np.asarray(orig)
    if recon_a.shape != orig_a.shape:
        raise ValueError(
            f"reconstruction shape {recon_a.shape} does not match reference shape {orig_a.shape}"
        )
    if recon_a.ndim == 2:
        recon_a, orig_a = recon_a[None], orig_a[None]
    if recon_a.ndim != 3 or recon_a.shape[0] == 0:
        raise ValueError(
            f"expected frames-first arrays (F, H, W) with F >= 1, got shape {recon_a.shape}"
        )
    nmses = [nmse(r, o) for r, o in zip(recon_a, orig_a)]
    if np.iscomplexobj(recon_a) or np.iscomplexobj(orig_a):  # complex images: PSNR/SSIM of |x|
        recon_a, orig_a = np.abs(recon_a), np.abs(orig_a)
    psnrs = [psnr(r, o, data_range) for r, o in zip(recon_a, orig_a)]
    ssims = [ssim(r, o, data_range, ssim_convention) for r, o in zip(recon_a, orig_a)]
    snrs = [snr(r, o) for r, o in zip(recon_a, orig_a)]
    return {
        "psnr": psnrs,
        "ssim": ssims,
        "nmse": nmses,
        "snr": snrs,
        "psnr_mean": float(np.mean(psnrs)),
        "ssim_mean": float(np.mean(ssims)),
        "nmse_mean": float(np.mean(nmses)),
        "snr_mean": float(np.mean(snrs)),
        "convention": {
            "text": convention_text(data_range, ssim_convention),
            "short": short_convention(ssim_convention),
            "per_frame": True,
            "averaging": "arithmetic mean over frames",
            "data_range": data_range,
            "clipped": f"[0, {data_range:g}]",
            "ssim": ssim_convention,
            "ssim_details": SSIM_CONVENTIONS[ssim_convention],
        },
    }


# ----------------------------------------------------------------------------- torch (inside solvers and training)
def psnr_over(x: Tensor, ref: Tensor, dims: tuple[int, ...]) -> Tensor:
    """PSNR (data range 1, both clipped to [0, 1]) of the MSE over ``dims``, on tensors: the
    convention of :func:`psnr`, batched and on the tensors' device."""
    mse = ((x.clamp(0, 1) - ref.clamp(0, 1)) ** 2).mean(dim=dims)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-12))


def frame_psnr(x: Tensor, ref: Tensor) -> Tensor:
    """Per-frame PSNR of (N, B, H, W) tensors -> (N, B)."""
    return psnr_over(x, ref, (-2, -1))


def sample_psnr(x: Tensor, ref: Tensor) -> Tensor:
    """Per-sample PSNR of (N, ...) tensors -> (N,) (the MSE over everything but the first axis)."""
    return psnr_over(x, ref, tuple(range(1, x.ndim)))
