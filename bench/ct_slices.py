"""The CT test slices of the CT benches (bench_ct.py --methods, bench_oder.py --table / --lipschitz):
pydicom-data's (PyPI, MIT) real CT slices, never trained or tuned on.

    693_UNCI.dcm, 693_UNCR.dcm         one 512 x 512 slice each (the same acquisition stored
                                       twice: they correlate 0.995, i.e. nearly one anatomy)
    eCT_Supplemental.dcm frames 0, 1   an Enhanced CT Image of two 512 x 512 frames (rescale in
                                       its functional groups, read by scicli.io.dicom)

Each is windowed [-1000, 1000] HU to [0, 1] (scicli.io.dicom's default) and resized to
``size`` x ``size`` with anti-aliasing (scikit-image).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage.transform import resize

from scicli.io.dicom import read_dicom

SLICES = (("693_UNCI.dcm", 0), ("693_UNCR.dcm", 0), ("eCT_Supplemental.dcm", 0), ("eCT_Supplemental.dcm", 1))
"""(file, frame) of the test slices, in table order."""
PAIR = SLICES[:2]
"""The two slices bench_oder's Table 4 was first run on."""


def folder() -> Path:
    """pydicom-data's data folder (the bench extra ``pydicom-data``)."""
    import data_store  # noqa: PLC0415 (pydicom-data, a bench extra; imported only where used)

    return Path(data_store.__file__).parent / "data"


def label(name: str, frame: int) -> str:
    return name if not name.startswith("eCT") else f"{name}[{frame}]"


def test_slices(size: int, which: tuple[tuple[str, int], ...] = SLICES) -> tuple[list[str], np.ndarray]:
    """(labels, images (S, size, size) float32 on [0, 1]) of the slices ``which``."""
    frames: dict[str, np.ndarray] = {}
    out = []
    for name, frame in which:
        if name not in frames:
            frames[name] = read_dicom(folder() / name, frames=True)
        out.append(resize(frames[name][frame], (size, size), anti_aliasing=True))
    return [label(n, f) for n, f in which], np.stack(out).astype(np.float32)


def correlations(images: np.ndarray) -> np.ndarray:
    """Pearson correlation matrix (S, S) of the images (how alike the test slices are)."""
    return np.corrcoef(images.reshape(images.shape[0], -1).astype(np.float64))


def similarity_note(images: np.ndarray) -> str:
    """How alike the four test slices are, for a bench's header (empty for fewer slices)."""
    if len(images) < 4:
        return ""
    corr = correlations(images)
    return f"correlation UNCI/UNCR {corr[0, 1]:.3f} (nearly one anatomy), eCT frames {corr[2, 3]:.2f}"
