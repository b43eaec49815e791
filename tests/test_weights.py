"""Shipped weights: every file in scicli/weights/ is in the manifest with its sha256 and
provenance, loads with weights_only=True, and the manifest lists no missing file."""

from __future__ import annotations

import json

import pytest
import torch

from scicli.priors import DENOISERS
from scicli.weights.store import MANIFEST, WEIGHTS_DIR, is_reconstruction, sha256

SHIPPED = sorted(WEIGHTS_DIR.glob("*.pt"))
MANIFEST_DATA = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
DENOISING = sorted(n for n, e in MANIFEST_DATA.items() if not is_reconstruction(e["method"]))
RECONSTRUCTION = sorted(n for n, e in MANIFEST_DATA.items() if is_reconstruction(e["method"])
                        and e["config"].get("operator", "video-sci") == "video-sci")
"""Shipped video-SCI reconstruction weights (those of other operators are tested with their method)."""


def _clip():
    """A natural-image clip: camera() crop panned 1 px/frame, (1, 8, 64, 72)."""
    from skimage import data

    img = torch.from_numpy(data.camera()[100:164, 200:272].astype("float32") / 255.0)
    return torch.stack([torch.roll(img, t, dims=1) for t in range(8)])[None]


def test_every_shipped_file_is_in_the_manifest() -> None:
    assert {p.name for p in SHIPPED} == {e["file"] for e in MANIFEST_DATA.values()}


@pytest.mark.parametrize("name", sorted(MANIFEST_DATA))
def test_manifest_entry_matches_its_file(name: str) -> None:
    entry = MANIFEST_DATA[name]
    path = WEIGHTS_DIR / entry["file"]
    assert sha256(path) == entry["sha256"]
    for key in ("command", "training_data", "data_licence", "validation_psnr", "hardware"):
        assert entry.get(key), (name, key)
    assert entry["command"].startswith("scicli train")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["method"] == entry["method"] and ckpt["config"] == entry["config"]
    assert path.stat().st_size < 5 * 2**20  # a few MB at most


@pytest.mark.parametrize("name", DENOISING)
def test_shipped_denoiser_loads_without_options(name: str) -> None:
    D = DENOISERS.get(name).factory()
    x = torch.rand(1, 8, 24, 32)
    assert D(x, 25 / 255).shape == x.shape


@pytest.mark.parametrize("name", DENOISING)
def test_shipped_denoiser_lowers_the_error_at_its_nominal_sigma(name: str) -> None:
    """A natural-image clip (camera() crop panned 1 px/frame) with Gaussian noise 25/255."""
    clean = _clip()
    noisy = clean + 25 / 255 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    out = DENOISERS.get(name).factory()(noisy, 25 / 255)
    err_in = (noisy - clean).pow(2).mean().sqrt()
    err_out = (out - clean).pow(2).mean().sqrt()
    assert err_out < 0.6 * err_in, (name, float(err_in), float(err_out))


@pytest.mark.parametrize("name", RECONSTRUCTION)
def test_shipped_reconstruction_runs_without_options_and_beats_gap_tv(name: str) -> None:
    """The method's default weights on a coded snapshot of the clip (random binary masks, B=8)."""
    from scicli.physics import VideoSCI
    from scicli.methods import METHODS
    from scicli.metrics import frame_psnr

    x = _clip()
    mask = (torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    op = VideoSCI(mask)
    y = op.A(x)
    method = MANIFEST_DATA[name]["method"]
    out = METHODS.get(method).factory().solve(op, y).x
    tv = METHODS.get("gap-tv").factory().solve(op, y).x
    assert out.shape == x.shape
    assert float(frame_psnr(out, x).mean()) > float(frame_psnr(tv, x).mean()) + 0.3  # 22.8 vs 22.3 dB
