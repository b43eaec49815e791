"""Readers: one function per file format, one ``read_array`` entry point.

Layout is never changed except for two documented cases: MATLAB v7.3 (HDF5) datasets are
transposed (MATLAB is column-major, so a (H, W, B) MATLAB array reads as (H, W, B) in both
.mat versions), DICOM slices are read on [0, 1] (:mod:`scicli.io.dicom`: CT through a
Hounsfield window) and RGB(A) images are converted to grayscale by luminance (in the source's
dtype: an 8-bit colour image gives an 8-bit gray one, so the integer rules still apply).

Hostile files: only regular files are read (no devices or FIFOs); every declared size is
checked against the file and the memory budget before allocation (:mod:`scicli.io.limits`);
HDF5 external links, external storage and virtual datasets are refused; float values beyond
the float32 range (which would become Inf in the float32 arithmetic) are refused on read.
"""

from __future__ import annotations

import importlib.util
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from scicli.core.errors import DataError, ScicliError, UsageError
from scicli.io.dicom import read_dicom
from scicli.io.limits import check_declared, check_regular, human, memory_budget

__all__ = ["SUPPORTED_SUFFIXES", "IMAGE_DIR_SUFFIXES", "ROLE_NAMES", "list_keys", "read_array"]

SUPPORTED_SUFFIXES: tuple[str, ...] = (
    ".npy", ".npz", ".mat", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif",
    ".mp4", ".avi", ".mov", ".dcm",
)
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".avi", ".mov")
IMAGE_DIR_SUFFIXES: tuple[str, ...] = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")

ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "meas": ("meas", "y", "measurement", "measurements", "snapshot"),
    "mask": ("mask", "Phi", "phi", "masks", "M", "mask3d"),
    "orig": ("orig", "gt", "truth", "ground_truth", "x", "video"),
    "recon": ("recon", "x_hat", "xhat", "rec", "output", "pred"),
}

_LUMA = np.array([0.299, 0.587, 0.114])
_MAT_NUMERIC_CLASSES = {
    "double", "single", "logical", "int8", "uint8", "int16", "uint16", "int32", "uint32",
    "int64", "uint64", "sparse",
}


# ----------------------------------------------------------------------------- helpers
def _short(exc: BaseException) -> str:
    """A one-line, bounded description of an exception."""
    text = str(exc).strip().splitlines()
    msg = text[0] if text and text[0] else type(exc).__name__
    return msg if len(msg) <= 160 else msg[:157] + "..."


def _label(path: Path, key: str | None) -> str:
    return f"{path}[{key}]" if key is not None else str(path)


def _names_list(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:20])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 20 else "")


def _pickled(label: str) -> DataError:
    return DataError(f"{label}: contains pickled Python objects; scicli never unpickles files")


def _is_pickle_error(exc: BaseException) -> bool:
    return isinstance(exc, ValueError) and "pickle" in str(exc).lower()


_F32_MAX = float(np.finfo(np.float32).max)


def _finalize(arr: np.ndarray, label: str, check_finite: bool) -> np.ndarray:
    """Validate dtype (bool -> uint8; complex kept, e.g. k-space; non-numeric rejected),
    finiteness (NaN/Inf in either part of a complex value counts) and, for wider floats, that
    the values fit float32 (the arithmetic's type: larger ones would become Inf)."""
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "biufc":
        raise DataError(f"{label}: not a numeric array (dtype {arr.dtype})")
    if check_finite and arr.dtype.kind in "fc":
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise DataError(f"{label}: {bad} NaN/Inf values")
        if arr.dtype.itemsize > (8 if arr.dtype.kind == "c" else 4) and arr.size:
            top = float(np.max(np.abs(arr)))
            if top > _F32_MAX:
                raise DataError(f"{label}: values up to {top:.3g} overflow float32 (largest {_F32_MAX:.3g}); "
                                "rescale the data")
    return arr


