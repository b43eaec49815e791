"""The validation split by sequence: held-out sequences never reach training, the scenes are
exact noiseless snapshots of the chosen frames, the random masks are seeded."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from scicli.core.errors import UsageError
from scicli.data import validation
from scicli.data.datasets import list_sources
from scicli.physics import VideoSCI
from scicli.train.loop import TrainArgs

from conftest import blob_video


@pytest.fixture(scope="module")
def davis(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DAVIS-layout folder: three sequences of 12 numbered 24 x 40 RGB JPEG frames."""
    root = tmp_path_factory.mktemp("davis")
    for name in ("alpha", "bmx-trees", "gamma"):
        folder = root / name
        folder.mkdir()
        for t, frame in enumerate(blob_video(12, 24, 40)):
            iio.imwrite(folder / f"{t:05d}.jpg", np.repeat(frame[..., None], 3, axis=-1), quality=95)
    return root


def test_the_training_sequences_are_all_but_the_held_out_ones(davis: Path) -> None:
    assert validation.sequences(davis) == ["alpha", "bmx-trees", "gamma"]
    assert validation.training_sequences(davis) == ["alpha", "gamma"]


def test_train_data_can_exclude_the_validation_sequences_by_name(davis: Path) -> None:
    names = {s.path.name for s in list_sources([davis], exclude=["bmx-trees"])}
    assert names == {"alpha", "gamma"}
    with pytest.raises(UsageError, match="no training source"):
        list_sources([davis], exclude=["parkour"])  # a typo must not silently train on everything


def test_a_scene_is_the_noiseless_snapshot_of_the_middle_frames(davis: Path) -> None:
    scenes = validation.scenes(["bmx-trees"], masks=["random"], root=davis, frames=4, size=16)
    (scene,) = scenes
    assert scene.name == "bmx-trees/random" and scene.first_frame == (12 - 4) // 2
    assert scene.x.shape == scene.mask.shape == (4, 16, 16) and scene.y.shape == (16, 16)
    assert 0.0 <= scene.x.min() and scene.x.max() <= 1.0
    op = VideoSCI(torch.from_numpy(scene.mask))
    np.testing.assert_allclose(op.A(torch.from_numpy(scene.x)[None])[0].numpy(), scene.y, atol=1e-5)


def test_random_masks_are_seeded_and_differ_between_sequences() -> None:
    a = validation.mask_for("random", 0, 8, 32, seed=0)
    np.testing.assert_array_equal(a, validation.mask_for("random", 0, 8, 32, seed=0))
    assert not np.array_equal(a, validation.mask_for("random", 1, 8, 32, seed=0))
    assert set(np.unique(a)) == {0.0, 1.0}


def test_the_square_crop_is_area_averaged() -> None:
    frame = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)  # central square: columns 1..4
    out = validation.square_downscale(frame, 2)
    assert out.tolist() == [[np.mean(frame[:2, 1:3]), np.mean(frame[:2, 3:5])],
                            [np.mean(frame[2:, 1:3]), np.mean(frame[2:, 3:5])]]


def test_unknown_sequences_and_masks_are_one_line_errors(davis: Path) -> None:
    with pytest.raises(UsageError, match="no sequence parkour"):
        validation.scenes(["parkour"], root=davis)
    with pytest.raises(UsageError, match="unknown validation mask"):
        validation.mask_for("shifted-ish", 0, 8, 16)


@pytest.mark.skipif(not validation.DAVIS_ROOT.is_dir(), reason="shared DAVIS data not present")
def test_the_held_out_sequences_exist_in_the_shared_davis_folder() -> None:
    present = set(validation.sequences())
    assert set(validation.VALIDATION_SEQUENCES) <= present
    assert len(validation.training_sequences()) == len(present) - len(validation.VALIDATION_SEQUENCES)


def test_a_training_run_records_and_applies_its_exclusions(davis: Path, tmp_path: Path) -> None:
    args = TrainArgs(method="deq-gap", data=[str(davis)], out=str(tmp_path / "run"), exclude=["bmx-trees"])
    assert {s.path.name for s in args.sources()} == {"alpha", "gamma"}
    assert f"--data {davis} --exclude bmx-trees --out" in args.command()
