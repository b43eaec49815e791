"""``scicli reconstruct``: measurements + masks -> video cube (+ JSON report)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer
from rich.table import Table

from scicli.cli.common import (check_float, guarded, interactive, out, parse_params, plain, progress_bar,
                               use_memory_budget)
from scicli.core.device import resolve_device
from scicli.core.errors import ScicliError, UsageError
from scicli.color import cube_to_srgb
from scicli.io import WriteGroup, read_array, write_array, write_json, write_preview, write_rgb
from scicli.io.outputs import Output, check_outputs
from scicli.io.layout import resolve, to_first
from scicli.io.readers import ROLE_NAMES
from scicli.io.dicom import parse_hu_window, set_hu_window
from scicli.io.writers import PREVIEW_SUFFIXES, WRITE_SUFFIXES
from scicli.physics import OPERATORS
from scicli.pipeline import environment, reconstruct, score
from scicli.data.problem import infer_operator, load_operator_problem, load_problem, orig_scale
from scicli.methods import METHODS
from scicli.weights.store import is_reconstruction, load_checkpoint

INPUT_SUFFIXES = (".mat", ".npz", ".npy", ".tif", ".tiff")
OUTPUT_FORMATS = ("tif", "npy", "mat", "npz")
ARRAY_SUFFIXES = tuple(s for s in WRITE_SUFFIXES if s not in PREVIEW_SUFFIXES)


SIDE_FILES = {n.lower() for n in (*ROLE_NAMES["mask"], *ROLE_NAMES["orig"], *ROLE_NAMES["recon"])}


def _collect_inputs(inputs: list[Path], skip: set[Path]) -> list[Path]:
    """Expand directories into their measurement files (sorted), skipping the --mask/--gt files
    and files named like masks or ground truth (mask.npy, orig.npy, gt.tif, ...)."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir()
                if f.suffix.lower() in INPUT_SUFFIXES and not f.name.startswith(".") and f.resolve() not in skip
                and f.stem.lower() not in SIDE_FILES
            )
            if not found:
                raise UsageError(f"{p}: no measurement files ({', '.join(INPUT_SUFFIXES)}) in this directory")
            files.extend(found)
        else:
            files.append(p)
    return files


def _outputs(files: list[Path], out_path: Optional[Path], fmt: str, method: str, many: bool,
             as_dir: bool = False) -> list[Path]:
    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}, got '{fmt}'")
    if not many:
        target = out_path or Path(f"{files[0].stem}_{method}.{fmt}")
        if as_dir:
            target = target / f"{files[0].stem}_{method}.{fmt}"
        if target.suffix.lower() not in WRITE_SUFFIXES or target.suffix.lower() in (".png", ".gif"):
            raise UsageError(f"--out {target}: use one of .tif, .npy, .mat, .npz (previews go to --preview)")
        return [target]
    folder = out_path or Path("recon")
    if folder.suffix.lower() in WRITE_SUFFIXES:
        raise UsageError(f"--out {folder}: several inputs need an output directory, not a file")
    targets = [folder / f"{f.stem}.{fmt}" for f in files]
    seen: dict[Path, Path] = {}
    for f, t in zip(files, targets):
        if t in seen:
            raise UsageError(f"{f} and {seen[t]} would both write {t}; rename one or process them separately")
        seen[t] = f
    return targets


