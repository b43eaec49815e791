"""Deep ADMM-Net (``admm-net``, CS-MRI) and ADMM-CSNet (``admm-csnet``, any operator): unrolled
ADMM with learned filters, piecewise-linear shrinkages, penalties and multiplier rates.

Tiny instances (32 x 32 MRI, 33 x 33 block CS, 2 or 3 stages): the untrained networks run on
their operators, their layers compute what the docstrings state, every weight is trained, the
weights round-trip through a checkpoint and refuse problems they were not trained for.
"""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import torch

from conftest import invoke_cli, write_stills
from scicli.algorithms import admm_step
from scicli.core.errors import UsageError
from scicli.methods import METHODS
from scicli.methods.admm_net import ADMMCSNet, ADMMNet
from scicli.nets.sparse import FilterBank, PiecewiseLinear, dct_filters, soft_threshold
from scicli.physics import OPERATORS
from scicli.physics.mri import MRI
from scicli.train.ship import ship
from scicli.weights.store import build_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smooth_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.avg_pool2d(torch.rand((n, 1, size + 4, size + 4), generator=g), 5, 1)


def mri(ratio: float = 0.2, size: int = 32, seed: int = 0, **options):
    return OPERATORS.get("mri").factory.random((1, size, size), rng=np.random.default_rng(seed), kind="radial",
                                               ratio=ratio, **options)


def cs_block(ratio: float = 0.3, seed: int = 0, qinit: bool = True):
    """A random block-CS instance; ``qinit=False``: without its data-free Qinit (start = A^T y)."""
    op = OPERATORS.get("cs-block").factory.random((1, 33, 33), rng=np.random.default_rng(seed), ratio=ratio)
    return op if qinit else type(op)(op.phi, op.size, None, block=op.block)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


# ----------------------------------------------------------------------------- blocks
def test_the_piecewise_linear_shrinkage_starts_as_soft_thresholding() -> None:
    """101 control points on [-1, 1]; theta on the grid: equal everywhere, slope 1 outside."""
    shrink = PiecewiseLinear(3, points=101, radius=1.0, threshold=0.1)
    a = torch.cat([torch.linspace(-3, 3, 601), torch.tensor([-1.0, 1.0, -0.1, 0.1, 0.0])])
    a = a.reshape(1, 1, -1).expand(2, 3, -1)
    assert torch.allclose(shrink(a), soft_threshold(a, 0.1), atol=1e-6)
    with torch.no_grad():
        shrink.values[1, 50] = 0.5  # a learned bump at 0 moves channel 1 only, linearly in between
    out = shrink(torch.tensor([0.0, 0.01, 0.0]).reshape(1, 3, 1))
    assert torch.allclose(out.flatten(), torch.tensor([0.0, 0.25, 0.0]), atol=1e-6)


def test_filter_banks_are_circular_correlations_with_their_fourier_multipliers_and_adjoints() -> None:
    bank = FilterBank(8, 3).double()
    with torch.no_grad():
        bank.weight.add_(0.3 * torch.randn(bank.weight.shape, generator=torch.Generator().manual_seed(0)))
    x, c = torch.randn(2, 1, 7, 6, dtype=torch.float64), torch.randn(2, 8, 7, 6, dtype=torch.float64)
    assert torch.allclose((bank(x) * c).sum(), (x * bank.adjoint(c)).sum())
    fx = torch.fft.fft2(x[:, 0], norm="ortho")
    assert torch.allclose(torch.fft.fft2(bank(x), norm="ortho"), bank.spectrum(7, 6) * fx[:, None])
    basis = dct_filters(3).reshape(8, 9)  # 8 orthonormal zero-mean filters (the DCT without DC)
    assert torch.allclose(basis @ basis.T, torch.eye(8), atol=1e-6) and basis.sum(dim=1).abs().max() < 1e-6


# ----------------------------------------------------------------------------- the networks
@pytest.mark.parametrize("model,op", [(ADMMNet(stages=3), mri()), (ADMMCSNet(stages=3), mri()),
                                      (ADMMCSNet(stages=3), cs_block(qinit=False))], ids=["admm-net-mri", "csnet-mri", "csnet-cs"])