def _to_gray(rgb: np.ndarray) -> np.ndarray:
    """Luminance of an (..., 3|4) array on the input's scale (alpha dropped), in the input's
    dtype: integers rounded (a 0/255 colour mask stays a 0/255 uint8 mask), floats as float32."""
    gray = rgb[..., :3].astype(np.float64) @ _LUMA
    if rgb.dtype.kind in "iub":
        info = np.iinfo(rgb.dtype) if rgb.dtype.kind != "b" else np.iinfo(np.uint8)
        return np.clip(np.rint(gray), info.min, info.max).astype(rgb.dtype if rgb.dtype.kind != "b" else np.uint8)
    return gray.astype(np.float32)


def _natural_key(name: str) -> list[object]:
    return [(0, int(part)) if part.isdigit() else (1, part.lower())
            for part in re.split(r"(\d+)", name) if part != ""]


def _select(
    path: Path,
    names: list[str],
    numeric: Callable[[], list[str]],
    key: str | None,
    role: str | None,
) -> str:
    """Pick one array name by key, else by role alias, else the only numeric array."""
    if key is not None:
        if key in names:
            return key
        raise UsageError(f"{path}: no array named '{key}' (arrays: {_names_list(names)})")
    if role is not None:
        aliases = ROLE_NAMES[role]
        for alias in aliases:
            if alias in names:
                return alias
        for alias in aliases:
            for name in names:
                if name.lower() == alias.lower():
                    return name
    if not names:
        raise DataError(f"{path}: contains no arrays")
    nums = numeric()
    if len(nums) == 1:
        return nums[0]
    what = f"the {role} array" if role is not None else "one array"
    raise UsageError(
        f"{path}: cannot choose {what} (arrays: {_names_list(names)}); pass --key NAME"
    )


