"""DICOM input (the optional ``dicom`` extra): a CT slice is read in Hounsfield units
(RescaleSlope * v + RescaleIntercept) and mapped to [0, 1] through a window (default
[-1000, 1000] HU, ``--hu-window`` to change it); odd or hostile files are refused in one line
before their pixel data is loaded; without pydicom the error names the extra."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.pixels import get_decoder  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, generate_uid  # noqa: E402

from conftest import invoke_cli  # noqa: E402
from scicli.core.errors import DataError  # noqa: E402
from scicli.io import read_array  # noqa: E402
from scicli.io.dicom import HU_WINDOW, parse_hu_window, read_dicom, set_hu_window  # noqa: E402
from scicli.io.limits import set_memory_budget  # noqa: E402


def write_dicom(path: Path, pixels: np.ndarray, *, slope: float = 1.0, intercept: float = -1024.0,
                modality: str = "CT", frames: int | None = None, syntax: str = ExplicitVRLittleEndian,
                rows: int | None = None, columns: int | None = None) -> Path:
    """A minimal single-slice DICOM file (16-bit signed), written with pydicom."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows = rows or pixels.shape[-2]
    ds.Columns = columns or pixels.shape[-1]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if frames is not None:
        ds.NumberOfFrames = frames
    data = pixels.astype("<i2").tobytes()
    ds.PixelData = data if not pydicom.uid.UID(syntax).is_compressed else pydicom.encaps.encapsulate([data])
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture(autouse=True)
def default_window():
    yield
    set_hu_window(None)


@pytest.fixture
def slice_file(tmp_path: Path) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    stored = rng.integers(-200, 1600, size=(12, 16))  # HU = 2 v - 1024: -1424 .. 2174
    return write_dicom(tmp_path / "slice.dcm", stored, slope=2.0, intercept=-1024.0), stored


def test_ct_slice_is_hounsfield_units_through_the_default_window(slice_file) -> None:
    path, stored = slice_file
    hu = 2.0 * stored - 1024.0
    x = read_array(path)
    assert x.dtype == np.float32 and x.shape == stored.shape
    np.testing.assert_allclose(x, np.clip((hu + 1000.0) / 2000.0, 0, 1), atol=1e-6)
    assert HU_WINDOW == (-1000.0, 1000.0) and x.min() == 0.0 and x.max() == 1.0  # clipped both ends


def test_window_can_be_changed(slice_file) -> None:
    path, stored = slice_file
    set_hu_window(parse_hu_window("-160,240"))  # a soft-tissue window
    x = read_array(path)
    np.testing.assert_allclose(x, np.clip((2.0 * stored - 1024.0 + 160.0) / 400.0, 0, 1), atol=1e-6)
    with pytest.raises(Exception, match="LO < HI"):
        parse_hu_window("100,-100")


def test_other_modalities_are_scaled_by_their_bit_range(tmp_path: Path) -> None:
    stored = np.array([[0, 1000], [32767, 5]])
    x = read_array(write_dicom(tmp_path / "mr.dcm", stored, intercept=0.0, modality="MR"))
    np.testing.assert_allclose(x, stored / 65535.0, atol=1e-7)


@pytest.mark.parametrize("case, message", [
    ("multi-frame", "multi-frame"),
    ("huge", "truncated"),
    ("not-dicom", "cannot read"),
])
def test_odd_files_are_refused_in_one_line(tmp_path: Path, case: str, message: str) -> None:
    pixels = np.zeros((8, 8))
    if case == "multi-frame":
        path = write_dicom(tmp_path / "f.dcm", np.zeros((2, 8, 8)), frames=2)
    elif case == "huge":  # declares 60000 x 60000 pixels, holds 64: refused before any allocation
        path = write_dicom(tmp_path / "f.dcm", pixels, rows=60000, columns=60000)
    else:
        path = tmp_path / "f.dcm"
        path.write_bytes(b"not a dicom file at all" * 10)
    with pytest.raises(DataError, match=message) as info:
        read_array(path)
    assert "\n" not in str(info.value)


def test_declared_size_is_checked_against_the_memory_budget(slice_file) -> None:
    set_memory_budget(100)
    try:
        with pytest.raises(DataError, match="memory budget"):
            read_array(slice_file[0])
    finally:
        set_memory_budget(None)


