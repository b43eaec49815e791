"""Render spectral cubes as sRGB images: band centres, CIE 1931 colour matching, sRGB encoding.

    XYZ(i, j) = sum_l cmf(lambda_l) x_l(i, j) dlambda_l          (Riemann sum over the bands)
    RGB_lin   = g * (M_XYZ->sRGB XYZ / Y_ref)                     (g: white balance, Y_ref: exposure)
    sRGB      = 12.92 c              for c <= 0.0031308
                1.055 c^(1/2.4) - 0.055  otherwise                (IEC 61966-2-1)

The colour matching functions are the multi-lobe piecewise-Gaussian fit of Wyman, Sloan and
Shirley, "Simple Analytic Approximations to the CIE XYZ Color Matching Functions", JCGT 2(2),
2013 (their equation 2), accurate to about 1 % of the peak of the tabulated CIE 1931 2-degree
functions. numpy only.
"""

from __future__ import annotations

import numpy as np

from scicli.core.errors import UsageError

__all__ = ["TSA_WAVELENGTHS", "cassi_wavelengths", "cie1931_cmf", "cube_to_srgb", "spectrum_to_xyz",
           "XYZ_TO_LINEAR_SRGB"]

TSA_WAVELENGTHS = np.array([
    453.3, 457.6, 462.1, 466.8, 471.6, 476.5, 481.6, 486.9, 492.4, 498.0, 503.9, 509.9, 516.2, 522.7,
    529.5, 536.5, 543.8, 551.4, 558.6, 567.5, 575.3, 584.3, 594.4, 604.2, 614.4, 625.1, 636.3, 648.1,
])
"""Band centres (nm) of the 28-band CASSI data of TSA-Net (Meng, Ma, Yuan, ECCV 2020): the list the
TSA-Net and DGSMP code and their followers use (``nm_cave``; the MST visualisation scripts round it
to the half nanometre, 453.5 ... 648.0). The spacing grows with wavelength (4.3 nm near 455 nm,
11.8 nm near 640 nm), as a prism's dispersion does at a constant 2-pixel step per band. (The
project guide's "453.3-709.3 nm" does not match any published list: the last band is at 648.1 nm.)"""

XYZ_TO_LINEAR_SRGB = np.array([
    [3.2406, -1.5372, -0.4986],
    [-0.9689, 1.8758, 0.0415],
    [0.0557, -0.2040, 1.0570],
])
"""CIE XYZ (D65) -> linear sRGB (IEC 61966-2-1)."""

# Wyman, Sloan, Shirley (2013), eq. 2: each function is a sum of piecewise Gaussians
# alpha * g(lambda; mu, sigma_left, sigma_right) (sigma_left below mu, sigma_right above).
_LOBES = {
    "x": ((1.056, 599.8, 37.9, 31.0), (0.362, 442.0, 16.0, 26.7), (-0.065, 501.1, 20.4, 26.2)),
    "y": ((0.821, 568.8, 46.9, 40.5), (0.286, 530.9, 16.3, 31.1)),
    "z": ((1.217, 437.0, 11.8, 36.0), (0.681, 459.0, 26.0, 13.8)),
}


def cassi_wavelengths(L: int = 28, *, span: tuple[float, float] | None = None) -> np.ndarray:
    """Band centres (nm) of an L-band CASSI cube on the TSA-Net prototype's wavelength scale.

    Parameters
    ----------
    L : int
        Number of bands. For L = 28 (and no ``span``) the published list :data:`TSA_WAVELENGTHS`
        (453.3 ... 648.1 nm) is returned exactly.
    span : (float, float), optional
        First and last centre (nm): the same non-uniform spacing is stretched linearly onto it.

    Returns
    -------
    ndarray (L,)
        Increasing wavelengths in nm.

    Notes
    -----
    For L != 28 the centres are interpolated (piecewise linearly) in the published list at L
    equally spaced band positions ``t = 27 k / (L - 1)``, i.e. a prism of the same dispersion
    curve sampled with a different number of bands. This is an interpolation, not a calibration.
    """
    if isinstance(L, bool) or not isinstance(L, (int, np.integer)) or L < 1:
        raise UsageError(f"number of bands must be a whole number >= 1, got {L!r}")
    base = TSA_WAVELENGTHS
    n = base.size
    lam = base.copy() if L == n else np.interp(np.linspace(0, n - 1, L) if L > 1 else [(n - 1) / 2],
                                               np.arange(n), base)
    if span is not None:
        lo, hi = (float(v) for v in span)
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
            raise UsageError(f"wavelength span must be two finite numbers 0 < first < last, got {span}")
        lam = lo + (lam - base[0]) * (hi - lo) / (base[-1] - base[0])
    return lam


