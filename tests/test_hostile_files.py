"""A corpus of malformed and hostile files for every reader, and property tests (hypothesis).

Every file is generated here (nothing big is committed): valid files of each format truncated
at many offsets or with bytes flipped, wrong dtypes, huge declared shapes, zip bombs, HDF5
external links / external storage / virtual datasets, devices and FIFOs. The contract: a
reader returns a numeric array or raises a one-line ScicliError (exit 1 or 2), never another
exception, and never allocates more than the memory budget; the CLI exits 0, 1 or 2 without a
traceback, writes nothing on failure and touches nothing outside ``--out``.
"""

from __future__ import annotations

import io
import os
import re
import tracemalloc
import zipfile
from pathlib import Path

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import invoke_cli
from scicli.core.errors import DataError, ScicliError, UsageError
from scicli.io import list_keys, read_array
from scicli.io.limits import parse_size, set_memory_budget

BUDGET = 8 << 20  # 8 MiB: every hostile file here declares more
ANSI = re.compile(r"\x1b\[[0-9;]*m")
PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def small_budget():
    set_memory_budget(BUDGET)
    yield
    set_memory_budget(None)


def _frames() -> np.ndarray:
    return (np.random.default_rng(0).random((4, 12, 10)) * 255).astype(np.uint8)


def _bytes_of(write) -> bytes:  # noqa: ANN001 - a writer of a path
    buf = io.BytesIO()
    write(buf)
    return buf.getvalue()


def _h5_bytes(tmp: Path) -> bytes:
    path = tmp / "h5.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f.create_dataset("meas", data=_frames().astype(np.float64))
    return path.read_bytes()


def samples(tmp: Path) -> dict[str, bytes]:
    """One small valid file per reader, by suffix."""
    frames = _frames()
    out = {
        ".npy": _bytes_of(lambda b: np.save(b, frames.astype(np.float32))),
        ".npz": _bytes_of(lambda b: np.savez_compressed(b, meas=frames)),
        ".mat": _bytes_of(lambda b: scipy.io.savemat(b, {"meas": frames.astype(np.float64)}, do_compression=True)),
        ".tif": _bytes_of(lambda b: tifffile.imwrite(b, frames, photometric="minisblack")),
        ".png": _bytes_of(lambda b: iio.imwrite(b, frames[0], extension=".png")),
        ".gif": _bytes_of(lambda b: iio.imwrite(b, frames, extension=".gif")),
    }
    out["h5.mat"] = _h5_bytes(tmp)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return samples(tmp_path_factory.mktemp("corpus"))


def read_or_refuse(path: Path) -> np.ndarray | None:
    """The reader contract: a numeric array, or a ScicliError (anything else fails the test)."""
    try:
        arr = read_array(path)
    except ScicliError as exc:
        assert "\n" not in str(exc)
        return None
    assert isinstance(arr, np.ndarray) and arr.dtype.kind in "biufc"
    return arr


def _write(tmp: Path, suffix: str, data: bytes) -> Path:
    path = tmp / ("x" + (suffix if suffix.startswith(".") else ".mat"))
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- truncation
@pytest.mark.parametrize("suffix", [".npy", ".npz", ".mat", "h5.mat", ".tif", ".png", ".gif"])
def test_truncated_at_many_offsets(suffix: str, corpus: dict[str, bytes], tmp_path: Path) -> None:
    data = corpus[suffix]
    assert read_or_refuse(_write(tmp_path, suffix, data)) is not None  # the sample itself is valid
    cuts = sorted({0, 1, 6, 8, 16, 64, 128, 300, 600, 1000, len(data) // 3, len(data) // 2, len(data) - 100,
                   len(data) - 10, len(data) - 1} - {len(data)})
    for cut in cuts:
        if 0 <= cut < len(data):
            read_or_refuse(_write(tmp_path, suffix, data[:cut]))