@guarded
def reconstruct_cmd(
    inputs: list[Path] = typer.Argument(..., help="Measurement files (.mat .npz .npy .tif) or directories of them."),
    mask: Optional[Path] = typer.Option(None, "--mask", "-m", help="Mask file (the sampling matrix for cs-block); default: the array inside a .mat/.npz input."),
    operator: Optional[str] = typer.Option(None, "--operator", help="Forward model: video-sci, cassi, cs-block, mri (see `scicli methods`); default: from the file."),
    operator_param: Optional[list[str]] = typer.Option(None, "--operator-param", "-O", help="Operator setting NAME=VALUE, e.g. step=2 (cassi), complex_images=1 (mri)."),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Ground-truth video for PSNR/SSIM; default: 'orig' inside a .mat/.npz input."),
    method: Optional[str] = typer.Option(None, "--method", help="Solver (see `scicli methods`); default gap-tv, or the method of --weights."),
    weights: Optional[Path] = typer.Option(None, "--weights", help="Trained weights (scicli train checkpoint or run dir) for deq-gap, deq-rnn, unrolled-gap or a PnP denoiser."),
    iters: Optional[str] = typer.Option(None, "--iters", help="Iterations; for PnP one count per sigma level, e.g. 10,10,10,10."),
    denoiser: Optional[str] = typer.Option(None, "--denoiser", help="PnP denoiser: ffdnet, tv (see `scicli methods`)."),
    sigma: Optional[str] = typer.Option(None, "--sigma", help="PnP noise levels on the 0..255 scale, e.g. 50,25,12,6."),
    precision: Optional[str] = typer.Option(None, "--precision", help="PnP denoiser arithmetic: auto (fp16 on CUDA), fp32, fp16, bf16."),
    x0: Optional[Path] = typer.Option(None, "--x0", help="Warm start: a reconstruction of the same input (e.g. from gap-tv)."),
    tol: Optional[float] = typer.Option(None, "--tol", help="Stop when the relative update falls below this."),
    tv_weight: Optional[float] = typer.Option(None, "--tv-weight", help="TV weight on [0, 1] data."),
    tv_iters: Optional[int] = typer.Option(None, "--tv-iters", help="Chambolle iterations per TV step."),
    step: Optional[float] = typer.Option(None, "--step", help="GAP lambda / GD step fraction."),
    gamma: Optional[float] = typer.Option(None, "--gamma", help="ADMM penalty gamma."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="Any other method parameter, NAME=VALUE (repeatable)."),
    out_arg: Optional[str] = typer.Option(None, "--out", "-o", help="Output file (one input) or directory (several, or a name ending in /)."),
    fmt: str = typer.Option("tif", "--format", help="Output format when --out is a directory: tif, npy, mat, npz."),
    dtype: str = typer.Option("float32", "--dtype", help="Output sample type: float32 (0..1), uint8 or uint16."),
    report: Optional[Path] = typer.Option(None, "--report", help="JSON report path (default: next to the output, .json)."),
    preview: Optional[Path] = typer.Option(None, "--preview", help="Also write a .gif animation or .png montage (one input)."),
    device_name: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:K."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Measurements per solver call."),
    measurements: Optional[str] = typer.Option(None, "--measurements", help="Which measurements: 0, 0,2 or 1:3 (default all)."),
    layout: str = typer.Option("auto", "--layout", help="Frame axis: auto, first (B,H,W) or last (H,W,B)."),
    max_value: Optional[float] = typer.Option(None, "--max-value", help="Intensity scale of the inputs (default: automatic, see README)."),
    meas_key: Optional[str] = typer.Option(None, "--key", help="Array name of the measurements in .mat/.npz."),
    mask_key: Optional[str] = typer.Option(None, "--mask-key", help="Array name of the mask in .mat/.npz."),
    gt_key: Optional[str] = typer.Option(None, "--gt-key", help="Array name of the ground truth in .mat/.npz."),
    ssim: str = typer.Option("skimage", "--ssim", help="SSIM convention: skimage or matlab."),
    hu_window_text: Optional[str] = typer.Option(None, "--hu-window", help="DICOM CT ground truth (--gt X.dcm): Hounsfield window LO,HI mapped to [0, 1] (default -1000,1000)."),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="Largest array a file may declare, e.g. 4G (default: half the RAM)."),
    force: bool = typer.Option(False, "--force", "-f", help="Overwrite existing outputs (never an input)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Plain progress lines, no tables."),
) -> None:
    """Reconstruct the B frames behind each snapshot.

    One output per input; with several inputs or a directory, --out is a directory and a bad
    file is reported and skipped (exit code 1 at the end).
    """
    check_float("--max-value", max_value, above=0)
    use_memory_budget(max_memory)
    set_hu_window(parse_hu_window(hu_window_text))
    if method is None:
        method = _method_of(weights) if weights is not None else "gap-tv"
    entry = METHODS.get(method)
    overrides: dict[str, Any] = {
        k: v for k, v in dict(iters=iters, tol=tol, tv_weight=tv_weight, tv_iters=tv_iters, step=step, gamma=gamma,
                              denoiser=denoiser, sigma=sigma, precision=precision,
                              weights=None if weights is None else str(weights)).items()
        if v is not None
    }
    overrides.update(parse_params(param))
    solver = entry.factory.from_command_line(**overrides)
    if ssim not in ("skimage", "matlab"):
        raise UsageError(f"--ssim must be skimage or matlab, got '{ssim}'")
    if dtype not in ("float32", "uint8", "uint16"):
        raise UsageError(f"--dtype must be float32, uint8 or uint16, got '{dtype}'")
    device = resolve_device(device_name)

    skip = {p.resolve() for p in (mask, gt) if p is not None}
    files = _collect_inputs(inputs, skip)
    many = len(files) > 1 or any(p.is_dir() for p in inputs)
    if many and gt is not None:
        raise UsageError("--gt applies to a single input; several inputs take their ground truth from inside .mat/.npz files")
    if many and (preview is not None or report is not None):
        raise UsageError("--preview and --report apply to a single input; with several, reports go next to each output")
    if many and x0 is not None:
        raise UsageError("--x0 applies to a single input")
    out_path = Path(out_arg) if out_arg else None
    as_dir = bool(out_arg) and (out_arg.endswith(("/", "\\")) or Path(out_arg).is_dir())
    targets = _outputs(files, out_path, fmt, entry.name, many, as_dir)
    reports = [report if (report and not many) else t.with_suffix(".json") for t in targets]
    if operator is not None:
        operator = OPERATORS.get(operator).name
    operators = [operator or infer_operator(f, mask) for f in files]
    # spectral cubes get an sRGB rendering beside them
    colour = [t.with_name(t.stem + "_srgb.png") if op == "cassi" else None for t, op in zip(targets, operators)]
    # every output checked before any data is read: place, suffix, --force, collisions, inputs
    outputs = [Output("--out", t, ARRAY_SUFFIXES) for t in targets]
    outputs += [Output("--report", r, (".json",)) for r in reports]
    outputs += [Output("--preview", preview, PREVIEW_SUFFIXES)] if preview is not None else []
    outputs += [Output("--out (sRGB rendering)", c) for c in colour if c is not None]
    check_outputs(outputs, [*files, mask, gt, x0, weights], force=force)

    failures = 0
    op_options = parse_params(operator_param)
    for src, target, rep, op_name, srgb in zip(files, targets, reports, operators, colour):
        try:
            _one(src, target, rep, mask=mask, gt=gt, solver=solver, method=entry.name, device=device,
                 operator=op_name, op_options=op_options, srgb=srgb,
                 batch_size=batch_size, select=measurements, layout=layout, max_value=max_value,
                 keys=(meas_key, mask_key, gt_key), ssim=ssim, dtype=dtype, preview=preview, x0=x0,
                 force=force, quiet=quiet)
        except ScicliError as exc:
            if not many:
                raise
            failures += 1
            plain(f"error: {exc} (skipped)")
    if failures:
        plain(f"{failures} of {len(files)} inputs failed")
        raise typer.Exit(1)


