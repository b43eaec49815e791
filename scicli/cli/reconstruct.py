"""``scicli reconstruct``: measurements + masks -> video cube (+ JSON report)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import typer
from rich.table import Table

from scicli import api
from scicli.cli.common import (check_float, cli_command, given_options, guarded, interactive, out, parse_params,
                               plain, progress_bar, use_memory_budget, with_ratio)
from scicli.core.device import resolve_device
from scicli.core.errors import DataError, ScicliError, UsageError
from scicli.color import cube_to_srgb
from scicli.io import WriteGroup, read_array, write_array, write_json, write_preview, write_rgb
from scicli.io.outputs import Output, check_outputs
from scicli.io.layout import resolve, to_first
from scicli.io.readers import ROLE_NAMES
from scicli.io.dicom import parse_hu_window, set_hu_window
from scicli.io.writers import PREVIEW_SUFFIXES, WRITE_SUFFIXES
from scicli.physics import OPERATORS
from scicli.data.problem import infer_operator, orig_scale, parse_selection
from scicli.plots import plot_names, reconstruction_figures, write_figures
from scicli.methods import METHODS
from scicli.weights.store import is_reconstruction, load_checkpoint, sha256

INPUT_SUFFIXES = (".mat", ".npz", ".npy", ".tif", ".tiff")
OUTPUT_FORMATS = ("tif", "npy", "mat", "npz")
ARRAY_SUFFIXES = tuple(s for s in WRITE_SUFFIXES if s not in PREVIEW_SUFFIXES)


SIDE_FILES = {n.lower() for n in (*ROLE_NAMES["mask"], *ROLE_NAMES["orig"], *ROLE_NAMES["recon"])}


def report_doc(rep: Path) -> Any:
    """The parsed JSON of report ``rep``, or None when there is none: no such file, more than
    :data:`REPORT_LIMIT` bytes, not JSON (what a crash left).
    For the quiet checks of a listing or a resumed run; :func:`_read_report` is the one that
    explains in a line why a report given by the user is unusable."""
    try:
        if not rep.is_file() or rep.stat().st_size > REPORT_LIMIT:
            return None
        doc = json.loads(rep.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc


def scicli_output(path: Path) -> bool:
    """Whether ``path`` is a reconstruction scicli wrote: the JSON report beside it (same stem)
    is a reconstruct report whose ``output`` is this file."""
    doc = report_doc(path.with_suffix(".json"))
    return (isinstance(doc, dict) and isinstance(doc.get("provenance"), dict) and isinstance(doc.get("output"), str)
            and Path(doc["output"]).name == path.name)


def _collect_inputs(inputs: list[Path], skip: set[Path]) -> list[Path]:
    """Expand directories into their measurement files (sorted), skipping the --mask/--gt files,
    files named like masks or ground truth (mask.npy, orig.npy, gt.tif, ...) and scicli's own
    reconstructions (a file with its reconstruct report beside it: :func:`scicli_output`)."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            found = sorted(
                f for f in p.iterdir()
                if f.suffix.lower() in INPUT_SUFFIXES and not f.name.startswith(".") and f.resolve() not in skip
                and f.stem.lower() not in SIDE_FILES and not scicli_output(f)
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
    inputs: Optional[list[Path]] = typer.Argument(None, help="Measurement files (.mat .npz .npy .tif) or directories of them.", show_default=False),
    mask: Optional[Path] = typer.Option(None, "--mask", "-m", help="Mask file (the sampling matrix for cs-block); default: the array inside a .mat/.npz input."),
    operator: Optional[str] = typer.Option(None, "--operator", help=f"Forward model: {', '.join(OPERATORS.names())} (see `scicli methods`); default: from the file."),
    operator_param: Optional[list[str]] = typer.Option(None, "--operator-param", "-O", help="Operator setting NAME=VALUE, e.g. step=2 (cassi), complex_images=1 (mri)."),
    ratio: Optional[float] = typer.Option(None, "--ratio", help="Sampling ratio of a random operator instance measuring an image input (cs-block, mri): -O ratio=R."),
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
    plot: Optional[Path] = typer.Option(None, "--plot", help="Folder for figures (PNG): convergence, montage, per-frame scores; sRGB and spectra for cassi."),
    plot_frames: Optional[str] = typer.Option(None, "--plot-frames", help="Frames (of the output) in the --plot montage: 0,4,7 or 0:3 (default first, middle, last)."),
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
    seed: int = typer.Option(0, "--seed", help="Seed of torch's generator before solving (recorded in the report)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="K/N: only the K-th of N disjoint shares of the inputs, K = 0..N-1 (a SLURM job array --array=0-(N-1): --shard $SLURM_ARRAY_TASK_ID/N)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Skip inputs whose output and report exist, are complete (the report's sha256 of the output matches) and were made by this same call (method, parameters, operator, input files and their sha256); redo what a crash left incomplete. An output made by another call is an error for that input (exit 1) unless --force, which redoes it."),
    json_lines: bool = typer.Option(False, "--json", help="Print one JSON line per input on stdout (status, files, seconds, scores) and nothing else there."),
    from_report: Optional[Path] = typer.Option(None, "--from-report", help="Rerun the reconstruction a JSON report describes (its input, method, parameters, seed); give a new --out."),
) -> None:
    """Reconstruct the B frames behind each snapshot.

    One output per input; with several inputs or a directory, --out is a directory and a bad
    file is reported and skipped (exit code 1 at the end). Job arrays: --shard K/N splits the
    inputs into N shares (input i goes to share i mod N, in the sorted order of the listing; a
    directory's listing leaves out mask/ground-truth files and scicli's own outputs, and --out may
    not be the input folder), --skip-existing resumes after a crash (only outputs of this same
    call count as done), --from-report reruns a report (on another --device if need be).
    """
    rerun_of, moved = None, {}
    if from_report is not None:
        given = given_options()
        extra = sorted(given - FROM_REPORT_OPTIONS)
        if extra or inputs:
            raise UsageError("--from-report takes the inputs and settings from the report: give only "
                             "--out, --report, --preview, --format, --force, --quiet, --json or --device with it "
                             "(and scicli --threads N before the command)")
        call, recorded = read_call(from_report)
        rerun_of = str(from_report)
        moved = rerun_overrides(call, recorded, device_name if "device_name" in given else None)
        inputs = [Path(call["input"])]
        mask, gt, x0 = (None if call.get(k) is None else Path(call[k]) for k in ("mask", "gt", "x0"))
        operator, method, measurements = call["operator"], call["method"], call.get("measurements")
        layout, max_value, batch_size, dtype = call["layout"], call.get("max_value"), call["batch_size"], call["dtype"]
        meas_key, mask_key, gt_key = (call["keys"].get(k) for k in ("meas", "mask", "gt"))
        ssim, seed = call["ssim"], call["seed"]
        device_name = device_name if "device_name" in given else call["device"]
        operator_param = [f"{k}={v}" for k, v in call["operator_params"].items()]
    operator_param = with_ratio(operator_param, ratio)
    if not inputs:
        raise UsageError("give measurement files or directories (or --from-report REPORT)")
    check_float("--max-value", max_value, above=0)
    use_memory_budget(max_memory)
    set_hu_window(parse_hu_window(hu_window_text))
    if method is None:
        method = _method_of(weights) if weights is not None else "gap-tv"
    entry = METHODS.get(method)
    if from_report is not None:
        overrides: dict[str, Any] = dict(call["parameters"])
    else:
        overrides = {
            k: v for k, v in dict(iters=iters, tol=tol, tv_weight=tv_weight, tv_iters=tv_iters, step=step,
                                  gamma=gamma, denoiser=denoiser, sigma=sigma, precision=precision,
                                  weights=None if weights is None else str(weights)).items()
            if v is not None
        }
        overrides.update(parse_params(param))
    solver = entry.factory.from_command_line(**overrides)
    share = parse_shard(shard)
    if ssim not in ("skimage", "matlab"):
        raise UsageError(f"--ssim must be skimage or matlab, got '{ssim}'")
    if dtype not in ("float32", "uint8", "uint16"):
        raise UsageError(f"--dtype must be float32, uint8 or uint16, got '{dtype}'")
    try:
        device = resolve_device(device_name)
    except ScicliError as exc:
        if from_report is None:
            raise
        raise type(exc)(f"{exc}; the report ran on {device_name}: add --device cpu to rerun it on the CPU") from None

    skip = {p.resolve() for p in (mask, gt) if p is not None}
    files = _collect_inputs(inputs, skip)
    many = len(files) > 1 or any(p.is_dir() for p in inputs) or share is not None
    if many and gt is not None:
        raise UsageError("--gt applies to a single input; several inputs take their ground truth from inside .mat/.npz files")
    if many and (preview is not None or report is not None):
        raise UsageError("--preview and --report apply to a single input; with several, reports go next to each output")
    if many and x0 is not None:
        raise UsageError("--x0 applies to a single input")
    out_path = Path(out_arg) if out_arg else None
    as_dir = bool(out_arg) and (out_arg.endswith(("/", "\\")) or Path(out_arg).is_dir())
    for folder in (p for p in inputs if p.is_dir()):
        if many and (out_path or Path("recon")).resolve() == folder.resolve():
            raise UsageError(f"--out {out_arg}: is the input folder {folder}, whose listing would then hold this "
                             f"run's outputs (inputs of the next shard or rerun); write to another folder, e.g. "
                             f"--out {folder / 'recon'}/")
    targets = _outputs(files, out_path, fmt, entry.name, many, as_dir)  # all inputs: collisions across shards
    reports = [report if (report and not many) else t.with_suffix(".json") for t in targets]
    jobs = list(zip(files, targets, reports))
    if share is not None:
        jobs = jobs[share[0]::share[1]]
        if not jobs:
            plain(f"--shard {share[0]}/{share[1]}: no inputs in this share ({len(files)} inputs in {share[1]} shares)")
            return
    if operator is not None:
        operator = OPERATORS.get(operator).name
    op_options = parse_params(operator_param)
    skipped: list[tuple[Path, Path, Path]] = []
    foreign: list[tuple[tuple[Path, Path, Path], ScicliError]] = []
    for job in jobs if skip_existing else []:
        if not (job[1].exists() or job[2].exists()):
            continue
        wanted = api.reconstruct_call(job[0], mask=mask, gt=gt, x0=x0, operator=operator or "",
                                      op_options=op_options, method=entry.name, solver=solver, select=measurements,
                                      layout=layout, max_value=max_value, keys=(meas_key, mask_key, gt_key),
                                      batch_size=batch_size, device=device, dtype=dtype, ssim=ssim, seed=seed)
        reason = other_call(job[2], wanted, compare_operator=operator is not None)
        if reason is None:
            if complete(job[1], job[2]):
                skipped.append(job)
        elif not force:
            foreign.append((job, DataError(f"{job[1]}: made by another call ({reason}); --skip-existing only "
                                           "completes this call's outputs: pass --force to redo it, or write "
                                           "elsewhere")))
    jobs = [job for job in jobs if job not in skipped and job not in {j for j, _ in foreign}]
    if foreign and not many:
        raise foreign[0][1]
    for src, target, rep in skipped:
        _announce(json_lines, {"input": str(src), "status": "skipped", "output": str(target), "report": str(rep)},
                  f"{src.name}: skipped, {target} and {rep} are complete")
    if not jobs and not foreign:
        return
    unreadable: list[tuple[tuple[Path, Path, Path], ScicliError]] = list(foreign)
    operators: list[str] = []
    for job in list(jobs):
        try:
            operators.append(operator or infer_operator(job[0], mask))
        except ScicliError as exc:  # with several inputs, a bad file is reported and skipped
            if not many:
                raise
            unreadable.append((job, exc))
            jobs.remove(job)
    # spectral cubes get an sRGB rendering beside them
    colour = [t.with_name(t.stem + "_srgb.png") if op == "cassi" else None for (_, t, _), op in zip(jobs, operators)]
    # every output checked before any data is read: place, suffix, --force, collisions, inputs
    outputs = [Output("--out", t, ARRAY_SUFFIXES) for _, t, _ in jobs]
    outputs += [Output("--report", r, (".json",)) for _, _, r in jobs]
    outputs += [Output("--preview", preview, PREVIEW_SUFFIXES)] if preview is not None else []
    outputs += [Output("--out (sRGB rendering)", c) for c in colour if c is not None]
    if plot is not None:
        outputs += [Output("--plot", plot / name, (".png",)) for (_, t, _), op in zip(jobs, operators)
                    for name in plot_names(t.stem, spectral=op == "cassi")]
    # --skip-existing: what is left of an interrupted run (incomplete pairs) is redone in place
    check_outputs(outputs, [*(src for src, _, _ in jobs), mask, gt, x0, weights, from_report],
                  force=force or skip_existing)

    failures = 0
    command = cli_command()
    if rerun_of is not None:
        command["rerun_of"] = rerun_of
        if moved:
            command["overrides"] = moved
    for (src, target, rep), exc in unreadable:
        _failed(json_lines, src, target, rep, exc)
        failures += 1
    for (src, target, rep), op_name, srgb in zip(jobs, operators, colour):
        try:
            doc = _one(src, target, rep, mask=mask, gt=gt, solver=solver, method=entry.name, device=device,
                       operator=op_name, op_options=op_options, srgb=srgb,
                       batch_size=batch_size, select=measurements, layout=layout, max_value=max_value,
                       keys=(meas_key, mask_key, gt_key), ssim=ssim, dtype=dtype, preview=preview, x0=x0,
                       force=force or skip_existing, quiet=quiet, seed=seed, command=command, show=not json_lines,
                       plot=plot, plot_frames=plot_frames)
        except ScicliError as exc:
            if not many:
                if json_lines:
                    _announce(True, _failure(src, target, rep, exc), "")
                raise
            _failed(json_lines, src, target, rep, exc)
            failures += 1
            continue
        if json_lines:
            line = {"input": str(src), "status": "done", "output": str(target), "report": str(rep),
                    "method": doc["method"], "seconds": doc["seconds"], "output_sha256": doc["output_sha256"]}
            if "metrics" in doc:
                line.update(psnr_mean=doc["metrics"]["psnr_mean"], ssim_mean=doc["metrics"]["ssim_mean"],
                            snr_mean=doc["metrics"]["snr_mean"])
            _announce(True, line, "")
    if failures:
        plain(f"{failures} of {len(jobs) + len(unreadable)} inputs failed")
        raise typer.Exit(1)


def _failure(src: Path, target: Path, rep: Path, exc: ScicliError) -> dict[str, Any]:
    return {"input": str(src), "status": "failed", "output": str(target), "report": str(rep), "error": str(exc),
            "exit_code": exc.exit_code}


def _failed(json_lines: bool, src: Path, target: Path, rep: Path, exc: ScicliError) -> None:
    """An input of several that failed: a JSON line (--json) and the usual stderr line."""
    if json_lines:
        _announce(True, _failure(src, target, rep, exc), "")
    plain(f"error: {exc} (skipped)")


FROM_REPORT_OPTIONS = {"from_report", "out_arg", "report", "preview", "fmt", "force", "quiet", "json_lines",
                       "max_memory", "device_name"}
"""What --from-report may be combined with: where to write and where to compute (``--device``, and
the global ``--threads``, recorded as ``provenance.command.overrides``), not what to compute."""
REPORT_LIMIT = 16 << 20
"""The largest report --from-report and --skip-existing read (a report is a few kB to a few MB)."""
CALL_KEYS = {"input": str, "operator": str, "operator_params": dict, "method": str, "parameters": dict,
             "layout": str, "batch_size": int, "dtype": str, "keys": dict, "ssim": str, "seed": int, "device": str}


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``--shard K/N`` as (K, N), K 0-based (0..N-1, as SLURM_ARRAY_TASK_ID with --array=0-(N-1))."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"--shard expects K/N, e.g. 0/4 (K = 0..N-1), got '{text}'")
    k, n = int(match[1]), int(match[2])
    if n < 1 or k >= n:
        raise UsageError(f"--shard {text}: K must be 0..N-1 with N >= 1 (0-based, like SLURM_ARRAY_TASK_ID "
                         f"with --array=0-{max(n - 1, 0)})")
    return k, n


def _read_report(path: Path) -> Any:
    """A JSON report (at most REPORT_LIMIT bytes), or a one-line DataError."""
    if not path.is_file():
        raise UsageError(f"{path}: no such report file")
    size = path.stat().st_size
    if size > REPORT_LIMIT:
        raise DataError(f"{path}: {size} bytes, more than a scicli report holds ({REPORT_LIMIT >> 20} MB)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"{path}: not a JSON report ({str(exc).splitlines()[0]})") from None


def read_call(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The reconstruction a report describes (its ``provenance.call``), checked (one-line
    errors), and the whole report."""
    doc = _read_report(path)
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    call = prov.get("call") if isinstance(prov, dict) else None
    if not isinstance(call, dict):
        if isinstance(prov, dict) and isinstance(prov.get("rerun"), str):
            raise DataError(f"{path}: {prov['rerun']}")
        raise DataError(f"{path}: not a scicli reconstruct report (no provenance.call entry to rerun)")
    missing = sorted(k for k in CALL_KEYS if k not in call)
    if missing:
        raise DataError(f"{path}: the report's provenance.call lacks {', '.join(missing)}")
    wrong = sorted(k for k, kind in CALL_KEYS.items() if not isinstance(call[k], kind) or isinstance(call[k], bool))
    if wrong:
        raise DataError(f"{path}: the report's provenance.call has malformed {', '.join(wrong)}")
    return call, doc


def rerun_overrides(call: dict[str, Any], doc: dict[str, Any], device: str | None) -> dict[str, Any]:
    """What a ``--from-report`` rerun changes about where it computes: ``--device`` (given) and
    the torch threads (``scicli --threads``), each as ``{"report": ..., "now": ...}``."""
    changed: dict[str, Any] = {}
    if device is not None and device != call["device"]:
        changed["device"] = {"report": call["device"], "now": device}
    env = doc.get("environment")
    threads = env.get("threads", {}).get("intra_op") if isinstance(env, dict) and isinstance(env.get("threads"), dict) \
        else None
    if isinstance(threads, int) and threads != torch.get_num_threads():
        changed["threads"] = {"report": threads, "now": torch.get_num_threads()}
    return changed


def complete(target: Path, rep: Path) -> bool:
    """Whether a previous run finished this input: the report parses and records the output's
    size and sha256, which match the output file (and its sRGB rendering exists, if any)."""
    doc = report_doc(rep)
    if doc is None or not target.is_file():
        return False
    try:
        srgb = doc.get("srgb_preview")
        return (doc["output_bytes"] == target.stat().st_size and doc["output_sha256"] == sha256(target)
                and (srgb is None or Path(srgb).is_file()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


SKIP_IGNORES = ("device", "batch_size")
"""Settings of ``provenance.call`` that ``--skip-existing`` does not compare: where and in what
batches it ran does not change what a finished output is (a crashed GPU job may resume on CPU)."""


def other_call(rep: Path, wanted: dict[str, Any], *, compare_operator: bool = True) -> str | None:
    """Why the report ``rep`` belongs to another call than ``wanted`` (a :func:`api.reconstruct_call`),
    in a few words, or None: the same call on the same input files (sha256 in ``provenance.files``),
    or no readable report at all (a leftover of a crash, redone).

    Compared: every entry of the call but :data:`SKIP_IGNORES` (and ``operator`` when it was
    inferred from the input, ``compare_operator=False``). A report without a call (an older
    scicli, or not a reconstruct report) is another call.
    """
    doc = report_doc(rep)
    if doc is None:
        return None
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    call = prov.get("call") if isinstance(prov, dict) else None
    if not isinstance(call, dict):
        return f"{rep} records no reproducing call"
    wanted = json.loads(json.dumps(wanted))  # as a report stores it (tuples become lists ...)
    ignored = {*SKIP_IGNORES, *(() if compare_operator else ("operator",))}
    differ = []
    for key, value in wanted.items():
        if key in ignored or call.get(key) == value:
            continue
        if key == "parameters" and isinstance(call.get(key), dict):
            names = sorted(k for k in {*value, *call[key]} if value.get(k) != call[key].get(k))
            differ.append("parameters " + ", ".join(f"{k}={call[key].get(k)!r} there, {value.get(k)!r} now"
                                                    for k in names))
        else:
            differ.append(f"{key} {call.get(key)!r} there, {value!r} now")
    if differ:
        return "; ".join(differ)
    files = prov.get("files")
    for role, entry in (files.items() if isinstance(files, dict) else ()):
        path = wanted.get(role)
        if isinstance(entry, dict) and path and Path(path).is_file() and entry.get("sha256") != sha256(Path(path)):
            return f"the {role} file {path} changed since (sha256)"
    return None


def _announce(json_lines: bool, record: dict[str, Any], text: str) -> None:
    """One JSON line on stdout (--json), else ``text`` as a progress line on stderr."""
    if json_lines:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
    elif text:
        plain(text)


def _method_of(weights: Path) -> str:
    """The reconstruction method a checkpoint was trained for (a denoiser needs --method)."""
    stored = str(load_checkpoint(weights).get("method"))
    if not is_reconstruction(stored):
        raise UsageError(f"{weights} holds a '{stored}' denoiser: pass --method pnp-gap --denoiser {stored}")
    return stored


def _one(src: Path, target: Path, rep: Path, *, mask, gt, solver, method, device, batch_size, select, layout,
         max_value, keys, ssim, dtype, preview, force, quiet, x0=None, operator="video-sci", op_options=None,
         srgb=None, seed=0, command=None, show=True, plot=None, plot_frames=None) -> dict[str, Any]:
    problem = api.load(src, mask, gt, operator=operator, operator_params=op_options, seed=seed, key=keys[0], mask_key=keys[1],
                       orig_key=keys[2], layout=layout, max_value=max_value, measurements=select)
    K, B = problem.meas.shape[0], problem.frames
    shown = None if plot is None else parse_selection(plot_frames, K * B, "frame") if plot_frames else None
    start = None if x0 is None else _load_x0(x0, problem.meas.shape[0], B, tuple(problem.info["size"]))
    iters = solver.total_iters()
    with progress_bar(interactive(quiet)) as bar:
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

        result = api.reconstruct(problem, method=solver, device=device, batch_size=batch_size, x0=start, seed=seed,
                                 ssim=ssim, on_iteration=on_iteration, on_batch=on_batch)

    recon = result.recon
    frames = recon.reshape(K * B, *recon.shape[2:])
    doc: dict[str, Any] = {"input": str(src), "output": str(target), "srgb_preview": None if srgb is None else str(srgb),
                           **result.report, "output_scale": f"[0, 1] intensities ({dtype})"}
    doc["provenance"] = {**doc["provenance"], "command": command or cli_command(),
                         "call": api.reconstruct_call(src, mask=mask, gt=gt, x0=x0, operator=problem.operator,
                                                      op_options=op_options, method=method, solver=solver,
                                                      select=select, layout=layout, max_value=max_value, keys=keys,
                                                      batch_size=batch_size, device=device, dtype=dtype, ssim=ssim,
                                                      seed=seed)}
    doc["provenance"].pop("rerun", None)
    doc["provenance"]["files"] = api.input_files(doc["provenance"]["call"])
    with WriteGroup(force=force) as group:  # the array, its previews and its report: all or none
        write_array(target, frames, dtype=dtype, group=group)
        staged = group.staged(target)  # the report records the output's checksum (--skip-existing checks it)
        doc["output_bytes"], doc["output_sha256"] = staged.stat().st_size, sha256(staged)
        if preview is not None:
            write_preview(preview, frames, group=group)
        if srgb is not None:  # one sRGB rendering per spectral cube (CIE 1931 over the band centres)
            write_rgb(srgb, np.stack([cube_to_srgb(cube) for cube in recon]), group=group)
        write_json(rep, doc, group=group)
        if plot is not None:
            figures = reconstruction_figures(np.asarray(recon), doc["batches"], problem.orig, operator=problem.operator,
                                             frames=shown, metrics=doc.get("metrics"), title=f"{src.name}, {method}")
            write_figures(plot, target.stem, figures, force=force, group=group)
        group.commit()
    if show:
        _summary(src, target, doc, quiet)
    return doc


def _summary(src: Path, target: Path, doc: dict[str, Any], quiet: bool) -> None:
    metrics = doc.get("metrics")
    iters = max(b["iterations"] for b in doc["batches"])
    line = f"{src.name} -> {target} ({doc['method']}, {doc['seconds']:.2f} s, {iters} iterations"
    if metrics:
        line += (f", PSNR {metrics['psnr_mean']:.2f} dB, SSIM {metrics['ssim_mean']:.4f}, "
                 f"SNR {metrics['snr_mean']:.2f} dB")
    line += ")"
    if quiet or not metrics:
        out.print(line, highlight=False, soft_wrap=True)
        return
    table = Table(title=f"{src.name}: {doc['method']}, {doc['environment']['device']}", title_justify="left")
    for col in ("measurement", "PSNR (dB)", "SSIM", "SNR (dB)"):
        table.add_column(col, justify="right")
    for m in metrics["per_measurement"]:
        table.add_row(str(doc["problem"]["measurements"][m["measurement"]]), f"{m['psnr']:.2f}", f"{m['ssim']:.4f}",
                      f"{m['snr']:.2f}")
    table.add_row("mean", f"{metrics['psnr_mean']:.2f}", f"{metrics['ssim_mean']:.4f}", f"{metrics['snr_mean']:.2f}",
                  style="bold")
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
