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

The map is a precomputed sparse system matrix (built once per instance on its first use, on
the CPU in float64, then cast and moved): A in CSR form (float32 or float64 values, int32 column
indices; duplicate (ray, pixel) pairs of neighbouring samples summed, which leaves about 2.2
entries per pixel and view instead of 4 per sample) applied by ``torch.sparse`` CSR @ dense, and
its transpose, also CSR, for ``A^T``: the same entries, so ``A_adjoint`` is the exact transpose
of ``A`` (checked to 1e-10 in float64 by the contract suite), batched (one dense column per
image), differentiable (an autograd function whose backward is the other product) and on any
device. Cost per image: ``nnz`` multiply-adds each way (V = 60, N = 256: 8.6 M, against the 4 V D S
= 38 M of a matrix-free bilinear projector). Memory: 8 bytes an entry in float32 (12 in float64)
for A and as much for A^T; A + A^T in float32 measured 0.14 / 0.28 / 0.42 GB at N = 256 and
0.55 / 1.1 / 1.7 GB at N = 512, for 60 / 120 / 180 views (``python bench/bench_ct.py``); beyond :data:`MATRIX_BYTES` the instance falls back, with a one-line warning, to the matrix-free
form (sample positions of a few views at a time computed on every call: gather for A,
``index_add`` of the same weights for A^T). A view subset (:meth:`ParallelBeamCT.views_subset`)
slices the rows of its parent's matrix (O(its entries), no rebuild) and back-projects with the
parent's A^T applied to the zero-filled sinogram.

``A A^T`` has no closed form: GAP-type methods refuse the operator; ``prox_l2`` and ``A_dagger``
use conjugate gradients and :meth:`fbp` (filtered back-projection with a ramp, Shepp-Logan or
Hann filter) is the linear start.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

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
MATRIX_BYTES = 3 << 30
"""Memory an instance may keep for its system matrices (A and A^T, all dtypes and devices
together): 3 GiB holds 512 x 512 at 180 views in float32 (1.7 GB) or float64 (2.5 GB). Beyond it
A and A^T are computed matrix-free on every call (slower, O(chunk) memory)."""


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