def test_untrained_networks_reconstruct_from_the_operators_start(model, op) -> None:
    x = smooth_images(2, 33 if op.name == "cs-block" else 32)
    y = op.A(x)
    with torch.no_grad():
        out, info = model(y, op)
    assert out.shape == x.shape and torch.isfinite(out).all() and info.steps == 3 + 1  # stages + last X layer
    assert model.settings({"iters": 2})["iters"] == 2 and model(y, op, solve={"iters": 2})[1].steps == 2 + 1
    with pytest.raises(UsageError, match="iters=4, but these weights have 3 stages"):
        model(y, op, solve={"iters": 4})
    assert psnr(out, x) > psnr(op.start(y), x) - 1.0  # the DCT-shrinkage start is no worse than the start


def test_admm_csnet_runs_video_sci_frame_by_frame() -> None:
    op = OPERATORS.get("video-sci").factory.random((4, 16, 16), rng=np.random.default_rng(0))
    x = smooth_images(8, 16).reshape(2, 4, 16, 16)
    model = ADMMCSNet(stages=2)
    with torch.no_grad():
        out, _ = model(op.A(x), op)
        frame = model.prior(0, x[:, 1:2])  # one frame alone gets what it gets inside the video
        assert torch.allclose(model.prior(0, x)[:, 1:2], frame, atol=1e-6)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_the_admm_net_x_layer_solves_the_paper_normal_equations() -> None:
    """(A^T A + sum rho_l H_l^T H_l) x = A^T y + sum rho_l H_l^T (z_l - beta_l), in the image domain."""
    op = mri().double()
    model = ADMMNet(stages=1, rho=0.3).double()
    g = torch.Generator().manual_seed(1)
    y = op.A(smooth_images(1, 32).double())
    z, beta = torch.randn((1, 8, 32, 32), generator=g, dtype=torch.float64), torch.randn((1, 8, 32, 32), generator=g,
                                                                                           dtype=torch.float64)
    x = model.reconstruction(0, z, beta, op, y)
    H, rho = model.recon_filters[0], 0.3
    lhs = op.A_adjoint(op.A(x)) + rho * H.adjoint(H(x))
    rhs = op.A_adjoint(y) + rho * H.adjoint(z - beta)
    assert torch.allclose(lhs, rhs, atol=1e-10)


def test_an_admm_csnet_stage_with_eta_one_is_one_admm_step() -> None:
    op = cs_block().double()
    model = ADMMCSNet(stages=1).double()
    x = smooth_images(2, 33).double()
    y = op.A(x)
    z, beta = op.start(y), 0.01 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = model.stage(0, torch.cat([x, z, beta], dim=1), op, y)
    v, u = admm_step(op, z, -beta, y, model.rho(0).item(), lambda t: model.prior(0, t))
    assert torch.allclose(out[:, 1:2], v) and torch.allclose(out[:, 2:3], -u)


@pytest.mark.parametrize("cls,op", [(ADMMNet, mri()), (ADMMCSNet, cs_block())], ids=["admm-net", "admm-csnet"])
def test_the_loss_reaches_every_learned_parameter(cls, op) -> None:
    model = cls(stages=2, operator=op.name, signature=op.signature())
    x = smooth_images(2, 33 if op.name == "cs-block" else 32)
    model.training_loss(op.A(x), op, x).backward()
    untouched = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert untouched == []


@pytest.mark.parametrize("method", ["admm-net", "admm-csnet"])
def test_weights_round_trip_through_the_config_and_state_dict(method: str) -> None:
    op = mri()
    model = build_model(method, {"stages": 2, "filters": 4, "operator": "mri", "signature": op.signature()})
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    config = json.loads(json.dumps(model.config))  # what a checkpoint stores: plain numbers
    again = build_model(method, config)
    again.load_state_dict(model.state_dict())
    y = op.A(smooth_images(1, 32))
    with torch.no_grad():
        assert torch.equal(model(y, op)[0], again(y, op)[0])


