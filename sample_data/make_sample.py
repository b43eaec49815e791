"""Build ``sample_data/moving_camera.tif``: 16 frames of 256 x 256 uint8 natural-looking video.

Source: ``skimage.data.camera()`` (512 x 512 uint8, CC0 by the photographer Lav Varshney,
as stated in scikit-image's ``skimage.data.camera`` docstring), shipped inside scikit-image.

A synthetic camera moves smoothly over the source image. Frame ``t`` (t = 0..15) samples the
source at ``p_src = c(t) + s(t) R(theta(t)) (p_out - o)`` for output pixels ``p_out``
(``o`` = centre of the 256 x 256 output), with cubic spline interpolation
(``scipy.ndimage.affine_transform``, order 3):

- centre ``c(t)`` = source centre + a curved pan: ``dx = 1.4 (t - 7.5)``,
  ``dy = 5 sin(pi (t - 7.5) / 15) + 0.5 (t - 7.5)`` pixels,
- zoom ``s(t) = 1 - 0.003 t`` (a slow zoom in), rotation ``theta(t) = 0.12 deg * (t - 7.5)``.

Every sampled coordinate stays well inside the source, so no border appears. Motion is
about 2 px/frame (checked and printed below).

Determinism: no random numbers, no clock, no environment input. The script checks the
source image and the rendered pixels against the sha256 values recorded below and refuses
to write anything if either differs (e.g. a different scikit-image image or a different
spline implementation); ``--force`` writes anyway and prints the new hashes.

Usage: ``python sample_data/make_sample.py [--check] [--force]``
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import skimage.data
import tifffile
from scipy import ndimage

OUT_PATH = Path(__file__).resolve().parent / "moving_camera.tif"
N_FRAMES = 16
SIZE = 256

# sha256 of skimage.data.camera() pixel bytes (512 x 512 uint8, C order).
SOURCE_SHA256 = "5cb24482a53416f99052258be2b1ee38cd31c559a70c8a8b321cba231b332e21"
# sha256 of the rendered (16, 256, 256) uint8 array bytes (C order).
PIXELS_SHA256 = "9fd9645483267ea2858f9827295e8fd7272caa92e1730902ac78c49b326033dd"


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def camera_path(t: float) -> tuple[float, float, float, float]:
    """Camera pose at frame ``t``: (dy, dx, zoom s, rotation theta in radians)."""
    u = t - (N_FRAMES - 1) / 2.0
    dx = 1.4 * u
    dy = 5.0 * np.sin(np.pi * u / 15.0) + 0.5 * u
    s = 1.0 - 0.003 * t
    theta = np.deg2rad(0.12) * u
    return float(dy), float(dx), float(s), float(theta)


def frame_affine(t: float, src_shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Matrix ``A`` and offset ``b`` with ``p_src = A p_out + b`` (row, col coordinates)."""
    dy, dx, s, theta = camera_path(t)
    cos, sin = np.cos(theta), np.sin(theta)
    a = s * np.array([[cos, -sin], [sin, cos]])
    o = np.array([(SIZE - 1) / 2.0, (SIZE - 1) / 2.0])
    c = np.array([(src_shape[0] - 1) / 2.0 + dy, (src_shape[1] - 1) / 2.0 + dx])
    return a, c - a @ o


def render(src: np.ndarray) -> np.ndarray:
    """Render the (N_FRAMES, SIZE, SIZE) uint8 video from the float64 source image."""
    src64 = src.astype(np.float64)
    corners = np.array([[0, 0], [0, SIZE - 1], [SIZE - 1, 0], [SIZE - 1, SIZE - 1]], float)
    frames = np.empty((N_FRAMES, SIZE, SIZE), dtype=np.uint8)
    for t in range(N_FRAMES):
        a, b = frame_affine(t, src.shape)
        pts = corners @ a.T + b  # the map is affine: the extreme coordinates are at corners
        if pts.min() < 4 or (pts[:, 0].max() > src.shape[0] - 5) or (
            pts[:, 1].max() > src.shape[1] - 5
        ):
            raise RuntimeError(f"frame {t} samples outside the source image: {pts}")
        out = ndimage.affine_transform(
            src64, a, offset=b, output_shape=(SIZE, SIZE), order=3, mode="mirror"
        )
        frames[t] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return frames


def motion_stats(src_shape: tuple[int, int]) -> tuple[float, float]:
    """Mean and max displacement (output pixels) of scene points between consecutive frames."""
    yy, xx = np.mgrid[0:SIZE:8, 0:SIZE:8].astype(float)
    p = np.stack([yy.ravel(), xx.ravel()])
    disp = []
    for t in range(N_FRAMES - 1):
        a0, b0 = frame_affine(t, src_shape)
        a1, b1 = frame_affine(t + 1, src_shape)
        q = a0 @ p + b0[:, None]  # scene points seen at p in frame t
        p1 = np.linalg.solve(a1, q - b1[:, None])  # where frame t+1 sees them
        disp.append(np.hypot(*(p1 - p)))
    d = np.concatenate(disp)
    return float(d.mean()), float(d.max())


def main(argv: list[str] | None = None) -> int:
    """Build (or with --check, verify) the sample TIFF."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="verify the existing file only")
    ap.add_argument("--force", action="store_true", help="write even if hashes differ")
    args = ap.parse_args(argv)

    src = np.ascontiguousarray(skimage.data.camera())
    if src.shape != (512, 512) or src.dtype != np.uint8:
        print(f"refusing: camera() is {src.shape} {src.dtype}, expected (512, 512) uint8")
        return 1
    got = sha256_bytes(src.tobytes())
    if got != SOURCE_SHA256 and not args.force:
        print(f"refusing: skimage.data.camera() pixels differ (sha256 {got})")
        return 1

    frames = render(src)
    pix = sha256_bytes(frames.tobytes())
    mean_d, max_d = motion_stats(src.shape)
    print(f"motion: mean {mean_d:.2f} px/frame, max {max_d:.2f} px/frame")
    print(f"pixel sha256: {pix}")

    if args.check:
        if not OUT_PATH.exists():
            print(f"missing: {OUT_PATH}")
            return 1
        on_disk = tifffile.imread(OUT_PATH)
        ok = on_disk.shape == frames.shape and np.array_equal(on_disk, frames)
        print(f"{OUT_PATH.name}: {'OK, matches' if ok else 'DIFFERS from'} the rendering")
        return 0 if ok else 1

    if pix != PIXELS_SHA256 and not args.force:
        print(f"refusing: rendered pixels differ from the recorded sha256 {PIXELS_SHA256}")
        return 1

    fd, tmp_name = tempfile.mkstemp(prefix=".moving_camera.", suffix=".tif", dir=OUT_PATH.parent)
    os.close(fd)
    try:
        # One page per frame; no datetime/software tags, so the bytes depend on pixels only.
        tifffile.imwrite(
            tmp_name,
            frames,
            photometric="minisblack",
            metadata={"axes": "TYX"},
            software=False,
            datetime=None,
            compression=None,
        )
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600
        os.replace(tmp_name, OUT_PATH)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    file_sha = sha256_bytes(OUT_PATH.read_bytes())
    print(f"wrote {OUT_PATH} ({OUT_PATH.stat().st_size} bytes), file sha256: {file_sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