# ----------------------------------------------------------------------------- npy / npz
def _npy_header(fh: Any, label: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype an .npy stream declares (the stream is left at the data)."""
    from numpy.lib import format as npformat  # noqa: PLC0415 (numpy's own submodule, not re-exported)

    try:
        version = npformat.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = npformat.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _fortran, dtype = npformat.read_array_header_2_0(fh)
        else:
            shape, _fortran, dtype = npformat._read_array_header(fh, version)
    except Exception as exc:  # noqa: BLE001 - a corrupt header: many possible exception types
        raise DataError(f"cannot read {label}: bad .npy header ({_short(exc)})") from None
    if dtype.hasobject:
        raise _pickled(label)
    return tuple(shape), dtype


def _read_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as fh:
        magic = fh.read(6)
        if magic != b"\x93NUMPY":
            raise DataError(f"cannot read {path}: not a NumPy .npy file")
        fh.seek(0)
        shape, dtype = _npy_header(fh, str(path))
        available = os.fstat(fh.fileno()).st_size - fh.tell()
    check_declared(str(path), shape, dtype, available)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - corrupt input: many possible exception types
        if _is_pickle_error(exc):
            raise _pickled(str(path)) from None
        raise DataError(f"cannot read {path}: {_short(exc)}") from None


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    if not zipfile.is_zipfile(path):
        raise DataError(f"cannot read {path}: not a NumPy .npz (zip) file")
    try:
        return np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {_short(exc)}") from None


def _npz_header(npz: np.lib.npyio.NpzFile, path: Path, name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """Shape, dtype and the bytes after the header of member ``name`` (read from its header:
    nothing of the data is decompressed)."""
    label = _label(path, name)
    zf = npz.zip
    member = name if name in zf.namelist() else f"{name}.npy"
    try:
        info = zf.getinfo(member)
        with zf.open(info) as fh:
            shape, dtype = _npy_header(fh, label)
            header = fh.tell()
    except ScicliError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt zip: many possible exception types
        raise DataError(f"cannot read {label}: {_short(exc)}") from None
    return shape, dtype, info.file_size - header


def _npz_declared(npz: np.lib.npyio.NpzFile, path: Path, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of member ``name``, checked against the member's declared size and the
    memory budget before anything is decompressed."""
    shape, dtype, available = _npz_header(npz, path, name)
    check_declared(_label(path, name), shape, dtype, available)
    return shape, dtype


def _npz_member(npz: np.lib.npyio.NpzFile, path: Path, name: str) -> np.ndarray:
    _npz_declared(npz, path, name)
    try:
        return npz[name]
    except Exception as exc:  # noqa: BLE001
        if _is_pickle_error(exc):
            raise _pickled(_label(path, name)) from None
        raise DataError(f"cannot read {_label(path, name)}: {_short(exc)}") from None


def _read_npz(path: Path, key: str | None, role: str | None) -> tuple[np.ndarray, str]:
    with _open_npz(path) as npz:
        names = list(npz.files)

        def numeric() -> list[str]:
            out = []
            for name in names:
                try:
                    _shape, dtype, _size = _npz_header(npz, path, name)
                except ScicliError:  # pickled/corrupt members are not candidates
                    continue
                if dtype.kind in "biufc":
                    out.append(name)
            return out

        name = _select(path, names, numeric, key, role)
        return _npz_member(npz, path, name), name


# ----------------------------------------------------------------------------- .mat
def _is_hdf5(path: Path) -> bool:
    import h5py  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    try:
        return bool(h5py.is_hdf5(path))
    except Exception:  # noqa: BLE001
        return False


_MAT_ITEMSIZE = {"double": 8, "single": 4, "logical": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2,
                 "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "sparse": 8}


# one reconstruction asks for a file's listing ~10 times (keys, roles, each array's check): one
# listing per version of a file (path, device, inode, size, mtime)
_MAT5_LISTINGS: dict[tuple[object, ...], dict[str, tuple[tuple[int, ...], str]]] = {}

# MAT-file v5 (MathWorks, "MAT-File Format", level 5): data types and array classes
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED = 1, 5, 6, 14, 15
_MX_CLASSES = {1: "cell", 2: "struct", 3: "object", 4: "char", 5: "sparse", 6: "double", 7: "single",
               8: "int8", 9: "uint8", 10: "int16", 11: "uint16", 12: "int32", 13: "uint32", 14: "int64",
               15: "uint64", 16: "function"}
_MX_LOGICAL = 0x200
_MAT5_HEADER_BYTES = 4096
"""The most bytes an array header (flags, dimensions, name) may take once decompressed."""


def _mat5_tag(buf: bytes, pos: int, order: str) -> tuple[int, int, int]:
    """``(type, nbytes, data offset)`` of the data element at ``pos`` (the small format keeps
    up to 4 bytes of data in the tag itself)."""
    if pos + 8 > len(buf):
        raise ValueError("truncated data element")
    first, second = struct.unpack_from(order + "II", buf, pos)
    if first >> 16:
        return first & 0xFFFF, first >> 16, pos + 4
    return first, second, pos + 8


def _mat5_array_header(buf: bytes, order: str) -> tuple[str, tuple[int, ...], str]:
    """``(name, shape, class)`` from the start of a miMATRIX element (its tag included)."""
    kind, _, pos = _mat5_tag(buf, 0, order)
    if kind != _MI_MATRIX:
        raise ValueError(f"data element of type {kind}, not an array")
    kind, n, at = _mat5_tag(buf, pos, order)
    if kind != _MI_UINT32 or n < 4 or at + 4 > len(buf):
        raise ValueError("bad array flags")
    flags = struct.unpack_from(order + "I", buf, at)[0]
    pos = at + ((n + 7) // 8) * 8
    kind, n, at = _mat5_tag(buf, pos, order)
    if kind != _MI_INT32 or n % 4 or at + n > len(buf):
        raise ValueError("bad dimensions")
    shape = tuple(int(d) for d in struct.unpack_from(f"{order}{n // 4}i", buf, at))
    pos = at + (n if at == pos + 4 else ((n + 7) // 8) * 8)
    kind, n, at = _mat5_tag(buf, pos, order)
    if kind != _MI_INT8 or at + n > len(buf):
        raise ValueError("bad array name")
    name = buf[at:at + n].decode("latin-1")
    cls = _MX_CLASSES.get(flags & 0xFF, "unknown")
    if cls != "sparse" and flags & _MX_LOGICAL:
        cls = "logical"
    if any(d < 0 for d in shape):
        raise ValueError(f"negative dimension in {shape}")
    return name, shape, cls


def _mat5_listing(path: Path) -> list[tuple[str, tuple[int, ...], str]]:
    """``(name, shape, class)`` of every variable of a MAT v5 file, read from the array headers
    alone: of a compressed variable only the first bytes are inflated, so a small file that
    declares a huge array (a zip bomb) is listed, and then refused by its declared size, without
    costing its memory (scipy's ``whosmat`` inflates every variable whole)."""
    with open(path, "rb") as fh:
        head = fh.read(128)
        if len(head) < 128:
            raise ValueError("shorter than the 128-byte MAT header")
        order = {b"IM": "<", b"MI": ">"}.get(head[126:128])
        if order is None:
            raise ValueError("not a MAT-file v5 (no endian indicator)")
        if struct.unpack_from(order + "H", head, 124)[0] != 0x0100:
            raise NotImplementedError("MAT-file version other than 5")
        out = []
        size = path.stat().st_size
        pos = 128
        while pos + 8 <= size:
            fh.seek(pos)
            tag = fh.read(8)
            kind, n, at = _mat5_tag(tag, 0, order)
            if at != 8:  # a small element at the top level: nothing to list
                pos += 8
                continue
            if pos + 8 + n > size:
                raise ValueError(f"data element at byte {pos} runs past the end of the file")
            if kind == _MI_COMPRESSED:
                inflater = zlib.decompressobj()
                got = b""
                left = n
                while len(got) < _MAT5_HEADER_BYTES and left > 0 and not inflater.eof:
                    chunk = fh.read(min(left, 1024))
                    left -= len(chunk)
                    got += inflater.decompress(inflater.unconsumed_tail + chunk, _MAT5_HEADER_BYTES - len(got))
                out.append(_mat5_array_header(got, order))
                pos += 8 + n
            elif kind == _MI_MATRIX:
                out.append(_mat5_array_header(tag + fh.read(min(n, _MAT5_HEADER_BYTES)), order))
                pos += 8 + ((n + 7) // 8) * 8
            else:
                pos += 8 + ((n + 7) // 8) * 8
        return out


def _mat5_shapes(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    try:
        st = path.stat()
        version: tuple[object, ...] | None = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        version = None
    if version in _MAT5_LISTINGS:
        return dict(_MAT5_LISTINGS[version])
    try:
        shapes = {name: (shape, cls) for name, shape, cls in _mat5_listing(path) if not name.startswith("__")}
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {_short(exc)}") from None
    if version is not None:
        if len(_MAT5_LISTINGS) >= 64:
            _MAT5_LISTINGS.clear()
        _MAT5_LISTINGS[version] = shapes
    return dict(shapes)


def _mat5_entries(path: Path) -> list[tuple[str, str]]:
    try:
        return [(name, cls) for name, (_shape, cls) in _mat5_shapes(path).items()]
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {_short(exc)}") from None


def _read_mat5(path: Path, key: str | None, role: str | None) -> tuple[np.ndarray, str]:
    import scipy.io  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    entries = _mat5_entries(path)
    names = [n for n, _ in entries]
    name = _select(path, names,
                   lambda: [n for n, c in entries if c in _MAT_NUMERIC_CLASSES], key, role)
    shape, cls = _mat5_shapes(path)[name]
    if cls in _MAT_ITEMSIZE:
        check_declared(_label(path, name), shape, np.dtype(f"u{_MAT_ITEMSIZE[cls]}"))
    try:
        data = scipy.io.loadmat(str(path), variable_names=[name])
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {_label(path, name)}: {_short(exc)}") from None
    if name not in data:
        raise DataError(f"cannot read {_label(path, name)}: variable could not be loaded")
    arr = data[name]
    if hasattr(arr, "toarray") and not isinstance(arr, np.ndarray):  # scipy.sparse
        arr = arr.toarray()
    return np.asarray(arr), name


def _h5_complex(dtype: np.dtype) -> bool:
    """MATLAB v7.3 stores complex arrays as a compound dtype with fields 'real' and 'imag'."""
    return bool(dtype.names) and {"real", "imag"} <= set(dtype.names)


_H5_MAX_SOFT_LINKS = 32
"""Soft links followed on the way to one object (more: a loop or a crafted file)."""


def _h5_resolve(f: Any, path: str, depth: int = 0) -> str | None:
    """The hard-link path that ``path`` names in ``f``, found one component at a time without
    ever following an external link (h5py would open the other file), or None when missing.

    Each component is looked up with ``getlink=True`` under a parent that is already a hard-link
    path, so no link is traversed implicitly; a soft link is replaced by its resolved target.
    Raises :class:`DataError` for an external link met anywhere on the way (also through soft
    links) and for chains of more than :data:`_H5_MAX_SOFT_LINKS` soft links.
    """
    import h5py  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    current = ""
    for part in (p for p in path.split("/") if p and p != "."):
        here = f"{current}/{part}"
        link = f.get(here, getlink=True)
        if link is None:
            return None
        if isinstance(link, h5py.ExternalLink):
            raise DataError(f"an HDF5 external link to {link.filename}:{link.path} (at {here}); "
                            "scicli reads only data stored in the file itself")
        if isinstance(link, h5py.SoftLink):
            if depth >= _H5_MAX_SOFT_LINKS:
                raise DataError(f"more than {_H5_MAX_SOFT_LINKS} HDF5 soft links in a row at {here} (a loop?)")
            target = link.path if link.path.startswith("/") else f"{current}/{link.path}"
            resolved = _h5_resolve(f, target, depth + 1)
            if resolved is None:
                return None
            current = resolved
        else:
            current = here
    return current or "/"


def _h5_object(f: Any, name: str, label: str) -> Any:
    """The object ``name`` names in ``f`` (None when missing), resolved by :func:`_h5_resolve`;
    a :class:`DataError` when reading it would read another file's bytes: an external link on the
    way to it (also behind soft links), external storage, a virtual dataset."""
    import h5py  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    try:
        real = _h5_resolve(f, name)
    except DataError as exc:
        raise DataError(f"{label}: {exc}") from None
    obj = None if real is None else f.get(real)
    if isinstance(obj, h5py.Dataset):
        if obj.external:
            files = ", ".join(str(e[0]) for e in obj.external)
            raise DataError(f"{label}: an HDF5 dataset with external storage ({files}); scicli reads only data "
                            "stored in the file itself")
        if obj.is_virtual:
            raise DataError(f"{label}: an HDF5 virtual dataset (mapped from other files); scicli reads only data "
                            "stored in the file itself")
    return obj


def _h5_entries(f: object) -> list[tuple[str, bool]]:
    import h5py  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    out = []
    for name in f.keys():  # type: ignore[attr-defined]
        if name.startswith("#") or name.startswith("__"):
            continue
        try:
            real = _h5_resolve(f, name)
        except DataError:
            real = None
        if real is None:
            out.append((name, False))  # never opened: an external link on the way, a loop or a dangling link
            continue
        obj = f[real]  # type: ignore[index]
        numeric = False
        if isinstance(obj, h5py.Dataset):
            cls = obj.attrs.get("MATLAB_class", b"")
            cls = cls.decode() if isinstance(cls, bytes) else str(cls)
            empty = bool(obj.attrs.get("MATLAB_empty", 0))
            numeric = ((obj.dtype.kind in "biuf" or _h5_complex(obj.dtype)) and not empty
                       and cls not in ("char", "cell", "struct", "function_handle"))
        out.append((name, numeric))
    return out


def _read_mat73(path: Path, key: str | None, role: str | None) -> tuple[np.ndarray, str]:
    import h5py  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    try:
        f = h5py.File(path, "r")
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {_short(exc)}") from None
    with f:
        try:
            entries = _h5_entries(f)
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot read {path}: {_short(exc)}") from None
        names = [n for n, _ in entries]
        name = _select(path, names, lambda: [n for n, ok in entries if ok], key, role)
        label = _label(path, name)
        obj = _h5_object(f, name, label)
        if not isinstance(obj, h5py.Dataset):
            raise DataError(f"{label}: a MATLAB struct/group, not a numeric array")
        cls = obj.attrs.get("MATLAB_class", b"")
        cls = cls.decode() if isinstance(cls, bytes) else str(cls)
        complex_ = _h5_complex(obj.dtype)
        if cls in ("char", "cell", "struct") or not (complex_ or obj.dtype.kind in "biuf"):
            raise DataError(f"{label}: not a numeric array (MATLAB class {cls or obj.dtype})")
        if obj.attrs.get("MATLAB_empty", 0):
            raise DataError(f"{label}: empty array")
        check_declared(label, tuple(obj.shape), obj.dtype)
        try:
            arr = np.asarray(obj[()]).T
            if complex_:
                out = np.empty(arr.shape, dtype=np.result_type(arr.dtype["real"], np.complex64))
                out.real, out.imag = arr["real"], arr["imag"]
                arr = out
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot read {label}: {_short(exc)}") from None
        if cls == "logical":
            arr = arr.astype(bool)
        return arr, name


def _read_mat(path: Path, key: str | None, role: str | None) -> tuple[np.ndarray, str]:
    if _is_hdf5(path):
        return _read_mat73(path, key, role)
    try:
        return _read_mat5(path, key, role)
    except NotImplementedError:  # scipy: "Please use HDF reader for matlab v7.3 files"
        return _read_mat73(path, key, role)


# ----------------------------------------------------------------------------- images
def _read_tiff(path: Path) -> np.ndarray:
    import tifffile  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            check_declared(str(path), tuple(series.shape), series.dtype)
            arr = series.asarray()
            axes = series.axes
            rgb = series.keyframe.photometric == tifffile.PHOTOMETRIC.RGB
    except ScicliError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {_short(exc)}") from None
    if rgb and "S" in axes and arr.shape[axes.index("S")] in (3, 4):
        return _to_gray(np.moveaxis(arr, axes.index("S"), -1))
    return arr


def _gray_frames(arr: np.ndarray, frame_ndim: int) -> np.ndarray:
    """Drop colour from an imageio result whose single frame has ``frame_ndim`` dims."""
    if arr.ndim == frame_ndim + 1:
        channels = arr.shape[-1]
        if channels in (3, 4):
            return _to_gray(arr)
        if channels in (1, 2):  # gray, gray + alpha
            return arr[..., 0]
    return arr


def _check_image_size(path: Path) -> None:
    """Frames x height x width x bands an image file declares, against the memory budget."""
    from PIL import Image  # noqa: PLC0415 (imageio's own dependency; reads the header only)

    try:
        with Image.open(path) as im:
            width, height = im.size
            frames = int(getattr(im, "n_frames", 1))
            bands = len(im.getbands())
    except Exception as exc:  # noqa: BLE001 - corrupt header: many possible exception types
        raise DataError(f"cannot read {path}: {_short(exc)}") from None
    check_declared(str(path), (frames, height, width, bands), np.float32 if bands > 1 else np.uint16)


def _read_image(path: Path) -> np.ndarray:
    import imageio.v3 as iio  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return _read_tiff(path)
    _check_image_size(path)
    try:
        if suffix == ".gif":
            return _gray_frames(np.asarray(iio.imread(path, index=None)), 3)
        arr = np.asarray(iio.imread(path))
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {_short(exc)}") from None
    return _gray_frames(arr, 2)


def _read_video(path: Path) -> np.ndarray:
    if not any(importlib.util.find_spec(m) for m in ("imageio_ffmpeg", "av")):
        raise DataError(
            f"cannot read {path}: reading {path.suffix} video needs imageio-ffmpeg "
            "(pip install imageio-ffmpeg)"
        )
    import imageio.v3 as iio  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

    frames: list[np.ndarray] = []
    total = 0
    try:
        for frame in iio.imiter(path):
            frames.append(np.asarray(frame))
            total += frames[-1].nbytes
            if total > memory_budget():
                raise DataError(f"{path}: more than the memory budget {human(memory_budget())} of frames "
                                "(--max-memory)")
    except ScicliError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {_short(exc)}") from None
    if not frames:
        raise DataError(f"{path}: video has no frames")
    return _gray_frames(np.stack(frames), 3)


def _read_dir(path: Path) -> np.ndarray:
    files = sorted(
        (p for p in path.iterdir()
         if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_DIR_SUFFIXES),
        key=lambda p: _natural_key(p.name),
    )
    if not files:
        raise UsageError(
            f"{path}: directory holds no image files ({' '.join(IMAGE_DIR_SUFFIXES)})"
        )
    frames: list[np.ndarray] = []
    total = 0
    for file in files:
        check_regular(file)
        frame = _read_image(file)
        total += frame.nbytes
        if total > memory_budget():
            raise DataError(f"{path}: its frames exceed the memory budget {human(memory_budget())} (--max-memory)")
        if frame.ndim != 2:
            raise UsageError(
                f"{file}: expected one 2-D frame per file, got shape {tuple(frame.shape)}"
            )
        if frames and frame.shape != frames[0].shape:
            raise UsageError(
                f"{file}: shape {tuple(frame.shape)} differs from {files[0].name} "
                f"{tuple(frames[0].shape)}; all frames must have the same shape"
            )
        frames.append(frame)
    return np.stack(frames)


# ----------------------------------------------------------------------------- public
def _check_path(path: Path) -> None:
    if not os.path.lexists(path):
        raise UsageError(f"file not found: {path}")
    check_regular(path)
    if not path.is_dir() and path.suffix.lower() not in SUPPORTED_SUFFIXES:
        shown = path.suffix or "(no suffix)"
        raise UsageError(
            f"{path}: unsupported file type '{shown}' (supported: {' '.join(SUPPORTED_SUFFIXES)}, "
            "or a directory of images)"
        )


def list_keys(path: Path) -> list[str]:
    """Names of the arrays in a .mat or .npz file; ``[]`` for other formats."""
    path = Path(path)
    _check_path(path)
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            return []
        if suffix == ".npz":
            with _open_npz(path) as npz:
                return list(npz.files)
        if suffix == ".mat":
            if not _is_hdf5(path):
                try:
                    return [n for n, _ in _mat5_entries(path)]
                except NotImplementedError:
                    pass
            import h5py  # noqa: PLC0415 (heavy dependency, loaded by the format that needs it)

            with h5py.File(path, "r") as f:
                return [n for n, _ in _h5_entries(f)]
    except ScicliError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"cannot read {path}: {_short(exc)}") from None
    return []


def read_array(
    path: Path,
    key: str | None = None,
    role: str | None = None,
    *,
    check_finite: bool = True,
) -> np.ndarray:
    """Read one numeric array from ``path`` (a file or a directory of image frames).

    For .npz/.mat the array is chosen by ``key``, else by ``role`` ('meas', 'mask', 'orig')
    through the field's usual names, else the file's only numeric array. Layout and dtype are
    kept (bool -> uint8; RGB -> float32 luminance; MATLAB v7.3 transposed to MATLAB order).
    """
    path = Path(path)
    if role is not None and role not in ROLE_NAMES:
        raise ValueError(f"role must be one of {sorted(ROLE_NAMES)}, not {role!r}")
    _check_path(path)
    suffix = path.suffix.lower()
    if key is not None and (path.is_dir() or suffix not in (".npz", ".mat")):
        raise UsageError(f"{path}: --key applies only to .mat and .npz files")
    name: str | None = None
    try:
        if path.is_dir():
            arr = _read_dir(path)
        elif suffix == ".npy":
            arr = _read_npy(path)
        elif suffix == ".npz":
            arr, name = _read_npz(path, key, role)
        elif suffix == ".mat":
            arr, name = _read_mat(path, key, role)
        elif suffix in VIDEO_SUFFIXES:
            arr = _read_video(path)
        elif suffix == ".dcm":
            arr = read_dicom(path)  # float32 on [0, 1] (CT: the Hounsfield window)
        else:
            arr = _read_image(path)
    except ScicliError:
        raise
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {_short(exc)}") from None
    return _finalize(arr, _label(path, name), check_finite)
