"""Empirical Lipschitz constants: exact on linear maps whose norm and spectral radius are known."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch

from scicli.fixedpoint import iterate_ratios, jacobian_norm_and_radius, make_solver, ratio_summary, secant_ratios
from scicli.methods import METHODS
from scicli.methods.deq_rnn import DEQRnn
from scicli.physics import VideoSCI
from scicli.weights.store import FORMAT, FORMAT_VERSION

from conftest import invoke_cli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def linear_map(matrix: torch.Tensor, shift: torch.Tensor):
    """``f(z) = M z + c`` on a batch of vectors (N, n)."""
    return lambda z: z @ matrix.T + shift


def test_power_iteration_finds_the_norm_and_radius_of_a_symmetric_contraction() -> None:
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1)))
    m = q @ torch.diag(torch.tensor([0.8, 0.5, -0.3, 0.2, 0.1, 0.0], dtype=torch.float64)) @ q.T
    f = linear_map(m, torch.ones(6, dtype=torch.float64))
    norm, radius = jacobian_norm_and_radius(f, torch.zeros(3, 6, dtype=torch.float64), iters=60)
    assert torch.allclose(norm, torch.full((3,), 0.8, dtype=torch.float64), atol=1e-3)
    assert torch.allclose(radius, torch.full((3,), 0.8, dtype=torch.float64), atol=1e-2)



def test_secant_ratios_of_another_solvers_iterates_and_their_summary() -> None:
    """The supplement's Fig. 1 measure: the map f applied to the points of some other sequence
    (here a noisy iteration, as ODER's stochastic steps), against z* in Fix(f)."""
    d = torch.tensor([0.5, 0.9, 1.5, 0.2], dtype=torch.float64)  # expands along the third axis
    f = linear_map(torch.diag(d), torch.zeros(4, dtype=torch.float64))
    z_star = torch.zeros(1, 4, dtype=torch.float64)
    points = [torch.eye(4, dtype=torch.float64)[i:i + 1] for i in range(4)] + [z_star]  # last: z* itself
    ratios = secant_ratios(f, points, z_star)
    assert ratios.shape == (5, 1) and torch.isnan(ratios[4]).all()  # undefined at z*
    assert torch.allclose(ratios[:4, 0], d)
    summary = ratio_summary(ratios)
    assert summary == {"median": pytest.approx(0.7), "max": pytest.approx(1.5), "above_one": 0.25, "count": 4}
    assert math.isnan(ratio_summary(ratios[4:])["max"]) and ratio_summary(ratios[4:])["count"] == 0

def test_the_norm_of_a_non_normal_map_exceeds_its_spectral_radius() -> None:
    # z' = [[0.5, 2], [0, 0.5]] z: expands some directions (||J|| > 1), yet the iteration converges
    m = torch.tensor([[0.5, 2.0], [0.0, 0.5]], dtype=torch.float64)
    f = linear_map(m, torch.zeros(2, dtype=torch.float64))
    norm, radius = jacobian_norm_and_radius(f, torch.zeros(1, 2, dtype=torch.float64), iters=200)
    assert math.isclose(float(norm), float(torch.linalg.matrix_norm(m, ord=2)), rel_tol=1e-4)
    assert 0.45 < float(radius) < 0.6  # a Jordan block: the ratios approach 0.5 slowly


def test_secant_ratios_over_the_iterates_of_a_contraction_are_its_factor() -> None:
    f = linear_map(0.6 * torch.eye(4, dtype=torch.float64), torch.arange(4, dtype=torch.float64))
    iterates, images = [], []

    def traced(z):
        fz = f(z)
        iterates.append(z)
        images.append(fz)
        return fz

    z_star, info = make_solver("fixed-point", tol=1e-10, max_iter=200)(traced, torch.zeros(2, 4, dtype=torch.float64))
    assert info.converged
    ratios = iterate_ratios(f, iterates[:10], images[:10], z_star)
    assert ratios.shape == (10, 2)
    assert torch.allclose(ratios, torch.full_like(ratios, 0.6), atol=1e-6)


# -- a learned equilibrium method reports its residual and Lipschitz estimates ------------------------------

@pytest.fixture()
def small_deq(tmp_path):
    """A small untrained deq-rnn checkpoint (B = 4, no TV: the GAP step and a zero-headed cell)."""
    model = DEQRnn(frames=4, channels=(8,), start="mean", tv_weight=0.0, hidden=2)
    path = tmp_path / "deq.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "method": "deq-rnn", "config": model.config,
                "model": model.state_dict()}, path)
    return str(path)


def _scene(P: int = 16):
    g = torch.Generator().manual_seed(0)
    op = VideoSCI((torch.rand(4, P, P, generator=g) < 0.5).float())
    return op, op.A(torch.rand(1, 4, P, P, generator=g))


def test_an_unconverged_solve_warns_in_one_line_and_reports_its_residual(small_deq):
    op, y = _scene()
    solver = METHODS.get("deq-rnn").factory.from_command_line(weights=small_deq, max_iter="2", tol="1e-12")
    with pytest.warns(RuntimeWarning, match=r"did not converge: residual .* > tol 1e-12 after 2 evaluations"):
        result = solver.solve(op, y)
    assert not result.converged
    assert result.diagnostics["max_iter"] == 2 and result.diagnostics["fixed_point_residual"] > 1e-12
    assert "lipschitz_fixed_point" not in result.diagnostics  # off unless asked: it costs evaluations


def test_lipschitz_estimates_are_reported_on_request(small_deq):
    op, y = _scene()
    solver = METHODS.get("deq-rnn").factory.from_command_line(weights=small_deq, lipschitz="5", tol="1e-4",
                                                                max_iter="40")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converges: no warning
        result = solver.solve(op, y)
    d = result.diagnostics
    assert result.converged and d["power_iterations"] == 5
    # the untrained cell is the accelerated GAP step: e' = e + y - A x keeps ||J|| >= 1
    assert d["lipschitz_fixed_point"] >= 1.0 - 1e-3
    assert 0.0 <= d["lipschitz_iterates_above_one"] <= 1.0 and math.isfinite(d["lipschitz_iterates_max"])


def test_the_reconstruct_report_carries_the_residual_and_the_lipschitz_estimates(tmp_path, scene):
    model = DEQRnn(frames=8, channels=(8,), start="mean", tv_weight=0.0, hidden=2)
    weights = tmp_path / "deq8.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "method": "deq-rnn", "config": model.config,
                "model": model.state_dict()}, weights)
    out, report = tmp_path / "x.npy", tmp_path / "x.json"
    result = invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--method",
                        "deq-rnn", "-p", f"weights={weights}", "-p", "lipschitz=3", "-p", "max_iter=30",
                        "--out", out, "--report", report, "-q")
    assert result.exit_code == 0, result.output
    batch = json.loads(report.read_text())["batches"][0]
    assert {"fixed_point_residual", "lipschitz_fixed_point", "spectral_radius_fixed_point",
            "lipschitz_iterates_max", "lipschitz_iterates_above_one"} <= set(batch["diagnostics"])
