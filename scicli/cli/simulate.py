"""``scicli simulate``: a video -> coded snapshots, masks and ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from scicli.cli.common import guarded, out
from scicli.errors import UsageError
from scicli.io import read_array, write_array, write_json
from scicli.io.layout import resolve, to_first
from scicli.physics.masks import MASK_KINDS, make_mask
from scicli.pipeline import environment
from scicli.problem import orig_scale

FORMATS = ("npy", "mat", "tif")


@guarded
def simulate_cmd(
    video: Path = typer.Argument(..., help="Video: multi-page TIFF, .npy/.npz/.mat, .gif/.mp4, or a folder of frames."),
    frames: int = typer.Option(8, "--frames", "-B", min=1, help="Frames B coded into one snapshot."),
    mask: str = typer.Option("random", "--mask", help="random, shifted, or a mask file (B, H, W) / (H, W, B)."),
    density: float = typer.Option(0.5, "--density", help="Fraction of open mask pixels."),
    noise: float = typer.Option(0.0, "--noise", min=0.0, help="Gaussian noise sigma on the snapshot, in [0, 1] frame units."),
    seed: int = typer.Option(0, "--seed", help="Random seed (mask and noise)."),
    out_dir: Path = typer.Option(Path("sim"), "--out", "-o", help="Output directory."),
    fmt: str = typer.Option("npy", "--format", help="npy, tif (meas/mask/orig files) or mat (one sim.mat, frames last)."),
    key: Optional[str] = typer.Option(None, "--key", help="Array name in a .mat/.npz video."),
    layout: str = typer.Option("auto", "--layout", help="Frame axis of the video: auto, first or last."),
    max_value: Optional[float] = typer.Option(None, "--max-value", help="Intensity scale of the video (default: automatic)."),
    max_measurements: Optional[int] = typer.Option(None, "--measurements", min=1, help="Use at most this many snapshots."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs."),
) -> None:
    """Simulate a CACTI camera: y_k = sum_t M_t * x_{kB+t} + noise, for consecutive groups of B frames."""
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    raw = read_array(video, key=key, role="orig")
    if raw.ndim != 3:
        raise UsageError(f"{video}: expected a video of frames (F, H, W) or (H, W, F), got shape {raw.shape}")
    if layout == "auto":  # a video alone: the format's convention (MATLAB: frames last)
        layout = "last" if video.suffix.lower() == ".mat" else "first"
    vid = to_first(raw, resolve({str(video): (raw.shape, "video")}, layout)[0][str(video)])
    scale = float(max_value) if max_value else orig_scale(vid)
    F, H, W = vid.shape
    rng = np.random.default_rng(seed)
    if mask in MASK_KINDS:
        masks = make_mask(mask, frames, H, W, density=density, rng=rng)
        mask_src = mask
    else:
        mpath = Path(mask)
        marr = read_array(mpath, role="mask")
        if marr.ndim != 3:
            raise UsageError(f"{mpath}: a mask must be 3-D, got shape {marr.shape}")
        lay, hw = resolve({str(mpath): (marr.shape, "mask"), str(video): ((frames, H, W), "video frames")},
                          "auto")
        masks = to_first(marr, lay[str(mpath)])
        if masks.shape[0] != frames:
            raise UsageError(f"{mpath}: holds {masks.shape[0]} masks but --frames is {frames}")
        masks = (masks / masks.max()).astype(np.float32) if masks.dtype.kind in "iu" and masks.max() > 1 \
            else masks if masks.dtype == np.uint8 else masks.astype(np.float32)
        mask_src = str(mpath)
    K = F // frames
    if max_measurements:
        K = min(K, max_measurements)
    if K < 1:
        raise UsageError(f"{video}: {F} frames, fewer than --frames {frames}")
    orig = (vid[: K * frames].astype(np.float64) / scale).reshape(K, frames, H, W)
    mk = masks.astype(np.float64)
    meas = (mk[None] * orig).sum(axis=1)
    if noise > 0:
        meas = meas + noise * rng.standard_normal(meas.shape)

    names = {"npy": ["meas.npy", "mask.npy", "orig.npy"], "tif": ["meas.tif", "mask.tif", "orig.tif"],
             "mat": ["sim.mat"]}[fmt]
    targets = [out_dir / n for n in names] + [out_dir / "simulation.json"]
    if not force:
        for t in targets:
            if t.exists():
                raise UsageError(f"{t} exists; pass --force to overwrite")
    orig_frames = orig.reshape(K * frames, H, W).astype(np.float32)
    if fmt == "mat":
        import scipy.io

        from scicli.io import atomic_write

        def _write(tmp: Path) -> None:  # the benchmark's layout: (H, W, B), (H, W, K), (H, W, K*B)
            scipy.io.savemat(tmp, {"meas": np.moveaxis(meas.astype(np.float32), 0, -1),
                                   "mask": np.moveaxis(masks, 0, -1),
                                   "orig": np.moveaxis(orig_frames, 0, -1)}, do_compression=True)

        atomic_write(targets[0], _write, force=force)
    else:
        write_array(targets[0], meas.astype(np.float32), force=force)
        write_array(targets[1], masks, force=force, dtype=None)
        write_array(targets[2], orig_frames, force=force)
    info = {
        "video": str(video),
        "video_shape": list(raw.shape),
        "video_layout": layout,
        "video_max_value": scale,
        "frames_per_snapshot": frames,
        "measurements": K,
        "height": H,
        "width": W,
        "mask": mask_src,
        "density": density if mask_src in MASK_KINDS else None,
        "noise_sigma": noise,
        "seed": seed,
        "scaling": "orig = video / video_max_value (on [0, 1]); meas = sum_t mask_t * orig_t + noise",
        "files": [str(t) for t in targets[:-1]],
        "environment": environment(__import__("torch").device("cpu")),
    }
    write_json(targets[-1], info, force=force)
    out.print(f"simulated {K} snapshots of {frames} frames ({H}x{W}) from {video} -> {out_dir}/ "
              f"({', '.join(names)}, simulation.json)", highlight=False, soft_wrap=True)
