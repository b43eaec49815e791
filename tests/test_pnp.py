"""Specification of the plug-and-play solvers ``pnp-gap``, ``pnp-admm`` and ``red``.

Each solver plugs a registered denoiser ``D(x, sigma)`` (``--denoiser``, default ffdnet) into
its iteration and anneals the noise level: ``sigma=(s_1, ..., s_m)`` (on [0, 1]; 0..255 as typed) with
``iters=(n_1, ..., n_m)`` runs n_1 iterations at s_1 / 255, then n_2 at s_2 / 255, ...; the
denoiser sees the whole (N, B, H, W) batch in one call per iteration. A warm start ``x0``
(``--x0``) replaces the solver's own initial estimate.

The test problem (conftest.py): 16 frames of 32 x 40 smooth moving blobs, a seeded random
binary mask, B = 8, so K = 2 snapshots, solved as one batch of N = 2. Measured (torch 2.13
CPU, one thread, mean per-frame PSNR over both snapshots, frames clipped to [0, 1]):

    method (default parameters)                PSNR per snapshot (dB)   mean (dB)
    A_dagger y = A^T (y / R)                   9.64, 9.38                9.5
    gap-tv (40 iterations, TV weight 0.3)      35.04, 35.91             35.5
    pnp-gap, ffdnet, sigma 50,25,12,6 x 10     41.07, 39.77             40.4
    pnp-admm, ffdnet, same schedule            40.32, 39.48             39.9
    red (fixed-point), ffdnet, same schedule   31.19, 35.26             33.2
    red (gradient), ffdnet, same schedule      23.48, 19.44             21.5

pnp-gap over gap-tv: measured +4.9 dB mean and +3.9 dB on the worse snapshot, asserted +3.5 and
+2.5 (about 1 dB of slack). The margins over A_dagger (see GAIN_OVER_DAGGER) are looser: they
only say that every PnP method really reconstructs.

Warm start: from x0 = the gap-tv estimate projected onto {A x = y} (35.5 dB), three
iterations at sigma 12 give 35.8, 36.5, 37.3 dB (pnp-gap). Had GAP's residual accumulator
started at 0 instead of y, the first iteration would fall to 10.7 dB. Through the CLI: gap-tv
(20 iterations) 35.4 dB, then pnp-gap --sigma 12 --iters 3 --x0 that file 37.3 dB (without
--x0: 12.1 dB).

Timing: both test files together take about 10 s on a shared 2-core CPU.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from typer.testing import Result

from conftest import B, H, K, Scene, W, explain, invoke_cli, ok
from scicli.core.errors import ScicliError, UsageError
from scicli.physics import VideoSCI
from scicli.methods import METHODS
from scicli.metrics import frame_psnr

PNP = ["pnp-gap", "pnp-admm", "red"]
# (method, extra parameters) covering both RED schemes
PNP_VARIANTS = [("pnp-gap", {}), ("pnp-admm", {}), ("red", {}), ("red", {"scheme": "gradient"})]

GAIN_OVER_GAP_TV = 3.5  # dB, mean over both snapshots (measured +4.9)
GAIN_OVER_GAP_TV_EACH = 2.5  # dB, every snapshot (measured +6.0 and +3.9)
PNP_GAP_MIN = 39.0  # dB (measured 40.4)
# dB above A_dagger (measured: pnp-gap +30.9, pnp-admm +30.4, red +23.7, red gradient +12.0)
GAIN_OVER_DAGGER = {"pnp-gap": 25.0, "pnp-admm": 25.0, "red": 20.0, "red-gradient": 9.0}
WARM_SIGMA = 12.0  # a light denoising step: the warm start is already good
WARM_SLACK = 1.0  # dB a warm-started iteration may lose against x0 (measured: it gains 0.3)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ----------------------------------------------------------------------------- fixtures
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Problem:
    """The conftest scene as tensors: operator, snapshots (K, H, W), ground truth (K, B, H, W)."""

    def __init__(self, scene: Scene) -> None:
        self.op = VideoSCI(torch.from_numpy(scene.mask))
        self.y = torch.from_numpy(scene.meas)
        self.gt = torch.from_numpy(scene.orig).reshape(K, B, H, W)

    def psnr(self, x: torch.Tensor) -> torch.Tensor:
        """Mean per-frame PSNR of each snapshot, (K,)."""
        return frame_psnr(x, self.gt).mean(dim=1)


@pytest.fixture(scope="module")
def problem(scene: Scene) -> Problem:
    return Problem(scene)


@pytest.fixture(scope="module")
def psnrs(problem: Problem) -> dict[str, torch.Tensor]:
    """Per-snapshot PSNR of every method with its default parameters (solved once)."""
    out = {"dagger": problem.psnr(problem.op.A_dagger(problem.y))}
    for name, extra in [("gap-tv", {})] + PNP_VARIANTS:
        key = name + ("-" + extra["scheme"] if extra else "")
        x = METHODS.get(name).factory(**extra).solve(problem.op, problem.y).x
        assert x.shape == (K, B, H, W) and torch.isfinite(x).all()
        out[key] = problem.psnr(x)
    return out


class SpyDenoiser:
    """Stands in for the solver's denoiser: records every call and move, returns its input."""

    def __init__(self) -> None:
        self.sigmas: list[float] = []
        self.shapes: list[tuple[int, ...]] = []
        self.moves: list[tuple[torch.device, torch.dtype | None]] = []

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "SpyDenoiser":
        self.moves.append((torch.device(device), dtype))
        return self

    def __call__(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        self.sigmas.append(sigma)
        self.shapes.append(tuple(x.shape))
        return x.clone()


# ----------------------------------------------------------------------------- quality
def test_pnp_gap_with_ffdnet_beats_gap_tv(psnrs) -> None:
    gain = psnrs["pnp-gap"] - psnrs["gap-tv"]
    assert float(gain.mean()) >= GAIN_OVER_GAP_TV, (psnrs["pnp-gap"].tolist(), psnrs["gap-tv"].tolist())
    assert (gain >= GAIN_OVER_GAP_TV_EACH).all(), gain.tolist()
    assert float(psnrs["pnp-gap"].mean()) >= PNP_GAP_MIN


@pytest.mark.parametrize("key", list(GAIN_OVER_DAGGER))
def test_pnp_solvers_beat_the_minimum_norm_estimate_by_a_wide_margin(psnrs, key) -> None:
    gain = psnrs[key] - psnrs["dagger"]
    assert (gain >= GAIN_OVER_DAGGER[key]).all(), f"{key}: {psnrs[key].tolist()} vs A_dagger {psnrs['dagger'].tolist()}"


# ----------------------------------------------------------------------------- the sigma schedule
@pytest.mark.parametrize("name,extra", PNP_VARIANTS, ids=["pnp-gap", "pnp-admm", "red", "red-gradient"])
@pytest.mark.parametrize("form", ["tuples", "strings"])
def test_sigma_schedule_runs_each_level_for_its_block_of_iterations(problem, monkeypatch, name, extra, form) -> None:
    """iters=(2, 3), sigma=(50, 25): five iterations, D sees 50/255 twice, then 25/255 three times,
    each time the whole (N, B, H, W) batch in one call."""
    schedule = {"iters": (2, 3), "sigma": (50, 25)} if form == "tuples" else {"iters": "2,3", "sigma": "50,25"}
    solver = METHODS.get(name).factory.from_command_line(**schedule, **extra)  # as typed: 0..255
    assert solver.total_iters() == 5
    spy = SpyDenoiser()
    monkeypatch.setattr(solver, "denoiser", spy)
    result = solver.solve(problem.op, problem.y)
    assert result.iterations == 5
    assert spy.sigmas == pytest.approx([50 / 255] * 2 + [25 / 255] * 3)
    assert spy.shapes == [(K, B, H, W)] * 5


@pytest.mark.parametrize(
    "precision,dtype",
    [("auto", torch.float32), ("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)],
)
@pytest.mark.parametrize("name", PNP)
def test_precision_sets_the_denoisers_dtype_and_the_iterate_keeps_float32(problem, monkeypatch, name, precision,
                                                                          dtype) -> None:
    """On the CPU 'auto' is the data's dtype (on CUDA it would be float16)."""
    solver = METHODS.get(name).factory.from_command_line(sigma=(25,), iters=(1,), precision=precision)
    spy = SpyDenoiser()
    monkeypatch.setattr(solver, "denoiser", spy)
    x = solver.solve(problem.op, problem.y).x
    assert spy.moves == [(torch.device("cpu"), dtype)]
    assert x.dtype == torch.float32


@pytest.mark.parametrize("name", PNP)
def test_unknown_precision_is_a_usage_error(name) -> None:
    with pytest.raises(UsageError, match="fp8"):
        METHODS.get(name).factory(precision="fp8")


def test_default_schedule_is_the_fields_ffdnet_schedule() -> None:
    solver = METHODS.get("pnp-gap").factory()
    assert solver.params.denoiser == "ffdnet"
    assert solver.params.sigma == pytest.approx((50 / 255, 25 / 255, 12 / 255, 6 / 255))  # [0, 1] inside
    assert solver.command_line_params()["sigma"] == pytest.approx((50, 25, 12, 6))  # 0..255 as typed
    assert tuple(solver.params.iters) == (10, 10, 10, 10)
    assert solver.total_iters() == 40


@pytest.mark.parametrize("name", PNP)
def test_schedule_length_mismatch_is_a_usage_error_naming_both_options(name) -> None:
    with pytest.raises(UsageError) as info:
        METHODS.get(name).factory.from_command_line(sigma="50,25", iters="3")
    assert "--sigma" in str(info.value) and "--iters" in str(info.value)


@pytest.mark.parametrize(
    "sigma,iters",
    [
        ("0", "3"),
        ("-5", "3"),
        ("50,0", "3,3"),
        ("nan", "3"),
        ("inf", "3"),
        ("50", "2.5"),
        ("50", "0"),
        ("50", "-1"),
        ("50", "inf"),
        ("50", "nan"),
        ("", "3"),
        ("a,b", "3,3"),
    ],
)
def test_bad_sigma_or_iters_is_a_usage_error(sigma, iters) -> None:
    """Noise levels must be finite and > 0; iteration counts whole numbers >= 1."""
    with pytest.raises(UsageError):
        METHODS.get("pnp-gap").factory.from_command_line(sigma=sigma, iters=iters)


@pytest.mark.parametrize("name", PNP)
def test_unknown_denoiser_is_a_usage_error_listing_the_known_ones(name) -> None:
    with pytest.raises(UsageError, match="bm3d") as info:
        METHODS.get(name).factory(denoiser="bm3d")
    assert "tv" in str(info.value) and "ffdnet" in str(info.value)


def test_red_unknown_scheme_is_a_usage_error_naming_the_schemes() -> None:
    with pytest.raises(UsageError, match="newton") as info:
        METHODS.get("red").factory(scheme="newton")
    assert "fixed-point" in str(info.value) and "gradient" in str(info.value)


def test_missing_weights_file_fails_when_the_solver_is_built(tmp_path: Path) -> None:
    """Before any work is done, and naming the file."""
    with pytest.raises(ScicliError, match="nothere.pth"):
        METHODS.get("pnp-gap").factory(weights=str(tmp_path / "nothere.pth"))


def test_weights_for_a_denoiser_without_weights_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="weights"):
        METHODS.get("pnp-gap").factory(denoiser="tv", weights=str(tmp_path / "some.pth"))


# ----------------------------------------------------------------------------- warm start
@pytest.fixture(scope="module")
def consistent_x0(problem: Problem) -> torch.Tensor:
    """gap-tv (20 iterations) projected onto {x : A x = y}: a good, consistent estimate."""
    x = METHODS.get("gap-tv").factory(iters=20).solve(problem.op, problem.y).x
    x0 = problem.op.project(x, problem.y)
    assert torch.allclose(problem.op.A(x0), problem.y, atol=1e-5)
    return x0


@pytest.mark.parametrize("name,extra", PNP_VARIANTS, ids=["pnp-gap", "pnp-admm", "red", "red-gradient"])
def test_warm_start_from_a_consistent_estimate_does_not_blow_up(problem, consistent_x0, name, extra) -> None:
    """For GAP this needs the residual accumulator to start at y (not 0) for a warm start:
    then A x0 = y makes x0 a fixed point of the projection, and only the denoiser acts."""
    start = float(problem.psnr(consistent_x0).mean())
    x0 = consistent_x0.clone()
    solver = METHODS.get(name).factory.from_command_line(sigma=(WARM_SIGMA,), iters=(3,), **extra)
    result = solver.solve(problem.op, problem.y, x0=x0, gt=problem.gt)
    assert torch.equal(x0, consistent_x0), "the solver modified x0 in place"
    first = result.history[0]["psnr"]
    assert first >= start - WARM_SLACK, f"{name}: x0 {start:.2f} dB, after one iteration {first:.2f} dB"
    assert float(problem.psnr(result.x).mean()) >= start - WARM_SLACK


# ----------------------------------------------------------------------------- command line
def one_line_error(result: Result, code: int, *needles: str) -> str:
    """Exit ``code``; stderr is exactly one 'error: ...' line containing every needle."""
    assert result.exit_code == code, explain(result)
    assert isinstance(result.exception, SystemExit), explain(result)
    lines = [line for line in ANSI.sub("", result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), explain(result)
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def reconstruct(scene: Scene, out: Path, *args: object) -> Result:
    """``scicli reconstruct meas.npy --mask mask.npy --gt orig.npy --out OUT ARGS``."""
    npy = scene.npy
    return invoke_cli("reconstruct", npy / "meas.npy", "--mask", npy / "mask.npy", "--gt", npy / "orig.npy",
                      "--out", out, *args)


def report_psnr(path: Path) -> float:
    return json.loads(path.with_suffix(".json").read_text())["metrics"]["psnr_mean"]


def test_cli_pnp_gap_with_ffdnet_and_a_sigma_schedule(scene: Scene, tmp_path: Path) -> None:
    out = tmp_path / "r.tif"
    ok(reconstruct(scene, out, "--method", "pnp-gap", "--denoiser", "ffdnet", "--sigma", "50,25", "--iters", "3,3"))
    frames = tifffile.imread(out)
    assert frames.shape == (K * B, H, W) and np.isfinite(frames).all()
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["method"] == "pnp-gap"
    assert doc["parameters"]["denoiser"] == "ffdnet"
    assert doc["parameters"]["sigma"] == [50, 25]
    assert doc["parameters"]["iters"] == [3, 3]
    assert max(b["iterations"] for b in doc["batches"]) == 6
    assert math.isfinite(doc["metrics"]["psnr_mean"])


def test_cli_gap_ffdnet_is_an_alias_of_pnp_gap(scene: Scene, tmp_path: Path) -> None:
    out = tmp_path / "a.tif"
    ok(reconstruct(scene, out, "--method", "gap-ffdnet", "--sigma", "50,25", "--iters", "2,2"))
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["method"] == "pnp-gap" and doc["parameters"]["denoiser"] == "ffdnet"


@pytest.mark.parametrize("method", ["pnp-admm", "red"])
def test_cli_other_pnp_methods_run(scene: Scene, tmp_path: Path, method: str) -> None:
    out = tmp_path / f"{method}.tif"
    ok(reconstruct(scene, out, "--method", method, "--sigma", "25", "--iters", "2"))
    doc = json.loads(out.with_suffix(".json").read_text())
    assert doc["method"] == method and doc["parameters"]["sigma"] == [25]


def test_cli_schedule_mismatch_is_a_one_line_error(scene: Scene, tmp_path: Path) -> None:
    out = tmp_path / "out" / "r.tif"
    result = reconstruct(scene, out, "--method", "pnp-gap", "--sigma", "50,25", "--iters", "3")
    one_line_error(result, 2, "--sigma", "--iters")
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_cli_unknown_precision_is_a_one_line_error(scene: Scene, tmp_path: Path) -> None:
    result = reconstruct(scene, tmp_path / "r.tif", "--method", "pnp-gap", "--precision", "fp8")
    one_line_error(result, 2, "--precision", "fp8")


def test_cli_unknown_denoiser_is_a_one_line_error(scene: Scene, tmp_path: Path) -> None:
    result = reconstruct(scene, tmp_path / "r.tif", "--method", "pnp-gap", "--denoiser", "bm3d")
    one_line_error(result, 2, "bm3d", "ffdnet", "tv")


def test_cli_missing_weights_is_a_one_line_usage_error(scene: Scene, tmp_path: Path) -> None:
    """A missing input file is a usage mistake (exit 2), as for every other input."""
    result = reconstruct(scene, tmp_path / "r.tif", "--method", "pnp-gap", "-p", f"weights={tmp_path / 'nothere.pth'}")
    one_line_error(result, 2, "nothere.pth")


def test_cli_corrupt_weights_is_a_one_line_data_error(scene: Scene, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(np.random.default_rng(0).bytes(1000))
    result = reconstruct(scene, tmp_path / "r.tif", "--method", "pnp-gap", "-p", f"weights={bad}")
    one_line_error(result, 1, "corrupt.pth")
    assert not (tmp_path / "r.tif").exists()


def test_cli_warm_start_from_gap_tv(scene: Scene, tmp_path: Path) -> None:
    """gap-tv output -> --x0 of pnp-gap: a light schedule keeps (or improves) its quality."""
    tv = tmp_path / "tv.tif"
    ok(reconstruct(scene, tv, "--method", "gap-tv", "--iters", "20"))
    warm = tmp_path / "warm.tif"
    ok(reconstruct(scene, warm, "--method", "pnp-gap", "--sigma", "12", "--iters", "3", "--x0", tv))
    assert report_psnr(warm) >= report_psnr(tv) - WARM_SLACK, (report_psnr(tv), report_psnr(warm))


@pytest.mark.parametrize(
    "shape",
    [(K * B - 1, H, W), (K * B, H, W - 4), (1, B, H, W)],
    ids=["too-few-frames", "wrong-size", "too-few-measurements"],
)
def test_cli_warm_start_of_the_wrong_shape_is_a_one_line_error(scene: Scene, tmp_path: Path, shape) -> None:
    x0 = tmp_path / "x0.npy"
    np.save(x0, np.full(shape, 0.5, dtype=np.float32))
    out = tmp_path / "out" / "r.tif"
    result = reconstruct(scene, out, "--method", "pnp-gap", "--sigma", "25", "--iters", "2", "--x0", x0)
    one_line_error(result, 2, "x0.npy")
    assert not out.parent.exists() or not any(out.parent.iterdir())


def test_cli_methods_lists_the_pnp_solvers_their_alias_and_the_denoisers() -> None:
    result = ok(invoke_cli("methods"))
    words = set(re.findall(r"[\w-]+", ANSI.sub("", result.stdout)))
    for name in ("pnp-gap", "pnp-admm", "red", "gap-ffdnet", "gap-tv", "tv", "ffdnet"):
        assert name in words, name


@pytest.mark.parametrize("name", PNP)
def test_one_iteration_count_with_the_default_levels_runs_that_many_at_each(name) -> None:
    """``--method pnp-gap --iters 3`` (no --sigma): 3 iterations at each default level."""
    solver = METHODS.get(name).factory.from_command_line(iters="3")
    levels = len(solver.params.sigma)
    assert levels > 1 and solver.total_iters() == 3 * levels
    assert solver.command_line_params()["iters"] == [3] * levels or tuple(
        solver.command_line_params()["iters"]) == (3,) * levels
    with pytest.raises(UsageError, match=r"give one count per level, e\.g\. --iters 3,3"):
        METHODS.get(name).factory.from_command_line(sigma="50,25", iters="3")
