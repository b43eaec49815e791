"""Shipped weights: every file in scicli/weights/ is in the manifest with its sha256 and
provenance, loads with weights_only=True, and the manifest lists no missing file."""

from __future__ import annotations

import json

import pytest
import torch

import scicli.methods  # noqa: F401  (registers the learned methods: is_reconstruction knows them)
from scicli.priors import DENOISERS
from scicli.weights.store import MANIFEST, WEIGHTS_DIR, is_reconstruction, sha256

SHIPPED = sorted(WEIGHTS_DIR.glob("*.pt"))
MANIFEST_DATA = json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}
RECONSTRUCTION = sorted(n for n, e in MANIFEST_DATA.items() if is_reconstruction(e["method"])
                        and e["config"].get("operator", "video-sci") == "video-sci")
OPERATOR_WEIGHTS = sorted(n for n, e in MANIFEST_DATA.items() if is_reconstruction(e["method"])
                          and e["config"].get("operator") == "cs-block")  # lista (dictionary): tests/test_lista.py
DENOISING = sorted(n for n, e in MANIFEST_DATA.items() if not is_reconstruction(e["method"]))


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
    for key in ("command", "training_data", "data_licence", "hardware"):
        assert entry.get(key), (name, key)
    assert any(k.startswith("validation_") and entry[k] for k in entry), name
    assert entry["command"].startswith(("scicli train", "python bench/"))
    for companion in entry.get("companions", []):  # files the weights need (LISTA's dictionary)
        assert sha256(WEIGHTS_DIR / companion["file"]) == companion["sha256"], companion["file"]
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


ISTA_MATRICES = WEIGHTS_DIR.parents[2] / "shared" / "data" / "cs" / "sampling_matrix"
ISTA_RATIO = {10: 1, 43: 4, 109: 10, 272: 25, 327: 30, 436: 40}  # m -> the percent of ISTA-Net's file names


@pytest.mark.parametrize("name", OPERATOR_WEIGHTS)
def test_shipped_operator_weights_beat_the_linear_start_on_their_operator(name: str) -> None:
    """Block-CS weights (trained on ISTA-Net's Phi and Qinit, the files of shared/data/cs) run
    without options on a natural image (camera() crop, 99 x 99) measured with those matrices and
    improve on the Qinit estimate."""
    import numpy as np
    import scipy.io
    from skimage import data

    from scicli.methods import METHODS
    from scicli.metrics import sample_psnr
    from scicli.physics.cs_block import BlockCS

    entry = MANIFEST_DATA[name]
    assert entry["config"]["operator"] == "cs-block", "add a check for weights of this operator"
    pct = ISTA_RATIO[entry["config"]["signature"]["m"]]
    if not (ISTA_MATRICES / f"phi_0_{pct}_1089.mat").is_file():
        pytest.skip("needs ../shared/data/cs")
    phi = scipy.io.loadmat(ISTA_MATRICES / f"phi_0_{pct}_1089.mat")["phi"]
    qinit = scipy.io.loadmat(ISTA_MATRICES / f"Initialization_Matrix_{pct}.mat")["Qinit"]
    op = BlockCS.from_arrays({"phi": phi, "qinit": qinit, "size": np.array([99, 99])}).to(torch.float32)
    x = torch.from_numpy(data.camera()[100:199, 200:299].astype("float32") / 255.0)[None, None]
    y = op.A(x)
    out = METHODS.get(entry["method"]).factory().solve(op, y).x
    assert out.shape == x.shape
    assert float(sample_psnr(out, x).mean()) > float(sample_psnr(op.start(y), x).mean()) + 0.1  # 23.19 vs 23.01 dB (epoch 2)
