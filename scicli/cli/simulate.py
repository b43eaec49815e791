"""``scicli simulate``: a video -> coded snapshots, masks and ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
import typer

from scicli.cli.common import check_float, guarded, out, parse_params, use_memory_budget
from scicli.core.units import level
from scicli.core.errors import UsageError
from scicli.io import WriteGroup, atomic_write, read_array, write_array, write_json
from scicli.io.dicom import hu_window, parse_hu_window, set_hu_window
from scicli.io.outputs import Output, check_outputs
from scicli.io.layout import resolve, to_first
from scicli.physics import OPERATORS
from scicli.physics.masks import MASK_KINDS, make_mask
from scicli.pipeline import environment
from scicli.data.problem import OPERATOR_KEY, operator_options, orig_scale

FORMATS = ("npy", "mat", "tif")


@guarded
def simulate_cmd(
    video: Path = typer.Argument(..., help="Video (or images, or a spectral cube): multi-page TIFF, .npy/.npz/.mat, .gif/.mp4, a folder of frames."),
    operator: str = typer.Option("video-sci", "--operator", help="Forward model: video-sci, cassi, cs-block, mri (see `scicli methods`)."),
    operator_param: Optional[list[str]] = typer.Option(None, "--operator-param", "-O", help="Operator setting NAME=VALUE, e.g. ratio=0.3 (cs-block, mri), kind=radial (mri), step=2 (cassi)."),
    frames: int = typer.Option(8, "--frames", "-B", min=1, help="Frames B coded into one snapshot."),
    mask: str = typer.Option("random", "--mask", help="random, shifted, or a mask file (B, H, W) / (H, W, B)."),
    density: float = typer.Option(0.5, "--density", help="Fraction of open mask pixels."),
    noise: float = typer.Option(0.0, "--noise", min=0.0, help="Gaussian noise sigma on the measurements, on the 0..255 scale (like --sigma, --meas-noise)."),
    seed: int = typer.Option(0, "--seed", help="Random seed (mask and noise)."),
    out_dir: Path = typer.Option(Path("sim"), "--out", "-o", help="Output directory."),
    fmt: Optional[str] = typer.Option(None, "--format", help="video-sci: npy (default), tif (meas/mask/orig files) or mat (one sim.mat, frames last); other operators: npz (one sim.npz)."),
    key: Optional[str] = typer.Option(None, "--key", help="Array name in a .mat/.npz video."),
    layout: str = typer.Option("auto", "--layout", help="Frame axis of the video: auto, first or last."),
    max_value: Optional[float] = typer.Option(None, "--max-value", help="Intensity scale of the video (default: automatic)."),
    max_measurements: Optional[int] = typer.Option(None, "--measurements", min=1, help="Use at most this many snapshots."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="Largest array a file may declare, e.g. 4G (default: half the RAM)."),
    views: Optional[int] = typer.Option(None, "--views", min=1, help="ct: projection views over 180 degrees (same as -O views=N)."),
    hu_window_text: Optional[str] = typer.Option(None, "--hu-window", help="DICOM CT input: Hounsfield window LO,HI mapped to [0, 1] (default -1000,1000)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs (never an input)."),
) -> None:
    """Simulate a camera: y = A x + noise. video-sci (default): y_k = sum_t M_t * x_{kB+t} for consecutive
    groups of B frames; other operators: every image (or cube) of the input through a random or given instance."""
    check_float("--max-value", max_value, above=0)
    check_float("--density", density, above=0, high=1)
    check_float("--noise", noise, low=0)
    use_memory_budget(max_memory)
    set_hu_window(parse_hu_window(hu_window_text))
    name = OPERATORS.get(operator).name
    if views is not None:
        if name != "ct":
            raise UsageError(f"--views applies to the ct operator, not {name}")
        operator_param = [*(operator_param or []), f"views={views}"]
    if name != "video-sci":
        return _simulate_operator(name, video, operator_param, mask=mask, noise=noise, seed=seed, out_dir=out_dir,
                                  fmt=fmt or "npz", key=key, layout=layout, max_value=max_value,
                                  max_measurements=max_measurements, force=force)
    if operator_param:
        raise UsageError("--operator-param: video-sci takes no settings (use --mask, --frames, --density)")
    fmt = fmt or "npy"
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, got '{fmt}'")
    names = {"npy": ["meas.npy", "mask.npy", "orig.npy"], "tif": ["meas.tif", "mask.tif", "orig.tif"],
             "mat": ["sim.mat"]}[fmt]
    targets = [out_dir / n for n in names] + [out_dir / "simulation.json"]
    check_outputs([Output("--out", t) for t in targets],
                  [video, None if mask in MASK_KINDS else Path(mask)], force=force)
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
        meas = meas + level(noise) * rng.standard_normal(meas.shape)

    orig_frames = orig.reshape(K * frames, H, W).astype(np.float32)
    if fmt == "mat":
        import scipy.io  # noqa: PLC0415 (heavy optional dependency, loaded for .mat output only)

        def _write(tmp: Path) -> None:  # the benchmark's layout: (H, W, B), (H, W, K), (H, W, K*B)
            scipy.io.savemat(tmp, {"meas": np.moveaxis(meas.astype(np.float32), 0, -1),
                                   "mask": np.moveaxis(masks, 0, -1),
                                   "orig": np.moveaxis(orig_frames, 0, -1)}, do_compression=True)

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
        "noise_sigma": level(noise),
        "noise_level_255": noise,
        "seed": seed,
        "scaling": "orig = video / video_max_value (on [0, 1]); meas = sum_t mask_t * orig_t + noise",
        "files": [str(t) for t in targets[:-1]],
        "environment": environment(torch.device("cpu")),
    }
    with WriteGroup(force=force) as group:  # all files of one simulation, or none
        if fmt == "mat":
            atomic_write(targets[0], _write, group=group)
        else:
            write_array(targets[0], meas.astype(np.float32), group=group)
            write_array(targets[1], masks, dtype=None, group=group)
            write_array(targets[2], orig_frames, group=group)
        write_json(targets[-1], info, group=group)
        group.commit()
    out.print(f"simulated {K} snapshots of {frames} frames ({H}x{W}) from {video} -> {out_dir}/ "
              f"({', '.join(names)}, simulation.json)", highlight=False, soft_wrap=True)


def _simulate_operator(name: str, path: Path, operator_param: Optional[list[str]], *, mask: str, noise: float,
                       seed: int, out_dir: Path, fmt: str, key: Optional[str], layout: str,
                       max_value: Optional[float], max_measurements: Optional[int], force: bool) -> None:
    """Any registered operator other than video-sci: images (K, C, H, W) -> ``sim.npz`` holding
    meas, orig, the operator's arrays and its name and settings (``scicli reconstruct sim.npz``
    needs no other option)."""
    cls = OPERATORS.get(name).factory
    if fmt != "npz":
        raise UsageError(f"--format {fmt}: {name} simulations are written as one .npz (meas, orig, operator arrays)")
    targets = [out_dir / "sim.npz", out_dir / "simulation.json"]
    check_outputs([Output("--out", t) for t in targets],
                  [path, None if mask in ("random", "") else Path(mask)], force=force)
    raw = read_array(path, key=key, role="orig")
    if raw.ndim == 2:
        raw = raw[None]
    if raw.ndim == 3 and layout == "last" or (layout == "auto" and raw.ndim == 3 and path.suffix.lower() == ".mat"):
        raw = np.moveaxis(raw, -1, 0)  # MATLAB keeps bands / images last
    if raw.ndim not in (3, 4):
        raise UsageError(f"{path}: expected images (H, W), (K, H, W), a cube (C, H, W) or (K, C, H, W), got {raw.shape}")
    scale = float(max_value) if max_value else orig_scale(raw)
    x = (raw.astype(np.float64) / scale)
    if x.ndim == 3:  # one cube (cassi) or K single-channel images
        x = x[None] if cls.channels is None else x[:, None]
    if cls.channels is not None and x.shape[1] != cls.channels:
        raise UsageError(f"{path}: {name} takes {cls.channels}-channel images, got shape {raw.shape}")
    if max_measurements:
        x = x[:max_measurements]
    K, C, H, W = x.shape
    rng = np.random.default_rng(seed)
    given = parse_params(operator_param)
    if mask in ("random", ""):
        kwargs = operator_options(cls, given, factory="random")
        op = cls.random((C, H, W), rng=rng, **kwargs)
        mask_src = "random"
    else:
        first = next(iter(cls.roles))
        arrays = {first: read_array(Path(mask), role="mask" if first == "mask" else None)}
        if "size" in cls.roles:
            arrays["size"] = np.array([H, W])
        op = cls.from_arrays(arrays, meas_shape=None, **operator_options(cls, given))
        mask_src = str(mask)
    op = op.to(torch.float64)
    with torch.no_grad():
        y = op.A(torch.from_numpy(x))
        if noise > 0:
            gen = torch.Generator().manual_seed(seed)
            n = torch.randn(y.shape + ((2,) if y.is_complex() else ()), generator=gen, dtype=torch.float64)
            y = y + level(noise) * (torch.view_as_complex(n) if y.is_complex() else n)
    meas = y.numpy().astype(np.complex64 if y.is_complex() else np.float32)
    entries = {"meas": meas, "orig": x.astype(np.float32), OPERATOR_KEY: np.array(name),
               **op.arrays(), **{f"option_{k}": np.array(v) for k, v in op.options().items()}}
    info = {"input": str(path), "input_shape": list(raw.shape), "input_max_value": scale, "operator": name,
            "operator_options": op.options(), "mask": mask_src, "measurements": K, "image_shape": [C, H, W],
            "meas_shape": list(meas.shape[1:]), "noise_sigma": level(noise), "noise_level_255": noise, "seed": seed,
            "scaling": "orig = input / input_max_value (on [0, 1]); meas = A orig + noise"
                       + (" (noise on real and imaginary parts)" if y.is_complex() else ""),
            "files": [str(targets[0])], "environment": environment(torch.device("cpu"))}
    if path.suffix.lower() == ".dcm":
        info["hu_window"] = list(hu_window())
        info["scaling"] = "orig = clip((HU - lo) / (hi - lo), 0, 1) for the hu_window (lo, hi); meas = A orig + noise"
    with WriteGroup(force=force) as group:
        atomic_write(targets[0], lambda tmp: np.savez_compressed(tmp, **entries), group=group)
        write_json(targets[1], info, group=group)
        group.commit()
    out.print(f"simulated {K} {name} measurements of {C}x{H}x{W} from {path} -> {targets[0]} "
              f"(meas {tuple(meas.shape)}, {', '.join(op.arrays())})", highlight=False, soft_wrap=True)

