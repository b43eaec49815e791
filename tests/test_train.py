"""``scicli train`` and its parts: data sources, random crops, models, checkpoints, resume.

The training data: six generated 48 x 48 grayscale PNGs (smooth patterns plus texture). Runs
are tiny (patch 32, batch 4, 2 steps per epoch) so the whole file takes seconds on a CPU.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from conftest import invoke_cli, ok, still_image
from scicli.priors import DENOISERS
from scicli.core.errors import DataError, ScicliError, UsageError
from scicli.nets.dncnn import DnCNN
from scicli.nets.unet import UNet
from scicli.train.checkpoint import model_config
from scicli.weights.store import load_checkpoint
from scicli.data.datasets import (
    ClipDataset,
    PatchDataset,
    Source,
    SourceCache,
    center_crops,
    dihedral,
    downscale,
    list_sources,
    split_sources,
)
from scicli.train.loop import Reporter, TrainArgs, read_log, train

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TINY = ["--patch", "32", "--batch-size", "4", "--steps-per-epoch", "2", "--log-every", "1", "--quiet"]


def _image(i: int, size: int = 48) -> np.ndarray:
    return still_image(i, size)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("train_images")
    for i in range(6):
        iio.imwrite(folder / f"img_{i}.png", _image(i))
    return folder


def errors(result) -> list[str]:
    return [line for line in ANSI.sub("", result.stderr).splitlines() if line.startswith("error:")]


def one_error(result, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    lines = errors(result)
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[0]


# ----------------------------------------------------------------------------- data
def test_list_sources_reads_every_layout(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    rgb = np.stack([_image(1), _image(2), _image(3)], axis=-1)
    iio.imwrite(root / "colour.png", rgb)
    iio.imwrite(root / "gray.jpg", _image(4))
    (root / "clip").mkdir()  # a sub-folder of frames is one video
    for t in range(5):
        iio.imwrite(root / "clip" / f"f{t}.png", np.roll(_image(5), t, axis=1))
    np.save(root / "video.npy", np.stack([_image(6)] * 4).astype(np.float32) / 255)
    iio.imwrite(root / "anim.gif", np.stack([_image(7), _image(8)]))
    tifffile.imwrite(tmp_path / "pages.tif", np.stack([_image(9)] * 3), photometric="minisblack")
    (root / "notes.txt").write_text("not data")

    sources = list_sources([root, tmp_path / "pages.tif"])
    names = {Path(s.path).name: s for s in sources}
    assert set(names) == {"colour.png", "gray.jpg", "clip", "video.npy", "anim.gif", "pages.tif"}
    assert names["clip"].frames_dir
    cache = SourceCache()
    shapes = {n: cache.shape(s) for n, s in names.items()}
    assert shapes == {"colour.png": (1, 48, 48), "gray.jpg": (1, 48, 48), "clip": (5, 48, 48),
                      "video.npy": (4, 48, 48), "anim.gif": (2, 48, 48), "pages.tif": (3, 48, 48)}
    luma = cache.get(names["colour.png"]).astype(np.float64)[0]
    expected = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(luma - expected).max() <= 0.5 + 1e-9  # luminance, stored as 8-bit
    assert list_sources([f"frames:{root / 'clip'}"]) == [Source(root / "clip", frames_dir=True)]
    assert len(list_sources([f"images:{root / 'clip'}"])) == 5


def test_list_sources_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        list_sources([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no training data"):
        list_sources([tmp_path / "empty"])


def test_patch_dataset_shapes_range_and_determinism(images: Path) -> None:
    sources = list_sources([images])
    ds = PatchDataset(sources, patch=32, length=50, seed=3)
    x = ds[0]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    again = PatchDataset(sources, patch=32, length=50, seed=3)
    assert all(torch.equal(ds[i], again[i]) for i in range(10))
    assert not torch.equal(ds[0], ds[1])
    assert not torch.equal(ds[0], PatchDataset(sources, patch=32, length=50, seed=4)[0])
    first = ds[5]
    ds.set_epoch(1)
    assert not torch.equal(first, ds[5])
    assert len(ds) == 50
    with pytest.raises(IndexError):
        ds[50]
    # a patch larger than the image is mirror-padded
    assert PatchDataset(sources, patch=64, length=2)[0].shape == (1, 64, 64)


def test_patch_augmentation_is_one_of_the_eight_symmetries(images: Path) -> None:
    sources = list_sources([images])
    plain_ds = PatchDataset(sources, patch=32, length=64, seed=0, augment=False)
    aug_ds = PatchDataset(sources, patch=32, length=64, seed=0, augment=True)
    seen = set()
    for i in range(64):
        base, aug = plain_ds[i].numpy(), aug_ds[i].numpy()
        matches = [(k, f) for k in range(4) for f in (False, True) if np.array_equal(dihedral(base, k, f), aug)]
        assert matches, i
        seen.add(matches[0])
    assert len(seen) == 8


def test_clip_dataset_videos_and_panned_stills(tmp_path: Path, images: Path) -> None:
    video = np.stack([np.roll(_image(1), 2 * t, axis=1) for t in range(12)])
    np.save(tmp_path / "video.npy", video)
    clips = ClipDataset([Source(tmp_path / "video.npy")], frames=8, patch=24, length=20, seed=1, augment=False)
    c = clips[0]
    assert c.shape == (8, 24, 24) and c.dtype == torch.float32
    frames = video.astype(np.float32) / 255
    # the clip is 8 consecutive frames at one crop position
    hits = [(s, r, q) for s in range(5) for r in range(25) for q in range(25)
            if np.array_equal(frames[s:s + 8, r:r + 24, q:q + 24], c.numpy())]
    assert len(hits) >= 1
    assert torch.equal(c, ClipDataset([Source(tmp_path / "video.npy")], frames=8, patch=24, length=20,
                                      seed=1, augment=False)[0])

    stills = list_sources([images])
    frozen = ClipDataset(stills, frames=4, patch=24, length=4, seed=0, max_shift=0.0)[0]
    assert all(torch.equal(frozen[0], frozen[t]) for t in range(4))
    moving = ClipDataset(stills, frames=4, patch=24, length=4, seed=0, max_shift=3.0)[0]
    assert moving.shape == (4, 24, 24)
    assert not torch.equal(moving[0], moving[1])
    # neighbouring frames of a smooth pan are much closer than unrelated crops
    step = float((moving[1] - moving[0]).abs().mean())
    assert step < float((moving[0] - moving[0].flip(-1)).abs().mean())
    # a video shorter than the clip plays back and forth
    np.save(tmp_path / "short.npy", video[:3])
    assert ClipDataset([Source(tmp_path / "short.npy")], frames=8, patch=16, length=1)[0].shape == (8, 16, 16)


def test_downscale_area_averages_frames_at_load_and_reports_the_new_size(tmp_path: Path) -> None:
    """--downscale F: every frame averaged down by F (DAVIS 480p at 1.875 is the 256-px scale of
    the validation scenes), in the cache, in the header-only shape and in the dataset's crops."""
    video = np.stack([_image(i, 48) for i in range(3)])  # uint8 (3, 48, 48)
    np.save(tmp_path / "v.npy", video)
    halved = downscale(video, 2.0)
    assert halved.dtype == np.uint8 and halved.shape == (3, 24, 24)
    blocks = video.astype(np.float64).reshape(3, 24, 2, 24, 2).mean(axis=(2, 4))
    assert np.abs(halved.astype(np.float64) - blocks).max() <= 0.5  # 2 x 2 means, rounded to 8 bits
    assert downscale(video, 1.0) is video
    assert downscale(video.astype(np.float32) / 255, 1.875).shape == (3, 26, 26)
    cache = SourceCache(downscale=2.0)
    src = Source(tmp_path / "v.npy")
    assert cache.shape(src) == (3, 24, 24)  # from the header, before any read
    assert np.array_equal(cache.get(src), halved) and cache.shape(src) == (3, 24, 24)
    clip = ClipDataset([src], frames=2, patch=24, length=1, augment=False, cache=cache)[0]
    assert np.allclose(clip.numpy(), halved[:2] / 255.0) or np.allclose(clip.numpy(), halved[1:3] / 255.0)
    with pytest.raises(UsageError, match="--downscale"):
        SourceCache(downscale=0.5)
    args = TrainArgs(method="dncnn", data=["d"], out="o", downscale=1.875)
    assert "--downscale 1.875" in args.command() and "--downscale" not in TrainArgs("dncnn", ["d"], "o").command()
    with pytest.raises(UsageError, match="--downscale"):
        TrainArgs(method="dncnn", data=["d"], out="o", downscale=0.0).check()


