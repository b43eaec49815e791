"""``scicli simulate``: a video -> coded snapshots, masks and ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from scicli import api
from scicli.cli.common import check_float, cli_command, guarded, out, parse_params, use_memory_budget
from scicli.core.errors import UsageError
from scicli.io import WriteGroup, atomic_write, write_array, write_json
from scicli.io.dicom import hu_window, parse_hu_window, set_hu_window
from scicli.io.outputs import Output, check_outputs
from scicli.physics import OPERATORS
from scicli.physics.masks import MASK_KINDS
from scicli.data.problem import OPERATOR_KEY

FORMATS = ("npy", "mat", "tif")


@guarded
def simulate_cmd(
    video: Path = typer.Argument(..., help="Video (or images, or a spectral cube): multi-page TIFF, .npy/.npz/.mat, .gif/.mp4, a folder of frames."),
    operator: str = typer.Option("video-sci", "--operator", help=f"Forward model: {', '.join(OPERATORS.names())} (see `scicli methods`)."),
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
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but warnings and errors (the summary line is left out)."),
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
        fmt = fmt or "npz"
        if fmt != "npz":
            raise UsageError(f"--format {fmt}: {name} simulations are written as one .npz (meas, orig, operator arrays)")
        targets = [out_dir / "sim.npz", out_dir / "simulation.json"]
        check_outputs([Output("--out", t) for t in targets],
                      [video, None if mask in ("random", "") else Path(mask)], force=force)
    else:
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
    kinds = MASK_KINDS if name == "video-sci" else ("random", "")
    sim = api.simulate(video, name, frames=frames, mask=mask if mask in kinds else Path(mask), density=density,
                       noise=noise, seed=seed, measurements=max_measurements, max_value=max_value,
                       operator_params=parse_params(operator_param), key=key, layout=layout)
    info = sim.report
    info["provenance"]["command"] = cli_command()
    info["files"] = [str(t) for t in targets[:-1]]
    if Path(video).suffix.lower() == ".dcm":
        info["hu_window"] = list(hu_window())
        info["scaling"] = "orig = clip((HU - lo) / (hi - lo), 0, 1) for the hu_window (lo, hi); meas = A orig + noise"
    if name != "video-sci":
        return _write_operator(name, sim, info, targets, force, quiet)
    K, B, H, W = sim.orig.shape
    meas, masks = sim.meas, sim.mask
    orig_frames = sim.orig.reshape(K * B, H, W)
    if fmt == "mat":
        import scipy.io  # noqa: PLC0415 (heavy optional dependency, loaded for .mat output only)

        def _write(tmp: Path) -> None:  # the benchmark's layout: (H, W, B), (H, W, K), (H, W, K*B)
            scipy.io.savemat(tmp, {"meas": np.moveaxis(meas, 0, -1), "mask": np.moveaxis(masks, 0, -1),
                                   "orig": np.moveaxis(orig_frames, 0, -1)}, do_compression=True)

    with WriteGroup(force=force) as group:  # all files of one simulation, or none
        if fmt == "mat":
            atomic_write(targets[0], _write, group=group)
        else:
            write_array(targets[0], meas, group=group)
            write_array(targets[1], masks, dtype=None, group=group)
            write_array(targets[2], orig_frames, group=group)
        write_json(targets[-1], info, group=group)
        group.commit()
    if not quiet:
        out.print(f"simulated {K} snapshots of {B} frames ({H}x{W}) from {video} -> {out_dir}/ "
                  f"({', '.join(names)}, simulation.json)", highlight=False, soft_wrap=True)


def _write_operator(name: str, sim: Any, info: dict[str, Any], targets: list[Path], force: bool,
                    quiet: bool = False) -> None:
    """Any registered operator other than video-sci: ``sim.npz`` holding meas, orig, the
    operator's arrays and its name and settings (``scicli reconstruct sim.npz`` needs no other
    option)."""
    op = sim.operator
    entries = {"meas": sim.meas, "orig": sim.orig, OPERATOR_KEY: np.array(name),
               **op.arrays(), **{f"option_{k}": np.array(v) for k, v in op.options().items()}}
    with WriteGroup(force=force) as group:
        atomic_write(targets[0], lambda tmp: np.savez_compressed(tmp, **entries), group=group)
        write_json(targets[1], info, group=group)
        group.commit()
    K, C, H, W = sim.orig.shape
    if quiet:
        return
    out.print(f"simulated {K} {name} measurements of {C}x{H}x{W} from {info['input']} -> {targets[0]} "
              f"(meas {tuple(sim.meas.shape)}, {', '.join(op.arrays())})", highlight=False, soft_wrap=True)
