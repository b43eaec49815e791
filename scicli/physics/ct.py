"""Parallel-beam computed tomography: line integrals of an image over ``n_views`` angles.

Geometry (scikit-image's ``radon`` convention, unit pixel spacing): an (H, W) image rotated
about the pixel ``c = (H // 2, W // 2)`` (row, column; the centre for odd sizes, half a pixel
past it for even ones, as scikit-image does); view ``theta`` (degrees) and detector bin j at
offset ``t_j = j - D // 2`` integrate along the line

    p(s) = c + t_j (cos theta, -sin theta)_(col, row) + s (sin theta, cos theta)_(col, row)

(for theta = 0 the rays run down the columns and t is the column offset), sampled at unit
steps ``s_k = k - S // 2``, k = 0..S-1, with bilinear interpolation of the image (zero
outside): ``y[v, j] = sum_k bilinear(x, p_vjk)``. ``D = S = ceil(sqrt(2) max(H, W))`` detector
bins and samples by default cover the whole image at every angle.

The map is matrix-free: the sample positions of a few views at a time are computed on the fly
(gather for A, ``index_add`` of the same weights for ``A^T``), so ``A_adjoint`` is the exact
transpose of ``A`` (checked to 1e-10 in float64 by the contract suite), batched, differentiable
(autograd through gather / index_add) and on any device. Cost per image: ``4 V D S`` multiply-adds
each way (V = 60, N = 256: 38 M), memory ``O(N D S)`` per chunk of views, no stored matrix.

``A A^T`` has no closed form: GAP-type methods refuse the operator; ``prox_l2`` and ``A_dagger``
use conjugate gradients and :meth:`fbp` (filtered back-projection with a ramp, Shepp-Logan or
Hann filter) is the linear start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scicli.core.errors import UsageError
from scicli.physics.base import LinearOperator, register_operator

FILTERS = ("ramp", "shepp-logan", "hann")
CHUNK_SAMPLES = 1 << 22
"""Sample points computed at once (views x detectors x samples): bounds the memory of A and A^T."""
PROX_CG_STEPS = 5
"""CG steps of the ADMM x-update (warm-started at the previous iterate). The generic 100 made
admm-tv on CT cost 100 projections per iteration (10 iterations of 128 x 128, 120 views: over
7 minutes on the shared 2-core CPU); 5 make it an inexact ADMM at about 2x fista-tv's cost."""
CACHE_BYTES = 1 << 30
"""Memory an instance may keep for its precomputed entries (beyond it they are recomputed per call)."""


def detector_count(height: int, width: int) -> int:
    """``ceil(sqrt(2) max(H, W))``: bins that see the whole image at every angle."""
    return int(math.ceil(math.sqrt(2.0) * max(height, width)))