def test_validation_split_is_disjoint_by_file(images: Path, tmp_path: Path) -> None:
    sources = [Source(tmp_path / f"{i}.png") for i in range(40)]
    train_s, val_s = split_sources(sources, 0.05, seed=0)
    assert len(val_s) == 2 and len(train_s) == 38
    assert not set(train_s) & set(val_s) and set(train_s) | set(val_s) == set(sources)
    assert split_sources(sources, 0.05, seed=0) == (train_s, val_s)
    assert split_sources(sources, 0.05, seed=1)[1] != val_s
    assert len(split_sources(sources[:6], 0.01, seed=0)[1]) == 1  # at least one file
    assert split_sources(sources, 0.0, seed=0) == (sources, [])
    with pytest.raises(UsageError, match="at least 2"):
        split_sources(sources[:1], 0.05, seed=0)
    crops = center_crops(list_sources([images])[:2], size=40)
    assert [c.shape for c in crops] == [(1, 40, 40), (1, 40, 40)]
    expected = _image(0)[4:44, 4:44].astype(np.float32) / 255
    assert np.array_equal(crops[0][0], expected)


# ----------------------------------------------------------------------------- models
@pytest.mark.parametrize("net", [DnCNN(depth=4, width=8), UNet(channels=(4, 8, 16))])
def test_models_keep_any_shape_and_take_per_image_sigma(net: torch.nn.Module) -> None:
    x = torch.rand(3, 1, 21, 34)
    y = net(x, torch.tensor([0.1, 0.2, 0.3]))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert net(x, 0.1).shape == x.shape
    rebuilt = type(net)(**net.config)
    rebuilt.load_state_dict(net.state_dict())
    assert torch.equal(rebuilt(x, 0.1), net(x, 0.1))


