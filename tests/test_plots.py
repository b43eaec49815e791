"""Specification of the figures (``scicli.plots``) and of ``--plot DIR`` on reconstruct and evaluate.

The plotting functions return matplotlib Figures, checked here by their content: number of axes
and panels, titles, axis labels with units, colour bars, one line per measurement. The command
line writes them as PNG files (checked by their pixel size), atomically, after checking the
folder before any computation; importing the app does not load matplotlib.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from conftest import H, W, Scene, invoke_cli
from scicli.plots import (DPI, comparison_figure, convergence_figure, default_frames, metrics_figure, montage_figure,
                          plot_names, reconstruction_figures, spectra_figure, spectral_points, srgb_figure)


def _history(n: int, measurements: int, gt: bool = True) -> list[dict]:
    recs = []
    for k in range(1, n + 1):
        rec = {"iter": k, "residual": 1.0 / k, "residual_each": [1.0 / k + 0.01 * j for j in range(measurements)]}
        if gt:
            rec["psnr"] = 20.0 + k
            rec["psnr_each"] = [20.0 + k + j for j in range(measurements)]
        recs.append(rec)
    return recs


def _images(fig) -> list:
    """The image axes of a figure (those that show an image, not colour bars)."""
    return [ax for ax in fig.axes if ax.images]


def _colour_bars(fig) -> list:
    return [ax for ax in fig.axes if not ax.images and not ax.lines and not ax.patches and ax.get_label() == "<colorbar>"]


def test_convergence_draws_one_line_per_measurement_with_labelled_axes() -> None:
    batches = [{"measurements": [0, 2], "history": _history(10, 2)}, {"measurements": [2, 3], "history": _history(10, 1)}]
    fig = convergence_figure(batches, title="demo")
    res, psnr = fig.axes
    assert len(res.lines) == 3 and len(psnr.lines) == 3
    assert res.get_yscale() == "log"
    assert res.get_xlabel() == psnr.get_xlabel() == "iteration k"
    assert "residual" in res.get_ylabel() and psnr.get_ylabel() == "PSNR (dB)"
    assert sorted(t.get_text() for t in psnr.get_legend().get_texts()) == [f"measurement {k}" for k in range(3)]
    assert fig.get_suptitle() == "demo"


def test_convergence_without_ground_truth_has_the_residual_only() -> None:
    fig = convergence_figure([{"measurements": [0, 1], "history": _history(5, 1, gt=False)}])
    assert len(fig.axes) == 1


def test_convergence_of_a_learned_map_plots_its_fixed_point_residual() -> None:
    history = [{"iter": k, "fixed_point_residual": 0.5 ** k} for k in range(1, 6)]
    history[-1]["psnr"] = 30.0
    fig = convergence_figure([{"measurements": [0, 2], "history": history}])
    assert "fixed-point" in fig.axes[0].get_ylabel()
    assert fig.axes[0].lines[0].get_label() == "measurements 0-1 (mean)"
    assert len(fig.axes[1].lines[0].get_xdata()) == 1  # PSNR is known at the last evaluation only


def test_montage_shows_truth_reconstruction_and_error_for_each_chosen_frame() -> None:
    rng = np.random.default_rng(0)
    ref = rng.random((6, 20, 30))
    x = np.clip(ref + 0.05 * rng.standard_normal(ref.shape), 0, 1)
    fig = montage_figure(x, ref, [0, 5], title="t")
    images = _images(fig)
    assert len(images) == 6
    titles = [ax.get_title() for ax in images]
    assert titles[0] == "ground truth, frame 0" and titles[1].startswith("reconstruction, frame 0 (")
    assert titles[1].endswith(" dB)") and titles[5] == "error |x - x_true|, frame 5"
    assert len(fig.axes) == 6 + 3  # one colour bar per column
    assert {ax.get_xlabel() for ax in fig.axes if ax not in images} == {"intensity [0, 1]",
                                                                        "|error| (top: 99.5th percentile)"}
    assert len(_images(montage_figure(x, None, None))) == len(default_frames(6)) == 3  # reconstruction only
    numbered = montage_figure(x, ref, [1], numbers=[10, 11, 12, 13, 14, 15])  # frames 10..15 of the truth file
    assert _images(numbered)[0].get_title() == "ground truth, frame 11"


def test_default_frames_are_first_middle_last() -> None:
    assert default_frames(16) == [0, 8, 15]
    assert default_frames(2) == [0, 1]


def test_metrics_bars_have_one_bar_per_frame_and_units() -> None:
    fig = metrics_figure([30.0, 31.0, float("inf")], [0.9, 0.91, 1.0], [4, 5, 6])
    ax_p, ax_s = fig.axes
    assert len(ax_p.patches) == len(ax_s.patches) == 3
    assert ax_p.get_ylabel() == "PSNR (dB)" and ax_s.get_ylabel() == "SSIM" and ax_s.get_xlabel() == "frame"
    assert [t.get_text() for t in ax_s.get_xticklabels()] == ["4", "5", "6"]
    assert "mean" in ax_p.get_title()


def test_spectral_figures_render_srgb_and_spectra_against_wavelength() -> None:
    rng = np.random.default_rng(1)
    cube = rng.random((28, 24, 32)) * 0.5
    fig = srgb_figure(cube, cube * 0.9)
    assert [ax.get_title().split(" (")[0] for ax in fig.axes] == ["ground truth", "reconstruction"]
    assert fig.axes[0].images[0].get_array().shape == (24, 32, 3)
    points = spectral_points(cube, 4)
    assert len(points) == 4 and all(0 <= r < 24 and 0 <= c < 32 for r, c in points)
    fig = spectra_figure(cube, cube * 0.9, points=points)
    ax_img, ax_s = fig.axes
    assert ax_s.get_xlabel() == "wavelength (nm)" and ax_s.get_ylabel() == "intensity [0, 1]"
    assert len(ax_s.lines) == 8  # reconstruction and ground truth at each of 4 points
    assert ax_s.lines[0].get_xdata()[0] == pytest.approx(453.3)


def test_reconstruction_figures_by_operator() -> None:
    x = np.random.default_rng(2).random((2, 4, 16, 16))
    batches = [{"measurements": [0, 2], "history": _history(3, 2)}]
    assert set(reconstruction_figures(x, batches, x)) == {"convergence", "montage", "metrics"}
    assert set(reconstruction_figures(x, batches, None)) == {"convergence", "montage"}
    cube = np.random.default_rng(3).random((1, 28, 16, 16))
    spectral = reconstruction_figures(cube, batches, cube, operator="cassi")
    assert set(spectral) == {"convergence", "montage", "metrics", "srgb", "spectra"}
    titles = [ax.get_title() for ax in spectral["montage"].axes if ax.get_title()]
    assert "ground truth, band 0 (453 nm)" in titles  # TSA's first band centre, 453.3 nm
    assert plot_names("a", spectral=True)[-2:] == ["a-srgb.png", "a-spectra.png"]


def test_comparison_puts_methods_side_by_side() -> None:
    ref = np.random.default_rng(4).random((3, 16, 16))
    fig = comparison_figure({"gap-tv": ref * 0.9, "pnp-gap": ref * 0.95}, ref, [0, 2])
    titles = [ax.get_title() for ax in _images(fig)]
    assert len(titles) == 2 * 5
    assert titles[0] == "ground truth, frame 0" and titles[1].startswith("gap-tv (") and titles[4] == "pnp-gap: |x - x_true|"


# ----------------------------------------------------------------------------- command line
def _png_size(path: Path) -> tuple[int, int]:
    img = iio.imread(path)
    return img.shape[1], img.shape[0]


def test_reconstruct_plot_writes_the_figures(scene: Scene, tmp_path: Path) -> None:
    r = invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--gt",
                   scene.npy / "orig.npy", "--iters", "3", "--out", tmp_path / "x.tif", "--plot", tmp_path / "plots",
                   "--plot-frames", "0,9", "-q")
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert files == ["x-convergence.png", "x-metrics.png", "x-montage.png"]
    width, height = _png_size(tmp_path / "plots" / "x-montage.png")
    assert width > 3 * W and height > 2 * H
    assert _png_size(tmp_path / "plots" / "x-convergence.png") == (round(2 * 4.6 * DPI), round(3.4 * DPI))


def test_evaluate_plot_writes_montage_and_scores(scene: Scene, tmp_path: Path) -> None:
    np.save(tmp_path / "recon.npy", np.clip(scene.orig + 0.02, 0, 1))
    r = invoke_cli("evaluate", tmp_path / "recon.npy", scene.npy / "orig.npy", "--plot", tmp_path / "p", "-q")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["recon-metrics.png", "recon-montage.png"]
    assert len(_png_size(tmp_path / "p" / "recon-metrics.png")) == 2


def test_plot_folder_is_checked_before_any_computation(scene: Scene, tmp_path: Path) -> None:
    (tmp_path / "plots").write_text("a file")
    r = invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--out",
                   tmp_path / "x.tif", "--plot", tmp_path / "plots" / "sub")
    assert r.exit_code == 2 and "is a file, not a folder" in r.stderr
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "x-montage.png").write_bytes(b"old")
    r = invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--out",
                   tmp_path / "x.tif", "--plot", tmp_path / "p")
    assert r.exit_code == 2 and "exists; pass --force" in r.stderr
    assert not (tmp_path / "x.tif").exists() and sorted(p.name for p in (tmp_path / "p").iterdir()) == ["x-montage.png"]


def test_the_app_does_not_import_matplotlib() -> None:
    code = "import sys, scicli, scicli.cli.app, scicli.plots; print(any(m.startswith('matplotlib') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