# ----------------------------------------------------------------------------- wrong dtypes
def test_wrong_dtypes(tmp_path: Path) -> None:
    np.save(tmp_path / "s.npy", np.array(["ab", "cd"]))
    with pytest.raises(DataError, match="not a numeric array"):
        read_array(tmp_path / "s.npy")
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="pickled"):
        read_array(tmp_path / "o.npy")
    np.save(tmp_path / "r.npy", np.zeros(3, dtype=[("a", "f4"), ("b", "i4")]))
    with pytest.raises(DataError, match="not a numeric array"):
        read_array(tmp_path / "r.npy")
    np.savez(tmp_path / "o.npz", x=np.array([None], dtype=object))
    with pytest.raises(ScicliError):
        read_array(tmp_path / "o.npz", key="x")
    assert read_array(_bool(tmp_path)).dtype == np.uint8


def _bool(tmp: Path) -> Path:
    np.save(tmp / "b.npy", np.ones((2, 2), bool))
    return tmp / "b.npy"


# ----------------------------------------------------------------------------- declared sizes
def _npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def test_npy_header_declaring_a_huge_shape(tmp_path: Path) -> None:
    path = tmp_path / "huge.npy"
    path.write_bytes(_npy_header((100_000, 100_000)) + b"\0" * 64)
    with pytest.raises(DataError, match="truncated"):
        read_array(path)


def test_npy_larger_than_the_budget(tmp_path: Path) -> None:
    np.save(tmp_path / "big.npy", np.zeros((3, 1024, 1024), np.float32))  # 12 MiB
    with pytest.raises(DataError, match="memory budget"):
        read_array(tmp_path / "big.npy")


def test_zip_bomb(tmp_path: Path) -> None:
    """A compressed npz of zeros: tiny on disk, 64 MiB when read."""
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("meas.npy", "w", force_zip64=True) as fh:
            fh.write(_npy_header((8 << 20,)))
            block = bytes(1 << 20)
            for _ in range(64):
                fh.write(block)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(DataError, match="memory budget"):
        read_array(path)


def test_npz_member_header_lies_about_its_size(tmp_path: Path) -> None:
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meas.npy", _npy_header((1 << 40,)) + b"\0" * 128)
    with pytest.raises(DataError):
        read_array(path)


def test_tiff_mat_and_hdf5_beyond_the_budget(tmp_path: Path) -> None:
    big = np.zeros((40, 256, 256), np.float32)  # 10 MiB
    tifffile.imwrite(tmp_path / "big.tif", big, compression="zlib")
    scipy.io.savemat(tmp_path / "big.mat", {"meas": big}, do_compression=True)
    with h5py.File(tmp_path / "big73.mat", "w") as f:
        f.create_dataset("meas", shape=(100_000, 100_000), dtype="f8", chunks=(100, 100))  # never written
    for name in ("big.tif", "big.mat", "big73.mat"):
        with pytest.raises(DataError, match="memory budget"):
            read_array(tmp_path / name)


def test_a_compressed_mat_bomb_is_refused_from_its_header_without_inflating_it(tmp_path: Path) -> None:
    """A 64 MiB array of zeros deflates to ~64 KiB: its declared shape is read from the first
    inflated bytes of the variable, so refusing it costs kilobytes, not the array (scipy's
    ``whosmat`` would inflate it whole just to list it)."""
    scipy.io.savemat(tmp_path / "bomb.mat", {"meas": np.zeros((64, 1024, 1024), np.uint8)}, do_compression=True)
    assert (tmp_path / "bomb.mat").stat().st_size < 1 << 20
    set_memory_budget(8 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"declares shape \(64, 1024, 1024\).*memory budget"):
            read_array(tmp_path / "bomb.mat")
        assert list_keys(tmp_path / "bomb.mat") == ["meas"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20


def test_png_beyond_the_budget(tmp_path: Path) -> None:
    iio.imwrite(tmp_path / "big.png", np.zeros((2048, 2048), np.uint8))  # 16 MiB as float32... 4 MiB as bytes
    set_memory_budget(1 << 20)
    with pytest.raises(DataError, match="memory budget"):
        read_array(tmp_path / "big.png")


def test_cli_max_memory(tmp_path: Path, scene) -> None:  # noqa: ANN001 - conftest Scene
    result = invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy",
                        "--max-memory", "1K", "--out", tmp_path / "x.tif")
    assert result.exit_code == 1 and "memory budget" in result.stderr
    assert not (tmp_path / "x.tif").exists()
    bad = invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy",
                     "--max-memory", "lots", "--out", tmp_path / "x.tif")
    assert bad.exit_code == 2 and "--max-memory" in bad.stderr
    assert parse_size("4G") == 4 << 30 and parse_size("512MiB") == 512 << 20 and parse_size("1000") == 1000


