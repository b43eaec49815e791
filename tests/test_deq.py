"""The fixed-point engine and the DEQ layer: solvers, divergence, gradients, constant memory."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from scicli.fixedpoint import FIXED_POINT, Backward, attach_gradient, make_options, make_solver, solve_fixed_point
from scicli.core.errors import UsageError
from scicli.methods.deq_gap import DEQGap
from scicli.methods.deq_rnn import DEQRnn
from scicli.methods.unrolled_gap import UnrolledGap
from scicli.physics import VideoSCI
from scicli.weights.store import FORMAT, load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

D = torch.float64


def tanh_map(n: int = 6, batch: int = 2, scale: float = 0.6, seed: int = 0):
    """``f(z) = tanh(W z + b + x)``: a contraction when ||W|| < 1 (here about ``scale``)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n, n, generator=g, dtype=D)
    W = (scale * W / torch.linalg.matrix_norm(W, ord=2)).requires_grad_()
    b = torch.randn(n, generator=g, dtype=D).requires_grad_()
    x = torch.randn(batch, n, generator=g, dtype=D)
    return W, b, x


def exact(tol: float = 1e-13) -> object:
    return make_solver("anderson", tol=tol, max_iter=300)


# ----------------------------------------------------------------------------- forward solvers
def test_registry_lists_the_solvers():
    assert {"fixed-point", "anderson", "broyden"} <= set(FIXED_POINT.names())


@pytest.mark.parametrize("name", ["fixed-point", "anderson", "broyden"])
def test_solvers_find_the_fixed_point(name):
    W, b, x = tanh_map()
    f = lambda z: torch.tanh(z @ W.detach().T + b.detach() + x)  # noqa: E731
    z, info = make_solver(name, tol=1e-10, max_iter=500)(f, torch.zeros_like(x))
    assert info.converged and not info.diverged
    assert torch.allclose(f(z), z, atol=1e-9)
    assert info.steps == len(info.residuals) and info.residuals[-1] <= 1e-10


def test_anderson_needs_fewer_evaluations_than_plain_iteration():
    g = torch.Generator().manual_seed(3)
    Q, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=D))
    W = Q @ torch.diag(torch.linspace(0.0, 0.95, 40, dtype=D)) @ Q.T  # slow linear contraction
    x = torch.randn(2, 40, generator=g, dtype=D)
    f = lambda z: z @ W.T + x  # noqa: E731
    _, plain = make_solver("fixed-point", tol=1e-8, max_iter=1000)(f, torch.zeros_like(x))
    _, accel = make_solver("anderson", tol=1e-8, max_iter=1000)(f, torch.zeros_like(x))
    _, no_history = make_solver("anderson", tol=1e-8, max_iter=1000, m=1)(f, torch.zeros_like(x))
    assert plain.converged and accel.converged
    assert accel.steps < plain.steps / 2
    assert no_history.steps == plain.steps  # m = 1 is no acceleration: the test sees the difference


def test_broyden_needs_fewer_evaluations_than_plain_iteration_and_more_memory_helps():
    g = torch.Generator().manual_seed(3)
    Q, _ = torch.linalg.qr(torch.randn(40, 40, generator=g, dtype=D))
    W = Q @ torch.diag(torch.linspace(0.0, 0.95, 40, dtype=D)) @ Q.T
    x = torch.randn(2, 40, generator=g, dtype=D)
    f = lambda z: z @ W.T + x  # noqa: E731
    _, plain = make_solver("fixed-point", tol=1e-8, max_iter=1000)(f, torch.zeros_like(x))
    _, short = make_solver("broyden", tol=1e-8, max_iter=1000, m=2)(f, torch.zeros_like(x))
    _, long = make_solver("broyden", tol=1e-8, max_iter=1000, m=40)(f, torch.zeros_like(x))
    assert short.converged and long.converged and not long.diverged
    assert long.steps < short.steps < plain.steps / 2
    assert long.steps <= 2 * 40 + 2  # a linear map: Broyden with full memory is exact within 2n steps


