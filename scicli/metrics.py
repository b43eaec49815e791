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

Everything is computed in float64 with numpy alone: no BLAS call (numpy's OpenBLAS threads wake up
slowly on a busy machine: one 65536-element ``np.linalg.norm`` took ~10 ms there against 0.02 ms
with one thread) and no scipy/scikit-image import (0.3-0.5 s of start-up). The SSIM filters are
separable and "valid" (windows that fit inside the frame), which is exactly the region
scikit-image's ``structural_similarity`` averages after cropping its padded filter output, so
the values are those of scikit-image (checked to 1e-12 in the tests).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
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
K1, K2 = 0.01, 0.03
GAUSSIAN_SIGMA, GAUSSIAN_TRUNCATE = 1.5, 3.5  # the 'matlab' window: radius int(3.5 * 1.5 + 0.5) = 5
SSIM_CHUNK = 1 << 16  # pixels per block of frames filtered at once (cache-sized: 256 x 256 frames one by one)


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


def _sum_squares(a: np.ndarray) -> float:
    """``sum |a|^2`` over all elements, elementwise (numpy's pairwise sum, no BLAS)."""
    a = a.ravel()
    if np.iscomplexobj(a):
        return float(np.sum(a.real * a.real + a.imag * a.imag))
    return float(np.sum(a * a))


def nmse(x: np.ndarray, ref: np.ndarray) -> float:
    """Normalised error ``||x - ref|| / ||ref||`` over all elements (Euclidean norms, not squared;
    no clipping; real or complex). ``inf`` for a zero reference unless ``x`` equals it (then 0)."""
    x_a, r_a = np.asarray(x), np.asarray(ref)
    if x_a.shape != r_a.shape:
        raise ValueError(f"nmse: shapes differ: {x_a.shape} vs {r_a.shape}")
    dt = np.complex128 if (np.iscomplexobj(x_a) or np.iscomplexobj(r_a)) else np.float64
    x64, r64 = x_a.astype(dt), r_a.astype(dt)
    err, norm = float(np.sqrt(_sum_squares(x64 - r64))), float(np.sqrt(_sum_squares(r64)))
    if norm == 0.0:
        return 0.0 if err == 0.0 else float("inf")
    return err / norm


def snr(x: np.ndarray, ref: np.ndarray) -> float:
    """Affine-fit SNR in dB: ``20 log10(||ref|| / ||ref - a x - c||)`` with ``(a, c)`` the least
    squares fit of ``ref`` by ``a x + c`` over all elements (real arrays, float64, no clipping).
    ``inf`` when the fit is exact (a constant ``x`` is fitted by its best constant, the mean).

    The fit in closed form: with ``dx = x - mean(x)`` and ``dr = ref - mean(ref)``,
    ``a = <dx, dr> / <dx, dx>`` (0 when ``x`` is constant to working precision, as a least
    squares solver's rank cut-off decides) and the residual is ``dr - a dx``.
    """
    x64, r64 = np.asarray(x, dtype=np.float64).ravel(), np.asarray(ref, dtype=np.float64).ravel()
    if x64.shape != r64.shape:
        raise ValueError(f"snr: shapes differ: {np.shape(x)} vs {np.shape(ref)}")
    dx, dr = x64 - x64.mean(), r64 - r64.mean()
    sxx = _sum_squares(dx)
    # rank cut-off of lstsq on the design [x, 1]: smallest singular value <= eps max(N, 2) x largest
    cutoff = (np.finfo(np.float64).eps * max(x64.size, 2)) ** 2 * (_sum_squares(x64) + x64.size)
    a = float(np.sum(dx * dr)) / sxx if sxx > cutoff else 0.0
    residual = float(np.sqrt(_sum_squares(dr - a * dx)))
    norm = float(np.sqrt(_sum_squares(r64)))
    if residual <= 1e-15 * max(norm, 1e-300):
        return float("inf")
    return float(20.0 * np.log10(norm / residual))


def _check_convention(convention: str) -> None:
    if convention not in SSIM_CONVENTIONS:
        raise ValueError(
            f"unknown SSIM convention {convention!r}; expected one of "
            f"{', '.join(repr(c) for c in SSIM_CONVENTIONS)}"
        )


def ssim_window(convention: str = "skimage") -> np.ndarray:
    """The 1-D SSIM window ``w`` (the 2-D window is ``w w^T``), weights summing to 1.

    ``'skimage'``: 7 taps of ``1/7`` (a 7x7 mean). ``'matlab'``: the sampled Gaussian
    ``exp(-t^2 / (2 sigma^2))``, ``t = -r..r``, ``sigma = 1.5``, ``r = int(3.5 sigma + 0.5) = 5``
    (scipy.ndimage's radius for ``truncate=3.5``), normalised to sum 1.
    """
    _check_convention(convention)
    if convention == "skimage":
        return np.full(7, 1.0 / 7.0)
    r = int(GAUSSIAN_TRUNCATE * GAUSSIAN_SIGMA + 0.5)
    t = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 / GAUSSIAN_SIGMA**2 * t**2)
    return w / w.sum()