# ----------------------------------------------------------------------------- hostile HDF5
def test_hdf5_external_link_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["data"] = np.arange(12.0).reshape(3, 4)
    path = tmp_path / "link.mat"
    with h5py.File(path, "w") as f:
        f["meas"] = h5py.ExternalLink(str(secret), "/data")
    with pytest.raises(DataError, match="external link.*secret.h5"):
        read_array(path, key="meas")
    with pytest.raises(ScicliError):
        read_array(path)


@pytest.mark.parametrize("layout", ["soft link to a dataset behind an external link",
                                    "soft link to a group that is an external link",
                                    "soft link to a soft link to an external link"])
def test_hdf5_external_link_behind_soft_links_is_refused(tmp_path: Path, layout: str) -> None:
    """A soft link is resolved one component at a time: an external link anywhere on the way
    is refused before the other file is opened (the file's listing leaves such a name out)."""
    secret = tmp_path / "secret.h5"
    with h5py.File(secret, "w") as f:
        f["data"] = np.arange(12.0).reshape(3, 4)
    path = tmp_path / "soft.mat"
    with h5py.File(path, "w") as f:
        if layout.startswith("soft link to a dataset"):
            f.create_group("grp")["ext"] = h5py.ExternalLink(str(secret), "/data")
            f["meas"] = h5py.SoftLink("/grp/ext")
        elif layout.startswith("soft link to a group"):
            f["g"] = h5py.ExternalLink(str(secret), "/")
            f["meas"] = h5py.SoftLink("/g/data")
        else:
            f["g"] = h5py.ExternalLink(str(secret), "/")
            f["hop"] = h5py.SoftLink("/g")
            f["meas"] = h5py.SoftLink("hop/data")
    with pytest.raises(DataError, match="external link.*secret.h5"):
        read_array(path, key="meas")
    with pytest.raises(ScicliError):
        read_array(path)


def test_hdf5_soft_link_loop_is_refused_and_a_plain_soft_link_is_read(tmp_path: Path) -> None:
    path = tmp_path / "loop.mat"
    with h5py.File(path, "w") as f:
        f["a"] = h5py.SoftLink("/b")
        f["b"] = h5py.SoftLink("/a")
        f.create_group("grp")["data"] = np.arange(6.0).reshape(2, 3)
        f["meas"] = h5py.SoftLink("/grp/data")
    with pytest.raises(DataError, match="soft links in a row"):
        read_array(path, key="a")
    assert np.array_equal(read_array(path, key="meas"), np.arange(6.0).reshape(2, 3).T)  # MATLAB order


def test_hdf5_external_storage_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / "raw.bin"
    raw.write_bytes(np.arange(12.0).tobytes())
    path = tmp_path / "ext.mat"
    with h5py.File(path, "w") as f:
        f.create_dataset("meas", shape=(3, 4), dtype="<f8", external=[(str(raw), 0, 96)])
    with pytest.raises(DataError, match="external storage.*raw.bin"):
        read_array(path)


def test_hdf5_virtual_dataset_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["data"] = np.arange(12.0)
    layout = h5py.VirtualLayout(shape=(12,), dtype="f8")
    layout[:] = h5py.VirtualSource(str(src), "data", shape=(12,))
    path = tmp_path / "virtual.mat"
    with h5py.File(path, "w") as f:
        f.create_virtual_dataset("meas", layout)
    with pytest.raises(DataError, match="virtual dataset"):
        read_array(path)


