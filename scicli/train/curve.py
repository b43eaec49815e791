"""Learning curves of training runs: validation PSNR against training steps, read from a run's
``log.jsonl``, and a projection of the steps still needed to reach a target.

The projection is a least-squares line of the validation score against ``log10(step)`` over the
second half of the recorded epochs (validation PSNR of these networks grows roughly linearly in
log-steps once past the first epochs), extrapolated to the target. It is an estimate, printed as
such: a plateau gives no projection, and the learning-rate schedule of a resumed run with more
epochs changes the slope.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scicli.core.errors import DataError
from scicli.train.loop import read_log


@dataclass
class Curve:
    """One run's validation history.

    Attributes
    ----------
    label : str
        The run directory's name.
    method : str
        The trained method.
    baseline : float or None
        The validation score of the untrained starting point (noisy input or linear start).
    steps, scores, seconds : numpy.ndarray
        Per epoch: the training step reached, the validation score (mean over the validation
        set) and the cumulative training seconds.
    """

    label: str
    method: str
    baseline: float | None
    steps: np.ndarray
    scores: np.ndarray
    seconds: np.ndarray

    @property
    def best(self) -> float:
        """The best validation score reached."""
        return float(self.scores.max())


def learning_curve(run: Path) -> Curve:
    """The validation curve of the run directory ``run`` (its ``log.jsonl``); epochs repeated by a
    resume keep their last record."""
    log = Path(run) / "log.jsonl"
    records = read_log(log)
    starts = [r for r in records if r.get("type") == "start"]
    epochs: dict[int, dict] = {}
    for r in records:
        if r.get("type") == "epoch" and r.get("val_mean") is not None:
            epochs[int(r["epoch"])] = r
    if not starts or not epochs:
        raise DataError(f"{log}: no validated epoch recorded (is it a scicli training run?)")
    baseline = starts[0].get("val_noisy") or {}
    order = sorted(epochs)
    seconds = np.cumsum([float(epochs[e].get("seconds", 0.0)) for e in order])
    return Curve(label=Path(run).name, method=str(starts[0].get("method", "?")),
                 baseline=float(np.mean(list(baseline.values()))) if baseline else None,
                 steps=np.array([int(epochs[e]["step"]) for e in order], dtype=np.int64),
                 scores=np.array([float(epochs[e]["val_mean"]) for e in order]), seconds=seconds)


def project_steps(curve: Curve, target: float) -> float | None:
    """Training steps at which the log-linear fit of the curve's second half reaches ``target``
    (the steps so far when it is already reached; None when the fit does not rise or there are
    fewer than two epochs).

    ``score ~ a + b log10(step)`` over the last ``ceil(n / 2)`` epochs (at least two), solved for
    ``score = target``.
    """
    if curve.best >= target:
        return float(curve.steps[int(np.argmax(curve.scores >= target))])
    n = len(curve.steps)
    if n < 2:
        return None
    tail = slice(n - max(2, math.ceil(n / 2)), n)
    b, a = np.polyfit(np.log10(curve.steps[tail].astype(float)), curve.scores[tail], 1)
    if b <= 1e-9:
        return None
    return float(10 ** ((target - a) / b))