def _method_of(weights: Path) -> str:
    """The reconstruction method a checkpoint was trained for (a denoiser needs --method)."""
    stored = str(load_checkpoint(weights).get("method"))
    if not is_reconstruction(stored):
        raise UsageError(f"{weights} holds a '{stored}' denoiser: pass --method pnp-gap --denoiser {stored}")
    return stored


def _one(src: Path, target: Path, rep: Path, *, mask, gt, solver, method, device, batch_size, select, layout,
         max_value, keys, ssim, dtype, preview, force, quiet, x0=None, operator="video-sci", op_options=None,
         srgb=None) -> None:
    if operator == "video-sci":
        if op_options:
            raise UsageError(f"--operator-param {', '.join(op_options)}: video-sci takes no settings")
        problem = load_problem(src, mask, gt, meas_key=keys[0], mask_key=keys[1], orig_key=keys[2],
                               layout=layout, max_value=max_value, select=select)
    else:
        problem = load_operator_problem(src, operator, mask, gt, meas_key=keys[0], mask_key=keys[1],
                                        orig_key=keys[2], max_value=max_value, select=select,
                                        options=op_options)
    K, B = problem.meas.shape[0], problem.frames
    start = None if x0 is None else _load_x0(x0, problem.meas.shape[0], B, tuple(problem.info["size"]))
    iters = solver.total_iters()
    show = interactive(quiet)
    with progress_bar(show) as bar:
        task = bar.add_task(f"{src.name} {method}", total=K * iters, status="") if bar else None

        def on_iteration(lo: int, k: int, rec: dict[str, float]) -> None:
            if bar is not None:
                status = f"res {rec['residual']:.2e}" + (f"  {rec['psnr']:.2f} dB" if "psnr" in rec else "")
                n = min(batch_size, K - lo)
                bar.update(task, completed=lo * iters + k * n, status=status)

        def on_batch(rec: dict[str, Any]) -> None:
            if bar is None:
                last = rec["history"][-1] if rec["history"] else {}
                psnr = f", PSNR {last['psnr']:.2f} dB" if "psnr" in last else ""
                lo, hi = rec["measurements"]
                ids = problem.info["measurements"]
                plain(f"{src.name}: measurements {ids[lo]}..{ids[hi - 1]} ({hi} of {K} done): {rec['iterations']} iterations "
                      f"in {rec['seconds']:.2f} s{psnr}")

        result = reconstruct(problem, solver, device, batch_size=batch_size, x0=start,
                             on_iteration=on_iteration, on_batch=on_batch)

    frames = result.x.reshape(K * B, *result.x.shape[2:])
    doc = _document(src, target, srgb, method=method, problem=problem, solver=solver, result=result,
                    dtype=dtype, batch_size=batch_size, device=device, ssim=ssim)
    with WriteGroup(force=force) as group:  # the array, its previews and its report: all or none
        write_array(target, frames, dtype=dtype, group=group)
        if preview is not None:
            write_preview(preview, frames, group=group)
        if srgb is not None:  # one sRGB rendering per spectral cube (CIE 1931 over the band centres)
            write_rgb(srgb, np.stack([cube_to_srgb(cube) for cube in result.x]), group=group)
        write_json(rep, doc, group=group)
        group.commit()
    _summary(src, target, doc, quiet)