def test_model_options() -> None:
    assert model_config("dncnn") == {"depth": 10, "width": 32, "channels": 1}
    assert model_config("dncnn", width=16, params={"depth": "6"}) == {"depth": 6, "width": 16, "channels": 1}
    assert model_config("unet", width=8, depth=2)["channels"] == [8, 16]
    assert model_config("unet", params={"channels": "4,8,16"})["channels"] == [4, 8, 16]
    with pytest.raises(UsageError, match="unknown dncnn option"):
        model_config("dncnn", params={"chanels": "3"})
    with pytest.raises(UsageError, match="unknown --method"):
        model_config("deq-ista")


# ----------------------------------------------------------------------------- CLI and loop
def test_train_dncnn_writes_run_and_denoiser_loads_it(images: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = ok(invoke_cli("train", "--method", "dncnn", "--data", images, "--out", run, "--epochs", "2",
                           "--width", "8", "--depth", "4", *TINY))
    assert {p.name for p in run.iterdir()} == {"last.pt", "best.pt", "log.jsonl", "run.json"}
    assert "best epoch" in result.stdout
    records = read_log(run / "log.jsonl")
    epochs = [r for r in records if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert len([r for r in records if r["type"] == "step"]) == 4
    assert set(epochs[0]["val"]) == {"15", "25", "50"}
    ckpt = torch.load(run / "last.pt", weights_only=True)
    assert ckpt["method"] == "dncnn" and ckpt["epoch"] == 2 and ckpt["step"] == 4
    assert ckpt["config"] == {"depth": 4, "width": 8, "channels": 1}
    assert {"torch", "numpy", "python"} <= set(ckpt["rng"])
    assert {"optimizer", "scheduler", "args", "val", "scicli_version"} <= set(ckpt)
    summary = json.loads((run / "run.json").read_text())
    assert summary["command"].startswith("scicli train --method dncnn")

    for weights in (run / "best.pt", run):  # a file or a run directory
        den = DENOISERS.get("dncnn").factory(weights=str(weights))
        x = torch.rand(2, 3, 20, 27)
        y = den(x, 25 / 255)
        assert y.shape == x.shape and y.dtype == x.dtype
        assert den.to("cpu", torch.float64)(x.double(), 0.1).dtype == torch.float64


class _StopAfterFirstEpoch(Reporter):
    def epoch(self, record: dict) -> None:
        raise KeyboardInterrupt


def test_resume_continues_bit_for_bit(images: Path, tmp_path: Path) -> None:
    common = ["--method", "dncnn", "--data", images, "--epochs", "2", "--width", "8", "--depth", "4", *TINY]
    ok(invoke_cli("train", *common, "--out", tmp_path / "whole"))

    args = TrainArgs(method="dncnn", data=[str(images)], out=str(tmp_path / "cut"),
                     model=model_config("dncnn", width=8, depth=4), patch=32, batch_size=4, steps_per_epoch=2,
                     epochs=2, log_every=1)
    with pytest.raises(KeyboardInterrupt):
        train(args, reporter=_StopAfterFirstEpoch())
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["epoch"] == 1
    ok(invoke_cli("train", "--resume", "--out", tmp_path / "cut", "--quiet"))

    whole = read_log(tmp_path / "whole" / "log.jsonl")
    cut = read_log(tmp_path / "cut" / "log.jsonl")
    losses = lambda recs: [(r["type"], r["step"], r["loss"]) for r in recs if r["type"] in ("step", "epoch")]  # noqa: E731
    assert losses(cut) == losses(whole)
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["val"] == b["val"]

    # a finished run cannot be resumed without more epochs; --epochs 3 continues it
    assert "already has 2 epochs" in one_error(invoke_cli("train", "--resume", "--out", tmp_path / "cut"))
    assert "differs" in one_error(invoke_cli("train", "--resume", "--out", tmp_path / "cut", "--epochs", "3",
                                             "--lr", "0.1"))
    ok(invoke_cli("train", "--resume", "--out", tmp_path / "cut", "--epochs", "3", "--quiet"))
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["step"] == 6


def test_train_unet_one_step_and_loads(images: Path, tmp_path: Path) -> None:
    run = tmp_path / "unet"
    ok(invoke_cli("train", "--method", "unet", "--data", images, "--out", run, "--epochs", "1",
                  "-p", "channels=4,8", "--patch", "32", "--batch-size", "2", "--steps-per-epoch", "1", "--quiet"))
    den = DENOISERS.get("unet").factory(weights=str(run / "best.pt"))
    x = torch.rand(1, 2, 19, 23)
    assert den(x, 0.1).shape == x.shape
    with pytest.raises(UsageError, match="'unet' model, not 'dncnn'"):
        DENOISERS.get("dncnn").factory(weights=str(run / "best.pt"))


def test_learned_denoiser_weight_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import scicli.weights.store as store

    monkeypatch.setattr(store, "WEIGHTS_DIR", tmp_path / "no_weights")  # as on a checkout without them
    with pytest.raises(ScicliError, match="no shipped dncnn weights yet.*weights=RUN/best.pt"):
        DENOISERS.get("dncnn").factory()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="not a readable scicli checkpoint"):
        DENOISERS.get("dncnn").factory(weights=str(bad))
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(DataError, match="not a scicli checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(UsageError, match="not found"):
        DENOISERS.get("unet").factory(weights=str(tmp_path / "missing.pt"))


def test_train_errors_are_one_line(images: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no training data" in one_error(invoke_cli("train", "--method", "dncnn", "--data", empty,
                                                      "--out", tmp_path / "r0"))
    assert "unknown --method 'deq-ista'" in one_error(invoke_cli("train", "--method", "deq-ista", "--data", images,
                                                                "--out", tmp_path / "r1"))
    assert "sigma-range" in one_error(invoke_cli("train", "--method", "dncnn", "--data", images,
                                                 "--out", tmp_path / "r2", "--sigma-range", "50,10"))
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "log.jsonl").write_text("{}\n")
    msg = one_error(invoke_cli("train", "--method", "dncnn", "--data", images, "--out", existing))
    assert "--resume" in msg and "--force" in msg
    assert "nothing to resume" in one_error(invoke_cli("train", "--resume", "--out", tmp_path / "r3"))
    assert "--downscale must be >= 1" in one_error(invoke_cli("train", "--method", "dncnn", "--data", images,
                                                             "--out", tmp_path / "r4", "--downscale", "0.5"))
    assert not (tmp_path / "r0").exists() and not (tmp_path / "r1").exists()

    run = tmp_path / "run"
    ok(invoke_cli("train", "--method", "dncnn", "--data", images, "--out", run, "--epochs", "1",
                  "--width", "4", "--depth", "3", "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "1",
                  "--quiet"))
    assert "'dncnn' run, not 'unet'" in one_error(invoke_cli("train", "--resume", "--method", "unet", "--out", run,
                                                             "--epochs", "2"))
    ok(invoke_cli("train", "--method", "unet", "--data", images, "--out", run, "--force", "--epochs", "1",
                  "-p", "channels=4", "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "1", "--quiet"))
    assert torch.load(run / "best.pt", weights_only=True)["method"] == "unet"


def test_kill_9_during_a_checkpoint_write_keeps_the_previous_last_pt(images: Path, tmp_path: Path) -> None:
    """Issue 13: ``kill -9`` in the middle of epoch 2's save of last.pt leaves epoch 1's last.pt
    loadable, and ``--resume`` continues from it (removing the killed write's temporary file)."""
    run = tmp_path / "run"
    argv = ["scicli", "train", "--method", "dncnn", "--data", str(images), "--out", str(run), "--epochs", "2",
            "--width", "8", "--depth", "4", *TINY]
    script = textwrap.dedent(f"""
        import os, signal, sys, torch
        real, calls = torch.save, []
        def save(obj, f, *a, **k):
            calls.append(f)
            real(obj, f, *a, **k)
            if len(calls) == 3:  # epoch 1: last.pt, best.pt; epoch 2: last.pt, killed half-written
                with open(f, "r+b") as fh:
                    fh.truncate(os.path.getsize(f) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        torch.save = save
        sys.argv = {argv!r}
        from scicli.cli.app import main
        main()
    """)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert len(list(run.glob(".last.tmp-*.pt"))) == 1
    ok(invoke_cli("train", "--resume", "--out", run, "--quiet"))
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert not list(run.glob(".*.tmp-*"))
