"""``cassi``: single-disperser coded aperture snapshot spectral imaging (SD-CASSI).

A scene of L spectral bands ``x_l`` (H x W) passes a coded aperture ``M`` (H x W); a prism then
shifts band l by ``d l`` columns (``d``: the dispersion step, in pixels per band) and the
sensor integrates over wavelength:

    y(i, j) = sum_l M(i, j - d l) x_l(i, j - d l)      (N, L, H, W) -> (N, H, W + d (L - 1))
    (A^T y)_l = M * y[:, :, d l : d l + W]              (N, H, W + d (L - 1)) -> (N, L, H, W)
    A A^T = diag(R),  R(i, j) = sum_l M(i, j - d l)^2    (on the sensor grid)

``A A^T`` is diagonal because every sensor pixel ``(i, j)`` receives each band from at most one
scene pixel, and two different sensor pixels never share a scene pixel of the same band. So
GAP, PnP-GAP and the closed-form proximal map of ``||A x - y||^2`` carry over from video SCI.
Sensor pixels with ``R == 0`` (the aperture is closed wherever their light could come from)
carry no information; ``R`` is set to 1 there so the divisions stay finite.

The TSA-Net prototype (Meng, Ma, Yuan, ECCV 2020) has 28 bands, ``d = 2`` and a 660 x 660
aperture, so its snapshots are 660 x 714.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from scicli.core.errors import DataError, UsageError
from scicli.physics.base import DiagonalGramOperator, mask_stack, register_operator


def _whole(name: str, value: Any, low: int) -> int:
    """An integer option >= ``low`` (a whole float such as 2.0, or its text from the command line,
    is accepted), else a UsageError."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not float(value).is_integer() or value < low:
        raise UsageError(f"cassi {name} must be a whole number >= {low}, got {value!r}")
    return int(value)


@register_operator("cassi", summary="coded aperture snapshot spectral imaging (SD-CASSI): "
                                    "y = sum_l shift_{d l}(M x_l)")
