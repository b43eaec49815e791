"""Every operator from the command line: simulate -> reconstruct (operator inferred from the
file) -> a report that names the operator, with an estimate better than the operator's linear start;
bad operator settings and misfits end in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import imageio.v3 as imageio
import tifffile
from skimage import data

from conftest import invoke_cli, ok
from scicli.physics import OPERATORS

IMAGE_OPERATORS = {  # operator -> (simulate settings, method, its settings)
    "cs-block": (["-O", "ratio=0.4"], "admm-tv", ["--iters", "30"]),
    "mri": (["-O", "ratio=0.4", "-O", "kind=radial"], "admm-tv", ["--iters", "30"]),
    "cassi": ([], "gap-tv", ["--iters", "30", "--tv-weight", "0.05"]),
}


def one_error(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """A grey image (2 x 40 x 46, two crops of camera()) and a smooth 6-band cube (6 x 24 x 30)."""
    folder = tmp_path_factory.mktemp("op_inputs")
    cam = data.camera()
    stack = np.stack([cam[100:140, 200:246], cam[300:340, 150:196]])
    tifffile.imwrite(folder / "images.tif", stack)
    yy, xx = np.mgrid[0:24, 0:30] / 24.0
    cube = np.stack([0.5 + 0.4 * np.sin(3 * xx + l / 3) * np.cos(2 * yy) for l in range(6)]).astype(np.float32)
    np.save(folder / "cube.npy", cube)
    return {"cs-block": folder / "images.tif", "mri": folder / "images.tif", "cassi": folder / "cube.npy"}


def test_the_cli_lists_every_operator() -> None:
    out = ok(invoke_cli("methods")).stdout
    for name in OPERATORS.names():
        assert name in out


@pytest.mark.parametrize("name", sorted(IMAGE_OPERATORS))
def test_simulate_then_reconstruct(name: str, images: dict[str, Path], tmp_path: Path) -> None:
    sim_opts, method, params = IMAGE_OPERATORS[name]
    ok(invoke_cli("simulate", images[name], "--operator", name, *sim_opts, "--seed", "1", "--out", tmp_path / "sim"))
    info = json.loads((tmp_path / "sim" / "simulation.json").read_text())
    assert info["operator"] == name
    sim = tmp_path / "sim" / "sim.npz"
    ok(invoke_cli("reconstruct", sim, "--method", method, *params, "--out", tmp_path / "rec.npy", "-q"))
    report = json.loads((tmp_path / "rec.json").read_text())
    assert report["operator"] == name and report["method"] == method
    rec = np.load(tmp_path / "rec.npy")
    assert np.isfinite(rec).all()
    # the iterative estimate beats the operator's linear start (A^T y, zero filling, Qinit ...)
    start = ok(invoke_cli("reconstruct", sim, "--method", method, "--iters", "1", "--out", tmp_path / "one.npy", "-q"))
    assert start is not None
    one = json.loads((tmp_path / "one.json").read_text())
    assert report["metrics"]["psnr_mean"] > one["metrics"]["psnr_mean"] + 1.0, (report["metrics"]["psnr_mean"],
                                                                               one["metrics"]["psnr_mean"])
    srgb = tmp_path / "rec_srgb.png"
    assert srgb.exists() == (name == "cassi")  # spectral cubes get an sRGB rendering beside them
    if name == "cassi":
        assert report["srgb_preview"] == str(srgb)
        assert imageio.imread(srgb).shape == (24, 30, 3)
        srgb.unlink()  # the rendering is an output too: never overwritten without --force
        (tmp_path / "rec.npy").rename(tmp_path / "rec2.npy")
        (tmp_path / "rec.json").unlink()
        srgb.write_bytes(b"keep")
        err = one_error(invoke_cli("reconstruct", sim, "--out", tmp_path / "rec.npy", "-q"))
        assert "rec_srgb.png exists" in err and srgb.read_bytes() == b"keep"


def test_operator_settings_are_checked(images: dict[str, Path], tmp_path: Path) -> None:
    err = one_error(invoke_cli("simulate", images["mri"], "--operator", "mri", "-O", "wobble=1", "--out", tmp_path / "s"))
    assert "'mri' has no setting 'wobble'" in err
    err = one_error(invoke_cli("simulate", images["mri"], "--operator", "pet", "--out", tmp_path / "s"))
    assert "unknown operator 'pet'" in err
    err = one_error(invoke_cli("simulate", images["mri"], "-O", "ratio=0.1", "--out", tmp_path / "s"))
    assert "video-sci takes no settings" in err


def test_cassi_measurement_width_must_fit_the_mask(tmp_path: Path) -> None:
    np.save(tmp_path / "meas.npy", np.ones((20, 41), np.float32))
    np.save(tmp_path / "mask.npy", np.ones((20, 30), np.float32))
    err = one_error(invoke_cli("reconstruct", tmp_path / "meas.npy", "--mask", tmp_path / "mask.npy",
                               "--operator", "cassi", "--out", tmp_path / "x.npy"))
    assert "width 41 does not fit mask width 30" in err


def test_block_cs_matrix_width_must_be_the_block_size_squared(tmp_path: Path) -> None:
    np.savez(tmp_path / "sim.npz", meas=np.ones((4, 10), np.float32), phi=np.ones((10, 1000), np.float32),
             size=np.array([40, 40]))
    err = one_error(invoke_cli("reconstruct", tmp_path / "sim.npz", "--operator", "cs-block",
                               "--out", tmp_path / "x.npy"))
    assert "1000" in err and "1089" in err


def test_mri_mask_must_match_the_k_space(tmp_path: Path) -> None:
    np.save(tmp_path / "meas.npy", np.ones((32, 32), np.complex64))
    np.save(tmp_path / "mask.npy", np.ones((30, 32), np.uint8))
    err = one_error(invoke_cli("reconstruct", tmp_path / "meas.npy", "--mask", tmp_path / "mask.npy",
                               "--operator", "mri", "--out", tmp_path / "x.npy"))
    assert "(30, 32)" in err and "32" in err


def test_an_image_input_is_measured_by_a_seeded_random_instance_then_reconstructed(tmp_path: Path) -> None:
    """``reconstruct IMAGE --operator cs-block --ratio 0.25`` is ``simulate`` then ``reconstruct``
    in one step: the same measurements (same seed), the image as the ground truth, the
    measuring instance in the report; --gt with an image input is refused."""
    imageio.imwrite(tmp_path / "cam.png", data.camera()[100:166, 200:266])
    ok(invoke_cli("reconstruct", tmp_path / "cam.png", "--operator", "cs-block", "--ratio", "0.25", "--seed", "3",
                  "--method", "admm-tv", "--iters", "20", "--out", tmp_path / "direct.npy", "-q"))
    ok(invoke_cli("simulate", tmp_path / "cam.png", "--operator", "cs-block", "-O", "ratio=0.25", "--seed", "3",
                  "--out", tmp_path / "sim"))
    ok(invoke_cli("reconstruct", tmp_path / "sim" / "sim.npz", "--method", "admm-tv", "--iters", "20",
                  "--out", tmp_path / "two_steps.npy", "-q"))
    direct, two = np.load(tmp_path / "direct.npy"), np.load(tmp_path / "two_steps.npy")
    assert np.allclose(direct, two, atol=1e-5)
    report = json.loads((tmp_path / "direct.json").read_text())
    measured = report["problem"]["measured_from"]
    assert measured["arrays"] == "random" and measured["seed"] == 3 and measured["settings"]["m"] == 272
    assert report["metrics"]["psnr_mean"] > 20
    assert "--gt" in one_error(invoke_cli("reconstruct", tmp_path / "cam.png", "--operator", "cs-block", "--ratio",
                                          "0.25", "--gt", tmp_path / "cam.png", "--out", tmp_path / "x.npy"))
