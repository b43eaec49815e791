"""Jacobian regularisation of the equilibrium maps (Bai, Koltun and Kolter, ICML 2021).

``-p jac_weight=lambda`` adds ``lambda ||eps^T J_f(z*)||^2 / n`` (eps ~ N(0, I), n = z*.numel())
to the training loss at the equilibrium z* of the forward solve: a Hutchinson estimate of
``lambda ||J_f(z*)||_F^2 / n``. With ``-p jac_norm=kappa`` the penalty is instead the hinge
``lambda mean max(0, ||J_f(z*)|| - kappa)^2`` on the spectral norm (power iteration). Off by
default (then nothing changes), never at inference, and refused for unrolled networks.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import resize
from torch import nn

from conftest import invoke_cli, write_stills
from scicli.core.errors import UsageError
from scicli.fixedpoint import jacobian_norm_and_radius, jacobian_norm_estimate, jacobian_penalty, secant_ratios
from scicli.methods.deq_rnn import DEQRnn
from scicli.methods.learned import LearnedMap
from scicli.methods.red_deq import ODERMap, REDMap
from scicli.physics import OPERATORS
from scicli.train.checkpoint import init_params, model_config, model_options
from scicli.train.sci import SCITask
from scicli.weights.store import load_checkpoint

CT = OPERATORS.get("ct").factory
CS = OPERATORS.get("cs-block").factory


class ConvMap(LearnedMap):
    """``f(z) = k * z + A^T y``: a linear map whose Jacobian is the 3 x 3 convolution k."""

    method = "conv-map-test"

    def __init__(self, centre: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        kernel = torch.zeros(1, 1, 3, 3, dtype=torch.float64)
        kernel[0, 0, 1, 1] = centre
        kernel[0, 0, 0, 1] = kernel[0, 0, 2, 1] = 0.1 * centre
        self.kernel = nn.Parameter(kernel)

    def f(self, z, op, y):
        return torch.nn.functional.conv2d(z, self.kernel, padding=1) + op.A_adjoint(y)


def cs_problem(n: int = 2, size: int = 33) -> tuple:
    op = CS.random((1, size, size), rng=np.random.default_rng(0), ratio=0.25).double()
    x = torch.rand((n, 1, size, size), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return op, op.A(x), x


def ct_problem(views: int = 10, size: int = 16) -> tuple:
    x = torch.from_numpy(resize(shepp_logan_phantom(), (size, size), anti_aliasing=True))[None, None].double()
    op = CT.random((1, size, size), rng=np.random.default_rng(0), views=views).double()
    return op, op.A(x), x


def test_the_estimate_is_unbiased_for_a_known_jacobian() -> None:
    """f(z) = W z + b on a batch of 2 samples of 5: J is block diagonal with W twice, so
    E ||eps^T J||^2 / n = 2 ||W||_F^2 / 10; the mean of 2000 draws lies within 5 standard
    errors (Var = 2 ||J J^T||_F^2 / n^2 for Gaussian eps)."""
    g = torch.Generator().manual_seed(0)
    W = torch.randn(5, 5, generator=g, dtype=torch.float64)
    b = torch.randn(5, dtype=torch.float64)
    z = torch.randn(2, 5, generator=g, dtype=torch.float64)
    draws = torch.stack([jacobian_penalty(lambda s: s @ W.T + b, z, generator=g) for _ in range(2000)])
    n = z.numel()
    expected = 2 * float((W ** 2).sum()) / n
    std = (2 * 2 * float(((W @ W.T) ** 2).sum())) ** 0.5 / n
    assert abs(float(draws.mean()) - expected) < 5 * std / 2000 ** 0.5
    assert draws.min() >= 0


def test_the_penalty_is_kept_after_a_training_solve_and_its_gradient_reaches_the_parameters() -> None:
    op, y, x = cs_problem()
    model = ConvMap(solve={"jac_weight": 2.0}).double().train()
    model(y, op)
    penalty = model.take_penalty()
    assert penalty is not None and penalty.requires_grad and model.take_penalty() is None  # taken once
    (grad,) = torch.autograd.grad(penalty, model.kernel)
    # J^T eps is the transposed convolution of eps: d/dk of ||J^T eps||^2 is nonzero at the taps
    assert float(grad.abs().sum()) > 0 and model.last_penalty == pytest.approx(float(penalty.detach()) / 2.0)


def test_gradients_of_the_penalty_reach_the_red_denoiser() -> None:
    op, y, x = ct_problem()
    model = REDMap(solve={"max_iter": 6, "backward_max_iter": 6, "jac_weight": 1.0}).double().train()
    model(y, op)
    model.take_penalty().backward()
    grads = [p.grad for p in model.denoiser.parameters() if p.ndim == 4]  # the filters (J does not see D's biases
    assert all(g is not None for g in grads) and all(float(g.abs().sum()) > 0 for g in grads)  # but by the ReLUs)


def test_off_by_default_the_loss_config_and_weights_are_unchanged() -> None:
    op, y, x = ct_problem()
    plain = REDMap(solve={"max_iter": 6, "backward_max_iter": 6}).double().train()
    zero = REDMap(solve={"max_iter": 6, "backward_max_iter": 6, "jac_weight": 0.0, "jac_every": 1}).double().train()
    zero.load_state_dict(plain.state_dict())
    assert zero.config == plain.config and "jac_weight" not in plain.config["solve"]
    assert list(zero.state_dict()) == list(plain.state_dict())
    before = torch.nn.functional.mse_loss(plain(y, op)[0], x)  # the loss as it was: MSE alone
    loss_plain, loss_zero = plain.training_loss(y, op, x), zero.training_loss(y, op, x)
    assert torch.equal(loss_plain, before) and torch.equal(loss_zero, before)
    loss_plain.backward()
    loss_zero.backward()
    for a, b in zip(plain.parameters(), zero.parameters()):
        assert (a.grad is None and b.grad is None) or torch.equal(a.grad, b.grad)


def test_never_at_inference_and_only_every_kth_solve() -> None:
    op, y, x = cs_problem()
    model = ConvMap(solve={"jac_weight": 1.0}).double()
    model.eval()(y, op)
    assert model.take_penalty() is None  # eval mode
    with torch.no_grad():
        model.train()(y, op)
    assert model.take_penalty() is None  # no autograd
    every = ConvMap(solve={"jac_weight": 1.0, "jac_every": 3}).double().train()
    kept = []
    for _ in range(7):
        every(y, op)
        kept.append(every.take_penalty() is not None)
    assert kept == [True, False, False, True, False, False, True]
    assert int(every.state_dict()["jac_solves"]) == 7  # saved with the weights: --resume keeps the cadence


def test_the_options_are_checked_and_refused_for_unrolled_networks() -> None:
    with pytest.raises(ValueError, match="jac_weight"):
        ConvMap(solve={"jac_weight": -1.0})
    with pytest.raises(UsageError, match="jac_weight"):
        model_config("oder", params={"jac_weight": "-1"})
    with pytest.raises(UsageError, match="jac_every"):
        model_config("oder", params={"jac_every": "0"})
    with pytest.raises(UsageError, match="applies to equilibrium maps"):
        model_config("ista-net-plus", params={"jac_weight": "1"})
    config = model_config("oder", params={"jac_weight": "0.5", "jac_every": "2"})
    assert config["solve"] == {"jac_weight": 0.5, "jac_every": 2}
    assert model_options("oder", config)[-4:] == ["-p", "jac_weight=0.5", "-p", "jac_every=2"]
    assert "jac_weight" not in " ".join(model_options("oder", model_config("oder", params={})))


def test_a_few_steps_with_the_penalty_make_an_expansive_map_contractive() -> None:
    """A convolution map with ||J|| = 1.19 (expansive): 15 Adam steps on the training loss
    with jac_weight=4 bring its spectral norm below 1 (0.87-0.91 over seeds 0-5 when written);
    the same steps without the penalty leave it expansive (1.29)."""
    op, y, x = cs_problem(n=1)
    start = float(jacobian_norm_and_radius(lambda s: ConvMap(centre=1.0).double().f(s, op, y), x, iters=30)[0])
    norms = {}
    for weight in (0.0, 4.0):
        torch.manual_seed(0)
        model = ConvMap(centre=1.0, solve={"jac_weight": weight, "max_iter": 10, "backward": "jfb"}).double().train()
        optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
        for _ in range(15):
            optimiser.zero_grad()
            model.training_loss(y, op, x).backward()
            optimiser.step()
        norms[weight] = float(jacobian_norm_and_radius(lambda s: model.f(s, op, y), x, iters=30)[0])
    assert start > 1.1
    assert norms[4.0] < 0.95 and norms[0.0] > 1.2


def test_train_oder_with_the_jacobian_penalty_from_the_command_line(tmp_path) -> None:
    data = write_stills(tmp_path / "data", count=3, size=40)
    run = tmp_path / "run"
    res = invoke_cli("train", "--method", "oder", "--operator", "ct", "--mask", "random", "-O", "views=10",
                     "-p", "w=5", "-p", "max_iter=3", "-p", "backward_max_iter=3", "-p", "jac_weight=1",
                     "-p", "jac_norm=0.5", "--data", data, "--patch", 24, "--epochs", 1, "--steps-per-epoch", 2,
                     "--batch-size", 1, "--log-every", 1, "--out", run, "--quiet")
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(run / "last.pt")
    assert ckpt["config"]["solve"]["jac_weight"] == 1.0 and "jac_weight=1" in str(ckpt["command"])
    assert ckpt["config"]["solve"]["jac_norm"] == 0.5 and "jac_norm=0.5" in str(ckpt["command"])
    assert np.isfinite(ckpt["loss"])
    steps = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in steps if r["type"] == "step"]
    assert len(steps) == 2 and all(r["jac_norm"] > 0 and r["jac_penalty"] >= 0 for r in steps)  # logged
    # a new run started from it (--init) has the penalty only where its own -p sets it
    assert not {"jac_weight", "jac_norm"} & set(init_params("oder", run / "last.pt"))
    assert init_params("oder", run / "last.pt")["w"] == "5"


def test_the_video_task_adds_the_penalty_of_a_deq_rnn() -> None:
    """The same option on a video map (one shared place): the SCI task's loss is its MSE plus
    jac_weight times the penalty at the equilibrium."""
    task = SCITask(frames=4, mask="random", meas_noise=0.0, seed=0)
    x = torch.rand((1, 4, 16, 16), generator=torch.Generator().manual_seed(0))
    off = DEQRnn(frames=4, channels=(4, 8), hidden=2, solve={"max_iter": 3}).train()
    on = DEQRnn(frames=4, channels=(4, 8), hidden=2, solve={"max_iter": 3, "jac_weight": 0.5}).train()
    on.load_state_dict(off.state_dict())
    loss_off, loss_on = task.loss(off, x, step=0), task.loss(on, x, step=0)
    assert on.last_penalty is not None and on.last_penalty > 0 and off.last_penalty is None
    assert float((loss_on - loss_off).detach()) == pytest.approx(0.5 * on.last_penalty, rel=1e-4)
    grads = torch.autograd.grad(loss_on - loss_off, list(on.net.parameters()), allow_unused=True)
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads)  # the cell's zero head, at least


def test_compile_and_the_jacobian_penalty_are_refused_together_in_one_line(tmp_path) -> None:
    """torch.compile has no double backward: the combination is refused before any step."""
    data = tmp_path / "data"
    data.mkdir()
    for k in range(2):
        np.save(data / f"img{k}.npy", np.random.default_rng(k).random((40, 40)).astype(np.float32))
    res = invoke_cli("train", "--method", "oder", "--operator", "ct", "--mask", "random", "-O", "views=10",
                     "-p", "jac_weight=1", "--data", data, "--patch", 24, "--epochs", 1, "--steps-per-epoch", 1,
                     "--out", tmp_path / "run", "--quiet", "--compile")
    assert res.exit_code == 2 and "--compile and -p jac_weight do not go together" in res.output


def test_the_spectral_estimate_reaches_the_norm_of_a_known_jacobian_and_trains_it() -> None:
    """f(z) = W z per sample: ||J v|| after the power steps is ||W||_2 (to 1e-6 after 60 steps
    from a random start); a warm start at the top singular vector needs no step; the estimate's
    gradient with respect to W is that of ||W||_2, ``u v^T`` (u, v the top singular pair)."""
    g = torch.Generator().manual_seed(0)
    W = torch.randn(6, 6, generator=g, dtype=torch.float64).requires_grad_()
    z = torch.randn(2, 6, generator=g, dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(W.detach())
    norms, v = jacobian_norm_estimate(lambda s: s @ W.T, z, iters=60)
    assert torch.allclose(norms, S[0].expand(2), rtol=1e-6) and v.shape == z.shape
    warm, _ = jacobian_norm_estimate(lambda s: s @ W.T, z, iters=0, start=Vh[0].expand(2, 6).clone())
    assert torch.allclose(warm, S[0].expand(2), rtol=1e-10)
    (grad,) = torch.autograd.grad(warm.sum(), W)
    assert torch.allclose(grad, 2 * torch.outer(U[:, 0], Vh[0]), atol=1e-8)


def test_the_hinge_is_zero_below_kappa_and_pulls_the_norm_down_above_it() -> None:
    """The convolution map (kernel c [0.1, 1, 0.1] vertically, ||J|| about 1.2 c): at c = 0.5 the
    norm (0.6) is below kappa = 0.9 and the penalty is exactly 0; at c = 1 it is above, the
    penalty is positive, its gradient reaches the kernel, and 15 Adam steps with it bring the
    norm below 0.95 (from 1.19), measured by an independent power iteration."""
    op, y, x = cs_problem(n=1)
    below = ConvMap(centre=0.5, solve={"jac_weight": 1.0, "jac_norm": 0.9, "jac_power": 8}).double().train()
    below(y, op)
    assert float(below.take_penalty().detach()) == 0.0 and 0.5 < below.last_jac_norm < 0.9
    torch.manual_seed(0)
    model = ConvMap(centre=1.0, solve={"jac_weight": 4.0, "jac_norm": 0.9, "max_iter": 10, "backward": "jfb"})
    model = model.double().train()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    first = None
    for _ in range(15):
        optimiser.zero_grad()
        loss = model.training_loss(y, op, x)
        first = model.last_jac_norm if first is None else first
        loss.backward()
        optimiser.step()
    assert first > 1.1
    assert float(jacobian_norm_and_radius(lambda s: model.f(s, op, y), x, iters=30)[0]) < 0.95


def test_oder_penalises_the_full_batch_map_not_one_draw_of_views() -> None:
    """ODER's mean map is RED (DEQ)'s T with all b views (the map whose unbiased estimate each
    evaluation draws), and it leaves w as it was."""
    op, y, x = ct_problem(views=10)
    oder = ODERMap(w=3, solve={"max_iter": 4}).double()
    red = REDMap(solve={"max_iter": 4}).double()
    red.denoiser.load_state_dict(oder.denoiser.state_dict())
    z = oder.start(op, y)
    assert torch.equal(oder.mean_map(z, op, y), red.f(z, op, y)) and oder.w == 3
    assert not torch.equal(oder.f(z, op, y), red.f(z, op, y))  # one draw of 3 views is not T


def test_oders_lipschitz_report_is_of_the_full_batch_map_at_its_iterates() -> None:
    """The report's secant ratios of a traced ODER solve are those of RED (DEQ)'s T (same D)
    evaluated at the solve's iterates, not of the recorded draws."""
    op, y, x = ct_problem(views=10)
    oder = ODERMap(w=3, solve={"max_iter": 5, "tol": 0.0, "patience": 0}).double().eval()
    red = REDMap(solve={"max_iter": 5}).double().eval()
    red.denoiser.load_state_dict(oder.denoiser.state_dict())
    trace: dict = {}
    with torch.no_grad():
        oder.reconstruct_with_start(y, op, trace=trace)
    report = oder.lipschitz(y, op, trace, iters=2)
    expected = secant_ratios(lambda s: red.f(s, op, y), trace["iterates"], trace["z"])
    assert report["lipschitz_iterates_max"] == pytest.approx(float(expected.nan_to_num(0).max()), rel=1e-9)


def test_the_spectral_options_are_checked_and_stored_only_when_set() -> None:
    with pytest.raises(ValueError, match="jac_norm"):
        ConvMap(solve={"jac_norm": -0.5})
    with pytest.raises(UsageError, match="jac_power"):
        model_config("oder", params={"jac_power": "0"})
    config = model_config("oder", params={"jac_weight": "1", "jac_norm": "0.97"})
    assert config["solve"] == {"jac_weight": 1.0, "jac_norm": 0.97}