class CASSI(DiagonalGramOperator):
    """SD-CASSI operator for an aperture ``M`` of shape (H, W), shared by all measurements, or
    (K, H, W), one per measurement, with ``bands`` spectral bands and dispersion ``step``.

    Parameters
    ----------
    mask : Tensor
        Coded aperture, (H, W) or (K, H, W); transmissions, binary or grey.
    bands : int
        Number of spectral bands L (>= 1).
    step : int, optional
        Dispersion d in sensor columns per band (>= 1), default 2.

    Notes
    -----
    The forward map is ``y(i, j) = sum_l M(i, j - d l) x_l(i, j - d l)``, with ``x`` of shape
    (N, L, H, W) and ``y`` of shape (N, H, W + d (L - 1)); the adjoint reads L windows of width W
    at column offsets ``0, d, ..., d (L - 1)`` and multiplies them by the aperture. ``A A^T`` is the
    diagonal ``R = sum_l shift_{d l}(M^2)``, which makes :meth:`gram_inverse` exact and
    ``||A||^2 = max R`` (:meth:`norm`). Being an ``nn.Module`` with buffers,
    ``op.to(device, dtype)`` moves the aperture and ``R``.

    Examples
    --------
    >>> import numpy as np, torch
    >>> op = CASSI(torch.ones(4, 5), bands=3, step=2)
    >>> op.A(torch.ones(1, 3, 4, 5)).shape
    torch.Size([1, 4, 9])
    """

    roles = {"mask": "coded aperture (H, W), or (K, H, W): one per measurement"}
    role_ndim = {"mask": 2}
    role_aliases = {"meas": ("meas_real",)}
    meas_ndim = 2
    x_unit = "band"

    def __init__(self, mask: Tensor, bands: int, step: int = 2) -> None:
        super().__init__()
        mask = mask_stack(mask, 2, "CASSI mask must be (H, W) or (K, H, W), got shape {shape}", UsageError)
        self._bands = _whole("bands", bands, 1)
        self._step = _whole("step", step, 1)
        self.register_buffer("mask", mask)
        # R = sum_l shift_{d l}(M^2) on the sensor grid
        self.set_gram_diagonal(self._disperse((mask * mask).unsqueeze(1).expand(-1, self._bands, -1, -1)))

    # -- geometry ---------------------------------------------------------------------------
    @property
    def bands(self) -> int:
        """Number of spectral bands L."""
        return self._bands

    @property
    def step(self) -> int:
        """Dispersion d, sensor columns per band."""
        return self._step

    @property
    def meas_shape(self) -> tuple[int, int]:
        """Shape (H, W + d (L - 1)) of one snapshot."""
        H, W = self.mask.shape[-2:]
        return H, W + self._step * (self._bands - 1)

    def _disperse(self, z: Tensor) -> Tensor:
        """``sum_l shift_{d l}(z_l)`` along columns: (N, L, H, W) -> (N, H, W + d (L - 1)).

        One slice-add per band (differentiable; no loop over pixels)."""
        N, L, H, W = z.shape
        d = self._step
        y = z.new_zeros((N, H, W + d * (L - 1)))
        for band in range(L):
            y[:, :, d * band:d * band + W] += z[:, band]
        return y

    # -- the map ----------------------------------------------------------------------------
    def A(self, x: Tensor) -> Tensor:
        """Snapshot ``y(i, j) = sum_l M(i, j - d l) x_l(i, j - d l)``: (N, L, H, W) -> (N, H, W + d (L - 1))."""
        if x.ndim != 4 or x.shape[1] != self._bands or x.shape[-2:] != self.mask.shape[-2:]:
            raise UsageError(f"CASSI input must be (N, {self._bands}, {self.mask.shape[-2]}, "
                             f"{self.mask.shape[-1]}), got {tuple(x.shape)}")
        return self._disperse(self.mask.unsqueeze(1) * x)

    def A_adjoint(self, y: Tensor) -> Tensor:
        """Back-projection ``(A^T y)_l = M * y[:, :, d l : d l + W]``: (N, H, W + d (L - 1)) -> (N, L, H, W)."""
        H, Wy = self.meas_shape
        if y.ndim != 3 or tuple(y.shape[-2:]) != (H, Wy):
            raise UsageError(f"CASSI measurements must be (N, {H}, {Wy}), got {tuple(y.shape)}")
        W = self.mask.shape[-1]
        windows = y.unfold(-1, W, self._step)  # (N, H, L, W): window l starts at column d l
        return self.mask.unsqueeze(1) * windows.permute(0, 2, 1, 3)

    # -- files, training, tests ---------------------------------------------------------------
    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, meas_shape: tuple[int, ...] | None = None,
                    step: int = 2, bands: int | None = None, **options: Any) -> "CASSI":
        """An instance from ``{"mask": M}`` with M (H, W) or (K, H, W).

        Parameters
        ----------
        arrays : dict
            ``mask``: the coded aperture.
        meas_shape : tuple, optional
            (K, H, W_y) of the measurements it is for: checked against the aperture, and it gives
            ``L = (W_y - W) / d + 1`` when ``bands`` is not given.
        step : int
            Dispersion d (columns per band), default 2.
        bands : int, optional
            Number of bands L; needed when ``meas_shape`` is not given.

        Raises
        ------
        UsageError
            One line naming both shapes and d when the measurements do not fit the aperture.
        """
        if options:
            raise UsageError(f"cassi: unknown option(s) {', '.join(options)} (its options: step, bands)")
        mask = arrays.get("mask")
        if mask is None:
            raise UsageError("cassi needs a coded aperture 'mask' (H, W)")
        mask = np.asarray(mask)
        if mask.ndim not in (2, 3):
            raise UsageError(f"CASSI mask must be (H, W) or (K, H, W), got shape {mask.shape}")
        if mask.dtype == bool or np.issubdtype(mask.dtype, np.integer):
            mask = mask.astype(np.float32)
        if not np.issubdtype(mask.dtype, np.floating):
            raise UsageError(f"CASSI mask must be real numbers, got dtype {mask.dtype}")
        if not np.isfinite(mask).all():
            raise DataError("CASSI mask holds NaN or Inf values")
        d = _whole("step", step, 1)
        H, W = mask.shape[-2:]
        if bands is not None:
            bands = _whole("bands", bands, 1)
        if meas_shape is not None:
            shape = tuple(int(s) for s in meas_shape)
            if len(shape) != 3:
                raise UsageError(f"CASSI measurements must be (K, H, W + d (L - 1)), got shape {shape}")
            K, Hy, Wy = shape
            if Hy != H:
                raise UsageError(f"CASSI measurement height {Hy} differs from the mask height {H} "
                                 f"(measurements {shape}, mask {mask.shape}, d = {d})")
            if bands is None:
                extra = Wy - W
                if extra < d or extra % d:
                    raise UsageError(f"CASSI measurement width {Wy} does not fit mask width {W} + {d} (L - 1) "
                                     f"for any whole L >= 2 (measurements {shape}, mask {mask.shape}, d = {d})")
                bands = extra // d + 1
            elif Wy != W + d * (bands - 1):
                raise UsageError(f"CASSI measurement width {Wy} does not fit mask width {W} + {d} ({bands} - 1) "
                                 f"= {W + d * (bands - 1)} (measurements {shape}, mask {mask.shape}, "
                                 f"d = {d}, L = {bands})")
            if mask.ndim == 3 and mask.shape[0] not in (1, K):
                raise UsageError(f"{mask.shape[0]} CASSI masks for {K} measurements (mask {mask.shape}, "
                                 f"measurements {shape})")
        if bands is None:
            raise UsageError("cassi needs the number of bands: give bands=L or the measurement shape")
        return cls(torch.from_numpy(np.ascontiguousarray(mask)), bands=bands, step=d)

    def arrays(self) -> dict[str, np.ndarray]:
        mask = self.mask[0] if self.mask.shape[0] == 1 else self.mask
        return {"mask": mask.detach().cpu().numpy()}

    def options(self) -> dict[str, Any]:
        return {"step": self._step, "bands": self._bands}

    def signature(self) -> dict[str, Any]:
        """Learned weights fit one number of bands and one dispersion step."""
        return {"bands": self._bands, "step": self._step}

    @classmethod
    def random(cls, shape: tuple[int, ...], *, rng: np.random.Generator, density: float = 0.5,
               step: int = 2, **options: Any) -> "CASSI":
        """A Bernoulli(``density``) binary aperture for cubes of ``shape`` (L, H, W)."""
        if options:
            raise UsageError(f"cassi: unknown option(s) {', '.join(options)} (its options: density, step)")
        if len(shape) != 3:
            raise UsageError(f"CASSI cubes are (L, H, W), got shape {tuple(shape)}")
        if not 0 < density <= 1:
            raise UsageError(f"cassi density must be in (0, 1], got {density}")
        L, H, W = (int(s) for s in shape)
        mask = (rng.random((H, W)) < density).astype(np.float32)
        return cls(torch.from_numpy(mask), bands=L, step=step)

    @classmethod
    def example(cls, *, rng: np.random.Generator, dtype: torch.dtype = torch.float64) -> "CASSI":
        """Two grey apertures (one per measurement), L = 3, 4 x 5, d = 2, with aperture pixel (0, 0)
        closed, so sensor pixel (0, 0) sees nothing (R = 0 there: the guard is exercised)."""
        mask = rng.random((2, 4, 5))
        mask[:, 0, 0] = 0
        return cls(torch.from_numpy(mask).to(dtype), bands=3, step=2)

    def example_input(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        n = self.mask.shape[0] if self.mask.shape[0] > 1 else n
        H, W = self.mask.shape[-2:]
        return torch.randn((n, self._bands, H, W), generator=generator, dtype=self.mask.dtype).to(self.mask.device)