def cie1931_cmf(wavelengths: np.ndarray) -> np.ndarray:
    """CIE 1931 2-degree colour matching functions at ``wavelengths`` (nm) -> (len, 3) = (x, y, z).

    The multi-lobe fit of Wyman, Sloan and Shirley (2013, eq. 2):
    ``c(lambda) = sum_k alpha_k exp(-(lambda - mu_k)^2 / (2 s^2))`` with ``s = sigma_k,left`` for
    ``lambda < mu_k`` and ``sigma_k,right`` otherwise. ``y`` peaks at 1.0 near 555 nm.
    """
    lam = np.asarray(wavelengths, dtype=np.float64)
    out = np.zeros(lam.shape + (3,))
    for c, name in enumerate("xyz"):
        for alpha, mu, s_left, s_right in _LOBES[name]:
            s = np.where(lam < mu, s_left, s_right)
            out[..., c] += alpha * np.exp(-0.5 * ((lam - mu) / s) ** 2)
    return out


def _band_widths(lam: np.ndarray) -> np.ndarray:
    """Width (nm) each band centre stands for (half the distance to each neighbour)."""
    return np.gradient(lam) if lam.size > 1 else np.ones(1)


def spectrum_to_xyz(cube: np.ndarray, wavelengths: np.ndarray) -> np.ndarray:
    """CIE XYZ of a cube (L, ...) sampled at ``wavelengths`` (L,) nm -> (..., 3), by the Riemann
    sum ``sum_l cmf(lambda_l) x_l dlambda_l`` (unnormalised)."""
    cube = np.asarray(cube, dtype=np.float64)
    lam = np.asarray(wavelengths, dtype=np.float64).reshape(-1)
    if cube.shape[0] != lam.size:
        raise UsageError(f"cube has {cube.shape[0]} bands but {lam.size} wavelengths were given")
    weights = cie1931_cmf(lam) * _band_widths(lam)[:, None]  # (L, 3)
    return np.tensordot(np.moveaxis(cube, 0, -1), weights, axes=([-1], [0]))


def _srgb_encode(c: np.ndarray) -> np.ndarray:
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(np.maximum(c, 0.0031308), 1 / 2.4) - 0.055)


def cube_to_srgb(cube: np.ndarray, wavelengths: np.ndarray | None = None, *, percentile: float = 99.5,
                 white_balance: bool = True, gain: float = 1.0) -> np.ndarray:
    """Render a spectral cube (L, H, W) as an sRGB image (H, W, 3) uint8.

    Parameters
    ----------
    cube : ndarray (L, H, W)
        Non-negative spectral intensities (negative values are clipped to 0).
    wavelengths : ndarray (L,), optional
        Band centres in nm; default :func:`cassi_wavelengths` (L).
    percentile : float
        Exposure: the luminance Y at this percentile of the pixels maps to 1 (100: the brightest
        pixel); brighter pixels clip.
    white_balance : bool
        Per-channel gains on linear sRGB so that a flat spectrum over these bands renders neutral
        grey (an equal-energy illuminant as white; the bands rarely cover the whole visible range,
        so without it a flat spectrum is tinted).
    gain : float
        Extra exposure factor applied after the normalisation.

    Returns
    -------
    ndarray (H, W, 3) uint8
    """
    cube = np.asarray(cube, dtype=np.float64)
    if cube.ndim != 3:
        raise UsageError(f"cube_to_srgb needs a cube (L, H, W), got shape {cube.shape}")
    lam = cassi_wavelengths(cube.shape[0]) if wavelengths is None else np.asarray(wavelengths, dtype=np.float64)
    if not 0 < percentile <= 100:
        raise UsageError(f"percentile must be in (0, 100], got {percentile}")
    cube = np.where(np.isfinite(cube), np.maximum(cube, 0), 0)
    xyz = spectrum_to_xyz(cube, lam)  # (H, W, 3)
    Y = xyz[..., 1]
    ref = float(np.percentile(Y, percentile))
    if not ref > 0:
        ref = float(Y.max()) if Y.max() > 0 else 1.0
    rgb = xyz @ XYZ_TO_LINEAR_SRGB.T / ref
    if white_balance:
        flat = spectrum_to_xyz(np.ones((lam.size, 1)), lam)[0]  # XYZ of a flat spectrum
        flat_rgb = XYZ_TO_LINEAR_SRGB @ flat / flat[1]
        rgb = rgb / flat_rgb  # flat -> R = G = B = its luminance
    rgb = np.clip(rgb * gain, 0.0, 1.0)
    return np.round(_srgb_encode(rgb) * 255).astype(np.uint8)
