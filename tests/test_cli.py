"""Specification of the ``scicli`` command line (simulate, reconstruct, evaluate, methods).

Every command runs in-process through ``typer.testing.CliRunner``, which keeps stdout and
stderr apart (``result.stdout`` / ``result.stderr``). The data: a 16-frame 32 x 40 video of
smooth moving blobs (see conftest.py), B = 8 frames per snapshot, so K = 2 snapshots.

Conventions checked throughout:

* results and tables go to stdout; progress lines and errors go to stderr;
* a failure prints exactly one line ``error: ...`` on stderr that names the offending file,
  key or shape, never a traceback (unless ``scicli --debug``), and exits with 2 for usage
  mistakes or 1 for data / run-time problems (scicli/errors.py);
* nothing is written on failure: no output, no report, no temporary ``.name.tmp-*`` file.

Measured on the simulated video with GAP-TV, 20 iterations: 35.1 dB mean per-frame PSNR,
against 9.6 dB for the baseline x_t = M_t * y / sum_t M_t. The threshold sits 3 dB below.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import tifffile
import torch
from typer.testing import Result

import scicli
from scicli.cli.methods import format_default
from conftest import B, F, H, K, Scene, W, explain, invoke_cli, ok
from scicli.methods import METHODS

ITERS = "20"  # GAP-TV reaches ~35 dB here in 20 iterations (40 is the default)
PSNR_MIN = 32.0  # measured 35.1 dB with --iters 20, minus a 3 dB margin
BASELINE_GAIN = 15.0  # dB above the A^T y / R baseline (measured: +25 dB)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ----------------------------------------------------------------------------- helpers
def error_lines(result: Result) -> list[str]:
    return [line for line in ANSI.sub("", result.stderr).splitlines() if line.startswith("error:")]


def assert_one_line_error(result: Result, code: int, *needles: str) -> str:
    """Exit ``code``, stderr is exactly one 'error: ...' line mentioning every needle."""
    assert result.exit_code == code, explain(result)
    assert isinstance(result.exception, SystemExit), f"unhandled exception: {explain(result)}"
    lines = [line for line in ANSI.sub("", result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, explain(result)
    assert lines[0].startswith("error: "), explain(result)
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert "Traceback" not in result.output
    return lines[0]


def assert_nothing_written(folder: Path) -> None:
    """A failed command leaves its output folder empty (no outputs, no temp files)."""
    if folder.exists():
        assert sorted(p.name for p in folder.iterdir()) == []


def no_temp_files(folder: Path) -> None:
    leftovers = [p.name for p in folder.rglob(".*")]
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def frame_psnr(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    mse = ((np.clip(x, 0, 1).astype(np.float64) - np.clip(ref, 0, 1)) ** 2).mean(axis=(-2, -1))
    return 10 * np.log10(1.0 / mse)


def baseline(meas: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """x_t = M_t * y / sum_t M_t (= A^T y / R), (K*B, H, W) frames first."""
    m = mask.astype(np.float64)
    energy = m.sum(axis=0)
    energy[energy == 0] = 1
    return (m[None] * meas[:, None] / energy).reshape(-1, *meas.shape[1:])


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def reconstruct(scene: Scene, out: Path | str, *extra: object) -> Result:
    """``scicli reconstruct meas.npy --mask mask.npy --gt orig.npy --iters 20 --out OUT EXTRA``"""
    return invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy",
                      "--gt", scene.npy / "orig.npy", "--iters", ITERS, "--out", out, *extra)


# ----------------------------------------------------------------------------- shared runs
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory, video_tif: Path) -> Path:
    """``scicli simulate video.tif --frames 8 --out DIR`` (npy files)."""
    out = tmp_path_factory.mktemp("sim") / "sim"
    ok(invoke_cli("simulate", video_tif, "--frames", B, "--out", out))
    return out


@pytest.fixture(scope="module")
def recon(tmp_path_factory: pytest.TempPathFactory, simulated: Path) -> dict:
    """``scicli reconstruct DIR/meas.npy --mask DIR/mask.npy --gt DIR/orig.npy --out recon.tif``"""
    folder = tmp_path_factory.mktemp("recon")
    result = ok(invoke_cli(
        "reconstruct", simulated / "meas.npy", "--mask", simulated / "mask.npy", "--gt", simulated / "orig.npy",
        "--iters", ITERS, "--out", folder / "recon.tif",
    ))
    return {"result": result, "tif": folder / "recon.tif", "json": folder / "recon.json", "folder": folder}


@pytest.fixture(scope="module")
def scene_recon(tmp_path_factory: pytest.TempPathFactory, scene: Scene) -> np.ndarray:
    """The reference output for ``scene``: all measurements, --iters 20, frames first (16, H, W)."""
    out = tmp_path_factory.mktemp("scene_recon") / "ref.npy"
    ok(reconstruct(scene, out))
    return np.load(out)


# ============================================================================= simulate
class TestSimulate:
    def test_npy_writes_measurements_masks_ground_truth_and_metadata(
        self, simulated: Path, video: np.ndarray, video_tif: Path
    ) -> None:
        assert sorted(p.name for p in simulated.iterdir()) == ["mask.npy", "meas.npy", "orig.npy", "simulation.json"]
        meas, mask, orig = (np.load(simulated / f"{n}.npy") for n in ("meas", "mask", "orig"))
        assert meas.shape == (K, H, W) and mask.shape == (B, H, W) and orig.shape == (F, H, W)
        assert set(np.unique(mask)) <= {0, 1}
        # orig is the video on [0, 1]; each snapshot is the mask-weighted sum of its B frames
        np.testing.assert_allclose(orig, video / 255.0, atol=1e-6)
        expected = (mask[None] * orig.reshape(K, B, H, W).astype(np.float64)).sum(axis=1)
        np.testing.assert_allclose(meas, expected, atol=1e-5)

        info = read_json(simulated / "simulation.json")
        assert info["seed"] == 0
        assert info["video"] == str(video_tif)
        assert info["video_shape"] == [F, H, W]
        assert info["frames_per_snapshot"] == B
        assert info["measurements"] == K
        assert (info["height"], info["width"]) == (H, W)
        assert info["video_max_value"] == 255.0
        assert info["noise_sigma"] == 0.0
        assert sorted(Path(f).name for f in info["files"]) == ["mask.npy", "meas.npy", "orig.npy"]

    def test_tif_format_writes_the_same_arrays_as_pages(self, tmp_path: Path, video_tif: Path, simulated: Path) -> None:
        out = tmp_path / "sim"
        result = ok(invoke_cli("simulate", video_tif, "--frames", B, "--out", out, "--format", "tif"))
        assert "simulated 2 snapshots of 8 frames (32x40)" in result.stdout
        assert sorted(p.name for p in out.iterdir()) == ["mask.tif", "meas.tif", "orig.tif", "simulation.json"]
        for name in ("meas", "mask", "orig"):
            np.testing.assert_array_equal(tifffile.imread(out / f"{name}.tif"), np.load(simulated / f"{name}.npy"))

    def test_mat_format_is_one_benchmark_style_file_frames_last(
        self, tmp_path: Path, video_tif: Path, simulated: Path
    ) -> None:
        out = tmp_path / "sim"
        ok(invoke_cli("simulate", video_tif, "--frames", B, "--out", out, "--format", "mat"))
        assert sorted(p.name for p in out.iterdir()) == ["sim.mat", "simulation.json"]
        mat = scipy.io.loadmat(out / "sim.mat")
        assert mat["meas"].shape == (H, W, K)
        assert mat["mask"].shape == (H, W, B)
        assert mat["orig"].shape == (H, W, F)
        for name in ("meas", "mask", "orig"):
            np.testing.assert_array_equal(np.moveaxis(mat[name], -1, 0), np.load(simulated / f"{name}.npy"))
        assert read_json(out / "simulation.json")["seed"] == 0

    def test_the_seed_decides_the_mask(self, tmp_path: Path, video_tif: Path, simulated: Path) -> None:
        ok(invoke_cli("simulate", video_tif, "--out", tmp_path / "s0", "--seed", 0))
        ok(invoke_cli("simulate", video_tif, "--out", tmp_path / "s1", "--seed", 1))
        np.testing.assert_array_equal(np.load(tmp_path / "s0/mask.npy"), np.load(simulated / "mask.npy"))
        assert not np.array_equal(np.load(tmp_path / "s1/mask.npy"), np.load(simulated / "mask.npy"))
        assert read_json(tmp_path / "s1/simulation.json")["seed"] == 1

    def test_refuses_to_overwrite_without_force(self, tmp_path: Path, video_tif: Path) -> None:
        out = tmp_path / "sim"
        ok(invoke_cli("simulate", video_tif, "--out", out))
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        result = invoke_cli("simulate", video_tif, "--out", out, "--seed", 3)
        assert_one_line_error(result, 2, str(out / "meas.npy"), "--force")
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        ok(invoke_cli("simulate", video_tif, "--out", out, "--seed", 3, "--force"))
        assert read_json(out / "simulation.json")["seed"] == 3


# ============================================================================= reconstruct, end to end
class TestReconstructEndToEnd:
    def test_writes_a_float32_video_of_all_frames(self, recon: dict) -> None:
        x = tifffile.imread(recon["tif"])
        assert x.shape == (F, H, W)
        assert x.dtype == np.float32
        assert sorted(p.name for p in recon["folder"].iterdir()) == ["recon.json", "recon.tif"]

    def test_report_records_method_parameters_environment_and_metrics(self, recon: dict) -> None:
        doc = read_json(recon["json"])
        assert doc["method"] == "gap-tv"
        defaults = {n: d for n, d, _ in METHODS.get("gap-tv").factory.describe()}
        assert doc["parameters"] == {**defaults, "iters": int(ITERS)}
        expected_device = "cuda" if torch.cuda.is_available() else "cpu"
        assert doc["environment"]["device"].startswith(expected_device)
        assert doc["environment"]["scicli"] == scicli.__version__
        assert doc["shape"] == {"measurements": K, "frames": B, "height": H, "width": W}
        assert doc["output"] == str(recon["tif"])
        metrics = doc["metrics"]
        assert len(metrics["psnr"]) == F and len(metrics["ssim"]) == F
        assert metrics["psnr_mean"] == pytest.approx(np.mean(metrics["psnr"]))
        assert [m["measurement"] for m in metrics["per_measurement"]] == [0, 1]

    def test_quality_is_well_above_the_baseline(self, recon: dict, simulated: Path) -> None:
        meas, mask, orig = (np.load(simulated / f"{n}.npy") for n in ("meas", "mask", "orig"))
        x = tifffile.imread(recon["tif"])
        psnr = frame_psnr(x, orig)
        base = frame_psnr(baseline(meas, mask), orig).mean()
        assert psnr.mean() > PSNR_MIN
        assert psnr.mean() > base + BASELINE_GAIN
        # the report's per-frame PSNR is that of the written video
        np.testing.assert_allclose(read_json(recon["json"])["metrics"]["psnr"], psnr, atol=1e-3)

    def test_prints_a_table_per_measurement_on_stdout_and_progress_on_stderr(self, recon: dict) -> None:
        result: Result = recon["result"]
        mean = read_json(recon["json"])["metrics"]["psnr_mean"]
        for text in ("measurement", "PSNR (dB)", "SSIM", "mean", f"{mean:.2f}", str(recon["tif"])):
            assert text in result.stdout
        assert "iterations" in result.stderr
        assert "error" not in result.stderr

    def test_default_output_name_is_input_stem_and_method_in_the_working_directory(
        self, tmp_path: Path, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.chdir(tmp_path)
        ok(invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--iters", 2))
        assert sorted(p.name for p in tmp_path.iterdir()) == ["meas_gap-tv.json", "meas_gap-tv.tif"]
        assert "metrics" not in read_json(tmp_path / "meas_gap-tv.json")  # no ground truth, no scores

    def test_benchmark_mat_file_needs_no_mask(self, tmp_path: Path, video_tif: Path, recon: dict) -> None:
        sim = tmp_path / "sim"
        ok(invoke_cli("simulate", video_tif, "--frames", B, "--out", sim, "--format", "mat"))
        out = tmp_path / "recon.tif"
        ok(invoke_cli("reconstruct", sim / "sim.mat", "--iters", ITERS, "--out", out))
        doc = read_json(tmp_path / "recon.json")
        assert doc["problem"]["mask"]["key"] == "mask"  # mask and ground truth come from inside
        assert doc["problem"]["orig"]["key"] == "orig"
        assert doc["problem"]["layout"] == {"meas": "last", "mask": "last", "orig": "last"}
        assert doc["metrics"]["psnr_mean"] > PSNR_MIN
        # same seed, same arrays: the same reconstruction as from the frames-first .npy files
        np.testing.assert_allclose(tifffile.imread(out), tifffile.imread(recon["tif"]), atol=1e-5)


# ============================================================================= evaluate
class TestEvaluate:
    @pytest.mark.parametrize("suffix", [".json", ".csv", ".md"])
    def test_prints_a_table_and_writes_the_report(self, tmp_path: Path, recon: dict, simulated: Path, suffix: str) -> None:
        report = tmp_path / f"r{suffix}"
        result = ok(invoke_cli("evaluate", recon["tif"], simulated / "orig.npy", "--report", report))
        expected = read_json(recon["json"])["metrics"]  # evaluate agrees with reconstruct's own scores
        rows = [line for line in result.stdout.splitlines() if re.match(r"^\W*\d+\W", line)]
        assert len(rows) == F
        assert f"{expected['psnr_mean']:.2f}" in result.stdout
        assert "clipped to [0, 1]" in result.stdout  # the convention is stated
        assert result.stderr == ""

        if suffix == ".json":
            doc = read_json(report)
            assert len(doc["frames"]["psnr"]) == F
            np.testing.assert_allclose(doc["frames"]["psnr"], expected["psnr"], atol=1e-3)
            assert doc["psnr_mean"] == pytest.approx(expected["psnr_mean"], abs=1e-3)
            assert doc["meta"]["frames"] == F
            assert doc["convention"]
        elif suffix == ".csv":
            table = list(csv.reader(report.open()))
            assert table[0] == ["frame", "psnr", "ssim"]
            assert [r[0] for r in table[1:]] == [str(i) for i in range(F)] + ["mean"]
            assert float(table[-1][1]) == pytest.approx(expected["psnr_mean"], abs=1e-3)
        else:
            text = report.read_text()
            assert "| frame | PSNR (dB) | SSIM |" in text
            assert f"| **mean** | {expected['psnr_mean']:.2f} |" in text
            assert "Convention:" in text

    def test_quiet_prints_only_the_mean(self, recon: dict, simulated: Path) -> None:
        result = ok(invoke_cli("evaluate", recon["tif"], simulated / "orig.npy", "-q"))
        assert result.stdout.strip().startswith("PSNR ")
        assert "(16 frames)" in result.stdout
        assert len(result.stdout.strip().splitlines()) == 1

    def test_a_video_against_itself_is_a_perfect_score(self, scene: Scene) -> None:
        result = ok(invoke_cli("evaluate", scene.npy / "orig.npy", scene.npy / "orig.npy", "-q"))
        assert "SSIM 1.0000" in result.stdout

    def test_frames_last_mat_against_frames_first_npy(self, tmp_path: Path, scene: Scene) -> None:
        noisy = np.clip(scene.orig + 0.01 * np.random.default_rng(0).standard_normal(scene.orig.shape), 0, 1)
        scipy.io.savemat(tmp_path / "rec.mat", {"recon": np.moveaxis(noisy.astype(np.float32), 0, -1)})
        ok(invoke_cli("evaluate", tmp_path / "rec.mat", scene.npy / "orig.npy", "--report", tmp_path / "r.json"))
        doc = read_json(tmp_path / "r.json")
        np.testing.assert_allclose(doc["frames"]["psnr"], frame_psnr(noisy, scene.orig), atol=1e-3)

    def test_frame_count_mismatch_suggests_frames_then_frames_selects(self, tmp_path: Path, scene: Scene) -> None:
        first8 = np.clip(scene.orig[:B] + 0.01, 0, 1)
        np.save(tmp_path / "first8.npy", first8)
        result = invoke_cli("evaluate", tmp_path / "first8.npy", scene.npy / "orig.npy", "--report", tmp_path / "r.json")
        assert_one_line_error(result, 2, "first8.npy", "8 frames", "16", "--frames 0:8")
        assert not (tmp_path / "r.json").exists()
        ok(invoke_cli("evaluate", tmp_path / "first8.npy", scene.npy / "orig.npy", "--frames", "0:8",
                      "--report", tmp_path / "r.json"))
        doc = read_json(tmp_path / "r.json")
        assert doc["meta"]["frames"] == B
        np.testing.assert_allclose(doc["frames"]["psnr"], frame_psnr(first8, scene.orig[:B]), atol=1e-3)


# ============================================================================= layouts
class TestLayouts:
    def test_frames_first_npy_and_frames_last_mat_give_the_same_output(
        self, tmp_path: Path, scene: Scene, scene_recon: np.ndarray
    ) -> None:
        runs = {
            "benchmark.tif": ["reconstruct", scene.mat / "sim.mat"],
            "separate.tif": ["reconstruct", scene.mat / "meas.mat", "--mask", scene.mat / "mask.mat",
                             "--gt", scene.mat / "orig.mat"],
        }
        ref_doc = None
        for out, args in runs.items():
            ok(invoke_cli(*args, "--iters", ITERS, "--out", tmp_path / out))
            np.testing.assert_allclose(tifffile.imread(tmp_path / out), scene_recon, atol=1e-5, err_msg=out)
            doc = read_json((tmp_path / out).with_suffix(".json"))
            assert doc["problem"]["layout"]["meas"] == "last"
            assert doc["problem"]["layout"]["mask"] == "last"
            ref_doc = ref_doc or doc
            assert doc["metrics"]["psnr_mean"] == pytest.approx(ref_doc["metrics"]["psnr_mean"], abs=1e-4)
        np.testing.assert_allclose(ref_doc["metrics"]["psnr"], frame_psnr(scene_recon, scene.orig), atol=1e-3)

    def test_ambiguous_shapes_ask_for_layout_and_layout_first_decides(self, tmp_path: Path) -> None:
        rng = np.random.default_rng(0)
        np.save(tmp_path / "cube_mask.npy", (rng.random((16, 16, 16)) < 0.5).astype(np.uint8))
        np.save(tmp_path / "snap.npy", rng.random((16, 16)).astype(np.float32))
        out = tmp_path / "out"
        args = ["reconstruct", tmp_path / "snap.npy", "--mask", tmp_path / "cube_mask.npy", "--iters", 2,
                "--out", out / "x.tif"]
        assert_one_line_error(invoke_cli(*args), 2, "cube_mask.npy", "(16, 16, 16)", "snap.npy", "--layout")
        assert_nothing_written(out)
        ok(invoke_cli(*args, "--layout", "first"))
        assert tifffile.imread(out / "x.tif").shape == (16, 16, 16)
        assert read_json(out / "x.json")["problem"]["layout"]["mask"] == "first"


# ============================================================================= options
class TestOptions:
    @pytest.mark.parametrize("which", [0, 1])
    def test_measurements_selects_snapshots(self, tmp_path: Path, scene: Scene, scene_recon: np.ndarray, which: int) -> None:
        out = tmp_path / "sel.tif"
        ok(reconstruct(scene, out, "--measurements", which))
        x = tifffile.imread(out)
        assert x.shape == (B, H, W)
        np.testing.assert_allclose(x, scene_recon[which * B:(which + 1) * B], atol=1e-5)
        doc = read_json(tmp_path / "sel.json")
        assert doc["problem"]["measurements"] == [which]
        assert doc["shape"]["measurements"] == 1
        # scored against the matching ground-truth frames
        np.testing.assert_allclose(doc["metrics"]["psnr"], frame_psnr(x, scene.orig[which * B:(which + 1) * B]), atol=1e-3)

    @pytest.mark.parametrize("dtype, top", [("uint8", 255), ("uint16", 65535)])
    def test_integer_output_dtype_scales_0_1_to_the_full_range(
        self, tmp_path: Path, scene: Scene, scene_recon: np.ndarray, dtype: str, top: int
    ) -> None:
        ok(reconstruct(scene, tmp_path / "x.tif", "--dtype", dtype))
        x = tifffile.imread(tmp_path / "x.tif")
        assert x.dtype == np.dtype(dtype)
        expected = np.rint(np.clip(scene_recon, 0, 1) * top)
        assert np.abs(x.astype(np.float64) - expected).max() <= 1
        assert dtype in read_json(tmp_path / "x.json")["output_scale"]

    @pytest.mark.parametrize("suffix", [".npy", ".npz", ".mat", ".tiff"])
    def test_output_format_follows_the_suffix(self, tmp_path: Path, scene: Scene, scene_recon: np.ndarray, suffix: str) -> None:
        out = tmp_path / f"x{suffix}"
        ok(reconstruct(scene, out))
        if suffix == ".npy":
            x = np.load(out)
        elif suffix == ".npz":
            x = np.load(out)["recon"]
        elif suffix == ".mat":
            x = np.moveaxis(scipy.io.loadmat(out)["recon"], -1, 0)  # MATLAB files keep frames last
        else:
            x = tifffile.imread(out)
        np.testing.assert_allclose(x, scene_recon, atol=1e-6)
        assert (tmp_path / "x.json").exists()

    @pytest.mark.parametrize("fmt", ["mat", "npz", "npy"])
    def test_format_names_the_file_written_into_an_output_directory(
        self, tmp_path: Path, scene: Scene, scene_recon: np.ndarray, fmt: str
    ) -> None:
        folder = tmp_path / "outdir"
        folder.mkdir()
        ok(reconstruct(scene, folder, "--format", fmt))
        assert sorted(p.name for p in folder.iterdir()) == ["meas_gap-tv.json", f"meas_gap-tv.{fmt}"]
        out = folder / f"meas_gap-tv.{fmt}"
        x = {"mat": lambda: np.moveaxis(scipy.io.loadmat(out)["recon"], -1, 0),
             "npz": lambda: np.load(out)["recon"], "npy": lambda: np.load(out)}[fmt]()
        np.testing.assert_allclose(x, scene_recon, atol=1e-6)

    def test_out_with_trailing_slash_is_a_directory_even_before_it_exists(self, tmp_path: Path, scene: Scene) -> None:
        result = reconstruct(scene, f"{tmp_path / 'newdir'}{os.sep}", "--format", "npz")
        ok(result)
        assert (tmp_path / "newdir" / "meas_gap-tv.npz").exists()

    def test_gif_preview_animates_every_frame(self, tmp_path: Path, scene: Scene) -> None:
        ok(reconstruct(scene, tmp_path / "x.tif", "--preview", tmp_path / "x.gif"))
        gif = iio.imread(tmp_path / "x.gif", index=None)
        assert gif.shape[0] == F and gif.shape[1:3] == (H, W)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["x.gif", "x.json", "x.tif"]

    def test_png_preview_is_one_montage_image(self, tmp_path: Path, scene: Scene) -> None:
        ok(reconstruct(scene, tmp_path / "x.tif", "--preview", tmp_path / "x.png"))
        png = iio.imread(tmp_path / "x.png")
        assert png.ndim == 2 and png.shape[0] > 2 * H and png.shape[1] > 2 * W

    def test_report_can_go_elsewhere(self, tmp_path: Path, scene: Scene) -> None:
        ok(reconstruct(scene, tmp_path / "x.tif", "--report", tmp_path / "reports" / "run.json"))
        assert read_json(tmp_path / "reports" / "run.json")["output"] == str(tmp_path / "x.tif")
        assert not (tmp_path / "x.json").exists()

    def test_param_and_named_options_land_in_the_report(self, tmp_path: Path, scene: Scene) -> None:
        ok(invoke_cli(
            "reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--out", tmp_path / "x.tif",
            "-p", "tv_weight=0.2", "--param", "accelerate=false", "-p", "tv-iters=3", "--iters", 7, "--step", 0.9,
        ))
        doc = read_json(tmp_path / "x.json")
        assert doc["parameters"]["tv_weight"] == 0.2
        assert doc["parameters"]["accelerate"] is False
        assert doc["parameters"]["tv_iters"] == 3  # '-' and '_' are the same in names
        assert doc["parameters"]["iters"] == 7
        assert doc["parameters"]["step"] == 0.9
        assert sum(b["iterations"] for b in doc["batches"]) == 7

    @pytest.mark.parametrize("method", ["gd-tv", "admm-tv", "gap-tv"])
    def test_every_method_runs_and_is_named_in_the_report(self, tmp_path: Path, scene: Scene, method: str) -> None:
        ok(reconstruct(scene, tmp_path / "x.tif", "--method", method, "--iters", 3))
        doc = read_json(tmp_path / "x.json")
        assert doc["method"] == method
        assert doc["parameters"]["iters"] == 3

    def test_quiet_prints_one_summary_line_instead_of_a_table(self, tmp_path: Path, scene: Scene) -> None:
        result = ok(reconstruct(scene, tmp_path / "x.tif", "-q"))
        assert len(result.stdout.strip().splitlines()) == 1
        assert "PSNR" in result.stdout and "gap-tv" in result.stdout

    def test_methods_lists_every_solver_with_its_defaults(self) -> None:
        result = ok(invoke_cli("methods"))
        for name in ("gd-tv", "admm-tv", "gap-tv"):
            assert name in result.stdout
        assert "iters=40" in result.stdout and "iters=200" in result.stdout

        verbose = ok(invoke_cli("methods", "--verbose")).stdout
        for entry in METHODS.entries():
            assert re.search(rf"^{entry.name}: {re.escape(entry.summary.split()[0])}", verbose, re.M)
            for name, default, _ in entry.factory.describe():
                shown = format_default(default)  # 0.0 -> 0, (10.0, 10.0) -> 10,10, True -> true
                assert re.search(rf"^\s+{name}\s+{re.escape(shown)}\s", verbose, re.M), (entry.name, name)

    def test_version(self) -> None:
        result = ok(invoke_cli("--version"))
        assert result.stdout.strip() == f"scicli {scicli.__version__}"

    def test_no_arguments_shows_help(self) -> None:
        result = invoke_cli()
        assert "simulate" in result.output and "reconstruct" in result.output and "evaluate" in result.output


# ============================================================================= several inputs
class TestSeveralInputs:
    @pytest.fixture
    def inputs(self, tmp_path: Path, scene: Scene) -> Path:
        """A folder with two copies of the snapshots, a.npy and b.npy."""
        folder = tmp_path / "in"
        folder.mkdir()
        np.save(folder / "a.npy", scene.meas)
        np.save(folder / "b.npy", scene.meas)
        return folder

    def test_two_files_go_into_an_output_directory(
        self, tmp_path: Path, scene: Scene, inputs: Path, scene_recon: np.ndarray
    ) -> None:
        out = tmp_path / "outdir"
        result = ok(invoke_cli("reconstruct", inputs / "a.npy", inputs / "b.npy", "--mask", scene.npy / "mask.npy",
                               "--iters", ITERS, "--out", f"{out}{os.sep}"))
        assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.tif", "b.json", "b.tif"]
        for stem in "ab":
            np.testing.assert_allclose(tifffile.imread(out / f"{stem}.tif"), scene_recon, atol=1e-5)
            assert read_json(out / f"{stem}.json")["input"] == str(inputs / f"{stem}.npy")
        assert "a.npy" in result.stdout and "b.npy" in result.stdout

    def test_a_directory_input_takes_every_measurement_file_but_the_mask(
        self, tmp_path: Path, scene: Scene, inputs: Path
    ) -> None:
        np.save(inputs / "mask.npy", scene.mask)  # named by --mask, so not a measurement
        out = tmp_path / "outdir"
        ok(invoke_cli("reconstruct", inputs, "--mask", inputs / "mask.npy", "--iters", 2, "--out", out,
                      "--format", "npy"))
        assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.npy", "b.json", "b.npy"]

    def test_a_bad_file_is_reported_and_skipped_the_others_are_written(
        self, tmp_path: Path, scene: Scene, inputs: Path
    ) -> None:
        data = (inputs / "a.npy").read_bytes()
        (inputs / "broken.npy").write_bytes(data[: len(data) // 2])
        out = tmp_path / "outdir"
        result = invoke_cli("reconstruct", inputs, "--mask", scene.npy / "mask.npy", "--iters", 2, "--out", out)
        assert result.exit_code == 1, explain(result)
        errors = error_lines(result)
        assert len(errors) == 1 and "broken.npy" in errors[0] and "skipped" in errors[0]
        assert "1 of 3 inputs failed" in result.stderr
        assert "Traceback" not in result.output
        assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.tif", "b.json", "b.tif"]

    def test_several_inputs_need_an_output_directory_not_a_file(self, tmp_path: Path, scene: Scene, inputs: Path) -> None:
        result = invoke_cli("reconstruct", inputs / "a.npy", inputs / "b.npy", "--mask", scene.npy / "mask.npy",
                            "--out", tmp_path / "x.tif")
        assert_one_line_error(result, 2, "x.tif", "directory")

    def test_gt_applies_to_a_single_input_only(self, tmp_path: Path, scene: Scene, inputs: Path) -> None:
        result = invoke_cli("reconstruct", inputs, "--mask", scene.npy / "mask.npy", "--gt", scene.npy / "orig.npy",
                            "--out", tmp_path / "o")
        assert_one_line_error(result, 2, "--gt")
        assert_nothing_written(tmp_path / "o")

    def test_two_inputs_with_the_same_name_are_refused_before_any_work(
        self, tmp_path: Path, scene: Scene, inputs: Path
    ) -> None:
        (tmp_path / "other").mkdir()
        np.save(tmp_path / "other" / "a.npy", scene.meas)
        result = invoke_cli("reconstruct", inputs / "a.npy", tmp_path / "other" / "a.npy",
                            "--mask", scene.npy / "mask.npy", "--out", tmp_path / "o")
        assert_one_line_error(result, 2, "a.tif", "both")
        assert_nothing_written(tmp_path / "o")


# ============================================================================= errors
@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory, scene: Scene) -> Path:
    """Broken and mismatched inputs, next to copies of the good ones."""
    d = tmp_path_factory.mktemp("bad")
    meas_bytes = (scene.npy / "meas.npy").read_bytes()
    (d / "truncated.npy").write_bytes(meas_bytes[: len(meas_bytes) // 2])
    (d / "corrupt.mat").write_bytes(b"MATLAB 5.0 MAT-file, not really" + bytes(range(256)) * 4)
    np.save(d / "pickled.npy", np.array([{"meas": 1}], dtype=object), allow_pickle=True)
    nan = scene.meas.copy()
    nan[1, 5, 7] = np.nan
    np.save(d / "nan.npy", nan)
    np.save(d / "zero_mask.npy", np.zeros((B, H, W), np.uint8))
    np.save(d / "narrow_mask.npy", np.ones((B, 30, W), np.uint8))
    np.save(d / "short_gt.npy", scene.orig[:12])
    np.save(d / "small_gt.npy", scene.orig[:, :30])
    (d / "mask.txt").write_bytes((scene.npy / "mask.npy").read_bytes())  # right content, unsupported name
    return d


def _error_cases() -> list:
    """(id, exit code, args from (scene, bad inputs dir, output dir), substrings of the error line).

    ``reconstruct`` cases get ``--iters 2 --out OUT/x.tif`` appended, ``simulate`` cases ``--out OUT/sim``.
    """
    def rec(meas: str | None = None, mask: str | None = "good", *extra: object):
        """reconstruct [BAD/meas or the good meas.npy] [--mask BAD/mask or the good mask.npy] EXTRA"""
        def args(s: Scene, b: Path, o: Path) -> list[object]:
            found = [b / meas if meas else s.npy / "meas.npy"]
            if mask:
                found += ["--mask", s.npy / "mask.npy" if mask == "good" else b / mask]
            return ["reconstruct", *found, *[b / e.name if isinstance(e, Path) else e for e in extra]]
        return args

    return [
        ("missing input", 2, rec("nope.npy"), ["nope.npy", "not found"]),
        ("missing mask", 2, rec(None, "nope_mask.npy"), ["nope_mask.npy", "not found"]),
        ("unsupported suffix", 2, rec(None, "mask.txt"), ["mask.txt", "unsupported file type"]),
        ("unknown key", 2, lambda s, b, o: ["reconstruct", s.mat / "sim.mat", "--key", "nope"],
         ["sim.mat", "'nope'", "meas, mask, orig"]),
        ("no mask anywhere", 2, rec(None, None), ["meas.npy", "--mask"]),
        ("truncated npy", 1, rec("truncated.npy"), ["truncated.npy"]),
        ("corrupt mat", 1, lambda s, b, o: ["reconstruct", b / "corrupt.mat"], ["corrupt.mat"]),
        ("pickled npy", 1, rec("pickled.npy"), ["pickled.npy", "pickle"]),
        ("shapes do not fit", 2, rec(None, "narrow_mask.npy"), ["narrow_mask.npy", "(8, 30, 40)", "(2, 32, 40)"]),
        ("all-zero mask", 1, rec(None, "zero_mask.npy"), ["zero_mask.npy", "all zeros"]),
        ("NaN in measurement", 1, rec("nan.npy"), ["nan.npy", "NaN"]),
        ("ground truth too short", 2, rec(None, "good", "--gt", Path("short_gt.npy")), ["short_gt.npy", "12 frames"]),
        ("ground truth frame size", 2, rec(None, "good", "--gt", Path("small_gt.npy")), ["small_gt.npy", "(16, 30, 40)"]),
        ("unknown method", 2, rec(None, "good", "--method", "nope"), ["'nope'", "gap-tv", "admm-tv", "gd-tv"]),
        ("unknown parameter", 2, rec(None, "good", "-p", "foo=1"), ["'foo'", "tv_weight"]),
        ("bad parameter value", 2, rec(None, "good", "-p", "iters=abc"), ["'iters'", "'abc'", "whole number"]),
        ("parameter out of range", 2, rec(None, "good", "-p", "iters=0"), ["'iters'", ">= 1"]),
        ("non-finite parameter", 2, rec(None, "good", "-p", "tv_weight=nan"), ["'tv_weight'", "finite"]),
        ("param without =", 2, rec(None, "good", "-p", "iters"), ["NAME=VALUE", "'iters'"]),
        ("option of another method", 2, rec(None, "good", "--gamma", "0.1"), ["'gamma'"]),
        ("bad dtype", 2, rec(None, "good", "--dtype", "float64"), ["float64"]),
        ("bad format", 2, rec(None, "good", "--format", "bmp"), ["bmp"]),
        ("bad layout", 2, rec(None, "good", "--layout", "sideways"), ["sideways"]),
        ("bad ssim", 2, rec(None, "good", "--ssim", "fancy"), ["fancy"]),
        ("bad device", 2, rec(None, "good", "--device", "tpu"), ["tpu"]),
        ("measurement out of range", 2, rec(None, "good", "--measurements", "5"), ["'5'", "out of 2"]),
        ("evaluate missing file", 2, lambda s, b, o: ["evaluate", b / "nope.tif", s.npy / "orig.npy"], ["nope.tif"]),
        ("evaluate bad report suffix", 2,
         lambda s, b, o: ["evaluate", s.mat / "orig.mat", s.npy / "orig.npy", "--report", o / "r.txt"], ["r.txt"]),
        ("simulate missing video", 2, lambda s, b, o: ["simulate", b / "nope.tif"], ["nope.tif"]),
        ("simulate bad format", 2, lambda s, b, o: ["simulate", s.npy / "orig.npy", "--format", "avi"], ["avi"]),
    ]


ERROR_CASES = _error_cases()


@pytest.mark.parametrize("code, make_args, needles", [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES])
def test_errors_are_one_line_with_an_exit_code_and_write_nothing(
    tmp_path: Path, scene: Scene, bad: Path, code: int, make_args, needles: list[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args = make_args(scene, bad, out)
    if args[0] == "reconstruct":
        args += ["--iters", 2, "--out", out / "x.tif"]
    elif args[0] == "simulate":
        args += ["--out", out / "sim"]
    assert_one_line_error(invoke_cli(*args), code, *needles)
    assert_nothing_written(out)


@pytest.mark.parametrize("args, needle", [
    (["reconstruct", "x.npy", "--batch-size", "abc"], "'--batch-size'"),
    (["evaluate", "x.tif"], "Missing argument"),  # (reconstruct's inputs are optional: --from-report)
    (["simulate", "v.tif", "--frames", "0"], "'--frames'"),
    (["frobnicate"], "No such command"),
], ids=["not an integer", "missing argument", "below minimum", "unknown command"])
def test_command_line_syntax_errors_exit_2_without_traceback(tmp_path: Path, args: list[str], needle: str) -> None:
    """Caught by the option parser itself, before scicli runs: a usage box rather than one line."""
    result = invoke_cli(*args)
    assert result.exit_code == 2, explain(result)
    assert needle in result.stderr and "Usage:" in result.stderr
    assert "Traceback" not in result.output and result.stdout == ""


def test_cuda_device_when_absent_is_a_runtime_error(tmp_path: Path, scene: Scene) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    result = reconstruct(scene, tmp_path / "out" / "x.tif", "--device", "cuda")
    assert_one_line_error(result, 1, "--device cuda", "CUDA is not available")
    assert_nothing_written(tmp_path / "out")


class TestExistingOutputs:
    def test_refused_without_force_and_left_untouched_then_replaced_with_force(
        self, tmp_path: Path, scene: Scene
    ) -> None:
        out = tmp_path / "x.tif"
        ok(reconstruct(scene, out, "--iters", 2))
        before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}

        assert_one_line_error(reconstruct(scene, out, "--iters", 5), 2, str(out), "--force")
        assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before

        ok(reconstruct(scene, out, "--iters", 5, "--force"))
        assert read_json(tmp_path / "x.json")["parameters"]["iters"] == 5
        assert out.read_bytes() != before["x.tif"][0]
        no_temp_files(tmp_path)

    def test_an_existing_report_alone_also_blocks_the_run(self, tmp_path: Path, scene: Scene) -> None:
        (tmp_path / "x.json").write_text("{}")
        assert_one_line_error(reconstruct(scene, tmp_path / "x.tif"), 2, "x.json", "--force")
        assert not (tmp_path / "x.tif").exists()
        assert (tmp_path / "x.json").read_text() == "{}"

    def test_an_existing_preview_blocks_the_run(self, tmp_path: Path, scene: Scene) -> None:
        (tmp_path / "p.gif").write_bytes(b"old")
        result = reconstruct(scene, tmp_path / "x.tif", "--preview", tmp_path / "p.gif")
        assert_one_line_error(result, 2, "p.gif", "--force")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["p.gif"]

    def test_evaluate_refuses_to_overwrite_a_report(self, tmp_path: Path, scene: Scene) -> None:
        (tmp_path / "r.csv").write_text("old")
        args = ["evaluate", scene.mat / "orig.mat", scene.npy / "orig.npy", "--report", tmp_path / "r.csv"]
        assert_one_line_error(invoke_cli(*args), 2, "r.csv", "--force")
        assert (tmp_path / "r.csv").read_text() == "old"
        ok(invoke_cli(*args, "--force"))
        assert (tmp_path / "r.csv").read_text().startswith("frame,psnr,ssim")


class TestFailuresWhileWriting:
    def test_a_failing_write_leaves_no_partial_or_temporary_file(
        self, tmp_path: Path, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def disk_full(path, *args, **kwargs):
            Path(path).write_bytes(b"partial")
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(tifffile, "imwrite", disk_full)
        out = tmp_path / "out"
        result = reconstruct(scene, out / "x.tif", "--iters", 2)
        assert result.exit_code == 1, explain(result)
        assert error_lines(result) == [f"error: cannot write {out / 'x.tif'}: No space left on device"]
        assert "Traceback" not in result.output
        assert sorted(p.name for p in out.iterdir()) == []  # no output, no report, no .x.tmp-*.tif

    def test_an_unexpected_exception_is_still_one_line_pointing_to_debug(
        self, tmp_path: Path, scene: Scene, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def boom(*args, **kwargs):
            raise RuntimeError("solver exploded\nsecond line")

        monkeypatch.setattr("scicli.api.reconstruct", boom)  # the one code path of CLI and API
        result = reconstruct(scene, tmp_path / "out" / "x.tif")
        line = assert_one_line_error(result, 1, "RuntimeError: solver exploded", "scicli --debug")
        assert "second line" not in line
        assert_nothing_written(tmp_path / "out")


class TestDebug:
    def test_debug_lets_the_exception_through(self, tmp_path: Path, scene: Scene, bad: Path) -> None:
        args = ["reconstruct", scene.npy / "meas.npy", "--mask", bad / "zero_mask.npy", "--out", tmp_path / "x.tif"]
        result = invoke_cli("--debug", *args)
        assert result.exit_code == 1
        assert type(result.exception).__name__ == "DataError"
        assert "all zeros" in str(result.exception)

    def test_debug_does_not_stick_to_the_next_invocation(self, tmp_path: Path, scene: Scene, bad: Path) -> None:
        args = ["reconstruct", scene.npy / "meas.npy", "--mask", bad / "zero_mask.npy", "--out", tmp_path / "x.tif"]
        invoke_cli("--debug", *args)
        assert_one_line_error(invoke_cli(*args), 1, "zero_mask.npy")

    def test_debug_prints_a_traceback_in_a_real_process(self, tmp_path: Path, scene: Scene, bad: Path) -> None:
        args = ["reconstruct", str(scene.npy / "meas.npy"), "--mask", str(bad / "zero_mask.npy"),
                "--out", str(tmp_path / "x.tif")]
        env = {k: v for k, v in os.environ.items() if k != "SCICLI_DEBUG"}
        plain = subprocess.run([sys.executable, "-m", "scicli", *args], capture_output=True, text=True, env=env)
        assert plain.returncode == 1
        assert plain.stderr.strip().splitlines() == [
            f"error: {bad / 'zero_mask.npy'}: the mask is all zeros (no light reaches the sensor)"
        ]
        debug = subprocess.run([sys.executable, "-m", "scicli", "--debug", *args], capture_output=True, text=True, env=env)
        assert debug.returncode == 1
        assert "Traceback (most recent call last)" in debug.stderr
        assert "DataError" in debug.stderr and "all zeros" in debug.stderr
        no_temp_files(tmp_path)
