"""Training task for reconstruction networks (deq-gap, deq-rnn, unrolled-gap).

Each step draws clips x (N, B, P, P) from the dataset (videos, frame folders, or still images
panned by a smooth synthetic camera motion), masks M (N, B, P, P) like the target camera's
(``random``: Bernoulli(1/2) per pixel and frame; ``shifted``: one pattern moved one pixel per
frame; a mask file: random P x P windows of it), and measurement noise of level
``sigma_n ~ U(0, meas_noise)`` (noise levels on [0, 1]):

    y = sum_t M_t x_t + sigma_n n,     L(theta) = mean || x*_theta(y, M) - x ||^2

Masks and noise of step k depend only on (seed, k), drawn on the CPU: identical on every
device, every rank layout and on resume. Validation: the held-out files' centre crops, each with
its own fixed mask and noise; the score is the mean PSNR of the reconstructions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scicli.core.errors import UsageError
from scicli.io import read_array
from scicli.data.problem import mask_values
from scicli.physics import VideoSCI
from scicli.physics.masks import make_mask
from scicli.data.datasets import ClipDataset, Source, SourceCache, center_crops
from scicli.train.operators import ReconstructionTask
from scicli.core.seeding import derive_seed as _seed
from scicli.core.units import level

MASK_KINDS = ("random", "shifted")
SUPERVISE = ("last", "all", "start")


def load_mask_file(path: str, frames: int) -> np.ndarray:
    """A (B, H, W) float32 mask from a file (any format scicli reads), B must match --frames;
    values as ``scicli reconstruct`` reads them (:func:`scicli.data.problem.mask_values`)."""
    arr = np.asarray(read_array(Path(path), None, "mask"))
    if arr.ndim != 3:
        raise UsageError(f"--mask {path}: expected a (B, H, W) mask array, got shape {arr.shape}")
    if arr.shape[0] != frames and arr.shape[-1] == frames:
        arr = np.moveaxis(arr, -1, 0)
    if arr.shape[0] != frames:
        raise UsageError(f"--mask {path}: shape {arr.shape} has no axis of --frames {frames}")
    return np.ascontiguousarray(mask_values(arr, f"--mask {path}"))  # scaled as reconstruct scales it


class MaskSampler:
    """Masks (N, B, P, P) for a step, drawn from (seed, step, sample)."""

    def __init__(self, kind: str, frames: int, seed: int) -> None:
        self.kind, self.frames, self.seed = kind, int(frames), int(seed)
        self.file: np.ndarray | None = None
        if kind not in MASK_KINDS:
            self.file = load_mask_file(kind, frames)

    def check_patch(self, patch: int) -> None:
        if self.file is not None and min(self.file.shape[1:]) < patch:
            raise UsageError(f"--mask {self.kind}: {self.file.shape[1]}x{self.file.shape[2]} is smaller "
                             f"than --patch {patch}")

    def one(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        if self.file is None:
            return make_mask(self.kind, self.frames, h, w, rng=rng).astype(np.float32)
        H, W = self.file.shape[1:]
        if H < h or W < w:  # validation crops larger than the file: tile it
            reps = (1, -(-h // H), -(-w // W))
            tiled = np.tile(self.file, reps)
            return np.ascontiguousarray(tiled[:, :h, :w])
        top, left = int(rng.integers(H - h + 1)), int(rng.integers(W - w + 1))
        return np.ascontiguousarray(self.file[:, top:top + h, left:left + w])

    def batch(self, n: int, h: int, w: int, step: int, tag: int = 0x5C1) -> Tensor:
        return torch.from_numpy(np.stack([
            self.one(np.random.default_rng(_seed(self.seed, tag, step, i)), h, w) for i in range(n)]))


def measure(x: Tensor, mask: Tensor, sigma: Tensor, noise: Tensor) -> tuple[VideoSCI, Tensor]:
    """``(A, y = A x + sigma n)`` for clips x and masks (N, B, H, W), noise levels (N,)."""
    op = VideoSCI(mask)
    return op, op.A(x) + sigma.reshape(-1, 1, 1) * noise


class SCITask(ReconstructionTask):
    """Clips -> coded snapshots -> reconstruction loss; validation PSNR of the reconstructions."""

    def __init__(self, frames: int, mask: str, meas_noise: float, seed: int, warmup: int = 0,
                 sigma_range: Sequence[float] = (0.0, level(50.0)), supervise: str = "last") -> None:
        self.frames = int(frames)
        self.warmup = int(warmup)
        self.sigma_range = tuple(float(s) for s in sigma_range)
        self.masks = MaskSampler(mask, frames, seed)
        self.meas_noise = float(meas_noise)
        self.seed = int(seed)
        self.supervise = supervise

    def dataset(self, sources: Sequence[Source], patch: int, cache: SourceCache) -> ClipDataset:
        self.masks.check_patch(patch)
        return ClipDataset(sources, frames=self.frames, patch=patch, seed=self.seed, cache=cache)

    def val_items(self, sources: Sequence[Source], size: int, cache: SourceCache) -> list[np.ndarray]:
        return center_crops(sources, size, frames=self.frames, cache=cache)

    def problem(self, x: Tensor, step: int, tag: int = 0x5C1) -> tuple[VideoSCI, Tensor]:
        """The coded snapshots of step ``step`` (masks and noise from (seed, step)), on x's device."""
        N, B, H, W = x.shape
        mask = self.masks.batch(N, H, W, step, tag)
        gen = torch.Generator().manual_seed(_seed(self.seed, tag + 1, step))
        sigma = torch.rand(N, generator=gen) * self.meas_noise
        noise = torch.randn((N, H, W), generator=gen)
        return measure(x, mask.to(x.device), sigma.to(x.device), noise.to(x.device))

    def loss(self, model: nn.Module, x: Tensor, step: int, key: int | None = None) -> Tensor:
        """Step ``step`` (random streams from ``key``, default ``step``): during the first
        ``warmup`` steps the map is pre-trained as a denoiser, ``||f(x + sigma n) - x||^2``
        with ``sigma ~ U(sigma_range)`` (a learned map that starts as a real denoiser
        is a near-contraction, which the fixed-point solve needs); then the fixed point, or with
        ``supervise="all"`` the iterate after a random number of evaluations (every iterate on
        the way is trained to be close to x: a map that converges in few evaluations); with
        ``supervise="start"`` only the learned start, ``||x0 - x||^2`` (no solve: cheap, and the
        rest of the model, e.g. from ``--init``, stays as it is)."""
        key = step if key is None else key
        op, y = self.problem(x, key)
        if self.supervise == "start":  # the learned start alone (no fixed-point solve)
            return F.mse_loss(model.start_estimate(y, op), x)
        if step < self.warmup:
            return F.mse_loss(model.one_step(self.perturb(x, op, y, key), y, op), x)
        config = model.config
        solve = None
        if self.supervise == "all" and "iters" not in config["solve"]:
            # the iterate after k + 1 evaluations, k ~ U{0..max_iter - 1}, gradient of the last one
            k = int(np.random.default_rng(_seed(self.seed, 0xA11, key)).integers(int(config["solve"]["max_iter"])))
            solve = {"max_iter": k, "backward": "jfb"}
        if config.get("learned_start"):  # the start's refinement learns to be close to x too
            out, _, start = model.reconstruct_with_start(y, op, solve=solve)
            loss = F.mse_loss(out, x) + F.mse_loss(start, x)
        else:
            out, _ = model(y, op, solve=solve)
            loss = F.mse_loss(out, x)
        return model.with_penalty(loss)  # the map's Jacobian regularisation (-p jac_weight=), when on

    def perturb(self, x: Tensor, op: VideoSCI, y: Tensor, key: int) -> Tensor:
        """An iterate-like estimate of x: ``x + a (x0 - x) + sigma n`` with the solver's start
        x0, ``a ~ U(0, 1)`` and ``sigma ~ U(sigma_range)`` per clip; the fixed-point
        iterates travel from x0 towards x, and the map learns to move every point of that path
        closer to x (which makes x an attracting fixed point)."""
        gen = torch.Generator().manual_seed(_seed(self.seed, 0xD0, key))
        N = x.shape[0]
        lo, hi = self.sigma_range
        a = torch.rand((N, 1, 1, 1), generator=gen).to(x.device)
        sigma = (lo + (hi - lo) * torch.rand((N, 1, 1, 1), generator=gen)).to(x.device)
        x0 = op.gram_inverse(y).unsqueeze(1)  # the start x_t = y / R of every model
        return x + a * (x0 - x) + sigma * torch.randn(x.shape, generator=gen).to(x.device)

    def linear_start(self, op: VideoSCI, y: Tensor, x: Tensor) -> Tensor:
        """``x_t = y / R`` for every frame (the start of every video map)."""
        return op.gram_inverse(y).unsqueeze(1).expand_as(x)
