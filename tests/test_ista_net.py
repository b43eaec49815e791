"""ista-net, ista-net-plus and fista-net: unrolled ISTA / FISTA with learned transforms on any
operator with real images.

Tiny instances (33 x 33 block CS at 10 %, 16 x 16 MRI, 4-frame video SCI, 5-band CASSI), narrow
networks (width 4, 2-3 phases) where the architecture is not the subject; the parameter counts
are checked at the papers' sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import scicli.methods  # noqa: F401  (registers the methods)
from conftest import invoke_cli, ok, write_stills
from scicli.core.errors import UsageError
from scicli.api import weights_used
from scicli.methods import METHODS
from scicli.methods.fista_net import FISTANet
from scicli.methods.ista_net import ISTANet, ISTANetPlus
from scicli.nets.ista import ISTAProx
from scicli.physics import OPERATORS
from scicli.train.loop import Reporter, TrainArgs, read_log, train
from scicli.train.ship import ship
from scicli.weights import store
from scicli.weights.store import build_model, load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MAPS = {"ista-net": ISTANet, "ista-net-plus": ISTANetPlus, "fista-net": FISTANet}
OPERATOR_CASES = [("cs-block", (1, 33, 33), {"ratio": 0.1}), ("mri", (1, 16, 16), {"ratio": 0.3}),
                  ("video-sci", (4, 16, 16), {}), ("cassi", (5, 16, 16), {})]


def instance(name: str, shape: tuple[int, ...], seed: int = 0, **settings):
    return OPERATORS.get(name).factory.random(shape, rng=np.random.default_rng(seed), **settings)


def images(shape: tuple[int, ...], n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    c, h, w = shape
    return nn.functional.avg_pool2d(torch.rand((n, c, h + 2, w + 2), generator=g), 3, 1)


def tiny(method: str, **facts) -> nn.Module:
    model = MAPS[method](phases=3, width=4, **facts)
    for block in model.blocks:  # as after some training: the residual branches are not zero
        if block.plus:
            nn.init.normal_(block.G.weight, std=0.1)
    return model


def test_the_papers_sizes():
    """ISTA-Net+ with 9 phases of 32 channels has about 0.34 M parameters (ISTA-Net: 0.17 M)."""
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ISTANetPlus()) == 9 * (2 * 32 * 9 + 4 * 32 * 32 * 9 + 2) == 336_978
    assert count(ISTANet()) == 9 * (2 * 32 * 9 + 2 * 32 * 32 * 9 + 2) == 171_090
    assert FISTANet().phases == 7 and count(FISTANet()) == 7 * (2 * 32 * 9 + 4 * 32 * 32 * 9) + 6


@pytest.mark.parametrize("method", MAPS)
@pytest.mark.parametrize("name,shape,settings", OPERATOR_CASES)
def test_untrained_forward_on_every_real_image_operator(method, name, shape, settings):
    """Multi-channel images (video frames, spectral bands) go through the blocks frame by frame."""
    op = instance(name, shape, **settings).to(torch.float32)
    x = images(shape)
    out, info = tiny(method)(op.A(x), op)
    assert out.shape == x.shape and torch.isfinite(out).all() and info.steps == 3


def test_an_untrained_ista_net_plus_is_the_ista_gradient_steps_from_the_start():
    """G starts at zero: each phase is ``x - (rho / L) A^T (A x - y)`` with rho = 0.5."""
    op = instance("mri", (1, 16, 16), ratio=0.3)
    x = images((1, 16, 16)).double()
    y = op.A(x)
    model = ISTANetPlus(phases=2, width=4).double()
    z = op.start(y)
    for _ in range(2):
        z = z - 0.5 / op.norm() * op.A_adjoint(op.A(z) - y)
    assert torch.allclose(model(y, op)[0], z, atol=1e-12)


def test_complex_images_are_refused_in_one_line():
    op = OPERATORS.get("mri").factory.random((1, 16, 16), rng=np.random.default_rng(0), ratio=0.3,
                                               complex_images=1)
    x = images((1, 16, 16)).to(torch.complex64)
    with pytest.raises(UsageError, match="works on real images"):
        tiny("ista-net-plus")(op.A(x), op)


@pytest.mark.parametrize("method", MAPS)
def test_the_gradient_reaches_every_learned_parameter(method):
    op = instance("cs-block", (1, 33, 33), ratio=0.1)
    x = images((1, 33, 33))
    model = tiny(method)
    model.training_loss(op.A(x), op, x).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def inverse_pair(block: ISTAProx) -> ISTAProx:
    """F~ = F^-1 on the transform's input: F splits a (D-lifted) image into its positive and
    negative parts, F~ recombines them (relu(v) - relu(-v) = v)."""
    with torch.no_grad():
        for p in block.parameters():
            p.zero_()
        centre = (slice(None), slice(None), 1, 1)
        first, second = block.F[0].weight, block.F[2].weight
        if block.plus:
            block.D.weight[0, 0, 1, 1] = 1.0  # v = [r, 0, ..., 0]
            first[0, 0, 1, 1], first[1, 0, 1, 1] = 1.0, -1.0
        else:
            first[0, 0, 1, 1], first[1, 0, 1, 1] = 1.0, -1.0
        second[centre] = torch.eye(second.shape[0])
        block.F_inv[0].weight[centre] = torch.eye(block.F_inv[0].weight.shape[0])
        block.F_inv[2].weight[0, 0, 1, 1], block.F_inv[2].weight[0, 1, 1, 1] = 1.0, -1.0
    return block


@pytest.mark.parametrize("plus", [False, True])
def test_the_symmetry_residual_vanishes_for_an_inverse_pair_only(plus):
    r = images((1, 16, 16)) - 0.5
    exact = inverse_pair(ISTAProx(width=4, plus=plus))
    _, sym = exact(r, 0.01)
    assert sym.abs().max() < 1e-6
    _, sym = ISTAProx(width=4, plus=plus)(r, 0.01)
    assert sym.square().mean() > 1e-4


def test_the_training_loss_adds_gamma_times_the_summed_symmetry_residuals():
    op = instance("cs-block", (1, 33, 33), ratio=0.1)
    x = images((1, 33, 33))
    y = op.A(x)
    model = tiny("ista-net-plus")
    out, _, _, residuals = model.unrolled_run(y, op, symmetry=True)
    mse = nn.functional.mse_loss(out, x)
    assert len(residuals) == 3
    assert torch.allclose(model.training_loss(y, op, x), mse + 0.01 * sum(r.square().mean() for r in residuals))
    for block in model.blocks:
        inverse_pair(block)
    assert torch.allclose(model.training_loss(y, op, x), nn.functional.mse_loss(model(y, op)[0], x))


@pytest.mark.parametrize("seed", range(5))
def test_fista_net_steps_and_thresholds_are_positive_and_non_increasing_momenta_in_0_1_non_decreasing(seed):
    """For any raw parameters (here: Gaussian with spread 3)."""
    model = FISTANet(phases=12, width=2)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "slope" in name or "offset" in name:
                p.copy_(3 * torch.randn((), generator=g))
    for values in (model.mu(), model.theta()):
        assert (values > 0).all() and (values[1:] <= values[:-1]).all()
    rho = model.rho()
    assert rho[0] == 0 and (rho >= 0).all() and (rho < 1).all() and (rho[1:] >= rho[:-1]).all()


def test_fista_net_extrapolates_with_its_momentum():
    """Two phases: v_1 = x_0 + rho_0 (x_0 - x_start) with rho_0 = 0, then x_1 from v_1."""
    op = instance("cs-block", (1, 33, 33), ratio=0.1)
    model = tiny("fista-net")
    y = op.A(images((1, 33, 33)))
    z0 = model.start(op, y)
    z1, _ = model.phase(0, z0, op, y, op.norm(), False)
    assert torch.equal(z1[:, :1], z1[:, 1:])  # rho_0 = 0
    z2, _ = model.phase(1, z1, op, y, op.norm(), False)
    x1, x0 = z2[:, 1:], z1[:, 1:]
    assert torch.allclose(z2[:, :1], x1 + model.rho()[1] * (x1 - x0))


@pytest.mark.parametrize("method", MAPS)
def test_weights_round_trip_and_refuse_another_operator_or_ratio(method, tmp_path: Path):
    cs10 = instance("cs-block", (1, 33, 33), ratio=0.1)
    model = tiny(method, operator="cs-block", signature=cs10.signature())
    again = build_model(method, dict(model.config))
    again.load_state_dict(model.state_dict())
    y = cs10.A(images((1, 33, 33)))
    assert torch.equal(model(y, cs10)[0], again(y, cs10)[0])
    cs30 = instance("cs-block", (1, 33, 33), ratio=0.3)
    with pytest.raises(UsageError, match="m 109; this one has block 33, m 327"):
        again(cs30.A(images((1, 33, 33))), cs30)
    mri = instance("mri", (1, 16, 16), ratio=0.3)
    with pytest.raises(UsageError, match="weights are for operator 'cs-block'"):
        again(mri.A(images((1, 16, 16))), mri)


def test_a_run_with_more_iters_than_phases_is_refused():
    op = instance("cs-block", (1, 33, 33), ratio=0.1)
    with pytest.raises(UsageError, match="these weights have 3 phases"):
        tiny("ista-net")(op.A(images((1, 33, 33))), op, solve={"iters": 4})


# -- scicli train on block CS ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def stills(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stills(tmp_path_factory.mktemp("cs_stills"), size=48)


class _StopAfterFirstEpoch(Reporter):
    def epoch(self, record: dict) -> None:
        raise KeyboardInterrupt


TRAIN = ["--method", "ista-net-plus", "--operator", "cs-block", "--mask", "random", "-O", "ratio=0.1",
         "--patch", "33", "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "2", "--log-every", "1",
         "-p", "phases=2", "-p", "width=4", "--quiet"]


def test_train_resume_bit_for_bit_and_reconstruct(stills: Path, tmp_path: Path):
    """An uninterrupted two-epoch run and one cut after its first epoch and resumed write the same
    losses and weights; the checkpoint reconstructs the operator it was trained for and refuses
    another ratio."""
    ok(invoke_cli("train", *TRAIN, "--data", stills, "--out", tmp_path / "whole"))
    args = TrainArgs(method="ista-net-plus", data=[str(stills)], out=str(tmp_path / "cut"),
                     model={"phases": 2, "width": 4, "gamma": 0.01, "solve": {}}, operator="cs-block",
                     operator_options={"ratio": "0.1"}, mask="random", patch=33, batch_size=2,
                     steps_per_epoch=2, epochs=2, log_every=1)
    with pytest.raises(KeyboardInterrupt):
        train(args, reporter=_StopAfterFirstEpoch())
    ok(invoke_cli("train", "--resume", "--out", tmp_path / "cut", "--quiet"))
    losses = lambda run: [(r["type"], r["step"], r["loss"]) for r in read_log(run / "log.jsonl")  # noqa: E731
                          if r["type"] in ("step", "epoch")]
    assert len(losses(tmp_path / "whole")) == 6 and losses(tmp_path / "cut") == losses(tmp_path / "whole")
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])

    model = load_model("ista-net-plus", tmp_path / "whole")
    assert model.config["operator"] == "cs-block" and model.config["signature"] == {"block": 33, "m": 109}
    ok(invoke_cli("simulate", stills / "img_0.png", "--operator", "cs-block", "-O", "ratio=0.1",
                  "--out", tmp_path / "sim"))
    ok(invoke_cli("reconstruct", tmp_path / "sim" / "sim.npz", "--method", "ista-net-plus",
                  "--weights", tmp_path / "whole" / "best.pt", "--out", tmp_path / "rec.npy"))
    assert np.isfinite(np.load(tmp_path / "rec.npy")).all()
    ok(invoke_cli("simulate", stills / "img_0.png", "--operator", "cs-block", "-O", "ratio=0.3",
                  "--out", tmp_path / "sim30"))
    bad = invoke_cli("reconstruct", tmp_path / "sim30" / "sim.npz", "--method", "ista-net-plus",
                     "--weights", tmp_path / "whole" / "best.pt", "--out", tmp_path / "rec30.npy")
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert bad.exit_code != 0 and len(errors) == 1 and "m 109; this one has block 33, m 327" in errors[0]

    entry = ship(tmp_path / "whole", "ista-net-plus", baseline="untrained", weights_dir=tmp_path / "shipped")
    assert entry["command"].startswith("scicli train --method ista-net-plus") and "--operator cs-block" in entry["command"]
    # the operator run's own baselines: the linear start, and the untrained map on the same crops
    assert set(entry["validation_noisy_psnr"]) == set(entry["validation_psnr_untrained"]) == {"psnr"}


def test_without_weights_the_shipped_variant_that_fits_the_operator_is_chosen(tmp_path: Path, monkeypatch):
    """Shipped ``METHOD.pt`` (block CS 10 %) and ``METHOD@cs30.pt``: a 30 % operator gets the
    variant, a 10 % one the default, a 25 % one a one-line error naming what the weights fit."""
    cs10, cs30 = (instance("cs-block", (1, 33, 33), ratio=r) for r in (0.1, 0.3))
    manifest = {}
    for name, op, seed in (("ista-net", cs10, 0), ("ista-net@cs30", cs30, 1)):
        torch.manual_seed(seed)
        model = tiny("ista-net", operator="cs-block", signature=op.signature())
        store.save_checkpoint(tmp_path / f"{name}.pt", {"format": store.FORMAT, "format_version": store.FORMAT_VERSION,
                                                        "method": "ista-net", "config": model.config,
                                                        "model": model.state_dict()})
        manifest[name] = {"file": f"{name}.pt", "method": "ista-net", "config": model.config}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(store, "WEIGHTS_DIR", tmp_path)
    monkeypatch.setattr(store, "MANIFEST", tmp_path / "manifest.json")
    assert [p.name for p, _ in store.shipped_variants("ista-net")] == ["ista-net.pt", "ista-net@cs30.pt"]
    solver = METHODS.get("ista-net").factory()
    x = images((1, 33, 33), n=1)
    for op, name in ((cs30, "ista-net@cs30.pt"), (cs10, "ista-net.pt")):
        out = solver.solve(op, op.A(x)).x
        expected = load_model("ista-net", tmp_path / name)(op.A(x), op)[0]
        assert torch.allclose(out, expected)
        used = weights_used("ista-net", solver)  # the report's provenance names the file that ran
        assert [Path(u["file"]).name for u in used] == [name] and used[0]["sha256"] == store.sha256(tmp_path / name)
    cs25 = instance("cs-block", (1, 33, 33), ratio=0.25)
    with pytest.raises(UsageError, match="weights are for cs-block with m 109; this one has block 33, m 272"):
        solver.solve(cs25, cs25.A(x))


def test_shipping_under_another_methods_name_is_refused(tmp_path: Path):
    model = tiny("ista-net", operator="cs-block", signature=instance("cs-block", (1, 33, 33), ratio=0.1).signature())
    store.save_checkpoint(tmp_path / "best.pt", {"format": store.FORMAT, "format_version": store.FORMAT_VERSION,
                                                 "method": "ista-net", "config": model.config, "model": model.state_dict()})
    for bad in ("ista-net-plus", "tiny", "ista-net@"):
        with pytest.raises(UsageError, match=f"ship name '{bad}': use ista-net or ista-net@TAG"):
            ship(tmp_path / "best.pt", bad, weights_dir=tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists() or not any((tmp_path / "shipped").iterdir())