def _document(src: Path, target: Path, srgb: Path | None, *, method: str, problem: Any, solver: Any, result: Any,
              dtype: str, batch_size: int, device: Any, ssim: str) -> dict[str, Any]:
    """The JSON report of one reconstruction."""
    K, B, H, W = result.x.shape[0], result.x.shape[1], result.x.shape[-2], result.x.shape[-1]
    doc: dict[str, Any] = {
        "input": str(src),
        "output": str(target),
        "srgb_preview": None if srgb is None else str(srgb),
        "method": method,
        "operator": problem.operator,
        "operator_options": problem.options,
        "parameters": solver.command_line_params(),
        "problem": problem.info,
        "shape": {"measurements": K, "frames": B, "height": H, "width": W},
        "channels": OPERATORS.get(problem.operator).factory.x_unit + "s",
        "output_scale": f"[0, 1] intensities ({dtype})",
        "seconds": result.seconds,
        "batch_size": batch_size,
        "batches": result.batches,
        "environment": environment(device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if problem.orig is not None:
        doc["metrics"] = score(result.x, problem.orig, ssim)
    return doc


def _summary(src: Path, target: Path, doc: dict[str, Any], quiet: bool) -> None:
    metrics = doc.get("metrics")
    iters = max(b["iterations"] for b in doc["batches"])
    line = f"{src.name} -> {target} ({doc['method']}, {doc['seconds']:.2f} s, {iters} iterations"
    if metrics:
        line += f", PSNR {metrics['psnr_mean']:.2f} dB, SSIM {metrics['ssim_mean']:.4f}"
    line += ")"
    if quiet or not metrics:
        out.print(line, highlight=False, soft_wrap=True)
        return
    table = Table(title=f"{src.name}: {doc['method']}, {doc['environment']['device']}", title_justify="left")
    for col in ("measurement", "PSNR (dB)", "SSIM"):
        table.add_column(col, justify="right")
    for m in metrics["per_measurement"]:
        table.add_row(str(doc["problem"]["measurements"][m["measurement"]]), f"{m['psnr']:.2f}", f"{m['ssim']:.4f}")
    table.add_row("mean", f"{metrics['psnr_mean']:.2f}", f"{metrics['ssim_mean']:.4f}", style="bold")
    out.print(table)
    out.print(f"{metrics['convention']['short']}; wrote {target}", highlight=False, soft_wrap=True)


def _load_x0(path: Path, K: int, B: int, hw: tuple[int, int]) -> np.ndarray:
    """A warm start: K*B frames (or (K, B, H, W)) of the same size, on [0, 1]."""
    arr = read_array(path, role="recon")
    if arr.ndim == 4:
        arr = arr.reshape(-1, *arr.shape[-2:]) if arr.shape[-2:] == hw else None
    elif arr.ndim == 3:
        lay, size = resolve({str(path): (arr.shape, "warm start"), "measurements": ((1, *hw), "frame size")}, "auto")
        arr = to_first(arr, lay[str(path)])
    if arr is None or arr.ndim != 3 or arr.shape[0] != K * B:
        raise UsageError(f"{path}: a warm start needs {K * B} frames of {hw[0]}x{hw[1]} (the selected measurements)")
    return (arr / orig_scale(arr)).astype(np.float32).reshape(K, B, *hw)
