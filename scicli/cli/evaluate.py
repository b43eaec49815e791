"""``scicli evaluate``: PSNR/SSIM of a reconstruction against the ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from scicli import api
from scicli.cli.common import check_float, cli_command, guarded, out, use_memory_budget
from scicli.core.errors import UsageError
from scicli.io.outputs import Output, check_outputs
from scicli.plots import plot_names
from scicli.report import SUPPORTED_SUFFIXES as REPORT_SUFFIXES, write_report


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
        outputs += [Output("--plot", plot / name, (".png",)) for name in plot_names(recon.stem, convergence=False)]
    check_outputs(outputs, [recon, gt], force=force)
    doc = api.evaluate(recon, gt, ssim=ssim, frames=frames, layout=layout, max_value=max_value,
                       recon_key=recon_key, orig_key=gt_key, plot=plot, plot_frames=plot_frames, force=force)
    doc["provenance"]["command"] = cli_command()
    if report is not None:
        write_report(report, doc, force=force)
    idx, scores = doc["frame_indices"], doc["frames"]
    if quiet:
        out.print(f"PSNR {doc['psnr_mean']:.2f} dB  SSIM {doc['ssim_mean']:.4f}  ({len(idx)} frames)", highlight=False)
        return
    table = Table(title=f"{recon.name} vs {gt.name}")
    for col in ("frame", "PSNR (dB)", "SSIM"):
        table.add_column(col, justify="right")
    for i, (p, s) in zip(idx, zip(scores["psnr"], scores["ssim"])):
        table.add_row(str(i), f"{p:.2f}", f"{s:.4f}")
    table.add_row("mean", f"{doc['psnr_mean']:.2f}", f"{doc['ssim_mean']:.4f}", style="bold")
    out.print(table)
    out.print(doc["convention_short"] + (f"; report: {report}" if report else ""), highlight=False, soft_wrap=True)
