"""Training task for learned sparse coding (LISTA) on the ``dictionary`` operator.

The unknown of the ``dictionary`` operator is a code, not an image, so the training pairs are
made the other way round from :class:`~scicli.train.operators.OperatorTask`: each step draws
image patches p (N, 1, P, P) from the dataset, turns them into signals and computes their
target codes, the minimisers of the sparse-coding energy (Gregor and LeCun 2010):

    y = (vec(p) - mean(p)) / s,          z* = argmin_z ||y - D z||^2 / 2 + alpha ||z||_1

with ``n = P^2``, one scale ``s`` for all signals (the standard deviation of mean-removed
training pixels, measured once on seeded training patches and recorded in the run's log), and
``z*`` exact in float64: FISTA (Beck and Teboulle 2009) until it has found the support and signs,
then the linear optimality conditions on that support (:func:`lasso_codes`).
The loss is the model's ``training_loss(y, D, z*)`` (mean squared code error).

Validation: fixed patches of the held-out files; the score is the code SNR in dB,
``10 log10(sum ||z*||^2 / sum ||z - z*||^2)`` (higher is better, like a PSNR), and the baseline
is the untrained network, ISTA with the same number of steps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from scicli.algorithms import nesterov, pgd_step
from scicli.core.errors import UsageError
from scicli.data.datasets import PatchDataset, Source, SourceCache
from scicli.data.problem import operator_arrays
from scicli.methods.lista import LISTA
from scicli.physics import OPERATORS, LinearOperator
from scicli.priors.sparsity import soft_threshold

SCALE_PATCHES = 4096
"""Seeded training patches that measure the signal scale s."""
VAL_PATCHES = 200
"""Fixed validation patches per held-out file."""


REFINE_EVERY = 25
"""FISTA iterations between two attempts to finish a code exactly on its support (:func:`lasso_codes`)."""


def _support_solution(G: Tensor, Dty: Tensor, z: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """The lasso minimiser with the support and signs of ``z`` (N, m), where that guess is right.

    On a support S with signs s the optimality conditions are linear:
    ``D_S^T D_S z_S = D_S^T y - alpha s_S`` and ``|D_j^T (y - D z)| <= alpha`` off S. Returns the
    solution of that system for every row and a mask of the rows where it keeps the signs s and
    meets the condition off S (to 1e-9 alpha), i.e. where it is the exact minimiser.
    """
    s = z.sign()
    on = s != 0
    both = on[:, :, None] & on[:, None, :]
    M = torch.where(both, G, torch.zeros((), dtype=G.dtype)) + torch.diag_embed((~on).to(G.dtype))
    z_s, info = torch.linalg.solve_ex(M, torch.where(on, Dty - alpha * s, 0.0))
    g = Dty - z_s @ G  # D^T (y - D z)
    ok = (info == 0) & torch.isfinite(z_s).all(1)
    ok &= torch.where(on, z_s.sign() == s, g.abs() <= alpha * (1 + 1e-9)).all(1)
    return torch.where(on, z_s, 0.0), ok


def lasso_codes(op: LinearOperator, y: Tensor, alpha: float, max_iter: int = 5000, tol: float = 1e-9) -> Tensor:
    """``argmin_z ||y - D z||^2 / 2 + alpha ||z||_1`` for every row of y (N, n), in float64.

    FISTA from z = 0 (Beck and Teboulle 2009); every :data:`REFINE_EVERY` iterations each
    unfinished row tries its exact solution on the iterate's support and signs
    (:func:`_support_solution`), which FISTA identifies long before its values converge. A row is
    finished by that, or when ``||z_k - z_{k-1}|| <= tol ||z_k||``, or after ``max_iter``.
    Returns (N, m, 1, 1) in y's dtype.
    """
    op64 = op.to(torch.float64)
    y64 = y.to(torch.float64)
    D = op64.D
    G, Dty = D.T @ D, y64 @ D
    step = 1.0 / op64.norm()
    x = torch.zeros(y.shape[0], op64.m, 1, 1, dtype=torch.float64, device=y.device)
    z = x
    out = torch.zeros_like(x).flatten(1)
    done = torch.zeros(y.shape[0], dtype=torch.bool, device=y.device)
    for k in range(1, max_iter + 1):
        x_new = pgd_step(op64, z, y64, step, lambda v: soft_threshold(v, alpha * step))
        still = (x_new - x).flatten(1).norm(dim=1) <= tol * x_new.flatten(1).norm(dim=1).clamp_min(1e-30)
        z, x = nesterov(x_new, x, k), x_new
        if k % REFINE_EVERY == 0 or k == max_iter or bool((still | done).all()):
            todo = ~done
            exact, ok = _support_solution(G, Dty[todo], x.flatten(1)[todo], alpha)
            fin = torch.zeros_like(done)
            fin[todo] = ok
            out[fin] = exact[ok]
            stop = still & ~done & ~fin
            out[stop] = x.flatten(1)[stop]
            done |= fin | stop
            if bool(done.all()):
                break
    out[~done] = x.flatten(1)[~done]
    return out.reshape(x.shape).to(y.dtype)


def code_snr(z: Tensor, target: Tensor) -> float:
    """``10 log10(sum ||z*||^2 / sum ||z - z*||^2)`` in dB."""
    err = float(((z - target) ** 2).sum())
    return 10.0 * math.log10(float((target ** 2).sum()) / max(err, 1e-30))


class SparseCodingTask:
    """Patches -> signals and their lasso codes -> the model's loss (``scicli train --method lista
    --operator dictionary --mask DICTIONARY.npz --patch 10``)."""

    def __init__(self, mask: str, options: dict[str, Any], model_options: dict[str, Any], meas_noise: float,
                 seed: int, patch: int) -> None:
        if mask == "random":
            raise UsageError("scicli train --operator dictionary: pass the dictionary with --mask FILE "
                             "(e.g. one learned by bench/bench_lista.py); a random dictionary has no natural codes")
        if options:
            raise UsageError(f"-O {', '.join(options)}: the dictionary operator takes no settings")
        if meas_noise:
            raise UsageError("--meas-noise does not apply to sparse coding (the signals are the patches)")
        cls = OPERATORS.get("dictionary").factory
        self.op = cls.from_arrays(operator_arrays(Path(mask), "dictionary"))
        if self.op.n != patch * patch:
            raise UsageError(f"--patch {patch}: the dictionary's atoms have n = {self.op.n} values, "
                             f"a patch has {patch * patch} (pass --patch {math.isqrt(self.op.n)})"
                             if math.isqrt(self.op.n) ** 2 == self.op.n else
                             f"--patch {patch}: the dictionary's atoms have n = {self.op.n} values, not a square patch")
        self.alpha = float(model_options.get("alpha", 0.5))
        self.steps = int((model_options.get("solve") or {}).get("iters", 1))
        self.seed, self.patch = int(seed), int(patch)
        self.scale: float | None = None
        self._val: tuple[tuple[int, str], Tensor, Tensor] | None = None  # (key, signals, codes)

    def model_facts(self) -> dict[str, Any]:
        """The weights are for this dictionary's signature (n, m)."""
        return {"operator": self.op.name, "signature": self.op.signature()}

    def run_info(self) -> dict[str, Any]:
        """The signal scale s (what a user divides mean-removed patches by to use the weights)."""
        return {"signal_scale": self.scale}

    def prepare_model(self, model: nn.Module) -> None:
        """A new run starts from ISTA: ``W_e = D^T / L``, ``S = I - D^T D / L``, ``theta = alpha / L``."""
        model.ista_init(self.op.D, float(model.config.get("alpha", self.alpha)))

    def _measure_scale(self, sources: Sequence[Source], cache: SourceCache) -> None:
        probe = PatchDataset(sources, patch=self.patch, length=SCALE_PATCHES, seed=self.seed + 1, augment=False,
                             cache=cache)
        x = torch.stack([probe[i] for i in range(len(probe))]).flatten(1).double()
        self.scale = float((x - x.mean(dim=1, keepdim=True)).std())

    def dataset(self, sources: Sequence[Source], patch: int, cache: SourceCache) -> PatchDataset:
        if self.scale is None:
            self._measure_scale(sources, cache)
        return PatchDataset(sources, patch=patch, seed=self.seed, cache=cache)

    def val_items(self, sources: Sequence[Source], size: int, cache: SourceCache) -> list[np.ndarray]:
        """Fixed patches (no flips) of the held-out files, ``(K, 1, P, P)`` in one item."""
        if not sources:
            return []
        fixed = PatchDataset(sources, patch=self.patch, length=VAL_PATCHES * len(sources), seed=self.seed + 2,
                             augment=False, cache=cache)
        return [torch.stack([fixed[i] for i in range(len(fixed))]).numpy()]

    def signals(self, x: Tensor) -> Tensor:
        """Patches (N, 1, P, P) -> signals (N, P^2): mean removed, divided by the scale s."""
        if self.scale is None:
            raise RuntimeError("the signal scale is measured on the training data first (dataset())")
        v = x.flatten(1)
        return (v - v.mean(dim=1, keepdim=True)) / self.scale

    def loss(self, model: nn.Module, x: Tensor, step: int, key: int | None = None) -> Tensor:
        op = self.op.to(device=x.device, dtype=x.dtype)
        y = self.signals(x)
        return model.training_loss(y, op, lasso_codes(op, y, self.alpha))

    def _val_pairs(self, items: Sequence[np.ndarray], device: torch.device) -> tuple[Tensor, Tensor]:
        """The validation signals and their lasso codes, computed once for the run's fixed items
        (the baseline and every epoch score the same pairs)."""
        key = (id(items), str(device))
        if self._val is None or self._val[0] != key:
            x = torch.from_numpy(np.concatenate(items)).to(device)
            y = self.signals(x)
            self._val = (key, y, lasso_codes(self.op.to(device=device, dtype=x.dtype), y, self.alpha))
        return self._val[1], self._val[2]

    @torch.no_grad()
    def _score(self, model: nn.Module, items: Sequence[np.ndarray], device: torch.device) -> dict[str, float]:
        if not items:
            return {}
        y, codes = self._val_pairs(items, device)
        return {"code_snr": code_snr(model(y, self.op.to(device=device, dtype=y.dtype))[0], codes)}

    def baseline(self, items: Sequence[np.ndarray], device: torch.device) -> dict[str, float]:
        """ISTA with the network's step count: the untrained network."""
        return self._score(LISTA.from_dictionary(self.op, iters=self.steps, alpha=self.alpha), items, device)

    def validate(self, model: nn.Module, items: Sequence[np.ndarray], device: torch.device) -> dict[str, float]:
        was = model.training
        model.eval()
        try:
            return self._score(model, items, device)
        finally:
            model.train(was)