def ramp_filter(n: int, kind: str = "ramp", *, dtype: torch.dtype = torch.float64) -> Tensor:
    """The frequency response (length n, FFT order) of the discrete ramp filter with a window.

    The ramp is the transform of the band-limited spatial kernel (Kak and Slaney, eq. 3.61)
    ``h[0] = 1/4, h[k odd] = -1 / (pi k)^2, h[k even] = 0`` (whose transform is ``|f|``; doubled
    here, to go with the ``pi / 2V`` of :meth:`ParallelBeamCT.fbp`, scikit-image's convention),
    which avoids the DC offset of a sampled ``|f|``; the Shepp-Logan window multiplies it by ``sinc(f)``, Hann by
    ``(1 + cos(2 pi f)) / 2`` (f in cycles per sample, |f| <= 1/2)."""
    if kind not in FILTERS:
        raise UsageError(f"filter must be one of {', '.join(FILTERS)}, got '{kind}'")
    k = torch.arange(n, dtype=torch.float64)
    k = torch.where(k > n // 2, k - n, k)  # signed offsets in FFT order
    h = torch.zeros(n, dtype=torch.float64)
    h[0] = 0.25
    odd = (k.abs() % 2) == 1
    h[odd] = -1.0 / (math.pi * k[odd]) ** 2
    response = 2 * torch.fft.fft(h).real
    f = torch.fft.fftfreq(n, dtype=torch.float64)
    if kind == "shepp-logan":
        response = response * torch.sinc(f)
    elif kind == "hann":
        response = response * (1 + torch.cos(2 * math.pi * f)) / 2
    return response.to(dtype)


@register_operator("ct", summary="parallel-beam CT: line integrals over n views (matrix-free, exact adjoint)")
class ParallelBeamCT(LinearOperator):
    """Parallel-beam CT for images of ``size`` (H, W) and projection ``angles`` in degrees;
    x is (N, 1, H, W), y the sinogram (N, n_views, detectors).

    Parameters
    ----------
    angles : Tensor
        (V,) projection angles in degrees.
    size : tuple of int
        Image height and width.
    detectors : int, optional
        Detector bins D (default ``ceil(sqrt(2) max(H, W))``); as many samples per ray.
    """

    roles = {"angles": "projection angles in degrees (n_views,)", "size": "image height and width, (2,) integers"}
    role_ndim = {"angles": 1, "size": 1}
    meas_ndim = 2
    has_gram_inverse = False
    x_unit = "image"
    nonnegative_meas = True
    channels = 1
    method_defaults = {
        "fista-tv": {"tv_weight": 0.3},
        "pgd-tv": {"tv_weight": 0.3},
        "admm-tv": {"gamma": 100.0, "tv_weight": 0.01},
    }
    """TV weights for CT, where ``||A||^2`` is large (1.5e4 at 128 x 128, 120 views) and the generic
    0.01 / 0.3 barely regularise. Chosen by ``python bench/bench_ct.py --tune`` on validation images
    (Shepp-Logan, a random-ellipse phantom, Train400's test_001.png; 128 x 128, 120 views, no
    noise; never the DICOM test slices): fista-tv (50 iterations) 37.96 dB at 0.3, 37.92 at 1,
    36.38 at 3 (FBP 32.16). admm-tv: gamma 100 keeps the CG x-update well conditioned and
    tv_weight 0.01 makes its TV weight gamma * 0.01 = 1 on the same scale (validation PSNR in the README).
    The best weight grows with ||A||^2 (views x size): scale it for other geometries."""

    def __init__(self, angles: Tensor, size: tuple[int, int], detectors: int | None = None) -> None:
        super().__init__()
        angles = torch.as_tensor(angles)
        if angles.ndim != 1 or angles.numel() < 1:
            raise UsageError(f"ct: angles must be a non-empty list of degrees, got shape {tuple(angles.shape)}")
        if not torch.isfinite(angles).all():
            raise UsageError("ct: angles must be finite")
        H, W = (int(s) for s in size)
        if H < 1 or W < 1:
            raise UsageError(f"ct: image size must be positive, got {H} x {W}")
        D = detector_count(H, W) if detectors is None else int(detectors)
        if D < 1:
            raise UsageError(f"ct: detectors must be >= 1, got {D}")
        self.size, self.detectors = (H, W), D
        self.samples = max(D, detector_count(H, W))
        self.register_buffer("angles", angles.to(torch.float64 if angles.dtype == torch.float64 else torch.float32))
        self._cache: dict[tuple, tuple[Tensor, Tensor, Tensor]] = {}
        self._cached_bytes = 0

    # -- geometry ----------------------------------------------------------------------------
    @property
    def views(self) -> int:
        """Number of projection angles V."""
        return int(self.angles.numel())

    def views_subset(self, idx: Tensor | list[int]) -> "ParallelBeamCT":
        """The operator restricted to the views ``idx`` (same image, detectors and samples), with
        its own exact adjoint: what online (minibatch) methods and view-subset experiments use."""
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.angles.device).reshape(-1)
        if idx.numel() < 1 or int(idx.min()) < 0 or int(idx.max()) >= self.views:
            raise UsageError(f"ct: view indices must lie in 0..{self.views - 1}")
        return ParallelBeamCT(self.angles[idx], self.size, self.detectors)

    def _chunks(self) -> list[tuple[int, int]]:
        per_view = self.detectors * self.samples
        step = max(1, CHUNK_SAMPLES // per_view)
        return [(v, min(v + step, self.views)) for v in range(0, self.views, step)]

    def _system(self, v0: int, v1: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """The entries of A for views v0..v1-1 in coordinate form: ray index (into V * D),
        pixel index (into H * W) and bilinear weight of every sample neighbour inside the image
        (the other ones, about half of the D x S square, carry no weight and are dropped).
        Cached per (chunk, device, dtype) while the cache stays under ``CACHE_BYTES``."""
        key = (v0, v1, str(device), dtype)
        if key in self._cache:
            return self._cache[key]
        H, W = self.size
        D, S = self.detectors, self.samples
        theta = torch.deg2rad(self.angles[v0:v1].to(device=device, dtype=torch.float64))
        t = torch.arange(D, device=device, dtype=torch.float64) - D // 2
        s = torch.arange(S, device=device, dtype=torch.float64) - S // 2
        cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
        col = (W // 2 + t[None, :, None] * cos + s[None, None, :] * sin).reshape(-1)
        row = (H // 2 - t[None, :, None] * sin + s[None, None, :] * cos).reshape(-1)
        ray = torch.arange(v0 * D, v1 * D, device=device).repeat_interleave(S)
        r0, c0 = torch.floor(row), torch.floor(col)
        fr, fc = row - r0, col - c0
        r0, c0 = r0.long(), c0.long()
        rays, pixels, weights = [], [], []
        for dr, dc, w in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
            r, c = r0 + dr, c0 + dc
            keep = (r >= 0) & (r < H) & (c >= 0) & (c < W) & (w > 0)
            rays.append(ray[keep])
            pixels.append((r * W + c)[keep])
            weights.append(w[keep])
        out = (torch.cat(rays), torch.cat(pixels), torch.cat(weights).to(dtype))
        size = sum(t.numel() * t.element_size() for t in out)
        if self._cached_bytes + size <= CACHE_BYTES:
            self._cache[key] = out
            self._cached_bytes += size
        return out

    def _check_x(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 1 or tuple(x.shape[-2:]) != self.size:
            raise UsageError(f"ct: images must be (N, 1, {self.size[0]}, {self.size[1]}), got {tuple(x.shape)}")

    def _check_y(self, y: Tensor) -> None:
        if y.ndim != 3 or tuple(y.shape[1:]) != (self.views, self.detectors):
            raise UsageError(f"ct: sinograms must be (N, {self.views}, {self.detectors}), got {tuple(y.shape)}")

    # -- the map ----------------------------------------------------------------------------
    def A(self, x: Tensor) -> Tensor:
        """The sinogram ``y[n, v, j] = sum_k bilinear(x_n, p_vjk)``: (N, 1, H, W) -> (N, V, D)."""
        self._check_x(x)
        N = x.shape[0]
        flat = x.reshape(N, -1)
        out = x.new_zeros((N, self.views * self.detectors))
        for v0, v1 in self._chunks():
            ray, pixel, w = self._system(v0, v1, x.dtype, x.device)
            out = out.index_add(1, ray, flat[:, pixel] * w)
        return out.reshape(N, self.views, self.detectors)

    def A_adjoint(self, y: Tensor) -> Tensor:
        """Back-projection, the exact transpose of :meth:`A`: every sinogram value spread over the
        samples of its ray with the same bilinear weights. (N, V, D) -> (N, 1, H, W)."""
        self._check_y(y)
        N = y.shape[0]
        H, W = self.size
        flat = y.reshape(N, -1)
        out = y.new_zeros((N, H * W))
        for v0, v1 in self._chunks():
            ray, pixel, w = self._system(v0, v1, y.dtype, y.device)
            out = out.index_add(1, pixel, flat[:, ray] * w)
        return out.reshape(N, 1, H, W)

    # -- filtered back-projection ---------------------------------------------------------------
    def fbp(self, y: Tensor, filter: str = "ramp") -> Tensor:
        """Filtered back-projection: each projection filtered by the ramp (times the window of
        ``filter``: ramp, shepp-logan, hann) with zero padding to a power of two >= 2 D, then
        back-projected and scaled by ``pi / (2 V)`` (the angular step of views spread over
        180 degrees). The inverse of A on band-limited images for dense, uniform angles."""
        self._check_y(y)
        D = self.detectors
        n = max(64, 1 << int(math.ceil(math.log2(2 * D))))
        response = ramp_filter(n, filter, dtype=y.dtype).to(y.device)
        spec = torch.fft.fft(torch.nn.functional.pad(y, (0, n - D)), dim=-1)
        filtered = torch.fft.ifft(spec * response, dim=-1).real[..., :D]
        return self.A_adjoint(filtered) * (math.pi / (2 * self.views))

    def start(self, y: Tensor) -> Tensor:
        """FBP with the ramp filter (the linear estimate iterations start from)."""
        return self.fbp(y)

    def prox_l2(self, z: Tensor, y: Tensor, gamma: float, *, max_iter: int = PROX_CG_STEPS,
                tol: float = 1e-4) -> Tensor:
        """``(A^T A + gamma I)^-1 (A^T y + gamma z)`` by ``max_iter`` conjugate-gradient steps
        warm-started at z (inexact ADMM: each step costs one A and one A^T; see PROX_CG_STEPS)."""
        return super().prox_l2(z, y, gamma, max_iter=max_iter, tol=tol)

    # -- files and training --------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, meas_shape: tuple[int, ...] | None = None,
                    detectors: int = 0, **options: Any) -> "ParallelBeamCT":
        if options:
            raise UsageError(f"ct: unknown option(s) {', '.join(options)} (it takes: detectors)")
        if "angles" not in arrays:
            raise UsageError("ct needs its projection 'angles' (degrees, one per view)")
        angles = np.asarray(arrays["angles"], dtype=np.float64).reshape(-1)
        size = arrays.get("size")
        if size is None:
            raise UsageError("ct needs the image 'size' (height, width)")
        size = np.asarray(size).reshape(-1)
        if size.shape != (2,) or not np.all(size >= 1) or not np.all(np.mod(size, 1) == 0):
            raise UsageError(f"ct: size must be two whole numbers >= 1, got {size.tolist()}")
        D = int(detectors) or None
        if meas_shape is not None:
            if len(meas_shape) != 3 or meas_shape[1] != angles.size:
                raise UsageError(f"ct: sinograms {tuple(meas_shape[1:])} do not have one row per angle "
                                 f"({angles.size} angles)")
            D = D or int(meas_shape[2])
        return cls(torch.from_numpy(angles), (int(size[0]), int(size[1])), D)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"angles": self.angles.detach().cpu().numpy().astype(np.float64),
                "size": np.array(self.size, dtype=np.int64)}

    def options(self) -> dict[str, Any]:
        return {"detectors": self.detectors}

    def signature(self) -> dict[str, Any]:
        """Learned weights fit one number of views and one detector count."""
        return {"views": self.views, "detectors": self.detectors}

    @classmethod
    def for_images(cls, arrays: dict[str, np.ndarray], shape: tuple[int, ...], **options: Any) -> "ParallelBeamCT":
        return cls.from_arrays({**arrays, "size": np.array(shape[-2:], dtype=np.int64)}, **options)

    @classmethod
    def random(cls, shape: tuple[int, ...], *, rng: np.random.Generator, views: int = 60, span: float = 180.0,
               detectors: int = 0, **options: Any) -> "ParallelBeamCT":
        """``views`` angles evenly spaced over ``span`` degrees (sparse-view CT; the geometry is
        fixed: ``rng`` is not used), for images of ``shape`` (1, H, W)."""
        if options:
            raise UsageError(f"ct: unknown option(s) {', '.join(options)} (it takes: views, span, detectors)")
        if len(shape) != 3 or shape[0] != 1:
            raise UsageError(f"ct works on grayscale images (1, H, W), got shape {tuple(shape)}")
        if isinstance(views, bool) or int(views) != views or views < 1:
            raise UsageError(f"ct: views must be a whole number >= 1, got {views}")
        if not (math.isfinite(span) and 0 < span <= 360):
            raise UsageError(f"ct: span must be in (0, 360] degrees, got {span}")
        angles = torch.arange(int(views), dtype=torch.float64) * (span / int(views))
        return cls(angles, (int(shape[1]), int(shape[2])), int(detectors) or None)

    @classmethod
    def example(cls, *, rng: np.random.Generator, dtype: torch.dtype = torch.float64) -> "ParallelBeamCT":
        """A 5 x 6 image, 4 angles (one oblique, irregular), 9 detectors."""
        angles = torch.tensor([0.0, 33.0, 90.0, 141.0], dtype=torch.float64)
        return cls(angles, (5, 6), 9).to(dtype)

    def example_input(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        dtype = self.angles.dtype if self.angles.dtype in (torch.float32, torch.float64) else torch.float32
        return torch.randn((n, 1, *self.size), generator=generator, dtype=dtype).to(self.angles.device)