def matrix_bytes(entries: float, rows: int, dtype: torch.dtype) -> int:
    """Bytes of a CSR matrix of ``entries`` non-zeros: values, int32 column indices, int32 row pointers."""
    return int(entries * (torch.finfo(dtype).bits // 8 + 4) + 4 * (rows + 1))


def _csr_to(m: Tensor, dtype: torch.dtype, device: torch.device) -> Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(m.crow_indices().to(device), m.col_indices().to(device),
                                       m.values().to(device=device, dtype=dtype), m.shape)


class _Product(torch.autograd.Function):
    """``apply(v, M, M^T)``: ``M v`` for a batch of rows v, with the gradient ``M^T g`` (itself
    differentiable: its backward is ``M`` again)."""

    @staticmethod
    def forward(ctx: Any, v: Tensor, matvec: Callable, rmatvec: Callable) -> Tensor:
        ctx.matvec, ctx.rmatvec = matvec, rmatvec
        return matvec(v)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return _Product.apply(grad, ctx.rmatvec, ctx.matvec), None, None


@register_operator("ct", summary="parallel-beam CT: line integrals over n views (sparse system matrix, exact adjoint)")
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
        # FFDNet's sigma schedule 12, 6, 3, 1.5 (/255) in place of the generic 50, 25, 12, 6, chosen on the
        # validation images below (gamma 0.01, 4 x 10 iterations, no noise): 120 views 40.52 dB against
        # 35.80 (25, 12, 6, 3: 38.40; 6, 3, 1.5, 0.75: 40.11), 60 views 38.19 against 36.14 (FBP 32.16 /
        # 29.35); gamma 1 gave the same to 0.01 dB, 10 and 100 less. Noise-free CT needs little denoising.
        "pnp-admm": {"sigma": tuple(v / 255.0 for v in (12.0, 6.0, 3.0, 1.5))},
    }
    """TV weights for CT, where ``||A||^2`` is large (1.5e4 at 128 x 128, 120 views) and the generic
    0.01 / 0.3 barely regularise. Chosen by ``python bench/bench_ct.py --tune`` on validation images
    (Shepp-Logan, a random-ellipse phantom, Train400's test_001.png; 128 x 128, 120 views, no
    noise; never the DICOM test slices): fista-tv (50 iterations) 37.96 dB at 0.3, 37.92 at 1,
    36.38 at 3 (FBP 32.16). admm-tv: gamma 100 keeps the CG x-update well conditioned and
    tv_weight 0.01 makes its TV weight gamma * 0.01 = 1 on the same scale (validation PSNR in the README).
    pnp-admm's sigma schedule: the same validation images at 60 and 120 views (``--tune --views 60,120``;
    numbers in the comment above).
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
        self._matrices: dict[tuple[str, torch.dtype], tuple[Tensor, ...]] = {}
        self._matrix_free = False
        self._parent: tuple[ParallelBeamCT, Tensor] | None = None
        self.builds = 0
        """How many times this instance computed its system matrix (a view subset slices its parent's)."""

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the system matrices behind (sparse CSR tensors have no
        storage to copy); a copy builds its own on first use."""
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        return {**state, "_matrices": {}}

    # -- geometry ----------------------------------------------------------------------------
    @property
    def views(self) -> int:
        """Number of projection angles V."""
        return int(self.angles.numel())

    def views_subset(self, idx: Tensor | list[int]) -> "ParallelBeamCT":
        """The operator restricted to the views ``idx`` (same image, detectors and samples), with
        its own exact adjoint: what online (minibatch) methods and view-subset experiments use.
        The subset shares its parent's system matrix: its A is the parent's rows of those views
        (sliced when first applied: O(its entries), no rebuild), its A^T the parent's A^T applied
        to the sinogram zero-filled at the other views (the same entries, so exact; one sparse
        product of the parent's size, which on one CPU thread was faster than an ``index_add`` over
        the subset's own entries: 256 x 256, 120 views, w = 40, two images, 18 ms against 46 ms)."""
        idx = torch.as_tensor(idx, dtype=torch.long, device=self.angles.device).reshape(-1)
        if idx.numel() < 1 or int(idx.min()) < 0 or int(idx.max()) >= self.views:
            raise UsageError(f"ct: view indices must lie in 0..{self.views - 1}")
        sub = ParallelBeamCT(self.angles[idx], self.size, self.detectors)
        if self._parent is None:
            sub._parent = (self, idx.cpu())
        else:  # a subset of a subset: rows of the root's matrix
            root, root_idx = self._parent
            sub._parent = (root, root_idx[idx.cpu()])
        return sub

    def _chunks(self) -> list[tuple[int, int]]:
        per_view = self.detectors * self.samples
        step = max(1, CHUNK_SAMPLES // per_view)
        return [(v, min(v + step, self.views)) for v in range(0, self.views, step)]

    def _system(self, v0: int, v1: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """The entries of A for views v0..v1-1 in coordinate form: ray index (into V * D),
        pixel index (into H * W) and bilinear weight of every sample neighbour inside the image
        (the other ones, about half of the D x S square, carry no weight and are dropped; a
        (ray, pixel) pair may repeat, from neighbouring samples)."""
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
        return torch.cat(rays), torch.cat(pixels), torch.cat(weights).to(dtype)

    def _build(self) -> tuple[Tensor, Tensor, Tensor] | None:
        """CSR arrays (row pointers, int32 columns, float64 values; CPU) of A, built view chunk
        by view chunk (duplicates summed by sorting the (ray, pixel) keys); None when A and A^T in
        float32 would exceed :data:`MATRIX_BYTES` (known after the first chunk, then checked)."""
        self.builds += 1
        HW = self.size[0] * self.size[1]
        D = self.detectors
        cpu = torch.device("cpu")
        pointers, columns, values = [torch.zeros(1, dtype=torch.long)], [], []
        entries = 0
        for v0, v1 in self._chunks():
            ray, pixel, w = self._system(v0, v1, torch.float64, cpu)
            key, inverse = torch.unique((ray - v0 * D) * HW + pixel, sorted=True, return_inverse=True)
            summed = torch.zeros(key.numel(), dtype=torch.float64).index_add_(0, inverse, w)
            pointers.append(entries + torch.cumsum(torch.bincount(key // HW, minlength=(v1 - v0) * D), 0))
            columns.append((key % HW).to(torch.int32))
            values.append(summed)
            entries += key.numel()
            if 2 * matrix_bytes(entries * self.views / v1, self.views * D, torch.float32) > MATRIX_BYTES:
                return None
        crow = torch.cat(pointers)
        crow = crow.to(torch.int32) if entries < 2**31 else crow
        return crow, torch.cat(columns), torch.cat(values)

    def _matrix(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, ...] | None:
        """``(A, A^T)`` as CSR tensors of ``dtype`` on ``device`` (a view subset: ``(A_sub, None)``,
        its rows of the root's A; its back-projection uses the root's A^T), built once and kept while they fit in
        :data:`MATRIX_BYTES`; None: matrix-free (too large)."""
        key = (str(device), dtype)
        if key in self._matrices:
            return self._matrices[key]
        if self._matrix_free:
            return None
        if self._parent is not None:
            out = self._slice(dtype, device)
        else:
            out = self._full(dtype, device)
        if out is None:
            self._matrix_free = True
            warnings.warn(f"ct: the {self.size[0]} x {self.size[1]}, {self.views}-view system matrix would exceed "
                          f"{MATRIX_BYTES / 2**30:.3g} GiB; computing A and A^T matrix-free (slower)", stacklevel=3)
            return None
        self._matrices[key] = out
        return out

    def _full(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, ...] | None:
        """The parent's ``(A, A^T)``: cast from a float64 copy already held (exact) or moved from a
        copy of ``dtype`` on another device, else built."""
        held = self._matrices.items()
        source = next((m for (_, dt), m in held if dt == torch.float64), None) \
            or next((m for (_, dt), m in held if dt == dtype), None)
        if source is None:
            arrays = self._build()
            if arrays is None:
                return None
            crow, col, val = arrays
            with warnings.catch_warnings():  # torch's "beta" notes on sparse CSR
                warnings.simplefilter("ignore")
                A = torch.sparse_csr_tensor(crow, col, val, (self.views * self.detectors, self.size[0] * self.size[1]))
                AT = A.to_sparse_csc()  # the CSC arrays of A are the CSR arrays of A^T
                AT = torch.sparse_csr_tensor(AT.ccol_indices(), AT.row_indices(), AT.values(), A.shape[::-1])
            source = (A, AT)
        need = sum(matrix_bytes(m.values().numel(), m.shape[0], dtype) for m in source)
        if need > MATRIX_BYTES:
            return None
        held = sum(matrix_bytes(m.values().numel(), m.shape[0], m.dtype) for ms in self._matrices.values() for m in ms)
        if held + need > MATRIX_BYTES:  # keep the newest only
            self._matrices.clear()
        return tuple(_csr_to(m, dtype, device) for m in source)

    def _slice(self, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, ...] | None:
        """A view subset's rows of its root's A: view v is the contiguous block of rows
        ``v D .. v D + D - 1``, so the subset's CSR arrays are the root's blocks of those views
        concatenated (O(the subset's entries), memory copies only)."""
        root, idx = self._parent
        parent = root._matrix(dtype, device)
        if parent is None:  # the root is matrix-free: the subset builds its own (its views only)
            sub = ParallelBeamCT(self.angles, self.size, self.detectors)
            out = sub._full(dtype, device)
            self.builds += sub.builds
            return out
        A = parent[0]
        D = self.detectors
        crow, col, val = A.crow_indices(), A.col_indices(), A.values()
        starts = crow[idx.to(crow.device) * D].tolist()
        pointers, columns, values, offset = [crow.new_zeros(1)], [], [], 0
        for v, first in zip(idx.tolist(), starts):
            block = crow[v * D + 1:(v + 1) * D + 1]
            last = int(block[-1])
            pointers.append(block - (first - offset))
            columns.append(col[first:last])
            values.append(val[first:last])
            offset += last - first
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sub = torch.sparse_csr_tensor(torch.cat(pointers), torch.cat(columns), torch.cat(values),
                                          (idx.numel() * D, A.shape[1]))
        return sub, None

    def _products(self, dtype: torch.dtype, device: torch.device) -> tuple[Callable, Callable] | None:
        """``(x -> A x, y -> A^T y)`` on flattened batches (N, H W) / (N, V D), or None (matrix-free)."""
        m = self._matrix(dtype, device)
        if m is None:
            return None
        A, AT = m
        if AT is None:  # a view subset: A_sub = P A for the view selection P, so A_sub^T y = A^T (P^T y)
            root, idx = self._parent
            root_AT = root._matrix(dtype, device)[1]
            views = idx.to(device)

            def adjoint(y: Tensor) -> Tensor:
                padded = y.new_zeros((y.shape[0], root.views, self.detectors))
                padded.index_add_(1, views, y.reshape(y.shape[0], -1, self.detectors))
                return (root_AT @ padded.reshape(y.shape[0], -1).T.contiguous()).T
        else:
            def adjoint(y: Tensor) -> Tensor:
                return (AT @ y.T.contiguous()).T

        def forward(x: Tensor) -> Tensor:
            return (A @ x.T.contiguous()).T

        return forward, adjoint

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
        products = self._products(x.dtype, x.device)
        if products is not None:
            return _Product.apply(flat, *products).reshape(N, self.views, self.detectors)
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
        products = self._products(y.dtype, y.device)
        if products is not None:
            return _Product.apply(flat, products[1], products[0]).reshape(N, 1, H, W)
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
        """Learned weights fit one number of views and one detector sampling (bins per image
        width, a fraction: the default ``ceil(sqrt(2) N)`` gives 1.41 at every size, so weights
        trained on 64-pixel patches apply to 128- or 512-pixel slices)."""
        return {"views": self.views, "detector_ratio": self.detectors / max(self.size)}

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
