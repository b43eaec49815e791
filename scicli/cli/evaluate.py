"""``scicli evaluate``: PSNR/SSIM of a reconstruction against the ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.table import Table

from scicli.cli.common import check_float, guarded, out, use_memory_budget
from scicli.core.errors import UsageError
from scicli.io import read_array
from scicli.io.layout import resolve, to_first
from scicli.metrics import frame_metrics
from scicli.data.problem import orig_scale, parse_selection
from scicli.io.outputs import Output, check_outputs
from scicli.io.atomic import WriteGroup
from scicli.plots import metrics_figure, montage_figure, plot_names, write_figures
from scicli.report import SUPPORTED_SUFFIXES as REPORT_SUFFIXES, make_report, write_report


@guarded
def evaluate_cmd(
    recon: Path = typer.Argument(..., help="Reconstructed video (.tif .npy .npz .mat ...)."),
    gt: Path = typer.Argument(..., help="Ground-truth video (e.g. orig.npy or a benchmark .mat)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the report: .json, .csv or .md."),
    ssim: str = typer.Option("skimage", "--ssim", help="skimage (7x7 uniform) or matlab (11x11 Gaussian, sigma 1.5)."),
    frames: Optional[str] = typer.Option(None, "--frames", help="Ground-truth frames to compare: 0:8, 0,1,2 (default all)."),
    recon_key: Optional[str] = typer.Option(None, "--key", help="Array name of the reconstruction in .mat/.npz."),
    gt_key: Optional[str] = typer.Option(None, "--gt-key", help="Array name of the ground truth in .mat/.npz."),
    layout: str = typer.Option("auto", "--layout", help="Frame axis: auto, first or last."),
    max_value: Optional[float] = typer.Option(None, "--max-value", help="Intensity scale of both videos (default: automatic)."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="Largest array a file may declare, e.g. 4G (default: half the RAM)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Folder for figures (PNG): montage of ground truth / reconstruction / error, per-frame scores."),
    plot_frames: Optional[str] = typer.Option(None, "--plot-frames", help="Positions among the compared frames (--frames) in the --plot montage: 0,4,7 or 0:3 (default first, middle, last)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite an existing report (never an input)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the mean line."),
) -> None:
    """Per-frame PSNR and SSIM (data range 1, frames clipped to [0, 1]) and their means."""
    if ssim not in ("skimage", "matlab"):
        raise UsageError(f"--ssim must be skimage or matlab, got '{ssim}'")
    check_float("--max-value", max_value, above=0)
    use_memory_budget(max_memory)
    outputs = [] if report is None else [Output("--report", report, REPORT_SUFFIXES)]
    if plot is not None:
        outputs += [Output("--plot", plot / name, (".png",)) for name in plot_names(recon.stem)
                    if not name.endswith("-convergence.png")]
    check_outputs(outputs, [recon, gt], force=force)
    x = read_array(recon, key=recon_key, role="recon")
    ref = read_array(gt, key=gt_key, role="orig")
    for path, arr in ((recon, x), (gt, ref)):
        if arr.ndim not in (2, 3, 4):
            raise UsageError(f"{path}: expected a video (F, H, W) or (H, W, F), got shape {arr.shape}")
    shapes = (tuple(x.shape), tuple(ref.shape))
    (x, ref), lays = _frames_first([(recon, x), (gt, ref)], layout)
    idx = parse_selection(frames, ref.shape[0], "frame")
    ref = ref[idx]
    if x.shape != ref.shape:
        hint = (f"; pass --frames 0:{x.shape[0]} to compare with a subset"
                if x.shape[0] < ref.shape[0] and x.shape[1:] == ref.shape[1:] else "")
        raise UsageError(f"{recon} {shapes[0]} read as {x.shape[0]} frames of {x.shape[1]}x{x.shape[2]} "
                         f"(frames {lays[0]}), {gt} {shapes[1]} as {ref.shape[0]} of {ref.shape[1]}x{ref.shape[2]} "
                         f"(frames {lays[1]}): they do not match{hint}")
    sx = float(max_value) if max_value else orig_scale(x)
    sr = float(max_value) if max_value else orig_scale(ref)
    m = frame_metrics(x / sx, ref / sr, ssim_convention=ssim)
    doc = make_report(m, meta={"recon": str(recon), "gt": str(gt), "frames": len(idx),
                               "recon_max_value": sx, "gt_max_value": sr})
    if report is not None:
        write_report(report, doc, force=force)
    if plot is not None:
        shown = None if plot_frames is None else parse_selection(plot_frames, len(idx), "frame")
        name = f"{recon.name} vs {gt.name}"
        figures = {"montage": montage_figure(x / sx, ref / sr, shown, numbers=idx, title=name),
                   "metrics": metrics_figure(m["psnr"], m["ssim"], idx, title=f"{name}: per-frame scores")}
        with WriteGroup(force=force) as group:
            write_figures(plot, recon.stem, figures, force=force, group=group)
            group.commit()
    if quiet:
        out.print(f"PSNR {m['psnr_mean']:.2f} dB  SSIM {m['ssim_mean']:.4f}  ({len(idx)} frames)", highlight=False)
        return
    table = Table(title=f"{recon.name} vs {gt.name}")
    for col in ("frame", "PSNR (dB)", "SSIM"):
        table.add_column(col, justify="right")
    for i, (p, s) in zip(idx, zip(m["psnr"], m["ssim"])):
        table.add_row(str(i), f"{p:.2f}", f"{s:.4f}")
    table.add_row("mean", f"{m['psnr_mean']:.2f}", f"{m['ssim_mean']:.4f}", style="bold")
    out.print(table)
    out.print(m["convention"]["short"] + (f"; report: {report}" if report else ""), highlight=False, soft_wrap=True)


def _frames_first(videos: list[tuple[Path, np.ndarray]], layout: str) -> tuple[list[np.ndarray], list[str]]:
    """Both videos frames-first (F, H, W), in layouts under which they share a frame size, and
    the layout each was read in.

    A 4-D array (K, B, H, W) / (H, W, B, K) follows its format's convention (MATLAB: frames
    last) unless --layout says otherwise, and is flattened to K*B frames.
    """
    flat: dict[str, tuple[Path, np.ndarray]] = {}
    for role, (path, arr) in zip(("reconstruction", "ground truth"), videos):
        if arr.ndim == 4:
            lay = layout if layout != "auto" else ("last" if path.suffix.lower() == ".mat" else "first")
            arr = to_first(arr, lay)  # type: ignore[arg-type]
            arr = arr.reshape(-1, *arr.shape[-2:])
        flat[f"{path} ({role})"] = (path, arr)
    lays, _ = resolve({label: (arr.shape, "video") for label, (_, arr) in flat.items()}, layout)
    return ([to_first(arr, lays[label]) if arr.ndim == 3 else arr[None] for label, (_, arr) in flat.items()],
            [lays[label] for label in flat])
