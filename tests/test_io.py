"""Tests for scicli.io: readers, writers, atomic writes and their error messages."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import tifffile

from scicli.core.errors import DataError, UsageError
from scicli.io import readers
from scicli.io import (
    SUPPORTED_SUFFIXES,
    WRITE_SUFFIXES,
    atomic_write,
    list_keys,
    read_array,
    write_array,
    write_json,
    write_preview,
    write_text,
)

SHAPE = (4, 16, 20)  # (F, H, W) with H != W


@pytest.fixture
def frames() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random(SHAPE).astype(np.float32)


@pytest.fixture
def frames_u8() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, SHAPE, dtype=np.uint8)


def _only_file(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# ----------------------------------------------------------------------------- round trips
def test_npy_round_trip(tmp_path: Path, frames: np.ndarray) -> None:
    out = write_array(tmp_path / "r.npy", frames)
    back = read_array(out)
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, frames)


def test_npy_keeps_dtype_and_bool_becomes_uint8(tmp_path: Path, frames_u8: np.ndarray) -> None:
    np.save(tmp_path / "u.npy", frames_u8)
    assert read_array(tmp_path / "u.npy").dtype == np.uint8
    np.save(tmp_path / "b.npy", frames_u8 > 128)
    back = read_array(tmp_path / "b.npy")
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, (frames_u8 > 128).astype(np.uint8))


def test_npz_key_and_roles(tmp_path: Path, frames: np.ndarray) -> None:
    out = write_array(tmp_path / "r.npz", frames, key="recon")
    assert list_keys(out) == ["recon"]
    np.testing.assert_array_equal(read_array(out, key="recon"), frames)
    np.testing.assert_array_equal(read_array(out), frames)  # the only array

    p = tmp_path / "data.npz"
    mask = (frames > 0.5).astype(np.uint8)
    np.savez(p, Phi=mask, Y=frames[0], orig=frames)
    assert list_keys(p) == ["Phi", "Y", "orig"]
    np.testing.assert_array_equal(read_array(p, role="mask"), mask)
    np.testing.assert_array_equal(read_array(p, role="meas"), frames[0])  # case-insensitive 'y'
    np.testing.assert_array_equal(read_array(p, role="orig"), frames)
    np.testing.assert_array_equal(read_array(p, key="Y"), frames[0])


def test_role_exact_match_beats_case_insensitive(tmp_path: Path, frames: np.ndarray) -> None:
    p = tmp_path / "d.npz"
    np.savez(p, MASK=frames, phi=frames[:2])
    np.testing.assert_array_equal(read_array(p, role="mask"), frames[:2])


def test_role_falls_back_to_single_numeric_array(tmp_path: Path, frames: np.ndarray) -> None:
    p = tmp_path / "one.npz"
    np.savez(p, data=frames)
    np.testing.assert_array_equal(read_array(p, role="meas"), frames)


def test_tif_float32_round_trip(tmp_path: Path, frames: np.ndarray) -> None:
    out = write_array(tmp_path / "r.tif", frames)
    assert len(tifffile.TiffFile(out).pages) == SHAPE[0]
    back = read_array(out)
    assert back.shape == SHAPE and back.dtype == np.float32
    np.testing.assert_array_equal(back, frames)


@pytest.mark.parametrize("dtype,top", [("uint8", 255), ("uint16", 65535)])
def test_tif_integer_scaling(tmp_path: Path, frames: np.ndarray, dtype: str, top: int) -> None:
    data = frames * 2.0 - 0.25  # exercises clipping at both ends
    out = write_array(tmp_path / "r.tiff", data, dtype=dtype, value_range=1.5)
    back = read_array(out)
    assert back.dtype == np.dtype(dtype) and back.shape == SHAPE
    expected = np.rint(np.clip(data.astype(np.float64) / 1.5, 0, 1) * top).astype(dtype)
    np.testing.assert_array_equal(back, expected)


def test_mat_v5_frames_last(tmp_path: Path, frames: np.ndarray) -> None:
    out = write_array(tmp_path / "r.mat", frames, key="recon")
    on_disk = scipy.io.loadmat(str(out))["recon"]
    assert on_disk.shape == (16, 20, 4)
    np.testing.assert_array_equal(on_disk, np.moveaxis(frames, 0, -1))
    assert list_keys(out) == ["recon"]
    back = read_array(out)
    assert back.shape == (16, 20, 4)
    np.testing.assert_array_equal(back, np.moveaxis(frames, 0, -1))


def test_mat_v5_4d_layout(tmp_path: Path) -> None:
    arr = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # (K, B, H, W)
    out = write_array(tmp_path / "r.mat", arr)
    back = read_array(out)
    assert back.shape == (4, 5, 3, 2)
    np.testing.assert_array_equal(back, arr.transpose(2, 3, 1, 0))


def test_mat_v5_roles_and_logical(tmp_path: Path, frames_u8: np.ndarray) -> None:
    p = tmp_path / "bench.mat"
    mask = np.moveaxis(frames_u8 > 100, 0, -1)
    meas = np.moveaxis(frames_u8, 0, -1).astype(np.float64)
    scipy.io.savemat(str(p), {"meas": meas, "mask": mask, "orig": meas + 1})
    assert sorted(list_keys(p)) == ["mask", "meas", "orig"]
    got = read_array(p, role="mask")
    assert got.dtype == np.uint8 and got.shape == (16, 20, 4)
    np.testing.assert_array_equal(got, mask.astype(np.uint8))
    np.testing.assert_array_equal(read_array(p, role="meas"), meas)


def test_mat_v73_transposed(tmp_path: Path, frames_u8: np.ndarray) -> None:
    p = tmp_path / "big.mat"
    arr = np.moveaxis(frames_u8, 0, -1)  # MATLAB (H, W, B)
    with h5py.File(p, "w") as f:
        f.create_dataset("orig", data=arr.T)  # column-major, as MATLAB stores it
        f["orig"].attrs["MATLAB_class"] = np.bytes_("uint8")
        f.create_dataset("mask", data=(arr > 100).astype(np.uint8).T)
        f["mask"].attrs["MATLAB_class"] = np.bytes_("logical")
        f.create_group("#refs#")
    assert sorted(list_keys(p)) == ["mask", "orig"]
    back = read_array(p, role="orig")
    assert back.shape == (16, 20, 4) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, arr)
    np.testing.assert_array_equal(read_array(p, key="mask"), (arr > 100).astype(np.uint8))


def test_gif_and_png_via_imageio(tmp_path: Path, frames_u8: np.ndarray) -> None:
    gif = tmp_path / "clip.gif"
    iio.imwrite(gif, frames_u8, is_batch=True, duration=100, loop=0)
    back = read_array(gif)
    assert back.shape == SHAPE
    np.testing.assert_array_equal(back, frames_u8)

    png = tmp_path / "one.png"
    iio.imwrite(png, frames_u8[0])
    back = read_array(png)
    assert back.shape == (16, 20) and back.dtype == np.uint8
    np.testing.assert_array_equal(back, frames_u8[0])


def test_rgb_image_to_grayscale(tmp_path: Path, frames_u8: np.ndarray) -> None:
    """Luminance in the source's dtype: an 8-bit colour image gives 8-bit gray (rounded), so the
    integer rules (0/255 masks, the 255 scale) apply to colour files as to gray ones."""
    rgb = np.stack([frames_u8[0], frames_u8[1], frames_u8[2]], axis=-1)
    expected = np.rint(rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    iio.imwrite(tmp_path / "c.png", rgb)
    got = read_array(tmp_path / "c.png")
    assert got.shape == (16, 20) and got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    tifffile.imwrite(tmp_path / "c.tif", rgb, photometric="rgb")
    np.testing.assert_array_equal(read_array(tmp_path / "c.tif"), expected)
    floats = rgb.astype(np.float32) / 255
    np.save(tmp_path / "f.npy", floats)
    tifffile.imwrite(tmp_path / "f.tif", floats, photometric="rgb")
    assert read_array(tmp_path / "f.tif").dtype == np.float32


def test_directory_of_png_frames_natural_sort(tmp_path: Path, frames_u8: np.ndarray) -> None:
    d = tmp_path / "frames"
    d.mkdir()
    many = np.concatenate([frames_u8, frames_u8[::-1], frames_u8[:3]])  # 11 frames
    for i, frame in enumerate(many):
        iio.imwrite(d / f"frame{i}.png", frame)
    (d / "notes.txt").write_text("ignored")
    back = read_array(d)
    assert back.shape == (11, 16, 20)
    np.testing.assert_array_equal(back, many)  # frame2 before frame10


def test_directory_shape_mismatch_names_file(tmp_path: Path, frames_u8: np.ndarray) -> None:
    d = tmp_path / "frames"
    d.mkdir()
    iio.imwrite(d / "a1.png", frames_u8[0])
    iio.imwrite(d / "a2.png", frames_u8[0][:, :10])
    with pytest.raises(UsageError, match="a2.png"):
        read_array(d)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="empty"):
        read_array(empty)


def test_preview_png_montage_and_gif(tmp_path: Path, frames: np.ndarray) -> None:
    png = write_array(tmp_path / "p.png", frames * 2, value_range=2.0)
    img = iio.imread(png)
    assert img.shape == (2 * 16 + 2, 2 * 20 + 2) and img.dtype == np.uint8
    expected0 = np.rint(np.clip(frames[0], 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(img[:16, :20], expected0)
    np.testing.assert_array_equal(img[16:18, :], 128)  # gap

    gif = write_preview(tmp_path / "p.gif", frames)
    back = read_array(gif)
    assert back.shape == SHAPE
    np.testing.assert_array_equal(back, np.rint(frames * 255).astype(np.uint8))


def test_write_json_and_text(tmp_path: Path) -> None:
    out = write_json(tmp_path / "sub" / "r.json",
                     {"psnr": np.float32(30.5), "n": np.int64(3), "v": np.arange(3)})
    assert json.loads(out.read_text()) == {"psnr": 30.5, "n": 3, "v": [0, 1, 2]}
    assert write_text(tmp_path / "t.md", "hi\n").read_text() == "hi\n"


def test_suffix_lists() -> None:
    assert ".mat" in SUPPORTED_SUFFIXES and ".mp4" in SUPPORTED_SUFFIXES
    assert WRITE_SUFFIXES == (".npy", ".npz", ".tif", ".tiff", ".mat", ".png", ".gif")


# ----------------------------------------------------------------------------- errors
def test_missing_file(tmp_path: Path) -> None:
    p = tmp_path / "nope.npy"
    with pytest.raises(UsageError, match="file not found") as exc:
        read_array(p)
    assert str(p) in str(exc.value)


def test_unknown_suffix(tmp_path: Path) -> None:
    p = tmp_path / "data.xyz"
    p.write_text("x")
    with pytest.raises(UsageError) as exc:
        read_array(p)
    msg = str(exc.value)
    assert str(p) in msg and ".xyz" in msg and ".npy" in msg
    with pytest.raises(UsageError, match="out.xyz"):
        write_array(tmp_path / "out.xyz", np.zeros((2, 3)))


def test_unknown_key_lists_arrays(tmp_path: Path, frames: np.ndarray) -> None:
    p = tmp_path / "d.npz"
    np.savez(p, a=frames, b=frames)
    with pytest.raises(UsageError) as exc:
        read_array(p, key="c")
    msg = str(exc.value)
    assert str(p) in msg and "'c'" in msg and "a, b" in msg
    m = tmp_path / "d.mat"
    scipy.io.savemat(str(m), {"a": frames, "b": frames})
    with pytest.raises(UsageError, match=r"no array named 'c' \(arrays: a, b\)"):
        read_array(m, key="c")


def test_ambiguous_file_without_role(tmp_path: Path, frames: np.ndarray) -> None:
    p = tmp_path / "d.npz"
    np.savez(p, a=frames, b=frames)
    with pytest.raises(UsageError, match="--key") as exc:
        read_array(p)
    assert str(p) in str(exc.value)


def test_pickled_npy_refused(tmp_path: Path) -> None:
    p = tmp_path / "evil.npy"
    np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled") as exc:
        read_array(p)
    assert str(p) in str(exc.value)
    z = tmp_path / "evil.npz"
    np.savez(z, obj=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="pickled"):
        read_array(z, key="obj")


def test_truncated_npy(tmp_path: Path, frames: np.ndarray) -> None:
    p = tmp_path / "cut.npy"
    np.save(p, frames)
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(DataError, match="cannot read") as exc:
        read_array(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)


def test_corrupt_mat(tmp_path: Path) -> None:
    p = tmp_path / "bad.mat"
    p.write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(DataError) as exc:
        read_array(p)
    assert str(p) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(DataError):
        list_keys(p)


def test_nan_input(tmp_path: Path, frames: np.ndarray) -> None:
    bad = frames.copy()
    bad[0, 0, :3] = np.nan
    bad[1, 1, 1] = np.inf
    np.save(tmp_path / "n.npy", bad)
    with pytest.raises(DataError, match=r"4 NaN/Inf values") as exc:
        read_array(tmp_path / "n.npy")
    assert str(tmp_path / "n.npy") in str(exc.value) and "[" not in str(exc.value)
    assert read_array(tmp_path / "n.npy", check_finite=False).shape == SHAPE
    np.savez(tmp_path / "n.npz", meas=bad)
    with pytest.raises(DataError, match=r"n\.npz\[meas\]: 4 NaN/Inf values"):
        read_array(tmp_path / "n.npz", role="meas")


def test_complex_read_and_nonnumeric_rejected(tmp_path: Path) -> None:
    np.save(tmp_path / "c.npy", np.ones((2, 3), dtype=np.complex64))
    assert read_array(tmp_path / "c.npy").dtype == np.complex64  # k-space (operator mri)
    np.save(tmp_path / "s.npy", np.array(["a", "b"]))
    with pytest.raises(DataError, match="numeric"):
        read_array(tmp_path / "s.npy")


def test_video_without_ffmpeg_or_corrupt(tmp_path: Path) -> None:
    p = tmp_path / "clip.mp4"
    p.write_bytes(b"not a video")
    with pytest.raises(DataError) as exc:
        read_array(p)
    assert str(p) in str(exc.value)


def test_existing_output_needs_force(tmp_path: Path, frames: np.ndarray) -> None:
    p = write_array(tmp_path / "r.npy", frames)
    with pytest.raises(UsageError, match="--force") as exc:
        write_array(p, frames * 0)
    assert str(p) in str(exc.value)
    np.testing.assert_array_equal(read_array(p), frames)
    write_array(p, frames * 0, force=True)
    np.testing.assert_array_equal(read_array(p), frames * 0)
    assert _only_file(tmp_path) == ["r.npy"]


def test_bad_dtype(tmp_path: Path, frames: np.ndarray) -> None:
    with pytest.raises(UsageError, match="int32"):
        write_array(tmp_path / "r.tif", frames, dtype="int32")


def test_atomic_write_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out" / "recon.tif"

    def boom(tmp: Path) -> None:
        assert tmp.parent == target.parent and tmp.name.endswith(".tif")
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert _only_file(target.parent) == []


def test_atomic_write_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "r.txt"
    target.write_text("old")

    def boom(tmp: Path) -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError):
        atomic_write(target, boom, force=True)
    assert target.read_text() == "old" and _only_file(tmp_path) == ["r.txt"]


def test_mat_temp_name_keeps_suffix(tmp_path: Path, frames: np.ndarray) -> None:
    # savemat appends .mat to names without it; the atomic temp name must keep .mat last
    write_array(tmp_path / "r.mat", frames)
    assert _only_file(tmp_path) == ["r.mat"]


def test_a_mat_file_is_listed_once_per_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the roles of a .mat lists its variables once (a pass over the file's array
    headers), and a file rewritten in place is listed again."""
    calls: list[Path] = []
    real = readers._mat5_listing
    monkeypatch.setattr(readers, "_mat5_listing", lambda path: calls.append(path) or real(path))
    p = tmp_path / "sim.mat"
    scipy.io.savemat(p, {"meas": np.ones((4, 5)), "mask": np.zeros((4, 5, 2)), "orig": np.ones((4, 5, 2))},
                     do_compression=True)
    assert sorted(list_keys(p)) == ["mask", "meas", "orig"]
    assert read_array(p, role="mask").shape == (4, 5, 2) and read_array(p, role="meas").shape == (4, 5)
    assert len(calls) == 1
    scipy.io.savemat(p, {"meas": np.ones((3, 3))})
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))  # a new version even on coarse clocks
    assert list_keys(p) == ["meas"] and len(calls) == 2
