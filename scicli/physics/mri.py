"""``mri``: single-coil compressive-sensing MRI (Cartesian k-space sampling of the unitary 2-D FFT).

An image ``x`` (H x W) is Fourier transformed and the k-space samples selected by a sampling
mask ``S`` (binary, or real weights) are kept:

    y = A x = S * F x                       (N, 1, H, W) -> (N, H, W) complex, zeros off the mask

with ``F`` the unitary 2-D DFT (``torch.fft.fft2(norm="ortho")``), DC at ``[0, 0]`` (masks are
*not* fftshifted; pass ``centred=True`` for masks with DC in the middle). Two image domains:

**Complex images** (``complex_images=True``): x is a complex tensor, A is complex-linear and

    A^H y = F^H (S * y),     A A^H = diag(S^2),     A^H A = F^H diag(S^2) F,

so ``(A A^H + gamma I)^-1 r = r / (S^2 + gamma)`` (the pseudo-inverse ``r / S^2``, 0 where
S = 0, for gamma = 0) and ``||A||^2 = max S^2``.

**Real images** (the default; magnitude test sets such as the Deep ADMM-Net brain images): x is
real and A is the real-linear map x -> S F x into C^(HxW) = R^(2HW) with the real inner product
``Re <y, A x>``. Its adjoint is

    A^T y = Re(F^H (S * y)).

Writing ``w_-[k] = w[-k]`` (indices mod (H, W)) and ``P w = (w + conj(w_-)) / 2`` (the orthogonal
projector onto Hermitian-symmetric arrays, the Fourier transforms of real images):

    A^T A = F^H diag(S_sym) F  on real x,   S_sym = (S^2 + S_-^2) / 2,
    A A^T = S P S                            (NOT diagonal: it couples k and -k).

``A A^T`` acts on each pair ``(y[k], conj(y[-k]))`` as the rank-one 2 x 2 matrix ``s s^T / 2``
with ``s = (S[k], S[-k])`` (self-paired k = -k, e.g. DC, included: the same formula holds), so
its inverse is closed-form too (Sherman-Morrison; ``t = S y + S_- conj(y_-)``, ``d = S^2 + S_-^2``):

    (A A^T + gamma I)^-1 r = (r - S t / (2 gamma + d)) / gamma          (gamma > 0)
    (A A^T)^+ r            = 2 S t / d^2   (0 where d = 0)             (gamma = 0)

Both modes therefore declare ``has_gram_inverse`` (GAP-type methods apply), and ``prox_l2`` is
solved exactly in the Fourier domain (no conjugate gradients, no 1/gamma cancellation):

    complex: x = F^H [(S y + gamma F z) / (S^2 + gamma)]
    real:    x = Re F^H [(P(S y) + gamma F z) / (S_sym + gamma)]

``||A||^2`` is ``max S^2`` (complex) or ``max S_sym`` (real; equal for binary masks holding DC).
The linear baseline, :meth:`MRI.start`, is the zero-filled image ``F^H y`` (``Re F^H y`` for real
images). Masks are (H, W), shared by all measurements, or (N, H, W), one per measurement.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from scicli.core.errors import UsageError
from scicli.physics.base import LinearOperator, mask_stack, register_operator

MASK_KINDS = ("cartesian", "radial")
_OPTIONS = ("complex_images", "centred")


def _neg(t: Tensor) -> Tensor:
    """``t[..., -k, -l]`` (indices mod (H, W)): the k-space point mirrored through DC."""
    return torch.roll(torch.flip(t, dims=(-2, -1)), shifts=(1, 1), dims=(-2, -1))


def _fft(x: Tensor) -> Tensor:
    return torch.fft.fft2(x, norm="ortho")


def _ifft(y: Tensor) -> Tensor:
    return torch.fft.ifft2(y, norm="ortho")


# ----------------------------------------------------------------------------- masks
def cartesian_mask(height: int, width: int, ratio: float, *, rng: np.random.Generator,
                   centre_fraction: float | None = None, decay: float = 2.0) -> np.ndarray:
    """Variable-density Cartesian mask (H, W) float32, DC at [0, 0]: whole rows (phase-encoding
    lines along axis 0) are sampled.

    ``round(ratio H)`` lines in all: the ``round(centre_fraction H)`` lines nearest DC (default
    ``centre_fraction = ratio / 4``, at least the DC line) and the rest drawn without replacement
    with probability proportional to ``(1 - |k| / (H / 2))^decay + 1e-3`` (``k`` the signed
    frequency index). The sampled fraction is ``round(ratio H) / H`` exactly.
    """
    _check_ratio(ratio)
    if centre_fraction is None:
        centre_fraction = ratio / 4
    if not 0 <= centre_fraction <= ratio:
        raise UsageError(f"centre_fraction must be in [0, ratio = {ratio:g}], got {centre_fraction}")
    freq = np.fft.fftfreq(height) * height  # signed frequency of each row, DC first
    order = np.lexsort((freq, np.abs(freq)))  # rows by distance from DC
    n_lines = min(height, max(1, round(ratio * height)))
    n_centre = min(n_lines, max(1, round(centre_fraction * height)))
    centre, rest = order[:n_centre], order[n_centre:]
    p = (1.0 - np.abs(freq[rest]) / (height / 2)) ** decay + 1e-3
    picked = rng.choice(rest, size=n_lines - n_centre, replace=False, p=p / p.sum()) if n_lines > n_centre \
        else np.empty(0, dtype=int)
    mask = np.zeros((height, width), dtype=np.float32)
    mask[np.concatenate([centre, picked]).astype(int)] = 1
    return mask


def _spokes(height: int, width: int, n: int, offset: float) -> np.ndarray:
    """Centred binary mask of ``n`` spokes through the centre at angles offset + j pi / n."""
    cy, cx = height // 2, width // 2
    radius = math.hypot(height, width) / 2 + 1
    t = np.arange(-radius, radius + 0.25, 0.25)
    theta = offset + np.arange(n) * math.pi / n
    rows = np.rint(cy + np.outer(np.sin(theta), t)).astype(int).ravel()
    cols = np.rint(cx + np.outer(np.cos(theta), t)).astype(int).ravel()
    keep = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    mask = np.zeros((height, width), dtype=np.float32)
    mask[rows[keep], cols[keep]] = 1
    return mask


def radial_mask(height: int, width: int, ratio: float, *, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Radial mask (H, W) float32, DC at [0, 0]: ``n`` straight spokes through DC, evenly spaced in
    angle (pi / n apart) from a random offset, ``n`` chosen so the sampled fraction is the nearest
    to ``ratio``. Returns the mask and ``n``."""
    _check_ratio(ratio)
    offset = float(rng.uniform(0, math.pi))
    cache: dict[int, np.ndarray] = {}

    def make(n: int) -> np.ndarray:
        if n not in cache:
            cache[n] = _spokes(height, width, n, offset / n)
        return cache[n]

    lo, hi = 1, 4 * (height + width)
    while lo < hi:  # smallest n whose coverage reaches the ratio
        mid = (lo + hi) // 2
        if make(mid).mean() >= ratio:
            hi = mid
        else:
            lo = mid + 1
    best = min((n for n in (lo - 1, lo, lo + 1) if n >= 1), key=lambda n: abs(make(n).mean() - ratio))
    return np.fft.ifftshift(make(best)), best


