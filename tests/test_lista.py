"""LISTA (Gregor and LeCun 2010) on the ``dictionary`` operator.

* initialised as ISTA, one untrained LISTA layer is one ISTA step, and T steps are T + 1 ISTA
  steps from zero (the paper's Algorithm 3 counts the first layer apart);
* the code-prediction loss reaches W_e, S and theta;
* the weights store rebuilds the network, and refuses a dictionary of another size in one line;
* the ``dictionary`` operator is in the operator contract (tests/test_operator_contract.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from scicli.core.errors import UsageError
from scicli.methods import METHODS
from scicli.methods.lista import LISTA
from scicli.physics import OPERATORS
from scicli.priors.sparsity import soft_threshold
from scicli.train.ship import ship
from scicli.train.sparse import lasso_codes
from scicli.weights.store import FORMAT, FORMAT_VERSION, WEIGHTS_DIR, load_model, save_checkpoint
from conftest import invoke_cli, write_stills
from test_operator_contract import CONTRACT

Dictionary = OPERATORS.get("dictionary").factory
ALPHA = 0.3
TRAIN400 = Path(__file__).resolve().parents[2] / "shared" / "data" / "Train400"
SHIPPED_SCALE = 0.10393
"""The patch normalisation of the shipped weights (bench/bench_lista.py's log and the manifest note)."""


@pytest.fixture(autouse=True)
def one_thread():
    """Small products: on a loaded CPU, threads only wait for each other (45 times slower measured)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def dictionary(n: int = 16, m: int = 32, seed: int = 0):
    return Dictionary.random((m, 1, 1), rng=np.random.default_rng(seed), n=n).to(torch.float64)


def signals(op, count: int = 5, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(count, op.n, generator=g, dtype=torch.float64)


def ista(op, y: torch.Tensor, steps: int, alpha: float = ALPHA) -> torch.Tensor:
    """ISTA from zero, written out: z <- h_{alpha/L}(z - D^T (D z - y) / L)."""
    L = op.norm()
    z = torch.zeros(y.shape[0], op.m, 1, 1, dtype=y.dtype)
    for _ in range(steps):
        z = soft_threshold(z - op.A_adjoint(op.A(z) - y) / L, alpha / L)
    return z


def test_the_dictionary_operator_is_in_the_contract() -> None:
    assert "dictionary" in CONTRACT
    op = dictionary()
    assert op.signature() == {"n": 16, "m": 32}
    assert torch.allclose(torch.linalg.vector_norm(op.D, dim=0), torch.ones(32, dtype=torch.float64))


def test_an_untrained_layer_is_one_ista_step() -> None:
    op, y = dictionary(), signals(dictionary())
    model = LISTA.from_dictionary(op, iters=3, alpha=ALPHA).double()
    z = ista(op, y, 2)
    L = op.norm()
    torch.testing.assert_close(model.f(z, op, y), soft_threshold(z - op.A_adjoint(op.A(z) - y) / L, ALPHA / L))
    torch.testing.assert_close(model.start(op, y), ista(op, y, 1))
    torch.testing.assert_close(model(y, op)[0], ista(op, y, 4))  # T = 3 steps after the first layer


def test_gradient_reaches_W_e_S_and_theta() -> None:
    op, y = dictionary(), signals(dictionary())
    target = ista(op, y, 200)
    model = LISTA.from_dictionary(op, iters=2, alpha=ALPHA).double()
    loss = ((model(y, op)[0] - target) ** 2).sum(dim=(1, 2, 3)).mean()
    loss.backward()
    for name in ("W_e", "S", "theta"):
        grad = getattr(model, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_a_few_adam_steps_lower_the_code_error() -> None:
    op, y = dictionary(), signals(dictionary(), 64)
    target = ista(op, y, 300)
    model = LISTA.from_dictionary(op, iters=1, alpha=ALPHA).double()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def error() -> torch.Tensor:
        return ((model(y, op)[0] - target) ** 2).sum(dim=(1, 2, 3)).mean()

    with torch.no_grad():
        before = float(error())
    for _ in range(30):
        opt.zero_grad()
        error().backward()
        opt.step()
    with torch.no_grad():
        assert float(error()) < 0.8 * before


def test_weights_round_trip_and_refuse_another_dictionary_size(tmp_path: Path) -> None:
    op = dictionary()
    model = LISTA.from_dictionary(op, iters=2, alpha=ALPHA)
    path = save_checkpoint(tmp_path / "best.pt", {"format": FORMAT, "format_version": FORMAT_VERSION,
                                                   "method": "lista", "config": model.config,
                                                   "model": model.state_dict()})
    loaded = load_model("lista", path)
    y = signals(op).float()
    op32 = op.to(torch.float32)
    torch.testing.assert_close(loaded(y, op32)[0], model(y, op32)[0])
    other = Dictionary.random((48, 1, 1), rng=np.random.default_rng(1), n=16)
    with pytest.raises(UsageError, match=r"lista weights are for dictionary with m 32; this one has n 16, m 48"):
        loaded(signals(other).float(), other)
    solver = METHODS.get("lista").factory(weights=str(path))  # the --method solver, from the weights
    out = solver.solve(op32, y)
    torch.testing.assert_close(out.x, model(y, op32)[0])
    assert out.iterations == 2


def test_lista_needs_the_dictionary_size() -> None:
    with pytest.raises(ValueError, match=r"signature \{n, m\}"):
        LISTA()


def test_shipping_puts_the_dictionary_beside_the_weights(tmp_path: Path) -> None:
    op = dictionary()
    model = LISTA.from_dictionary(op, iters=1, alpha=ALPHA)
    run = tmp_path / "run"
    save_checkpoint(run / "best.pt", {"format": FORMAT, "format_version": FORMAT_VERSION, "method": "lista",
                                      "config": model.config, "model": model.state_dict(),
                                      "val": {"test_code_error": 1.0}, "command": "python bench/bench_lista.py",
                                      "training_data": ["/data/Train400"]})
    np.savez(tmp_path / "dictionary.npz", dictionary=op.arrays()["dictionary"])
    weights = tmp_path / "weights"
    weights.mkdir()
    entry = ship(run, "lista", companions=[tmp_path / "dictionary.npz"], weights_dir=weights)
    assert entry["validation_code_error"] == {"test_code_error": 1.0}
    assert entry["data_licence"] == ["DnCNN image sets (research and education only)"]
    assert [c["file"] for c in entry["companions"]] == ["lista-dictionary.npz"]
    shipped = Dictionary.from_arrays(dict(np.load(weights / "lista-dictionary.npz")))
    assert load_model("lista", weights / "lista.pt").check(shipped, None) is None
    with pytest.raises(UsageError, match="--with: no such file"):
        ship(run, "lista", companions=[tmp_path / "missing.npz"], weights_dir=weights)


@pytest.mark.skipif(not (TRAIN400 / "test_400.png").is_file(), reason="needs ../shared/data/Train400")
def test_the_shipped_weights_beat_fifteen_fista_iterations_on_held_out_patches() -> None:
    """The shipped LISTA (T = 7, m = 100) with its dictionary, on 300 patches of a held-out image
    (test_400.png), against codes from 400 FISTA iterations: the bench measured that FISTA needs
    31 iterations to reach its error; here at least 15."""
    op = Dictionary.from_arrays(dict(np.load(WEIGHTS_DIR / "lista-dictionary.npz")))
    img = np.asarray(Image.open(TRAIN400 / "test_400.png").convert("L"), dtype=np.float64) / 255
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, img.shape[0] - 9, 300), rng.integers(0, img.shape[1] - 9, 300)
    X = np.stack([img[r:r + 10, c:c + 10].reshape(-1) for r, c in zip(rows, cols)])
    y = torch.from_numpy((X - X.mean(axis=1, keepdims=True)) / SHIPPED_SCALE).float()
    alpha = 0.5
    L = op.norm()
    z = x = torch.zeros(y.shape[0], op.m, 1, 1)
    for k in range(1, 401):
        x_new = soft_threshold(z - op.A_adjoint(op.A(z) - y) / L, alpha / L)
        z, x = x_new + (k - 1) / (k + 2) * (x_new - x), x_new
        if k == 15:
            x15 = x
    target = x
    fista15 = float(((x15 - target) ** 2).sum(dim=(1, 2, 3)).mean())
    lista = METHODS.get("lista").factory().solve(op, y).x  # the shipped weights, no options
    assert float(((lista - target) ** 2).sum(dim=(1, 2, 3)).mean()) < fista15


# -- scicli train --method lista --operator dictionary ------------------------------------------
def test_lasso_codes_satisfy_the_optimality_conditions() -> None:
    """FISTA's targets: ``g = D^T (y - D z*)`` is ``alpha sign(z*)`` on the support and at most
    alpha in size off it, to 1e-9 alpha (the support solve makes them exact, not just converged)."""
    op = Dictionary.random((24, 1, 1), rng=np.random.default_rng(0), n=16).to(torch.float64)
    y = torch.randn(8, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for max_iter in (5000, 100):  # 100 FISTA steps alone are far from 1e-9; they find the support
        z = lasso_codes(op, y, ALPHA, max_iter=max_iter).flatten(1)
        g = (y - z @ op.D.T) @ op.D
        on = z != 0
        assert on.any() and (~on).any()
        assert (g[on] - ALPHA * z[on].sign()).abs().max() < 1e-9 * ALPHA
        assert g[~on].abs().max() <= ALPHA * (1 + 1e-9)


@pytest.fixture()
def patches_run(tmp_path: Path) -> tuple[Path, Path]:
    """Five 40 x 40 stills and a 16 x 24 dictionary file (4 x 4 patches)."""
    data = write_stills(tmp_path / "stills", count=5, size=40, noise=4.0)
    D = np.random.default_rng(0).standard_normal((16, 24))
    np.savez(tmp_path / "dictionary.npz", dictionary=D / np.linalg.norm(D, axis=0))
    return data, tmp_path / "dictionary.npz"


def test_scicli_train_lista_starts_from_ista_and_learns_to_predict_the_codes(patches_run, tmp_path: Path) -> None:
    data, dictionary = patches_run
    run = tmp_path / "run"
    result = invoke_cli("train", "--method", "lista", "--operator", "dictionary", "--mask", dictionary, "--data", data,
                        "--patch", "4", "--epochs", "2", "--steps-per-epoch", "15", "--batch-size", "32", "--lr", "3e-3",
                        "--val-fraction", "0.4", "-p", "iters=2", "-p", f"alpha={ALPHA}", "--out", run, "--quiet")
    assert result.exit_code == 0, result.stderr + result.stdout
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    start, epochs = log[0], [r for r in log if r.get("type") == "epoch"]
    assert start["signal_scale"] > 0 and start["config"]["signature"] == {"n": 16, "m": 24}
    ista = start["val_noisy"]["code_snr"]  # the baseline: the untrained network, ISTA with 2 + 1 steps
    assert epochs[-1]["val"]["code_snr"] > ista + 1.0
    model = load_model("lista", run / "best.pt")
    op = Dictionary.from_arrays(dict(np.load(dictionary)))
    fresh = LISTA.from_dictionary(op, iters=2, alpha=ALPHA)
    assert not torch.allclose(model.S, fresh.S)  # trained from the ISTA start, not from zeros
    assert "--operator dictionary" in json.loads((run / "run.json").read_text())["command"]


@pytest.mark.parametrize("extra,message", [
    (("--mask", "random"), "pass the dictionary with --mask FILE"),
    (("--patch", "5"), "--patch 5: the dictionary's atoms have n = 16 values, a patch has 25 (pass --patch 4)"),
    (("--meas-noise", "5"), "--meas-noise does not apply to sparse coding"),
])
def test_scicli_train_lista_refuses_in_one_line(patches_run, tmp_path: Path, extra, message) -> None:
    data, dictionary = patches_run
    args = {"--mask": str(dictionary), "--patch": "4"}
    rest = []
    for k, v in zip(extra[::2], extra[1::2]):
        if k in args:
            args[k] = v
        else:
            rest += [k, v]
    result = invoke_cli("train", "--method", "lista", "--operator", "dictionary", "--data", data,
                        *[x for kv in args.items() for x in kv], *rest, "--out", tmp_path / "r")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
