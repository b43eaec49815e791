"""The learned-method framework on any operator: a map's weights know the operator they fit, and
the operator training task draws file or random instances, noise, and scores the linear start.

The map here is about the smallest learned reconstruction there is, one data step from the
operator's start with a learned gain, ``x = alpha x0 + A^T (y - A x0)`` (alpha starts at 1.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from torch import nn

from scicli.core.errors import UsageError
from scicli.methods.learned import LearnedMap
from scicli.methods.runners import unroll
from scicli.physics import OPERATORS
from scicli.train.operators import OperatorTask

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PHI10 = SHARED / "cs" / "sampling_matrix" / "phi_0_10_1089.mat"


class OneStep(LearnedMap):
    method = "one-step-test"
    unrolled = True

    def __init__(self, **facts) -> None:
        super().__init__(solve={"iters": 1}, **facts)
        self.alpha = nn.Parameter(torch.tensor(1.5))

    def f(self, z, op, y):
        return self.alpha * z + op.A_adjoint(y - op.A(z))

    def run(self, f, z0, settings):
        return unroll(f, z0, 1)


def images(n: int = 4, size: int = 33, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.avg_pool2d(torch.rand((n, 1, size + 4, size + 4), generator=g), 5, 1)


def test_weights_refuse_another_operator_or_sampling_ratio_in_one_line() -> None:
    rng = np.random.default_rng(0)
    cs10 = OPERATORS.get("cs-block").factory.random((1, 33, 33), rng=rng, ratio=0.1)
    cs30 = OPERATORS.get("cs-block").factory.random((1, 33, 33), rng=rng, ratio=0.3)
    mri = OPERATORS.get("mri").factory.random((1, 32, 32), rng=rng, ratio=0.2)
    model = OneStep(operator="cs-block", signature=cs10.signature())
    x = images(1)
    model(cs10.A(x), cs10)  # fits
    with pytest.raises(UsageError, match="m 109; this one has block 33, m 327"):
        model(cs30.A(x), cs30)
    with pytest.raises(UsageError, match="weights are for operator 'cs-block'; they do not apply to 'mri'"):
        model(mri.A(images(1, 32)), mri)


def test_random_instances_depend_on_seed_and_step_only() -> None:
    task = OperatorTask("cs-block", {"ratio": "0.25"}, "random", 0.0, seed=3, patch=33)
    a, b = task.instance((1, 33, 33), 5), task.instance((1, 33, 33), 5)
    assert torch.equal(a.phi, b.phi) and not torch.equal(a.phi, task.instance((1, 33, 33), 6).phi)
    assert task.model_facts() == {"operator": "cs-block", "signature": {"block": 33, "m": 272}}


@pytest.mark.skipif(not PHI10.is_file(), reason="needs ../shared/data/cs")
def test_a_file_instance_is_the_files_phi_for_every_patch_size(tmp_path: Path) -> None:
    task = OperatorTask("cs-block", {}, str(PHI10), 0.0, seed=0, patch=33)
    phi = scipy.io.loadmat(PHI10)["phi"]
    op = task.instance((1, 66, 33), 0)
    assert op.size == (66, 33) and np.allclose(op.phi.numpy(), phi, atol=1e-6)
    assert task.model_facts()["signature"] == {"block": 33, "m": 109}


def test_a_file_without_the_operators_arrays_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.npz"
    np.savez(bad, a=np.ones((3, 3)), b=np.ones((2, 2)))
    with pytest.raises(UsageError, match="no phi array"):
        OperatorTask("cs-block", {}, str(bad), 0.0, seed=0, patch=33)


@pytest.mark.parametrize("operator,options,size", [("cs-block", {"ratio": "0.3"}, 33),
                                                   ("mri", {"ratio": "0.3", "kind": "radial"}, 32)])
def test_the_loss_trains_the_map_and_validation_scores_the_linear_start(operator, options, size) -> None:
    """Gradient reaches the map's parameter; the baseline is the operator's start; noise is drawn
    from (seed, step) and is complex for complex measurements."""
    task = OperatorTask(operator, options, "random", meas_noise=5 / 255, seed=0, patch=size)
    model = OneStep(**task.model_facts())
    x = images(2, size)
    loss = task.loss(model, x, step=0)
    loss.backward()
    assert model.alpha.grad is not None and torch.isfinite(model.alpha.grad)
    op, y = task.problem(x, 0)
    op2, y2 = task.problem(x, 0)
    assert torch.equal(y, y2) and not torch.equal(y, op.A(x))  # the same noise, and some
    items = [images(1, size, seed=s)[0].numpy() for s in range(2)]
    base = task.baseline(items, torch.device("cpu"))["psnr"]
    assert task.validate(model, items, torch.device("cpu"))["psnr"] != base
    assert np.isfinite(base)
