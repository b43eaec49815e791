"""Shared fixtures: a small synthetic video, a CACTI problem built from it, and a CLI runner.

The video: 16 frames of 32 x 40 pixels, three smooth Gaussian blobs moving in different
directions, stored as uint8 (0..255). With B = 8 frames per snapshot it gives K = 2 snapshots.
Everything is built once per session in a temporary directory; tests write their own outputs
into ``tmp_path`` and never into these shared directories.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
import scipy.io
import tifffile
from typer.testing import CliRunner, Result

from scicli.cli.app import app
from scicli.cli.common import STATE

F, B, H, W = 16, 8, 32, 40
K = F // B


def still_image(i: int, size: int = 48, noise: float = 8.0) -> np.ndarray:
    """A seeded 8-bit test still of ``size`` x ``size``: two sinusoids (periods set by i) and
    Gaussian noise of std ``noise`` (0: none), clipped to 0..255 (training tests' data)."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:size, 0:size]
    img = 128 + 60 * np.sin(xx / (3 + i)) + 50 * np.cos(yy / (4 + i))
    if noise:
        img = img + rng.normal(0, noise, (size, size))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_stills(folder: Path, count: int = 4, size: int = 48, noise: float = 8.0) -> Path:
    """``folder/img_{i}.png``, the stills :func:`still_image` i = 0..count-1 (a training set)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        iio.imwrite(folder / f"img_{i}.png", still_image(i, size, noise))
    return folder


def blob_video(frames: int = F, height: int = H, width: int = W) -> np.ndarray:
    """(frames, height, width) uint8 video of three smooth blobs moving on a dark background."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    blobs = [  # (row, col, row speed, col speed, sigma, amplitude)
        (10.0, 8.0, 0.5, 1.2, 5.0, 0.9),
        (22.0, 30.0, -0.4, -0.8, 7.0, 0.6),
        (16.0, 20.0, 0.2, 0.3, 10.0, 0.3),
    ]
    video = np.zeros((frames, height, width))
    for t in range(frames):
        for cy, cx, vy, vx, s, a in blobs:
            video[t] += a * np.exp(-((yy - cy - vy * t) ** 2 + (xx - cx - vx * t) ** 2) / (2 * s * s))
    return np.rint(np.clip(video, 0, 1) * 255).astype(np.uint8)


@dataclass(frozen=True)
class Scene:
    """One CACTI problem, frames first, on the [0, 1] scale, and where its files are.

    ``npy``: meas.npy (K, H, W) float32, mask.npy (B, H, W) uint8, orig.npy (F, H, W) float32.
    ``mat``: the same arrays frames last, in one benchmark-style sim.mat (keys meas, mask, orig)
    and as separate meas.mat / mask.mat / orig.mat files (one array each).
    """

    orig: np.ndarray
    mask: np.ndarray
    meas: np.ndarray
    npy: Path
    mat: Path


def explain(result: Result) -> str:
    """Everything a failed CLI run left: exit code, stdout, stderr, exception."""
    return (f"exit {result.exit_code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n"
            f"--- exception {result.exception!r}")


def ok(result: Result) -> Result:
    """A CLI run that succeeded: exit 0 and no traceback printed."""
    assert result.exit_code == 0, explain(result)
    assert "Traceback" not in result.output
    return result


def invoke_cli(*args: object, **kwargs: object) -> Result:
    """Run ``scicli ARGS`` in-process; paths are passed as strings."""
    return CliRunner().invoke(app, [str(a) for a in args], **kwargs)


@pytest.fixture(autouse=True)
def _no_sticky_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """``scicli --debug`` sets a module-level flag that outlives one in-process invocation."""
    monkeypatch.setitem(STATE, "debug", False)


@pytest.fixture(scope="session")
def video() -> np.ndarray:
    return blob_video()


@pytest.fixture(scope="session")
def video_tif(tmp_path_factory: pytest.TempPathFactory, video: np.ndarray) -> Path:
    """The video as a 16-page uint8 TIFF."""
    path = tmp_path_factory.mktemp("video") / "video.tif"
    tifffile.imwrite(path, video, photometric="minisblack")
    return path


@pytest.fixture(scope="session")
def scene(tmp_path_factory: pytest.TempPathFactory, video: np.ndarray) -> Scene:
    """meas_k = sum_t mask_t * orig_{kB+t} with a seeded random binary mask, in npy and mat files."""
    orig = (video / 255.0).astype(np.float32)
    mask = (np.random.default_rng(1).random((B, H, W)) < 0.5).astype(np.uint8)
    meas = (mask[None].astype(np.float64) * orig.reshape(K, B, H, W)).sum(axis=1).astype(np.float32)

    npy = tmp_path_factory.mktemp("scene_npy")
    np.save(npy / "meas.npy", meas)
    np.save(npy / "mask.npy", mask)
    np.save(npy / "orig.npy", orig)

    mat = tmp_path_factory.mktemp("scene_mat")
    last = {"meas": np.moveaxis(meas, 0, -1), "mask": np.moveaxis(mask, 0, -1), "orig": np.moveaxis(orig, 0, -1)}
    scipy.io.savemat(mat / "sim.mat", last)
    for name, arr in last.items():
        scipy.io.savemat(mat / f"{name}.mat", {name: arr})
    return Scene(orig=orig, mask=mask, meas=meas, npy=npy, mat=mat)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small frames gain nothing from threads, and on a busy 2-core machine two OpenMP threads
    spin-wait on each other (measured: 2.5 s instead of 0.02 s for 20 GAP-TV iterations).
    Modules opt in with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