def test_weights_refuse_another_operator_ratio_or_complex_images_in_one_line() -> None:
    op = mri(0.2)
    net = ADMMNet(stages=1, operator="mri", signature=op.signature())
    x = smooth_images(1, 32)
    net(op.A(x), op)
    with pytest.raises(UsageError, match=r"admm-net weights are for mri with ratio 0\.19\d*; this one has ratio 0\.51"):
        net(mri(0.5).A(x), mri(0.5))
    cs = cs_block()
    with pytest.raises(UsageError, match="weights are for operator 'mri'; they do not apply to 'cs-block'"):
        net(cs.A(smooth_images(1, 33)), cs)
    with pytest.raises(UsageError, match="weights are for operator 'mri'; they do not apply to 'cs-block'"):
        ADMMNet(stages=1)(cs.A(smooth_images(1, 33)), cs)  # untrained: admm-net is an mri network
    complex_op = mri(complex_images=True)
    with pytest.raises(UsageError, match="real images"):
        ADMMCSNet(stages=1)(complex_op.A(x.to(torch.complex64)), complex_op)
    csnet = ADMMCSNet(stages=1, operator="cs-block", signature=cs.signature())
    with pytest.raises(UsageError, match="m 327; this one has block 33, m 109"):
        csnet(cs_block(0.1).A(smooth_images(1, 33)), cs_block(0.1))


def test_train_on_random_radial_masks_then_reconstruct_with_the_checkpoint(tmp_path: Path) -> None:
    data = write_stills(tmp_path / "images", count=3, size=40, noise=0)
    run = tmp_path / "run"
    result = invoke_cli("train", "--method", "admm-net", "--operator", "mri", "--mask", "random", "-O", "ratio=0.2",
                        "-O", "kind=radial", "--data", data, "--patch", "32", "--epochs", "1", "--steps-per-epoch",
                        "2", "--batch-size", "2", "-p", "stages=2", "--out", run, "--quiet")
    assert result.exit_code == 0, result.stderr + result.stdout
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["method"] == "admm-net" and ckpt["config"]["stages"] == 2
    assert ckpt["config"]["operator"] == "mri" and abs(ckpt["config"]["signature"]["ratio"] - 0.2) < 0.02
    summary = json.loads((run / "run.json").read_text())
    assert "--operator mri --mask random" in summary["command"] and "-p stages=2" in summary["command"]
    entry = ship(run, "admm-net@tiny", baseline="untrained", weights_dir=tmp_path)  # scored on the run's own validation
    assert np.isfinite(entry["validation_psnr_untrained"]["psnr"]) and (tmp_path / "admm-net@tiny.pt").is_file()

    iio.imwrite(tmp_path / "test.png", np.clip(np.rint(smooth_images(1, 32)[0, 0].numpy() * 255), 0, 255).astype(np.uint8))
    sim = tmp_path / "sim"
    assert invoke_cli("simulate", tmp_path / "test.png", "--operator", "mri", "-O", "kind=radial", "-O", "ratio=0.2",
                      "--out", sim).exit_code == 0
    result = invoke_cli("reconstruct", sim / "sim.npz", "--weights", run / "best.pt", "--out", tmp_path / "rec.npy", "-q")
    assert result.exit_code == 0, result.stderr + result.stdout
    rec = np.load(tmp_path / "rec.npy")
    assert rec.shape[-2:] == (32, 32) and np.isfinite(rec).all()


MASK20 = Path(__file__).resolve().parents[2] / "shared" / "data" / "mri" / "masks_pseudo_radial" / "mask_20.mat"


@pytest.mark.skipif(not MASK20.is_file(), reason="needs ../shared/data/mri")
def test_the_shipped_weights_reconstruct_at_the_pseudo_radial_20_percent_mask() -> None:
    """scicli/weights/admm-net.pt (trained on the chest images) with no --weights: far above zero
    filling on a smooth 256 x 256 phantom."""
    op = MRI(torch.from_numpy(scipy.io.loadmat(str(MASK20))["mask_matrix"].astype(np.float32)))
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 256), torch.linspace(-1, 1, 256), indexing="ij")
    x = ((xx ** 2 / 0.6 + yy ** 2 / 0.8) < 0.7).float() * (0.6 + 0.3 * torch.cos(3 * xx))[None, None]
    x = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    y = op.A(x)
    out = METHODS.get("admm-net").factory().solve(op, y).x
    assert psnr(out, x) > psnr(op.start(y), x) + 3