def test_compressed_without_decoder_is_refused(tmp_path: Path) -> None:
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    meta_path = write_dicom(tmp_path / "c.dcm", np.zeros((8, 8)), syntax=JPEGLSLossless)
    with pytest.raises(DataError, match="no decoder"):
        read_array(meta_path)


def test_without_the_extra_the_error_names_it(slice_file, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom -> ImportError
    with pytest.raises(DataError, match=r"'dicom' extra"):
        read_array(slice_file[0])


def enhanced(path: Path, stored: np.ndarray, shared: tuple[float, float] | None,
             per_frame: list[tuple[float, float] | None]) -> Path:
    """A multi-frame CT file whose rescale lives only in its functional groups (as an Enhanced CT
    Image stores it): ``shared`` in SharedFunctionalGroupsSequence, ``per_frame[i]`` in frame i's."""
    write_dicom(path, stored, frames=stored.shape[0])
    ds = pydicom.dcmread(path)
    del ds.RescaleSlope, ds.RescaleIntercept

    def group(pair: tuple[float, float] | None) -> Dataset:
        item = Dataset()
        if pair is not None:
            transform = Dataset()
            transform.RescaleSlope, transform.RescaleIntercept = pair
            item.PixelValueTransformationSequence = pydicom.sequence.Sequence([transform])
        return item

    ds.SharedFunctionalGroupsSequence = pydicom.sequence.Sequence([group(shared)])
    ds.PerFrameFunctionalGroupsSequence = pydicom.sequence.Sequence([group(p) for p in per_frame])
    ds.save_as(path, enforce_file_format=True)
    return path


def test_multi_frame_rescale_comes_from_the_functional_groups(tmp_path: Path) -> None:
    """frames=True gives (F, H, W); frame i uses its own rescale, else the shared one."""
    stored = np.stack([np.full((4, 6), 1000), np.full((4, 6), 1500)])
    path = enhanced(tmp_path / "e.dcm", stored, shared=(1.0, -1024.0), per_frame=[None, (2.0, -2000.0)])
    x = read_dicom(path, frames=True)
    assert x.shape == (2, 4, 6) and x.dtype == np.float32
    hu = np.array([1000 - 1024.0, 2 * 1500 - 2000.0])  # -24 HU (shared), 1000 HU (its own)
    np.testing.assert_allclose(x[:, 0, 0], (hu + 1000.0) / 2000.0, atol=1e-6)
    with pytest.raises(DataError, match="multi-frame"):  # one slice is asked for: refused
        read_dicom(path)


def test_real_multi_frame_ct_from_pydicom_data() -> None:
    """eCT_Supplemental.dcm: two 512 x 512 frames, rescale intercept -1024 in the shared group
    (without it air would read as 0 HU, i.e. 0.5)."""
    data_store = pytest.importorskip("data_store", reason="pydicom-data not installed")
    x = read_dicom(Path(data_store.__file__).parent / "data" / "eCT_Supplemental.dcm", frames=True)
    assert x.shape == (2, 512, 512) and float(x.min()) == 0.0 and x.max() <= 1.0


def test_real_ct_slice_from_pydicom_data() -> None:
    data_store = pytest.importorskip("data_store", reason="pydicom-data not installed")
    x = read_array(Path(data_store.__file__).parent / "data" / "693_UNCI.dcm")  # never downloaded
    assert x.shape == (512, 512) and 0.0 <= x.min() and x.max() <= 1.0
    assert 0.1 < float(x.mean()) < 0.6  # a body slice: air at 0, soft tissue ~0.5


def test_simulate_and_reconstruct_a_dicom_slice(tmp_path: Path) -> None:
    src = Path(get_testdata_file("CT_small.dcm"))  # 128 x 128, shipped with pydicom itself
    sim = tmp_path / "sim"
    res = invoke_cli("simulate", src, "--operator", "ct", "--views", 12, "--hu-window", "-1000,1000", "--out", sim)
    assert res.exit_code == 0, res.output
    data = np.load(sim / "sim.npz")
    assert data["meas"].shape[:2] == (1, 12)
    np.testing.assert_allclose(data["orig"][0, 0], read_array(src), atol=1e-6)
    rec = tmp_path / "rec"
    res = invoke_cli("reconstruct", sim / "sim.npz", "--method", "fbp", "--gt", src, "--out", f"{rec}/",
                     "--format", "npy")
    assert res.exit_code == 0, res.output
    assert any(rec.glob("*.npy"))