def _filter_valid(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Separable "valid" correlation of the last two axes of ``a`` with ``w w^T``:
    ``out[..., i, j] = sum_{p, q} w_p w_q a[..., i + p, j + q]``, shape ``(..., H - k + 1, W - k + 1)``.

    One in-place multiply-add of a shifted slice per tap and axis (rows first: their shifted
    slices are contiguous); a constant ``w`` (the mean window) adds the slices and scales once.
    """
    k = w.size
    box = bool(np.all(w == w[0]))
    for axis in (-2, -1):
        n = a.shape[axis] - k + 1
        shifted = (lambda p, a=a, n=n: a[..., p:p + n, :]) if axis == -2 else (lambda p, a=a, n=n: a[..., p:p + n])
        out = shifted(0).copy() if box else w[0] * shifted(0)
        for p in range(1, k):
            out += shifted(p) if box else w[p] * shifted(p)
        if box:
            out *= w[0]
        a = out
    return a


def _ssim_frames(frames_x: np.ndarray, frames_r: np.ndarray, data_range: float, convention: str) -> np.ndarray:
    """Mean SSIM of each frame of two ``(F, H, W)`` arrays, each block of frames taken as float64
    and clipped to ``[0, data_range]`` when it is filtered (no float64 copy of the whole video).

    With the window's weighted means ``mu``, ``E[x^2]``, ... over the valid region,
    ``v_x = c (E[x^2] - mu_x^2)``, ``v_xr = c (E[x r] - mu_x mu_r)`` (``c = N / (N - 1)``, ``N = k^2``,
    for the sample covariance of the 'skimage' convention, 1 for 'matlab') and
    ``S = (2 mu_x mu_r + C1)(2 v_xr + C2) / ((mu_x^2 + mu_r^2 + C1)(v_x + v_r + C2))``,
    the frame's score is the mean of ``S``. Frames are filtered in blocks of about
    :data:`SSIM_CHUNK` pixels to bound memory.
    """
    w = ssim_window(convention)
    k = w.size
    frames, h, wd = frames_x.shape
    if h < k or wd < k:
        raise ValueError(f"ssim: frames of {h} x {wd} are smaller than the {k} x {k} window")
    n = k * k
    cov_norm = n / (n - 1) if convention == "skimage" else 1.0
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    scores = np.empty(frames)
    step = max(1, SSIM_CHUNK // (h * wd))
    for lo in range(0, frames, step):
        x, r = _clip64(frames_x[lo:lo + step], data_range), _clip64(frames_r[lo:lo + step], data_range)
        moments = np.empty((5, *x.shape))
        moments[0], moments[1] = x, r
        np.multiply(x, x, out=moments[2])
        np.multiply(r, r, out=moments[3])
        np.multiply(x, r, out=moments[4])
        mx, mr, mxx, mrr, mxr = _filter_valid(moments, w)
        vx, vr, vxr = cov_norm * (mxx - mx * mx), cov_norm * (mrr - mr * mr), cov_norm * (mxr - mx * mr)
        s_map = ((2 * mx * mr + c1) * (2 * vxr + c2)) / ((mx**2 + mr**2 + c1) * (vx + vr + c2))
        scores[lo:lo + step] = s_map.mean(axis=(-2, -1))
    return scores


def ssim(
    x: np.ndarray,
    ref: np.ndarray,
    data_range: float = 1.0,
    convention: str = "skimage",
) -> float:
    """Structural similarity of one 2-D frame (see the module docstring for the maths).

    ``convention`` is ``'skimage'`` (7x7 uniform window, the field's default) or
    ``'matlab'`` (11x11 Gaussian window, sigma 1.5, population covariance).
    Both frames are clipped to ``[0, data_range]`` first. The value is scikit-image's
    ``structural_similarity`` with the same settings (computed here without it).
    """
    _check_convention(convention)
    data_range = _check_range(data_range)
    x_a, r_a = np.asarray(x), np.asarray(ref)  # clipped to float64 where they are filtered
    if x_a.ndim != 2 or r_a.ndim != 2:
        raise ValueError(f"ssim expects 2-D frames, got shapes {x_a.shape} and {r_a.shape}")
    if x_a.shape != r_a.shape:
        raise ValueError(f"ssim: shapes differ: {x_a.shape} vs {r_a.shape}")
    return float(_ssim_frames(x_a[None], r_a[None], data_range, convention)[0])


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
    _check_convention(ssim_convention)
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
    ssims = [float(v) for v in _ssim_frames(recon_a, orig_a, data_range, ssim_convention)]
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
