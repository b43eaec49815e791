"""Training task for learned reconstruction on any registered operator (block CS, MRI, ...).

Each step draws clean images x (N, 1, P, P) from the dataset (random patches, flips and
rotations), one operator instance for the step, and measurement noise of level
``sigma_n ~ U(0, meas_noise)`` (on [0, 1]; complex noise for complex measurements):

    y = A x + sigma_n n,     L(theta) = model.training_loss(y, A, x)   (MSE, plus a method's own terms)

The instance is the file's (``--mask FILE``: the operator's arrays, e.g. ISTA-Net's Phi, built
for the patch size by :meth:`~scicli.physics.LinearOperator.for_images`) or, with
``--mask random``, a random one drawn by :meth:`~scicli.physics.LinearOperator.random` from
(seed, step) with the settings of ``-O NAME=VALUE`` (e.g. ``ratio=0.1``). Validation: the
held-out files' centre crops, each with its own fixed instance and noise; the score is the
mean PSNR of the reconstructions, the baseline that of the operator's linear start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from scicli.core.errors import UsageError
from scicli.core.seeding import derive_seed
from scicli.data.datasets import PatchDataset, Source, SourceCache, center_crops
from scicli.data.problem import operator_arrays, operator_options
from scicli.metrics import sample_psnr
from scicli.physics import OPERATORS, LinearOperator

RANDOM = "random"


class ReconstructionTask:
    """What the reconstruction tasks share: validation PSNR of the model's reconstructions of the
    held-out items, each with its own fixed problem (:meth:`problem` with the validation tag),
    and the same score of the linear start (:meth:`linear_start`) as the baseline."""

    def problem(self, x: Tensor, step: int, tag: int = 0x0B5) -> tuple[LinearOperator, Tensor]:
        raise NotImplementedError

    def linear_start(self, op: LinearOperator, y: Tensor, x: Tensor) -> Tensor:
        """The estimate before any learning, shaped like x."""
        raise NotImplementedError

    def baseline(self, items: Sequence[np.ndarray], device: torch.device) -> dict[str, float]:
        """The linear start scored like the model (what the network improves on)."""
        return self.validate(None, items, device)

    @torch.no_grad()
    def validate(self, model: nn.Module | None, items: Sequence[np.ndarray], device: torch.device) -> dict[str, float]:
        """Mean PSNR of the reconstructions (of the linear start for ``model=None``)."""
        if model is not None:
            was = model.training
            model.eval()
        values = []
        for j, item in enumerate(items):
            x = torch.from_numpy(item)[None].to(device)
            op, y = self.problem(x, j, tag=0x7A1)
            out = self.linear_start(op, y, x) if model is None else model(y, op)[0]
            values.extend(sample_psnr(out.real if out.is_complex() else out, x).tolist())
        if model is not None and was:
            model.train()
        return {"psnr": float(np.mean(values)) if values else float("nan")}


class OperatorTask(ReconstructionTask):
    """Images -> measurements of a (file or random) operator instance -> the model's loss."""

    def __init__(self, operator: str, options: dict[str, Any], mask: str, meas_noise: float, seed: int,
                 patch: int) -> None:
        self.cls = OPERATORS.get(operator).factory
        self.name = self.cls.name
        if self.cls.channels != 1:
            raise UsageError(f"scicli train --operator {self.name}: training draws grayscale images; "
                             f"{self.name} images have {self.cls.channels} channels")
        self.random = mask == RANDOM
        self.options = operator_options(self.cls, options, factory="random" if self.random else "from_arrays")
        self.arrays = None if self.random else operator_arrays(Path(mask), self.name)
        self.meas_noise, self.seed, self.patch = float(meas_noise), int(seed), int(patch)
        self._fixed: dict[tuple[int, ...], LinearOperator] = {}
        self.instance((1, self.patch, self.patch), 0)  # a bad file or setting fails before any work

    def instance(self, shape: tuple[int, ...], step: int, tag: int = 0x0B5) -> LinearOperator:
        """The operator for images of ``shape`` (C, H, W) at step ``step``: the file's (one per
        shape), or a random one from (seed, tag, step)."""
        shape = tuple(int(s) for s in shape)
        if self.arrays is not None:
            if shape not in self._fixed:
                self._fixed[shape] = self.cls.for_images(self.arrays, shape, **self.options)
            return self._fixed[shape]
        return self.cls.random(shape, rng=np.random.default_rng(derive_seed(self.seed, tag, step)), **self.options)

    def model_facts(self) -> dict[str, Any]:
        """What the weights will be trained for: the operator's name and signature."""
        return {"operator": self.name, "signature": self.instance((1, self.patch, self.patch), 0).signature()}

    def dataset(self, sources: Sequence[Source], patch: int, cache: SourceCache) -> PatchDataset:
        return PatchDataset(sources, patch=patch, seed=self.seed, cache=cache)

    def val_items(self, sources: Sequence[Source], size: int, cache: SourceCache) -> list[np.ndarray]:
        """Centre crops of ``size``, or of the patch size where the operator's file fixes the image
        size and ``size`` does not fit it (an MRI mask)."""
        try:
            self.instance((1, size, size), 0)
        except UsageError:
            size = self.patch
        return center_crops(sources, size, frames=1, cache=cache)

    def problem(self, x: Tensor, step: int, tag: int = 0x0B5) -> tuple[LinearOperator, Tensor]:
        """The operator and noisy measurements of step ``step`` (noise from (seed, step)), on x's device."""
        op = self.instance(tuple(x.shape[1:]), step, tag).to(device=x.device, dtype=x.dtype)
        y = op.A(x)
        if self.meas_noise > 0:
            gen = torch.Generator().manual_seed(derive_seed(self.seed, tag + 1, step))
            sigma = torch.rand(x.shape[0], generator=gen, dtype=torch.float64) * self.meas_noise
            shape = y.shape + ((2,) if y.is_complex() else ())
            n = torch.randn(shape, generator=gen, dtype=torch.float64)
            n = torch.view_as_complex(n) if y.is_complex() else n
            y = y + (sigma.reshape(-1, *([1] * (y.ndim - 1))) * n).to(device=y.device, dtype=y.dtype)
        return op, y

    def loss(self, model: nn.Module, x: Tensor, step: int, key: int | None = None) -> Tensor:
        op, y = self.problem(x, step if key is None else key)
        return model.training_loss(y, op, x)

    def linear_start(self, op: LinearOperator, y: Tensor, x: Tensor) -> Tensor:
        """The operator's own start (:meth:`LinearOperator.start`: Qinit y, zero filling, A^T y)."""
        return op.start(y)