def test_divergence_stops_with_the_best_iterate():
    f = lambda z: 2.0 * z + 1.0  # noqa: E731 - expanding: the residual grows for ever
    z0 = torch.zeros(1, 3, dtype=D)
    z, info = make_solver("fixed-point", tol=1e-6, max_iter=100, patience=3)(f, z0)
    assert info.diverged and not info.converged and info.steps < 100
    assert info.best_step == 1 and torch.equal(z, f(z0))


def test_patience_zero_runs_the_whole_budget_on_a_growing_map():
    f = lambda z: 1.01 * z + 1.0  # noqa: E731 - mildly expanding, as a stochastic or barely trained map may be
    z0 = torch.zeros(1, 3, dtype=D)
    z, info = make_solver("nesterov", tol=0.0, max_iter=12, patience=0)(f, z0)
    assert info.steps == 12 and not info.diverged and not info.converged
    with pytest.raises(UsageError, match="patience must be >= 0"):
        make_solver("nesterov", patience=-1)


def test_nesterov_momentum_is_per_sample_so_an_image_does_not_depend_on_its_batch():
    """Two samples of one batch: a rotation-like map whose residual oscillates (its momentum
    restarts) and a smooth contraction (never restarts). Solved together, each equals its
    solve alone (before, one batch-wide ||f(s) - s|| restarted both or neither)."""
    R = torch.tensor([[0.6, -0.7], [0.7, 0.6]], dtype=D)  # |eigenvalues| 0.92, rotating
    c = torch.tensor([1.0, -2.0], dtype=D)

    def f(z):  # sample 0: the rotation; sample 1: z -> 0.95 z + c
        return torch.stack([z[0] @ R.T + c, 0.95 * z[1] + c])

    z0 = torch.zeros(2, 2, dtype=D)
    solve = make_solver("nesterov", tol=0.0, max_iter=15, patience=0)
    together, _ = solve(f, z0)
    alone = [solve(lambda z: z @ R.T + c, z0[:1])[0], solve(lambda z: 0.95 * z + c, z0[1:])[0]]
    assert torch.allclose(together, torch.cat(alone), rtol=1e-12, atol=1e-12)
    # the test can fail: one batch-wide momentum (restarted on the norm over both samples) differs
    z_prev, s_k, q, last = z0, z0, 1.0, float("inf")
    for _ in range(14):
        fz = f(s_k)
        size = float(torch.linalg.vector_norm(fz - s_k))
        q = 1.0 if size > last else q
        last, q_next = size, (1 + (1 + 4 * q * q) ** 0.5) / 2
        s_k, z_prev, q = fz + (q - 1) / q_next * (fz - z_prev), fz, q_next
    assert not torch.allclose(f(s_k), together, atol=1e-6)


def test_an_unconverged_solve_returns_its_last_evaluation():
    f = lambda z: 0.99 * z + 1.0  # noqa: E731 - slow contraction: 3 steps are far from the fixed point
    z0 = torch.zeros(1, 3, dtype=D)
    z, info = make_solver("fixed-point", tol=1e-12, max_iter=3)(f, z0)
    assert not info.converged and not info.diverged and info.steps == 3
    assert torch.equal(z, f(f(f(z0))))
    assert info.residual == info.residuals[-1]  # the residual of the returned iterate


@pytest.mark.parametrize("name", ["fixed-point", "anderson", "broyden"])
def test_every_solver_stops_at_max_iter(name):
    W, b, x = tanh_map(scale=0.99)
    f = lambda z: torch.tanh(z @ W.detach().T + b.detach() + x) + 0.01 * torch.sin(50 * z)  # noqa: E731
    _, info = make_solver(name, tol=0.0, max_iter=4)(f, torch.zeros_like(x))  # tol 0: never met
    assert info.steps == 4 and len(info.residuals) == 4 and not info.converged