# ----------------------------------------------------------------------------- devices and FIFOs
@pytest.mark.parametrize("suffix", [".npz", ".npy", ".tif", ".mat"])
def test_a_symlink_to_dev_zero_is_refused(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / f"x{suffix}"
    path.symlink_to("/dev/zero")
    with pytest.raises(UsageError, match="character device"):
        read_array(path)


def test_a_fifo_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pipe.npy"
    os.mkfifo(path)
    with pytest.raises(UsageError, match="FIFO"):
        read_array(path)


def test_the_cli_refuses_a_device_input(tmp_path: Path, scene) -> None:  # noqa: ANN001
    (tmp_path / "z.npz").symlink_to("/dev/zero")
    result = invoke_cli("reconstruct", tmp_path / "z.npz", "--mask", scene.npy / "mask.npy", "--out", tmp_path / "o.tif")
    assert result.exit_code == 2 and "character device" in result.stderr
    assert not (tmp_path / "o.tif").exists()


# ----------------------------------------------------------------------------- properties
@PROPERTY
@given(data=st.data())
def test_property_mutated_files_are_read_or_refused(data: st.DataObject, corpus: dict[str, bytes],
                                                     tmp_path: Path) -> None:
    suffix = data.draw(st.sampled_from(sorted(corpus)))
    raw = bytearray(corpus[suffix])
    flips = data.draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)), max_size=8))
    for pos, value in flips:
        raw[pos] = value
    cut = data.draw(st.integers(0, len(raw)))
    tracemalloc.start()
    try:
        read_or_refuse(_write(tmp_path, suffix, bytes(raw[:cut])))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * BUDGET


@PROPERTY
@given(declared=st.lists(st.integers(0, 1 << 20), min_size=1, max_size=4),
       dtype=st.sampled_from(["<f8", "<f4", "|u1", "<c16", "<i8"]),
       payload=st.integers(0, 4096))
def test_property_npy_declared_shapes(declared: list[int], dtype: str, payload: int, tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    path.write_bytes(_npy_header(tuple(declared), dtype) + bytes(payload))
    tracemalloc.start()
    try:
        arr = read_or_refuse(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * BUDGET
    if arr is not None:
        assert arr.shape == tuple(declared)


SUFFIXES = st.sampled_from([".tif", ".npy", ".npz", ".mat", ".png", ".txt", ""])
FLOATS = st.one_of(st.none(), st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e400", "abc", "1", "255"]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(out_suffix=SUFFIXES, preview_suffix=st.one_of(st.none(), SUFFIXES), max_value=FLOATS,
       report_is_input=st.booleans(), exists=st.booleans(), force=st.booleans())
def test_property_cli_never_destroys_or_crashes(out_suffix: str, preview_suffix: str | None, max_value: str | None,
                                                report_is_input: bool, exists: bool, force: bool,
                                                tmp_path_factory: pytest.TempPathFactory, scene) -> None:  # noqa: ANN001
    root = tmp_path_factory.mktemp("prop")
    inputs, out = root / "in", root / "out"
    inputs.mkdir()
    out.mkdir()
    for name in ("meas.npy", "mask.npy"):
        (inputs / name).write_bytes((scene.npy / name).read_bytes())
    before = {p: p.read_bytes() for p in inputs.iterdir()}
    target = out / f"r{out_suffix}"
    if exists:
        target.write_bytes(b"old")
    args = ["reconstruct", inputs / "meas.npy", "--mask", inputs / "mask.npy", "--iters", 1, "--out", target]
    if preview_suffix is not None:
        args += ["--preview", out / f"p{preview_suffix}"]
    if max_value is not None:
        args += ["--max-value", max_value]
    if report_is_input:
        args += ["--report", inputs / "mask.npy"]
    if force:
        args.append("--force")
    set_memory_budget(None)
    result = invoke_cli(*args)
    assert result.exit_code in (0, 1, 2), result.output
    assert "Traceback" not in result.output
    assert {p: p.read_bytes() for p in inputs.iterdir()} == before  # inputs untouched, nothing added
    assert sorted(p.name for p in root.iterdir()) == ["in", "out"]  # nothing written outside --out
    written = sorted(p.name for p in out.iterdir())
    if result.exit_code != 0:
        lines = [line for line in ANSI.sub("", result.stderr).splitlines() if line.strip()]
        if "Invalid value" not in result.stderr:  # option parsing: one line through scicli's main()
            assert lines[-1].startswith("error:") and sum(x.startswith("error:") for x in lines) == 1, result.stderr
        assert written == (["r" + out_suffix] if exists else [])
        if exists:
            assert target.read_bytes() == b"old"
    else:
        assert not report_is_input and target.name in written
