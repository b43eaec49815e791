"""Tests for scicli.metrics (PSNR, SSIM conventions) and scicli.report (JSON/CSV/MD writers)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from scicli.core.errors import UsageError
from scicli import metrics
from scicli.metrics import frame_metrics, nmse, psnr, snr, ssim
from scicli.report import make_report, write_report


def _smooth(shape: tuple[int, ...] = (32, 32), seed: int = 0) -> np.ndarray:
    """A smooth image in [0.2, 0.8] plus mild texture (deterministic)."""
    rng = np.random.default_rng(seed)
    h, w = shape[-2:]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.5 + 0.2 * np.sin(6 * xx) * np.cos(4 * yy)
    return np.clip(base + 0.05 * rng.standard_normal(shape), 0.0, 1.0)


# ---------------------------------------------------------------- PSNR
def test_psnr_known_mse() -> None:
    ref = np.full((16, 16), 0.5)
    assert psnr(ref + 0.1, ref) == pytest.approx(20.0, abs=1e-9)  # mse = 0.01
    assert psnr(ref + 0.1, ref, data_range=2.0) == pytest.approx(10 * math.log10(4 / 0.01))


def test_psnr_identical_is_inf() -> None:
    x = _smooth()
    assert psnr(x, x.copy()) == float("inf")


def test_psnr_clips_both_inputs() -> None:
    ref = np.full((8, 8), 0.9)
    x = np.full((8, 8), 1.5)  # clipped to 1.0 -> error 0.1
    assert psnr(x, ref) == pytest.approx(20.0)
    # out-of-range values on both sides clip to the same number -> identical
    assert psnr(np.full((8, 8), -0.3), np.full((8, 8), -0.7)) == float("inf")


def test_psnr_returns_python_float() -> None:
    assert type(psnr(np.zeros((4, 4), np.float32), np.full((4, 4), 0.5, np.float32))) is float


# ---------------------------------------------------------------- SSIM
def test_ssim_skimage_matches_skimage() -> None:
    ref = _smooth(seed=1)
    x = np.clip(ref + 0.1 * np.random.default_rng(2).standard_normal(ref.shape), 0, 1)
    expected = structural_similarity(x, ref, data_range=1.0)
    assert ssim(x, ref) == pytest.approx(expected, abs=1e-12)
    assert ssim(x, ref, convention="skimage") == pytest.approx(expected, abs=1e-12)


def test_ssim_skimage_clips_first() -> None:
    ref = _smooth(seed=3)
    x = ref + 0.3  # goes above 1 in places
    expected = structural_similarity(np.clip(x, 0, 1), ref, data_range=1.0)
    assert ssim(x, ref) == pytest.approx(expected, abs=1e-12)


def test_ssim_matlab_differs_on_noise_but_one_on_identical() -> None:
    ref = _smooth(seed=4)
    x = np.clip(ref + 0.1 * np.random.default_rng(5).standard_normal(ref.shape), 0, 1)
    s_sk, s_ml = ssim(x, ref), ssim(x, ref, convention="matlab")
    assert 0 < s_ml < 1 and abs(s_ml - s_sk) > 1e-3
    expected = structural_similarity(
        x, ref, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert s_ml == pytest.approx(expected, abs=1e-12)
    assert ssim(ref, ref.copy(), convention="matlab") == pytest.approx(1.0)
    assert ssim(ref, ref.copy()) == pytest.approx(1.0)


@pytest.mark.parametrize("convention", ["skimage", "matlab"])
@pytest.mark.parametrize("shape", [(2, 11, 11), (3, 13, 40), (2, 64, 37)])
def test_ssim_is_scikit_images_on_random_frames(convention: str, shape: tuple[int, int, int],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """scicli computes SSIM without scikit-image (start-up and speed): per frame it equals
    ``structural_similarity`` with the convention's settings, whether the frames are filtered
    one by one or all in one block, for float32 and float64 inputs, unclipped or not."""
    rng = np.random.default_rng(sum(shape))
    ref = rng.random(shape)
    x = ref + rng.normal(0.0, 0.2, shape)  # leaves [0, 1]: both are clipped first
    settings = {} if convention == "skimage" else {"gaussian_weights": True, "sigma": 1.5,
                                                   "use_sample_covariance": False}
    expected = [structural_similarity(np.clip(a, 0, 1), b, data_range=1.0, **settings) for a, b in zip(x, ref)]
    for chunk in (1, 1 << 24):  # one frame per block; every frame in one block
        monkeypatch.setattr(metrics, "SSIM_CHUNK", chunk)
        assert frame_metrics(x, ref, ssim_convention=convention)["ssim"] == pytest.approx(expected, abs=1e-12)
        got32 = frame_metrics(x.astype(np.float32), ref.astype(np.float32), ssim_convention=convention)["ssim"]
        expected32 = [structural_similarity(np.clip(a, 0, 1).astype(np.float64), b.astype(np.float64),
                                            data_range=1.0, **settings)
                      for a, b in zip(x.astype(np.float32), ref.astype(np.float32))]
        assert got32 == pytest.approx(expected32, abs=1e-12)
    assert ssim(x[0], ref[0], convention=convention) == pytest.approx(expected[0], abs=1e-12)


def test_ssim_data_range_and_too_small_frames() -> None:
    rng = np.random.default_rng(9)
    ref = rng.integers(0, 256, (20, 24)).astype(np.float64)
    x = np.clip(ref + rng.normal(0, 20, ref.shape), 0, 255)
    assert ssim(x, ref, data_range=255.0) == pytest.approx(structural_similarity(x, ref, data_range=255.0), abs=1e-12)
    with pytest.raises(ValueError, match="window"):
        ssim(np.zeros((6, 30)), np.zeros((6, 30)))
    with pytest.raises(ValueError, match="window"):
        ssim(np.zeros((10, 30)), np.zeros((10, 30)), convention="matlab")  # 11 x 11


def test_snr_and_nmse_equal_least_squares_and_norms_on_random_data() -> None:
    """The closed-form affine fit and elementwise norms (no BLAS: its threads are slow to wake on a
    busy machine) give the values of ``np.linalg.lstsq`` and ``np.linalg.norm``."""
    rng = np.random.default_rng(10)
    for _ in range(5):
        ref = rng.random((17, 23))
        x = rng.uniform(0.2, 3.0) * ref + rng.normal(0, rng.uniform(0.01, 0.3), ref.shape) + rng.normal()
        design = np.stack([x.ravel(), np.ones(x.size)], axis=1)
        coef, *_ = np.linalg.lstsq(design, ref.ravel(), rcond=None)
        by_lstsq = 20 * np.log10(np.linalg.norm(ref) / np.linalg.norm(ref.ravel() - design @ coef))
        assert snr(x, ref) == pytest.approx(by_lstsq, rel=1e-12)
        assert nmse(x, ref) == pytest.approx(np.linalg.norm(x - ref) / np.linalg.norm(ref), rel=1e-12)
        z, zr = x + 1j * ref, ref - 0.5j * x
        assert nmse(z, zr) == pytest.approx(np.linalg.norm(z - zr) / np.linalg.norm(zr), rel=1e-12)
    constant = np.full((8, 8), 0.3)  # fitted by the mean of ref: the residual is ref - mean(ref)
    ref = rng.random((8, 8))
    assert snr(constant, ref) == pytest.approx(20 * np.log10(np.linalg.norm(ref) / np.linalg.norm(ref - ref.mean())))


def test_ssim_unknown_convention() -> None:
    with pytest.raises(ValueError, match="convention"):
        ssim(_smooth(), _smooth(), convention="matlab2")


# ---------------------------------------------------------------- frame_metrics
def test_frame_metrics_per_frame_and_means() -> None:
    orig = _smooth((3, 24, 24), seed=6)
    recon = orig.copy()
    recon[1] = np.clip(recon[1] + 0.05, 0, 1)
    recon[2] = np.clip(recon[2] - 0.1, 0, 1)
    m = frame_metrics(recon, orig)
    assert len(m["psnr"]) == len(m["ssim"]) == 3
    assert m["psnr"][0] == float("inf") and m["ssim"][0] == pytest.approx(1.0)
    assert m["psnr"][1] == pytest.approx(psnr(recon[1], orig[1]))
    assert m["ssim"][2] == pytest.approx(ssim(recon[2], orig[2]))
    assert m["ssim_mean"] == pytest.approx(np.mean(m["ssim"]))
    conv = m["convention"]
    assert conv["ssim"] == "skimage" and conv["data_range"] == 1.0 and conv["per_frame"]
    assert "clipped" in conv["text"] and "7x7" in conv["text"]
    m2 = frame_metrics(recon, orig, ssim_convention="matlab")
    assert "11x11" in m2["convention"]["text"]
    assert m2["psnr"][1:] == m["psnr"][1:]


def test_frame_metrics_shape_mismatch() -> None:
    with pytest.raises(ValueError, match=r"\(2, 16, 16\).*\(3, 16, 16\)"):
        frame_metrics(np.zeros((2, 16, 16)), np.zeros((3, 16, 16)))


def test_frame_metrics_rejects_bad_ndim() -> None:
    with pytest.raises(ValueError, match="frames-first"):
        frame_metrics(np.zeros((1, 2, 16, 16)), np.zeros((1, 2, 16, 16)))


# ---------------------------------------------------------------- reports
def _report() -> dict:
    orig = _smooth((3, 16, 16), seed=7).astype(np.float32)
    noise = 0.02 * np.random.default_rng(8).standard_normal(orig.shape)
    recon = np.clip(orig + noise, 0, 1).astype(np.float32)
    recon[0] = orig[0]  # one infinite PSNR
    m = frame_metrics(recon, orig)
    meta = {"dataset": "toy", "seed": np.int64(7), "sigma": np.float32(0.5)}
    return make_report(m, meta=meta)


def test_report_json_round_trip(tmp_path: Path) -> None:
    rep = _report()
    out = write_report(tmp_path / "r.json", rep)
    assert out == tmp_path / "r.json"
    data = json.loads(out.read_text())
    assert data["frames"]["psnr"][0] == "inf"  # strict JSON: no bare Infinity
    assert data["frames"]["psnr"][1:] == pytest.approx(rep["frames"]["psnr"][1:])
    assert data["frames"]["ssim"] == pytest.approx(rep["frames"]["ssim"])
    assert data["meta"] == {"dataset": "toy", "seed": 7, "sigma": 0.5}
    assert data["convention"] == rep["convention"] and "skimage" in data["convention"]
    assert "Infinity" not in out.read_text()


def test_report_csv_round_trip(tmp_path: Path) -> None:
    rep = _report()
    out = write_report(tmp_path / "r.csv", rep)
    with open(out, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["frame", "psnr", "ssim"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2", "mean"]
    assert float(rows[1][1]) == float("inf")
    for i in range(3):
        assert float(rows[i + 1][2]) == rep["frames"]["ssim"][i]
    assert float(rows[2][1]) == rep["frames"]["psnr"][1]
    assert float(rows[4][2]) == pytest.approx(rep["ssim_mean"])


def test_report_md(tmp_path: Path) -> None:
    rep = _report()
    text = write_report(tmp_path / "r.md", rep).read_text()
    assert "Convention:" in text and "skimage" in text
    assert "- dataset: toy" in text and "- seed: 7" in text
    table = [ln for ln in text.splitlines() if ln.startswith("|")]
    assert table[0].startswith("| frame") and len(table) == 2 + 3 + 1
    assert "mean" in table[-1] and f"{rep['ssim_mean']:.4f}" in table[-1]
    assert f"{rep['frames']['psnr'][2]:.2f}" in table[4]


def test_report_refuses_overwrite_and_unknown_suffix(tmp_path: Path) -> None:
    rep = _report()
    p = tmp_path / "r.csv"
    write_report(p, rep)
    before = p.read_text()
    with pytest.raises(UsageError):
        write_report(p, rep)
    assert p.read_text() == before
    rep["frames"]["ssim"][1] = 0.5
    write_report(p, rep, force=True)
    assert p.read_text() != before
    with pytest.raises(UsageError, match=r"r\.txt.*\.json.*\.csv.*\.md"):
        write_report(tmp_path / "r.txt", rep)
    assert not (tmp_path / "r.txt").exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ["r.csv"]  # no temp files left


def test_snr_is_the_best_affine_fit_by_hand() -> None:
    """ref = (0, 1, 2, 3), x = (0, 1, 1, 2): the least-squares fit ref ~ a x + c has (mean x = 1,
    mean ref = 1.5, sum dx dref = 3, sum dx^2 = 2) a = 3 / 2, c = 1.5 - a = 0; the residual is
    (0, -0.5, 0.5, 0) and ||ref|| = sqrt(14), so SNR = 20 log10(sqrt(14) / sqrt(0.5)) = 10 log10(28)."""
    ref = np.array([[0.0, 1.0], [2.0, 3.0]])
    x = np.array([[0.0, 1.0], [1.0, 2.0]])
    assert snr(x, ref) == pytest.approx(10 * np.log10(28.0), rel=1e-12)
    assert snr(3 * ref - 7, ref) == float("inf")  # gain and offset are not penalised
    assert snr(2 * x + 1, ref) == pytest.approx(snr(x, ref), rel=1e-12)
    with pytest.raises(ValueError, match="shapes differ"):
        snr(x, ref[0])


def test_frame_metrics_report_snr_per_frame() -> None:
    """Frame 0 repeats the hand example 16 times (a 8 x 8 frame: same fit, same SNR); frame 1 is
    half its reference (an exact affine fit)."""
    ref0, x0 = np.tile([[0.0, 1.0], [2.0, 3.0]], (4, 4)) / 4, np.tile([[0.0, 1.0], [1.0, 2.0]], (4, 4)) / 4
    ref = np.stack([ref0, np.eye(8)])
    x = np.stack([x0, 0.5 * np.eye(8)])
    m = frame_metrics(x, ref)
    assert m["snr"][0] == pytest.approx(10 * np.log10(28.0), rel=1e-12) and m["snr"][1] == float("inf")
    assert m["snr_mean"] == float("inf")