def _check_ratio(ratio: float) -> None:
    if not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
        raise UsageError(f"mri: ratio must be in (0, 1], got {ratio}")


# ----------------------------------------------------------------------------- operator
@register_operator("mri", summary="single-coil CS-MRI: y = S F x (k-space mask S, unitary 2-D FFT, DC at [0, 0])")
class MRI(LinearOperator):
    """Single-coil CS-MRI operator ``y = S * F x`` (see the module docstring for the maths).

    Shapes: x (N, 1, H, W) real or complex, y (N, H, W) complex on the full k-space grid.
    Both modes have a closed-form ``(A A^T + gamma I)^-1`` (``has_gram_inverse``). The mask is a
    real buffer, so ``op.to(device, dtype)`` moves it.

    Parameters
    ----------
    mask : Tensor
        Real k-space sampling mask S, (H, W) shared by all measurements or (N, H, W) one per
        measurement; binary or weights; DC at ``[0, 0]`` (not fftshifted).
    complex_images : bool
        False (default): x is real and ``A^T y = Re F^H (S y)``; True: x is complex and
        ``A^H y = F^H (S y)``.
    """

    roles = {"mask": "k-space sampling mask (H, W), DC at [0, 0]"}
    role_ndim = {"mask": 2}
    role_aliases = {"mask": ("mask_matrix",), "meas": ("kspace", "k_space")}
    meas_ndim = 2
    has_gram_inverse = True
    complex_meas = True
    x_unit = "image"
    nonnegative_meas = False
    channels = 1

    def __init__(self, mask: Tensor, *, complex_images: bool = False) -> None:
        super().__init__()
        if mask.is_complex():
            raise ValueError("the k-space mask must be real")
        mask = mask_stack(mask, 2, "mask must be (H, W) or (N, H, W), got {shape}")
        self.complex_images = bool(complex_images)
        self.register_buffer("mask", mask)
        self.register_buffer("mask_neg", _neg(mask).contiguous())  # S[-k]

    # -- facts ----------------------------------------------------------------------------
    @property
    def ratio(self) -> float:
        """Sampled fraction of k-space (non-zero mask entries), averaged over the masks."""
        return float((self.mask != 0).to(torch.float64).mean())

    def _shape_x(self, x: Tensor) -> Tensor:
        if x.ndim < 3 or x.shape[-3] != 1:
            raise ValueError(f"mri: x must be (N, 1, H, W), got {tuple(x.shape)}")
        return x.squeeze(-3)

    # -- the map ----------------------------------------------------------------------------
    def A(self, x: Tensor) -> Tensor:
        """``y = S * F x``: (N, 1, H, W) real or complex -> (N, H, W) complex."""
        return self.mask * _fft(self._shape_x(x))

    def A_adjoint(self, y: Tensor) -> Tensor:
        """``A^T y = Re F^H (S y)`` (real images) or ``A^H y = F^H (S y)``: (N, H, W) -> (N, 1, H, W)."""
        x = _ifft(self.mask * y)
        return (x if self.complex_images else x.real).unsqueeze(-3)

    def start(self, y: Tensor) -> Tensor:
        """The zero-filled image ``F^H y`` (``Re F^H y`` for real images), (N, 1, H, W)."""
        x = _ifft(y)
        return (x if self.complex_images else x.real).unsqueeze(-3)

    # -- closed forms ---------------------------------------------------------------------------
    def _sym(self) -> Tensor:
        """``S_sym = (S^2 + S_-^2) / 2``: the Fourier multiplier of ``A^T A`` on real images."""
        return (self.mask * self.mask + self.mask_neg * self.mask_neg) / 2

    def fourier_gram(self) -> Tensor:
        """The Fourier multiplier G of ``A^T A`` (``F A^T A x = G F x``), (1 or N, H, W) real:
        ``S^2`` (complex images) or ``S_sym = (S^2 + S_-^2) / 2`` (real images)."""
        return self.mask * self.mask if self.complex_images else self._sym()

    def gram_inverse(self, r: Tensor, gamma: float = 0.0) -> Tensor:
        """``(A A^T + gamma I)^-1 r``; for gamma = 0 the pseudo-inverse ``(A A^T)^+ r``.

        Complex images: ``r / (S^2 + gamma)`` (``r / S^2``, 0 where S = 0, for gamma = 0).
        Real images: per pair (k, -k), with ``t = S r + S_- conj(r_-)`` and ``d = S^2 + S_-^2``,
        ``(r - S t / (2 gamma + d)) / gamma``, or ``2 S t / d^2`` (0 where d = 0) for gamma = 0.
        """
        S = self.mask
        if self.complex_images:
            s2 = S * S
            if gamma > 0:
                return r / (s2 + gamma)
            return torch.where(s2 > 0, r / torch.where(s2 > 0, s2, torch.ones_like(s2)), torch.zeros_like(r))
        Sn = self.mask_neg
        t = S * r + Sn * torch.conj(_neg(r))
        d = S * S + Sn * Sn
        if gamma > 0:
            return (r - S * t / (2 * gamma + d)) / gamma
        safe = torch.where(d > 0, d, torch.ones_like(d))
        return torch.where(d > 0, 2 * S * t / (safe * safe), torch.zeros_like(t))

    def prox_l2(self, z: Tensor, y: Tensor, gamma: float, *, max_iter: int = 100, tol: float = 1e-6) -> Tensor:
        """``argmin_x ||A x - y||^2 / 2 + gamma / 2 ||x - z||^2``, exactly, in the Fourier domain:
        ``F^H [(S y + gamma F z) / (S^2 + gamma)]`` (complex images) or
        ``Re F^H [(P(S y) + gamma F z) / (S_sym + gamma)]`` (real images). ``max_iter`` and
        ``tol`` are ignored (no iterations)."""
        if not gamma > 0:
            raise UsageError(f"prox_l2 needs gamma > 0, got {gamma}")
        Sy = self.mask * y
        Fz = _fft(self._shape_x(z))
        if self.complex_images:
            return _ifft((Sy + gamma * Fz) / (self.mask * self.mask + gamma)).unsqueeze(-3)
        rhs = (Sy + torch.conj(_neg(Sy))) / 2 + gamma * Fz
        return _ifft(rhs / (self._sym() + gamma)).real.unsqueeze(-3)

    def norm(self, **_: Any) -> float:
        """``||A||^2``: ``max S^2`` (complex images) or ``max (S^2 + S_-^2) / 2`` (real images;
        the same for binary masks that sample DC)."""
        return float((self.mask * self.mask).max() if self.complex_images else self._sym().max())

    # -- files, training, tests ---------------------------------------------------------
    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, meas_shape: tuple[int, ...] | None = None,
                    complex_images: bool = False, centred: bool = False, **options: Any) -> "MRI":
        """An instance from ``{"mask": (H, W) or (K, H, W)}`` for measurements of ``meas_shape``
        (K, H, W). ``complex_images``: x complex (default: real images); ``centred``: the mask is
        fftshifted (DC in the middle) and is ifftshifted here."""
        if options:
            raise UsageError(f"mri: unknown option(s) {', '.join(options)} (options: {', '.join(_OPTIONS)})")
        mask = arrays.get("mask")
        if mask is None:
            raise UsageError("mri needs a k-space sampling mask (H, W), DC at [0, 0]")
        mask = np.asarray(mask)
        if np.iscomplexobj(mask) or mask.dtype.kind not in "biuf":
            raise UsageError(f"mri: the mask must be real numbers, got dtype {mask.dtype}")
        if mask.ndim not in (2, 3):
            raise UsageError(f"mri: the mask must be (H, W) or (K, H, W), got shape {mask.shape}")
        if meas_shape is not None:
            meas_shape = tuple(int(s) for s in meas_shape)
            if len(meas_shape) not in (2, 3) or mask.shape[-2:] != meas_shape[-2:]:
                raise UsageError(f"mri: mask of shape {mask.shape} does not fit k-space measurements of "
                                 f"shape {meas_shape} (need (H, W) = {meas_shape[-2:]})")
            if mask.ndim == 3 and mask.shape[0] not in (1, meas_shape[0] if len(meas_shape) == 3 else 1):
                raise UsageError(f"mri: {mask.shape[0]} masks {mask.shape} for measurements of shape {meas_shape}")
        if mask.dtype == np.bool_:
            mask = mask.astype(np.uint8)
        if bool(centred):
            mask = np.fft.ifftshift(mask, axes=(-2, -1))
        return cls(torch.from_numpy(np.ascontiguousarray(mask)), complex_images=bool(complex_images))

    @classmethod
    def for_images(cls, arrays: dict[str, np.ndarray], shape: tuple[int, ...], **options: Any) -> "MRI":
        """The mask of a file for images of ``shape`` (1, H, W): they must have the mask's size."""
        mask = np.asarray(arrays.get("mask", np.empty((0, 0))))
        if mask.ndim >= 2 and tuple(mask.shape[-2:]) != tuple(shape[-2:]):
            raise UsageError(f"mri: the mask is {mask.shape[-2]}x{mask.shape[-1]}; images must have its size, "
                             f"got {shape[-2]}x{shape[-1]} (train with --patch {mask.shape[-1]} on images "
                             f"at least that large)")
        return cls.from_arrays(arrays, **options)

    def arrays(self) -> dict[str, np.ndarray]:
        """``{"mask": (H, W) or (N, H, W)}``, DC at [0, 0]."""
        mask = self.mask[0] if self.mask.shape[0] == 1 else self.mask
        return {"mask": mask.detach().cpu().numpy()}

    def signature(self) -> dict[str, Any]:
        """Learned weights fit one sampling ratio (and real or complex images)."""
        return {"ratio": round(self.ratio, 4), "complex_images": self.complex_images}

    def options(self) -> dict[str, Any]:
        return {"complex_images": self.complex_images}

    @classmethod
    def random(cls, shape: tuple[int, ...], *, rng: np.random.Generator, kind: str = "cartesian",
               ratio: float = 0.3, complex_images: bool = False, centre_fraction: float | None = None,
               decay: float = 2.0, **options: Any) -> "MRI":
        """A generated mask for images of ``shape`` (1, H, W) or (H, W).

        ``kind='cartesian'``: :func:`cartesian_mask` (variable-density lines, fully sampled centre;
        ``centre_fraction``, ``decay``); ``kind='radial'``: :func:`radial_mask` (spokes through DC).
        Seeded by ``rng``; the sampled fraction is the nearest to ``ratio`` the pattern allows
        (``op.ratio`` reports it).
        """
        if options:
            raise UsageError(f"mri: unknown option(s) {', '.join(options)}")
        if len(shape) == 3 and shape[0] != 1:
            raise UsageError(f"mri: images have one channel (1, H, W), got shape {tuple(shape)}")
        if len(shape) not in (2, 3):
            raise UsageError(f"mri: image shape must be (1, H, W), got {tuple(shape)}")
        H, W = shape[-2:]
        if kind == "cartesian":
            mask = cartesian_mask(H, W, ratio, rng=rng, centre_fraction=centre_fraction, decay=decay)
        elif kind == "radial":
            mask, _ = radial_mask(H, W, ratio, rng=rng)
        else:
            raise UsageError(f"mri: unknown mask kind '{kind}' (use {', '.join(MASK_KINDS)} or a mask file)")
        return cls(torch.from_numpy(mask), complex_images=complex_images)

    @classmethod
    def example(cls, *, rng: np.random.Generator, dtype: torch.dtype = torch.float64,
                complex_images: bool = False) -> "MRI":
        """Two random binary 4 x 5 masks (one per measurement, both sampling DC; the even height
        and odd width exercise the Nyquist self-pairs), real images by default."""
        mask = (rng.random((2, 4, 5)) < 0.5).astype(np.float64)
        mask[:, 0, 0] = 1
        return cls(torch.from_numpy(mask).to(dtype), complex_images=complex_images)

    def example_input(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        n = self.mask.shape[0] if self.mask.shape[0] > 1 else n
        shape = (n, 1, *self.mask.shape[-2:])
        if self.complex_images:
            x = torch.view_as_complex(torch.randn((*shape, 2), generator=generator, dtype=self.mask.dtype))
        else:
            x = torch.randn(shape, generator=generator, dtype=self.mask.dtype)
        return x.to(self.mask.device)