def test_non_finite_values_stop_the_solve():
    calls = []

    def f(z):
        calls.append(1)
        return z * float("nan") if len(calls) > 2 else 0.5 * z + 1

    z, info = make_solver("anderson", tol=1e-12, max_iter=50)(f, torch.zeros(1, 2, dtype=D))
    assert "non-finite" in info.diverged and torch.isfinite(z).all()


def test_a_restarted_anderson_forgets_the_pairs_before_a_sample_whose_residual_grew():
    """restart=c: the sample whose ||f(z) - z|| grew more than c times forgets the older pairs
    (its next iterate is the plain step), the other sample of the batch keeps its mixture."""
    target = torch.tensor([[1.0, -2.0, 0.5], [3.0, 1.0, -1.0]], dtype=D)
    inputs: list[torch.Tensor] = []

    def f(z):  # sample 0 starts at a near-fixed point of the first evaluation only; sample 1 does not
        inputs.append(z.clone())
        out = 0.5 * z + target
        if len(inputs) == 1:
            out[0] = z[0] + 1e-3
        return out

    z0 = torch.zeros(2, 3, dtype=D)
    make_solver("anderson", tol=0.0, max_iter=3, m=3, patience=0, restart=2.0)(f, z0)
    restarted = inputs
    inputs = []
    make_solver("anderson", tol=0.0, max_iter=3, m=3, patience=0)(f, z0)
    plain_anderson = inputs
    second_image = 0.5 * restarted[1] + target
    assert torch.allclose(restarted[2][0], second_image[0])  # grew: the plain step f(z_1)
    assert not torch.allclose(plain_anderson[2][0], second_image[0])  # without restart: pulled back
    assert torch.equal(restarted[2][1], plain_anderson[2][1])  # did not grow: the same mixture


def test_a_restart_that_never_triggers_changes_nothing():
    W, b, x = tanh_map()
    f = lambda z: torch.tanh(z @ W.detach().T + b.detach() + x)  # noqa: E731
    z_never, _ = make_solver("anderson", tol=0.0, max_iter=12, patience=0, restart=1e9)(f, torch.zeros_like(x))
    z_off, _ = make_solver("anderson", tol=0.0, max_iter=12, patience=0)(f, torch.zeros_like(x))
    assert torch.equal(z_never, z_off)


@pytest.mark.parametrize("name, options, text", [
    ("anderson", {"depth": 3}, "unknown option(s) depth"),
    ("fixed-point", {"m": 5}, "unknown option(s) m"),
    ("anderson", {"m": 0}, "m (history size)"),
    ("anderson", {"tol": -1}, "tol"),
    ("anderson", {"restart": 0.5}, "restart (a growth factor)"),
    ("fixed-point", {"beta": 0}, "beta"),
    ("broyden-x", {}, "unknown fixed-point solver"),
    ("broyden", {"lam": 1e-4}, "unknown option(s) lam"),
    ("broyden", {"m": 0}, "m (memory)"),
])
def test_bad_solver_options_are_errors(name, options, text):
    with pytest.raises(UsageError, match=text.replace("(", r"\(").replace(")", r"\)")):
        make_options(name, **options)


@pytest.mark.parametrize("text, kind, terms", [("implicit", "implicit", 0), ("jfb", "jfb", 0),
                                               ("neumann:7", "neumann", 7), ("neumann", "neumann", 5),
                                               ("unroll", "unroll", 0)])
def test_backward_modes_parse(text, kind, terms):
    mode = Backward.parse(text)
    assert (mode.kind, mode.terms) == (kind, terms)


@pytest.mark.parametrize("text", ["exact", "neumann:0", "neumann:x"])
def test_bad_backward_modes_are_errors(text):
    with pytest.raises(UsageError):
        Backward.parse(text)


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("name", ["anderson", "broyden", "fixed-point"])
def test_implicit_gradient_equals_the_gradient_of_a_long_unrolled_run(name):
    W, b, x = tanh_map()
    f = lambda z: torch.tanh(z @ W.T + b + x)  # noqa: E731
    solver = make_solver(name, tol=1e-13, max_iter=300)
    z, _ = solve_fixed_point(f, torch.zeros_like(x), solver, "implicit", solver)
    gW, gb = torch.autograd.grad((z ** 2).sum(), (W, b))
    zu = torch.zeros_like(x)
    for _ in range(400):
        zu = f(zu)
    uW, ub = torch.autograd.grad((zu ** 2).sum(), (W, b))
    assert (gW - uW).norm() / uW.norm() < 1e-4
    assert (gb - ub).norm() / ub.norm() < 1e-4


