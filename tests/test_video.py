"""The multi-frame video denoiser: windows, FFDNet start, training and use in PnP.

Stage 1 is the frozen FFDNet, stage 2 a temporal fusion whose last layer starts at zero, so
an untrained video denoiser is exactly FFDNet frame by frame; training adds what neighbouring
frames say about the centre frame.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from conftest import invoke_cli
from scicli.priors import DENOISERS
from scicli.weights.ffdnet import load_ffdnet
from scicli.core.errors import UsageError
from scicli.nets.video import windows
from scicli.weights import build_model
from scicli.train.checkpoint import model_config
from scicli.weights.store import load_checkpoint


def test_windows_reflect_at_the_ends_of_a_snapshot() -> None:
    x = torch.arange(6.0).reshape(1, 6, 1, 1)
    w = windows(x, 5)[:, :, 0, 0]
    assert w.shape == (6, 5)
    assert w[0].tolist() == [2, 1, 0, 1, 2]
    assert w[2].tolist() == [0, 1, 2, 3, 4]
    assert w[5].tolist() == [3, 4, 5, 4, 3]
    assert windows(torch.zeros(2, 1, 3, 4), 3).shape == (2, 3, 3, 4)  # B = 1: the frame repeated


def test_an_untrained_video_denoiser_is_ffdnet_frame_by_frame() -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 6, 20, 26)
    net = build_model("video", {"frames": 5, "channels": [8, 16]}).eval()
    ffd = load_ffdnet().eval()
    with torch.no_grad():
        expect = ffd(x.reshape(12, 1, 20, 26), 0.1).reshape(2, 6, 20, 26)
        got = net.denoise_video(x, 0.1)
    torch.testing.assert_close(got, expect, atol=1e-5, rtol=0)


def test_ffdnet_stays_out_of_the_checkpoint_and_the_gradients() -> None:
    net = build_model("video", {"frames": 3, "channels": [8]})
    assert all(k.startswith("fusion.") for k in net.state_dict())
    out = net(torch.rand(2, 3, 16, 16), torch.tensor([0.1, 0.2]))
    out.sum().backward()
    assert out.shape == (2, 1, 16, 16)
    assert all(p.grad is not None for p in net.fusion.parameters())


def test_model_options() -> None:
    assert model_config("video") == {"frames": 5, "channels": [32, 64]}
    assert model_config("video", width=8, depth=3, params={"frames": "3"}) == {"frames": 3, "channels": [8, 16, 32]}
    with pytest.raises(UsageError, match="odd"):
        model_config("video", params={"frames": "4"})


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two short videos (multi-page TIFFs) of a pattern moving 1 px/frame."""
    folder = tmp_path_factory.mktemp("videos")
    yy, xx = np.mgrid[0:40, 0:40]
    for i in range(2):
        frames = [128 + 80 * np.sin((xx + t) / (3 + i)) * np.cos((yy - t) / 5) for t in range(9)]
        tifffile.imwrite(folder / f"v{i}.tif", np.clip(frames, 0, 255).astype(np.uint8))
    return folder


def test_train_video_and_use_it_in_pnp(clips: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = invoke_cli("train", "--method", "video", "--data", clips, "--out", run, "--patch", "24",
                        "--batch-size", "2", "--steps-per-epoch", "2", "--epochs", "1", "--width", "8",
                        "--depth", "2", "-p", "frames=3", "--quiet")
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(run / "best.pt", method="video")
    assert ckpt["config"] == {"frames": 3, "channels": [8, 16]}
    assert not any(k.startswith("_ffdnet") for k in ckpt["model"])

    D = DENOISERS.get("video").factory(weights=run / "best.pt")
    x = torch.rand(2, 8, 24, 30)
    y = D(x, 25 / 255)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
