"""``cs-block``: block compressive sensing in the ISTA-Net convention.

A grayscale image x (H x W, on [0, 1]) is zero-padded right and bottom to a multiple of the
block size b (33), cut into row-major non-overlapping b x b blocks, and every block, flattened
row-major (ISTA-Net's ``img2col``), is measured by the same sampling matrix Phi (m, b*b):

    A x = [Phi x_1, ..., Phi x_n]                         (N, 1, H, W)  -> (N, n_blocks, m)
    A^T y = crop(image of the blocks Phi^T y_k)           (N, n_blocks, m) -> (N, 1, H, W)

(the adjoint of zero padding is cropping). ``A A^T`` is block diagonal with one m x m block
per image block, ``Phi D_k Phi^T``, where ``D_k`` keeps the pixels of block k that lie inside
the H x W image: ``Phi Phi^T`` (``I`` for ISTA-Net's orthonormal rows) for the interior blocks,
a different matrix for the partial blocks of the last block row and column when H or W is not
a multiple of b. There are at most four kinds of blocks (interior, right column, bottom row,
corner); the eigendecomposition of each kind's m x m Gram matrix is computed once, so
``gram_inverse`` is closed-form for any Phi (the pseudo-inverse for gamma = 0 where a Gram
matrix is singular, e.g. a corner block with fewer inside pixels than m). ``norm()`` is the
largest of those eigenvalues.

The optional ``qinit`` (b*b, m) is ISTA-Net's linear initialiser, the least-squares map from
block measurements to blocks learned on training data; with it :meth:`BlockCS.start` returns
the image of the blocks ``Qinit y_k`` (ISTA-Net's ``x0 = Phix @ Qinit^T``), cropped.

Random instances (:meth:`BlockCS.random`, ``--mask random``) come with a data-free ``qinit``:
the linear minimum-mean-square-error estimator under a stationary separable AR(1) model of
natural-image blocks (:func:`lmmse_initialiser`), ``Qinit = R Phi^T (Phi R Phi^T)^-1`` with
``R = s^2 (K (x) K) + mu^2 11^T``, ``K_ij = rho^|i-j|``. On 20 held-out Train400 images
(random orthonormal Phi) it reconstructs 20.9 dB at 10 % and 25.1 dB at 40 % from the
measurements alone, where ``A^T y`` gives 7-8 dB; rho = 0.8 was chosen there over 1-40 %.

Note: ISTA-Net's own test script pads by ``b - H mod b`` rows, one full block of zeros too
many when H is already a multiple of b; the extra zero blocks change nothing in the
reconstruction of the image area, and this operator pads to the smallest multiple.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from scicli.core.errors import DataError, UsageError
from scicli.physics.base import LinearOperator, register_operator

DEFAULT_BLOCK = 33


def measurements_for(ratio: float, block: int = DEFAULT_BLOCK) -> int:
    """m for a sampling ratio: ``floor(ratio * b^2 + 0.5)`` (round half up), at least 1.

    Gives ISTA-Net's m = 109, 272, 327, 436, 545 at 10, 25, 30, 40, 50 % (b = 33); its 1 % and
    4 % matrices have m = 10 and 43 (rounded down), where this rule gives 11 and 44.
    """
    return max(1, int(math.floor(ratio * block * block + 0.5)))


AR_MODEL = {"rho": 0.8, "mean": 0.44, "var": 0.05}
"""The block model of :func:`lmmse_initialiser`: mean and variance of Train400 pixels on [0, 1]
(0.437, 0.051) and the AR(1) correlation chosen on held-out Train400 images."""


def lmmse_initialiser(phi: Tensor, block: int, *, rho: float = AR_MODEL["rho"], mean: float = AR_MODEL["mean"],
                      var: float = AR_MODEL["var"]) -> Tensor:
    """The linear MMSE map from a block's measurements to the block, ``(b*b, m)``:

    ``Qinit = R Phi^T (Phi R Phi^T)^+``, with the second-moment matrix of b x b blocks under a
    stationary separable AR(1) model, ``R = var (K (x) K) + mean^2 1 1^T``, ``K_ij = rho^|i - j|``
    (row-major blocks, so the Kronecker product orders pixels as ``img2col``). It plays the role
    of ISTA-Net's Qinit (the least-squares map fitted on training blocks) for any Phi, without
    training data. Computed in float64, returned in Phi's dtype.
    """
    idx = torch.arange(block, dtype=torch.float64)
    k = rho ** (idx[:, None] - idx[None, :]).abs()
    R = var * torch.kron(k, k) + mean * mean
    p = phi.detach().to(torch.float64).cpu()
    RPt = R @ p.T
    return (RPt @ torch.linalg.pinv(p @ RPt, hermitian=True)).to(dtype=phi.dtype, device=phi.device)


def _groups(n: int, b: int) -> list[tuple[int, int, int]]:
    """Runs of blocks along one axis of length n with the same number of inside pixels:
    (first block, end block, inside pixels per block)."""
    nb = -(-n // b)
    rest = n - (nb - 1) * b  # inside pixels of the last block, 1..b
    if rest == b:
        return [(0, nb, b)]
    return ([(0, nb - 1, b)] if nb > 1 else []) + [(nb - 1, nb, rest)]


@register_operator("cs-block", summary="block compressive sensing (ISTA-Net): y_k = Phi x_k on 33 x 33 blocks")
class BlockCS(LinearOperator):
    """Block-CS operator for one sampling matrix ``phi`` (m, b*b) shared by all measurements
    and images of ``size`` (H, W); x is (N, 1, H, W) (any leading dims before the channel),
    y is (N, n_blocks, m) with ``n_blocks = ceil(H / b) * ceil(W / b)``, blocks row by row.

    Being an ``nn.Module`` with buffers, ``op.to(device, dtype)`` moves Phi, Qinit and the
    precomputed eigendecompositions.
    """

    roles = {"phi": "sampling matrix (m, b*b)", "size": "image height and width, (2,) integers"}
    optional_roles = ("qinit",)
    role_ndim = {"phi": 2, "size": 1, "qinit": 2}
    role_aliases = {"qinit": ("Qinit",)}
    meas_ndim = 2
    has_gram_inverse = True
    x_unit = "image"
    nonnegative_meas = False
    channels = 1

    def __init__(self, phi: Tensor, size: tuple[int, int], qinit: Tensor | None = None,
                 block: int = DEFAULT_BLOCK) -> None:
        super().__init__()
        if phi.ndim != 2 or phi.shape[1] != block * block:
            raise ValueError(f"phi must be (m, {block * block}), got {tuple(phi.shape)}")
        if not torch.is_floating_point(phi):
            phi = phi.float()
        H, W = (int(s) for s in size)
        self.block = int(block)
        self.size = (H, W)
        b = self.block
        self.grid = (-(-H // b), -(-W // b))  # blocks per column, per row
        self.register_buffer("phi", phi.contiguous())
        if qinit is not None:
            if tuple(qinit.shape) != (b * b, phi.shape[0]):
                raise ValueError(f"qinit must be ({b * b}, {phi.shape[0]}), got {tuple(qinit.shape)}")
            qinit = qinit.to(phi.dtype).contiguous()
        self.register_buffer("qinit", qinit)

        # One kind of block per (row run, column run): its Gram matrix Phi D Phi^T, eigendecomposed.
        p64 = phi.detach().to("cpu", torch.float64)
        m = p64.shape[0]
        rcond = 10 * max(m, b * b) * torch.finfo(torch.float64).eps
        self.kinds: list[tuple[int, int, int, int]] = []  # (r0, r1, c0, c1) in block units
        vecs, vals, keep = [], [], []
        for r0, r1, hv in _groups(H, b):
            for c0, c1, wv in _groups(W, b):
                inside = torch.zeros(b, b, dtype=torch.float64)
                inside[:hv, :wv] = 1
                gram = (p64 * inside.reshape(1, -1)) @ p64.T
                lam, U = torch.linalg.eigh(gram)
                nonzero = lam > rcond * lam.abs().max().clamp_min(1e-300)
                self.kinds.append((r0, r1, c0, c1))
                vecs.append(U)
                vals.append(torch.where(nonzero, lam, torch.zeros_like(lam)))
                keep.append(nonzero)
        self.register_buffer("eigvec", torch.stack(vecs).to(device=phi.device, dtype=phi.dtype))
        self.register_buffer("eigval", torch.stack(vals).to(device=phi.device, dtype=phi.dtype))
        self.register_buffer("nonzero", torch.stack(keep).to(phi.device))  # bool: not cast by .to(dtype)
        self._norm = float(torch.stack(vals).max())

    # -- sizes ------------------------------------------------------------------------------
    @property
    def m(self) -> int:
        """Measurements per block."""
        return self.phi.shape[0]

    @property
    def n_blocks(self) -> int:
        """Blocks per image, ``ceil(H / b) * ceil(W / b)``."""
        return self.grid[0] * self.grid[1]

    @property
    def ratio(self) -> float:
        """Sampling ratio m / b^2."""
        return self.m / (self.block * self.block)

    # -- blocks <-> image (ISTA-Net's img2col / col2im, vectorised) -----------------------------
    def to_blocks(self, img: Tensor) -> Tensor:
        """(..., H, W) -> (..., n_blocks, b*b): zero-pad right and bottom, row-major blocks,
        each flattened row-major."""
        b, (R, C), (H, W) = self.block, self.grid, self.size
        pad = F.pad(img, (0, C * b - W, 0, R * b - H))
        lead = pad.shape[:-2]
        return pad.reshape(*lead, R, b, C, b).transpose(-3, -2).reshape(*lead, R * C, b * b)

    def from_blocks(self, blocks: Tensor) -> Tensor:
        """(..., n_blocks, b*b) -> (..., H, W): the image of the blocks, cropped (the adjoint of
        :meth:`to_blocks`)."""
        b, (R, C), (H, W) = self.block, self.grid, self.size
        lead = blocks.shape[:-2]
        img = blocks.reshape(*lead, R, C, b, b).transpose(-3, -2).reshape(*lead, R * b, C * b)
        return img[..., :H, :W]

    def _check_x(self, x: Tensor) -> None:
        if x.ndim < 3 or x.shape[-3] != 1 or tuple(x.shape[-2:]) != self.size:
            raise UsageError(f"cs-block: images must be (N, 1, {self.size[0]}, {self.size[1]}), "
                             f"got {tuple(x.shape)}")

    def _check_y(self, y: Tensor) -> None:
        if y.ndim < 2 or tuple(y.shape[-2:]) != (self.n_blocks, self.m):
            raise UsageError(f"cs-block: measurements must be (N, {self.n_blocks}, {self.m}), got {tuple(y.shape)}")

    # -- the map (computed in the dtype of its input: a float64 Phi read from a .mat file works
    #    on float32 data without a copy of the operator) -----------------------------------------
    @staticmethod
    def _as(t: Tensor, like: Tensor) -> Tensor:
        return t if t.dtype == like.dtype else t.to(like.dtype)

    def A(self, x: Tensor) -> Tensor:
        """``y_k = Phi x_k`` for every block: (N, 1, H, W) -> (N, n_blocks, m)."""
        self._check_x(x)
        return self.to_blocks(x.squeeze(-3)) @ self._as(self.phi, x).T

    def A_adjoint(self, y: Tensor) -> Tensor:
        """``A^T y``: blocks ``Phi^T y_k`` put back in place, cropped: (N, n_blocks, m) -> (N, 1, H, W)."""
        self._check_y(y)
        return self.from_blocks(y @ self._as(self.phi, y)).unsqueeze(-3)

    def gram_inverse(self, r: Tensor, gamma: float = 0.0) -> Tensor:
        """``(A A^T + gamma I)^-1 r`` block by block, from the eigendecompositions ``U diag(lam) U^T``
        of the (at most four) kinds of blocks; for gamma = 0 the pseudo-inverse (zero on the
        null space of a singular Gram matrix, e.g. a corner block with fewer inside pixels than m)."""
        self._check_y(r)
        lam, vecs = self._as(self.eigval, r), self._as(self.eigvec, r)
        if gamma > 0:
            scale = 1.0 / (lam + gamma)
        else:
            scale = torch.where(self.nonzero, 1.0 / torch.where(self.nonzero, lam, torch.ones_like(lam)),
                                torch.zeros_like(lam))
        if len(self.kinds) == 1:
            U = vecs[0]
            return ((r @ U) * scale[0]) @ U.T
        R, C = self.grid
        lead = r.shape[:-2]
        grid = r.reshape(*lead, R, C, self.m)
        out = torch.empty_like(grid)
        for i, (r0, r1, c0, c1) in enumerate(self.kinds):
            U = vecs[i]
            out[..., r0:r1, c0:c1, :] = ((grid[..., r0:r1, c0:c1, :] @ U) * scale[i]) @ U.T
        return out.reshape(r.shape)

    def norm(self, **_: Any) -> float:
        """``||A||^2``: the largest eigenvalue of the per-block Gram matrices (1 for orthonormal rows)."""
        return self._norm

    def start(self, y: Tensor) -> Tensor:
        """ISTA-Net's linear initialiser: the image of the blocks ``Qinit y_k`` (cropped) when a
        ``qinit`` is present, else ``A^T y``."""
        if self.qinit is None:
            return self.A_adjoint(y)
        self._check_y(y)
        return self.from_blocks(y @ self._as(self.qinit, y).T).unsqueeze(-3)

    # -- files, training, tests -------------------------------------------------------------
    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, meas_shape: tuple[int, ...] | None = None,
                    block: int = DEFAULT_BLOCK, **options: Any) -> "BlockCS":
        if options:
            raise UsageError(f"cs-block: unknown option(s) {', '.join(options)} (it takes: block)")
        if isinstance(block, (np.integer, np.floating, float)) and float(block).is_integer():
            block = int(block)
        if isinstance(block, bool) or not isinstance(block, int) or block < 1:
            raise UsageError(f"cs-block: block must be a whole number >= 1, got {block!r}")
        b2 = block * block

        phi = arrays.get("phi")
        if phi is None:
            raise UsageError(f"cs-block needs a sampling matrix 'phi' (m, {b2}) for {block} x {block} blocks")
        phi = np.asarray(phi)
        if phi.ndim != 2 or phi.shape[1] != b2 or phi.shape[0] < 1:
            hint = ""
            if phi.ndim == 2 and phi.shape[0] == b2 and phi.shape[1] != b2:
                hint = " (transposed?)"
            elif phi.ndim == 2 and math.isqrt(phi.shape[1]) ** 2 == phi.shape[1] and phi.shape[1] > 0:
                k = math.isqrt(phi.shape[1])
                hint = f" (for {k} x {k} blocks pass block={k})"
            elif phi.ndim != 2:
                hint = " (one matrix shared by all measurements)"
            raise UsageError(f"sampling matrix {tuple(phi.shape)}: its width must be the block size squared, "
                             f"{block} x {block} = {b2}{hint}")
        if not np.issubdtype(phi.dtype, np.number) or np.iscomplexobj(phi):
            raise UsageError(f"sampling matrix {tuple(phi.shape)}: must be real numbers, got {phi.dtype}")
        if not np.isfinite(phi).all():
            raise DataError(f"sampling matrix {tuple(phi.shape)}: contains NaN or Inf")
        m = phi.shape[0]

        size = arrays.get("size")
        if size is None:
            raise UsageError("cs-block needs the image size 'size' (H, W)")
        size = np.asarray(size)
        flat = size.reshape(-1) if size.size == 2 else None
        if flat is None or not np.issubdtype(flat.dtype, np.number) or not np.isfinite(flat).all() or \
                not all(float(v).is_integer() and v >= 1 for v in flat):
            raise UsageError(f"cs-block: size must be two whole numbers >= 1 (H, W), got {size.tolist()}")
        H, W = (int(v) for v in flat)

        qinit = arrays.get("qinit")
        if qinit is not None:
            qinit = np.asarray(qinit)
            if qinit.shape != (b2, m):
                hint = " (transposed?)" if qinit.shape == (m, b2) else ""
                raise UsageError(f"initialisation matrix Qinit {tuple(qinit.shape)}: must be (b*b, m) = "
                                 f"({b2}, {m}) for a sampling matrix ({m}, {b2}){hint}")
            if not np.isfinite(qinit).all():
                raise DataError(f"initialisation matrix Qinit {tuple(qinit.shape)}: contains NaN or Inf")

        R, C = -(-H // block), -(-W // block)
        if meas_shape is not None:
            meas_shape = tuple(int(s) for s in meas_shape)
            if len(meas_shape) != 3 or meas_shape[1:] != (R * C, m):
                raise UsageError(
                    f"measurements {meas_shape} do not fit: a {H} x {W} (H x W) image has {R} x {C} = {R * C} "
                    f"blocks of {block} x {block}, each with m = {m} measurements (K, {R * C}, {m})"
                )

        def tensor(a: np.ndarray) -> Tensor:
            t = torch.from_numpy(np.ascontiguousarray(a))
            return t if torch.is_floating_point(t) else t.float()

        phi_t = tensor(phi)
        q_t = tensor(qinit).to(phi_t.dtype) if qinit is not None else None
        return cls(phi_t, (H, W), q_t, block=block)

    def arrays(self) -> dict[str, np.ndarray]:
        out = {"phi": self.phi.detach().cpu().numpy(), "size": np.array(self.size, dtype=np.int64)}
        if self.qinit is not None:
            out["qinit"] = self.qinit.detach().cpu().numpy()
        return out

    def options(self) -> dict[str, Any]:
        return {"block": self.block}

    def signature(self) -> dict[str, Any]:
        """Learned weights fit one block size and one number m of measurements per block."""
        return {"block": self.block, "m": self.m}

    @classmethod
    def for_images(cls, arrays: dict[str, np.ndarray], shape: tuple[int, ...], **options: Any) -> "BlockCS":
        """Phi (and Qinit) of a file for images of ``shape`` (1, H, W): the size comes from the images."""
        return cls.from_arrays({**arrays, "size": np.array(shape[-2:], dtype=np.int64)}, **options)

    @classmethod
    def random(cls, shape: tuple[int, ...], *, rng: np.random.Generator, ratio: float = 0.1,
               block: int = DEFAULT_BLOCK, **options: Any) -> "BlockCS":
        """An orthonormal-row Gaussian Phi (QR of a seeded (b*b, m) Gaussian matrix, transposed)
        with ``m = floor(ratio * b^2 + 0.5)`` (see :func:`measurements_for`), for images of
        ``shape`` (1, H, W); float32, with the data-free Qinit of :func:`lmmse_initialiser`."""
        if options:
            raise UsageError(f"cs-block: unknown option(s) {', '.join(options)} (it takes: ratio, block)")
        if len(shape) != 3 or shape[0] != 1:
            raise UsageError(f"cs-block works on grayscale images (1, H, W), got shape {tuple(shape)}")
        if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
            raise UsageError(f"cs-block: block must be a whole number >= 1, got {block!r}")
        if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and 0 < ratio <= 1):
            raise UsageError(f"cs-block: ratio must be in (0, 1], got {ratio}")
        block = int(block)
        m = measurements_for(ratio, block)
        q, _ = torch.linalg.qr(torch.from_numpy(rng.standard_normal((block * block, m))))  # float64
        phi = q.T.contiguous().float()
        return cls(phi, (int(shape[1]), int(shape[2])), lmmse_initialiser(phi, block), block=block)

    @classmethod
    def example(cls, *, rng: np.random.Generator, dtype: torch.dtype = torch.float64) -> "BlockCS":
        """Block 3, a 4 x 5 image (2 x 2 blocks: interior, right, bottom, corner kinds), m = 4,
        a non-orthonormal Gaussian Phi and a Qinit."""
        phi = torch.from_numpy(rng.standard_normal((4, 9))).to(dtype)
        qinit = torch.from_numpy(0.3 * rng.standard_normal((9, 4))).to(dtype)
        return cls(phi, (4, 5), qinit, block=3)

    def example_input(self, n: int = 1, *, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn((n, 1, *self.size), generator=generator, dtype=self.phi.dtype).to(self.phi.device)