def test_neumann_series_approaches_the_implicit_gradient_and_jfb_differs():
    W, b, x = tanh_map(scale=0.5)
    f = lambda z: torch.tanh(z @ W.T + b + x)  # noqa: E731

    def grad(mode):
        z, _ = solve_fixed_point(f, torch.zeros_like(x), exact(), mode, exact())
        return torch.autograd.grad((z ** 2).sum(), W)[0]

    ref = grad("implicit")
    errs = [float((grad(f"neumann:{k}") - ref).norm() / ref.norm()) for k in (1, 4, 30)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 1e-6
    assert float((grad("jfb") - ref).norm() / ref.norm()) > 1e-3


def test_gradcheck_on_the_backward_hook():
    W, b, x = tanh_map(n=4)

    def layer(W, b):
        z, _ = solve_fixed_point(lambda z: torch.tanh(z @ W.T + b + x), torch.zeros_like(x), exact(),
                                 "implicit", exact())
        return z

    assert torch.autograd.gradcheck(layer, (W, b), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["anderson", "fixed-point"])
def test_the_unroll_backward_is_the_gradient_of_the_solve_inference_runs(name):
    """backward=unroll differentiates the recorded solve (Anderson's mixing included): the
    output is the inference output of the same settings, and its gradient passes gradcheck."""
    W, b, x = tanh_map(n=4)
    solver = make_solver(name, tol=0.0, max_iter=7, m=3, patience=0, restart=1.0) if name == "anderson" else \
        make_solver(name, tol=0.0, max_iter=7, patience=0)

    def layer(W, b):
        z, info = solve_fixed_point(lambda z: torch.tanh(z @ W.T + b + x), torch.zeros_like(x), solver, "unroll")
        assert info.steps == 7
        return z

    with torch.no_grad():
        assert torch.equal(layer(W, b), solver(lambda z: torch.tanh(z @ W.T + b + x), torch.zeros_like(x))[0])
    assert torch.autograd.gradcheck(layer, (W, b), eps=1e-6, atol=1e-6)
    if name == "fixed-point":  # plain iteration recorded = the unrolled network of 7 steps
        zu = torch.zeros_like(x)
        for _ in range(7):
            zu = torch.tanh(zu @ W.T + b + x)
        assert torch.allclose(torch.autograd.grad(layer(W, b).sum(), W)[0], torch.autograd.grad(zu.sum(), W)[0])


def test_no_gradient_mode_is_one_plain_step():
    W, b, x = tanh_map()
    with torch.no_grad():
        z = attach_gradient(lambda z: torch.tanh(z @ W.T + b + x), torch.zeros_like(x))
    assert not z.requires_grad


# ----------------------------------------------------------------------------- SCI models
def _sci(N: int = 2, B: int = 4, P: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mask = (torch.rand(N, B, P, P, generator=g) < 0.5).float()
    x = torch.rand(N, B, P, P, generator=g)
    op = VideoSCI(mask)
    return op, op.A(x), x


def _perturbed(model, scale: float = 0.01, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("cls,options", [(DEQGap, {"prior": "none", "start": "mean"}), (DEQRnn, {"start": "mean", "tv_weight": 0}),
                                         (UnrolledGap, {"prior": "none", "start": "mean"})])
def test_an_untrained_map_without_prior_is_the_projection_and_returns_a_consistent_start(cls, options):
    op, y, _ = _sci()
    model = cls(frames=4, channels=(8, 16), spectral_norm=False, **options)
    x, info = model(y, op)
    assert x.shape == (2, 4, 16, 16)
    assert torch.allclose(op.A(x), y, atol=1e-5)  # y/R start is consistent; the zero head keeps it
    assert info.steps >= 1


def test_an_untrained_deq_gap_is_pnp_gap_with_ffdnet_at_its_sigma_from_the_gap_tv_start():
    from scicli.methods.gap import GapTV, PnPGap

    op, y, _ = _sci(P=32)
    model = DEQGap(frames=4, channels=(8, 16), sigma=12 / 255)
    with torch.no_grad():  # (with autograd on, one more recorded application carries the gradient)
        x, info = model(y, op, solve={"solver": "fixed-point", "max_iter": 5, "tol": 0})
    x0 = GapTV().solve(op, y).x
    ref = PnPGap(denoiser="ffdnet", sigma=[12 / 255], iters=[5]).solve(op, y, x0=x0).x
    assert info.steps == 5
    assert torch.allclose(x, ref, atol=1e-4)


def test_a_zero_budget_trains_the_first_evaluation_from_the_start():
    op, y, x = _sci(P=16)
    model = _perturbed(DEQGap(frames=4, channels=(8, 16)))
    out, info = model(y, op, solve={"max_iter": 0})
    with torch.no_grad():
        first = model.f(model.start(op, y), op, y)[:, :4]
    assert info.steps == 1 and torch.allclose(out, first, atol=1e-6)
    ((out - x) ** 2).mean().backward()
    assert model.log_sigma.grad is not None and model.net.body.head.weight.grad.abs().sum() > 0


def test_a_learned_start_begins_as_gap_tv_and_learns_from_its_own_loss():
    from scicli.methods.gap import GapTV

    op, y, x = _sci(P=16)
    model = DEQGap(frames=4, channels=(8, 16), learned_start=True)
    with torch.no_grad():
        assert torch.allclose(model.start(op, y)[:, :4], GapTV().solve(op, y).x, atol=1e-6)  # zero head
    _perturbed(model)
    out, _, start = model.reconstruct_with_start(y, op, solve={"max_iter": 2})
    ((start - x) ** 2).mean().backward()
    assert model.refine.body.head.weight.grad.abs().sum() > 0
    assert model.net.body.head.weight.grad is None  # the start's loss reaches the start only


def test_a_centred_correction_ignores_the_input_brightness_and_old_configs_stay_uncentred():
    from scicli.nets.unet import JointUNet
    from scicli.weights.store import build_model

    net = _perturbed(JointUNet(4, 4, (8, 16), False, centre=True), scale=0.1)
    h = torch.rand(2, 4, 16, 16)
    assert torch.allclose(net(h + 0.3), net(h), atol=1e-5)
    assert not torch.allclose(net(h), torch.zeros_like(net(h)))
    model = build_model("deq-gap", {"frames": 4, "channels": [8, 16], "spectral_norm": False, "solve": {}})
    assert model.config["centre"] is False and model.net.centre is False  # weights trained before centring


def test_the_ffdnet_prior_is_package_data_not_part_of_the_weights():
    model = DEQGap(frames=4, channels=(8, 16))
    state = model.state_dict()
    assert state and not any(k.startswith("prior.") for k in state)
    assert "log_sigma" in state
    assert not any(p.requires_grad for p in model.prior.parameters())
    other = DEQGap(frames=4, channels=(8, 16))
    other.load_state_dict(state)  # strict: the prior is filled in from the package
    model.train()
    assert not model.prior.training  # frozen statistics in training mode too


@pytest.mark.filterwarnings("ignore:implicit backward did not converge")
@pytest.mark.parametrize("cls", [DEQGap, DEQRnn])
def test_models_backpropagate_to_every_parameter(cls):
    op, y, x = _sci()
    model = _perturbed(cls(frames=4, channels=(8, 16), spectral_norm=True, solve={"max_iter": 5}))
    out, _ = model(y, op)
    ((out - x) ** 2).mean().backward()
    missing = [n for n, p in model.named_parameters()
               if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing


def test_deq_rnn_sees_the_mask_and_keeps_a_hidden_state():
    op, y, _ = _sci()
    model = _perturbed(DEQRnn(frames=4, channels=(8, 16), spectral_norm=False, hidden=3))
    z = model.start(op, y)
    assert z.shape[1] == 4 + 1 + 3  # video, accumulated residual, hidden state
    fz = model.f(z, op, y)
    other = VideoSCI(1 - op.mask)
    assert not torch.allclose(model.f(z, other, y)[:, 5:], fz[:, 5:])
    forgetful = fz.clone()
    forgetful[:, 5:] = 0
    assert not torch.allclose(model.f(fz, op, y)[:, :4], model.f(forgetful, op, y)[:, :4])  # h steers x


def test_frames_must_match_the_weights():
    op, y, _ = _sci(B=4)
    with pytest.raises(UsageError, match="B=6"):
        DEQGap(frames=6, channels=(8,))(y, op)


def test_fully_convolutional_at_odd_sizes():
    g = torch.Generator().manual_seed(1)
    mask = (torch.rand(1, 4, 21, 13, generator=g) < 0.5).float()
    op = VideoSCI(mask)
    y = op.A(torch.rand(1, 4, 21, 13, generator=g))
    x, _ = _perturbed(DEQGap(frames=4, channels=(8, 16)))(y, op)
    assert x.shape == (1, 4, 21, 13) and torch.isfinite(x).all()


def _step_graph_size(model, op, y, x) -> int:
    """Number of saved-tensor bytes autograd keeps for one training step."""
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = model(y, op)
        loss = ((out - x) ** 2).mean()
    loss.backward()
    return total


def test_deq_training_memory_does_not_grow_with_iterations_but_unrolled_does():
    op, y, x = _sci(N=1, B=4, P=16)
    deq = [_step_graph_size(_perturbed(DEQGap(frames=4, channels=(8, 16), spectral_norm=False,
                                              solve={"max_iter": k, "tol": 0})), op, y, x) for k in (5, 20)]
    unrolled = [_step_graph_size(_perturbed(UnrolledGap(frames=4, channels=(8, 16), spectral_norm=False,
                                                       solve={"iters": k})), op, y, x) for k in (5, 20)]
    assert deq[0] == deq[1]
    assert unrolled[1] > 3 * unrolled[0]


def test_implicit_backward_warns_when_it_cannot_converge():
    x = torch.ones(1, 3, dtype=D)
    w = torch.tensor(3.0, dtype=D, requires_grad=True)
    f = lambda z: w * z + x  # noqa: E731 - J = 3: the backward equation a = 3 a + g has no convergent iteration
    z = attach_gradient(f, torch.zeros(1, 3, dtype=D), "implicit",
                        make_solver("fixed-point", tol=1e-12, max_iter=30, patience=3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        z.sum().backward()
    assert any("did not converge" in str(c.message) for c in caught)
    assert math.isfinite(float(w.grad))


def test_a_version_1_checkpoint_quoting_sigma_on_0_255_loads_with_sigma_on_0_1(tmp_path) -> None:
    """Format 1 stored the prior's sigma as typed (12); format 2 holds levels on [0, 1]."""
    model = DEQGap(frames=4, channels=(8,), sigma=12 / 255)
    old = {"format": FORMAT, "format_version": 1, "method": "deq-gap", "config": {**model.config, "sigma": 12.0},
           "model": model.state_dict(), "args": {"model": {**model.config, "sigma": 12.0}}}
    torch.save(old, tmp_path / "old.pt")
    loaded = load_model("deq-gap", tmp_path / "old.pt")
    assert loaded.config["sigma"] == pytest.approx(12 / 255)
    assert float(loaded.sigma) == pytest.approx(12 / 255)


def test_the_gap_steps_rate_and_step_are_learned_and_weights_without_them_keep_both_at_one():
    """e' = e + alpha r, v = x + s A^T((r + e') / R): new trainings learn alpha and s (from -p
    rate= step=); a config written before they existed builds the reference step (both 1)."""
    op, y, x = _sci()
    old = DEQGap(frames=4, channels=(8, 16), sigma_mode="estimate", correction="none")  # an old config
    assert old.log_rate is None and old.log_step is None and "rate" not in old.config
    assert (DEQGap.Options().rate, DEQGap.Options().step) == (1.0, 1.0)  # what scicli train passes
    at_one = DEQGap(frames=4, channels=(8, 16), sigma_mode="estimate", correction="none", rate=1.0, step=1.0)
    z = old.start(op, y)
    with torch.no_grad():
        assert torch.allclose(old.f(z, op, y), at_one.f(z, op, y), atol=1e-6)
    fast = DEQGap(frames=4, channels=(8, 16), sigma_mode="estimate", correction="none", rate=2.0, step=1.5)
    assert fast.config["rate"] == 2.0 and fast.config["step"] == 1.5
    z = z + 0.05 * torch.randn(z.shape, generator=torch.Generator().manual_seed(1))  # A x != y
    with torch.no_grad():
        xk, v, e = fast.gap_step(z, op, y)
        r = y - op.A(xk)
        assert torch.allclose(e, z[:, 4] + 2.0 * r, atol=1e-5)
        assert torch.allclose(v, xk + 1.5 * op.A_adjoint(op.gram_inverse(r + e)), atol=1e-5)
    out, _ = fast(y, op, solve={"max_iter": 3, "tol": 0, "backward": "jfb"})
    ((out - x) ** 2).mean().backward()
    assert fast.log_rate.grad is not None and fast.log_step.grad is not None
    assert float(fast.log_rate.grad) != 0 and float(fast.log_step.grad) != 0
    with pytest.raises(ValueError, match="rate and step"):
        DEQGap(frames=4, channels=(8, 16), rate=0.0)


def test_a_learned_schedule_changes_only_the_first_evaluations_and_trains_through_the_recorded_solve():
    """schedule=K: multipliers of sigma and alpha for evaluations 0..K-1 (1 at the start, so the
    untrained schedule is the stationary map); from evaluation K on the map is the stationary
    one (the fixed point is unchanged). backward=unroll reaches them, the implicit gradient
    (one more evaluation past the solve) does not; configs without it have none."""
    op, y, x = _sci()
    plain = DEQGap(frames=4, channels=(8, 16), sigma_mode="estimate", correction="none", rate=2.0, step=1.0)
    assert plain.log_schedule is None and "schedule" not in plain.config and plain.scheduled() == 0
    model = DEQGap(frames=4, channels=(8, 16), sigma_mode="estimate", correction="none", rate=2.0, step=1.0,
                   schedule=2)
    model.load_state_dict(plain.state_dict(), strict=False)
    assert model.config["schedule"] == 2 and model.scheduled() == 2
    solve = {"max_iter": 4, "tol": 0, "patience": 0}
    with torch.no_grad():  # zero log-multipliers: the same solve as without a schedule
        assert torch.equal(model(y, op, solve=solve)[0], plain(y, op, solve=solve)[0])
        model.log_schedule.copy_(torch.tensor([[0.7, -0.3], [0.4, 0.2]]))
        trace: dict = {}
        model.reconstruct_with_start(y, op, solve, None, trace)
        for k, (zk, fk) in enumerate(zip(trace["iterates"], trace["images"])):
            model.evaluation = model.STATIONARY
            same = torch.allclose(model.f(zk, op, y), fk, atol=1e-6)
            assert same == (k >= 2), k
    out, _ = model(y, op, solve={**solve, "backward": "unroll"})
    ((out - x) ** 2).mean().backward()
    grad = model.log_schedule.grad  # (a sigma held at FFDNet's cap of 75/255 has none)
    assert grad is not None and bool(grad[:, 0].any()) and bool(grad[:, 1].all())
    model.zero_grad(set_to_none=True)
    out, _ = model(y, op, solve={**solve, "backward": "implicit"})
    ((out - x) ** 2).mean().backward()
    assert model.log_schedule.grad is None or not bool(model.log_schedule.grad.any())
