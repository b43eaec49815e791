"""``scicli train``: train a denoiser or a reconstruction network.

The training stack (datasets, DDP, optimisers) is imported with this module, which
:mod:`scicli.cli.app` loads only when ``scicli train`` runs: no other command imports it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import Progress

from scicli.cli.common import (check_float, guarded, interactive, out, parse_params, plain, progress_bar,
                               with_ratio)
from scicli.core.errors import UsageError
from scicli.physics import OPERATORS
from scicli.train.checkpoint import init_params, model_config
from scicli.train.loop import TrainArgs, check_run_dir, resume_args, train
from scicli.weights.store import MODELS, check_method, is_reconstruction, load_checkpoint

METHODS = ", ".join(MODELS.names())


def parse_sigma_range(text: str) -> list[float]:
    """``LOW,HIGH`` on the 0..255 scale (one number: a fixed noise level)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"--sigma-range {text}: expected two numbers LOW,HIGH on the 0..255 scale, e.g. 0,50") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise UsageError(f"--sigma-range {text}: expected LOW,HIGH, e.g. 0,50")
    lo, hi = values
    if not (0.0 <= lo <= hi <= 255.0) or hi <= 0.0:
        raise UsageError(f"--sigma-range {text}: need 0 <= LOW <= HIGH <= 255 and HIGH > 0")
    return [lo, hi]


def _val_text(val: dict[str, float] | None) -> str:
    if not val:
        return "n/a"
    return "/".join(val) + " " + "/".join(f"{v:.2f}" for v in val.values()) + " dB"


class CliReporter:
    """A rich bar per epoch on a terminal; otherwise plain lines on stderr (the progress hooks of
    :class:`scicli.train.loop.Reporter`)."""

    def __init__(self, bar: Progress | None, quiet: bool, log_every: int) -> None:
        self.bar, self.quiet, self.log_every = bar, quiet, log_every
        self.task: Any = None
        self.epochs = 0

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, highlight=False, soft_wrap=True)
        else:
            plain(text)

    def start(self, info: dict[str, Any]) -> None:
        self.epochs = info["epochs"]
        resumed = f", resuming after epoch {info['start_epoch']}" if info["start_epoch"] else ""
        self._line(f"training {info['method']} {info['config']} ({info['parameters']:,} trained parameters) on "
                   f"{info['device']}: {info['train_files']} training / {info['val_files']} validation files, "
                   f"{info['epochs']} epochs x {info['steps_per_epoch']} steps of {info['batch_size']}{resumed}; "
                   f"validation baseline (noisy input or linear start) {_val_text(info['val_noisy'])}")
        if info.get("init"):
            init = info["init"]
            self._line(f"initialised from {init['file']} ({init['copied']} tensors; left as initialised: "
                       f"{', '.join(init['fresh']) or 'none'})")

    def step(self, epoch: int, index: int, steps: int, loss: float, lr: float) -> None:
        status = f"loss {loss:.3e}  lr {lr:.2e}"
        if self.bar is not None:
            if self.task is None:
                self.task = self.bar.add_task("", total=steps, status="")
            if index == 1:
                self.bar.reset(self.task, total=steps, description=f"epoch {epoch}/{self.epochs}")
            self.bar.update(self.task, completed=index, status=status)
        elif not self.quiet and (index % self.log_every == 0 or index == steps):
            plain(f"epoch {epoch}/{self.epochs} step {index}/{steps}: {status}")

    def epoch(self, record: dict[str, Any]) -> None:
        best = " (best)" if record["best"] else ""
        self._line(f"epoch {record['epoch']}/{self.epochs}: loss {record['loss']:.3e}, validation "
                   f"{_val_text(record['val'])}{best}, {record['seconds']:.1f} s "
                   f"({record['seconds_per_step']:.3f} s/step)")

    def finish(self) -> None:
        """Nothing to close: the bar belongs to the command."""


@guarded
def train_cmd(
    method: Optional[str] = typer.Option(None, "--method", help=f"What to train: {METHODS}."),
    data: Optional[list[str]] = typer.Option(
        None, "--data", help="Training data: image folders, frame folders, videos (repeatable; "
                             "prefix frames: or images: to force how a folder is read)."),
    exclude: Optional[list[str]] = typer.Option(
        None, "--exclude", help="Leave out the sources with this folder or file name (repeatable), e.g. the "
                                "held-out DAVIS validation sequences (scicli.data.validation)."),
    out_dir: Path = typer.Option(..., "--out", "-o", help="Run directory: last.pt, best.pt, log.jsonl, run.json."),
    patch: Optional[int] = typer.Option(None, "--patch", help="Training patch size in pixels (default 64)."),
    downscale: Optional[float] = typer.Option(
        None, "--downscale", help="Area-average every training and validation frame by this factor first "
                                  "(default 1), e.g. 1.875: DAVIS 480p to the 256-px scale of the CACTI benchmarks "
                                  "and the validation scenes."),
    sigma_range: Optional[str] = typer.Option(None, "--sigma-range", help="Denoisers: noise levels LOW,HIGH on 0..255 (default 0,50)."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Reconstruction methods: frames per snapshot B (default 8)."),
    mask: Optional[str] = typer.Option(None, "--mask", help="Reconstruction methods: random (random operator instances), shifted (video-sci), or a file of the operator's arrays, e.g. a mask or Phi (default random)."),
    operator: Optional[str] = typer.Option(None, "--operator", help="Reconstruction methods: the forward model trained on (default video-sci; see scicli methods)."),
    operator_param: Optional[list[str]] = typer.Option(None, "--operator-param", "-O", help="Operator setting NAME=VALUE for its instances, e.g. ratio=0.1 (cs-block, mri)."),
    ratio: Optional[float] = typer.Option(None, "--ratio", help="Sampling ratio of the operator's random instances (cs-block, mri): -O ratio=R."),
    meas_noise: Optional[float] = typer.Option(None, "--meas-noise", help="Reconstruction methods: measurement noise up to this level, 0..255 scale (default 0)."),
    amp: bool = typer.Option(False, "--amp", help="bfloat16 autocast (CUDA only)."),
    compile_: bool = typer.Option(False, "--compile", help="torch.compile the networks (GPU; on a CPU it needs a C++ compiler); the first steps are slow."),
    warmup: Optional[int] = typer.Option(None, "--warmup", help="Reconstruction methods: first steps pre-train the map as a denoiser (default 0)."),
    supervise: Optional[str] = typer.Option(None, "--supervise", help="Reconstruction methods: last (the fixed point), all (each step a random iterate, 1..max_iter evaluations: teaches fast convergence) or start (only the learned start, no solve); default last."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from the matching weights of this checkpoint of the same method (e.g. scicli/weights/deq-gap.pt); the rest as initialised."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Epochs (default 10); with --resume, the new total."),
    steps_per_epoch: Optional[int] = typer.Option(
        None, "--steps-per-epoch", help="Steps per epoch (default one pass over the training pixels)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Patches per step (default 32)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Adam learning rate, decayed by a cosine (default 1e-3)."),
    val_fraction: Optional[float] = typer.Option(
        None, "--val-fraction", help="Share of files held out for validation, at least one (default 0.05); 0: none."),
    width: Optional[int] = typer.Option(None, "--width", help="Channels: dncnn layers (default 32), unet first scale (default 16), reconstruction U-Net first scale (32)."),
    depth: Optional[int] = typer.Option(None, "--depth", help="dncnn layers (default 10) or unet scales (default 3)."),
    param: Optional[list[str]] = typer.Option(None, "--param", "-p", help="Model option NAME=VALUE, e.g. channels=16,32,64."),
    device_name: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:K (default auto)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the split, the patches and the noise (default 0)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="DataLoader worker processes (default 0)."),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Log the step loss every N steps (default 10)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    force: bool = typer.Option(False, "--force", "-f", help="Start over in an existing run directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; epoch lines only."),
) -> None:
    """Train a denoiser (dncnn, unet, video) or a reconstruction network (see scicli methods).

    Denoisers minimise ||D(x + sigma n, sigma) - x||^2 on random patches; use them with
    `scicli reconstruct --method pnp-gap --denoiser dncnn -p weights=RUN/best.pt`.
    Reconstruction networks minimise ||x*(A x + n, A) - x||^2 on random clips and masks
    (video-sci) or on patches measured by operator instances (--operator cs-block, mri, ...);
    LISTA learns the lasso codes of patches (--operator dictionary); use them with
    `scicli reconstruct MEAS --weights RUN/best.pt`. Multi-GPU / multi-node:
    `torchrun --nproc-per-node G -m scicli train ...` (DDP).
    """
    if method is not None:
        check_method(method)
    check_float("--lr", lr, above=0)
    check_float("--downscale", downscale, low=1)
    check_float("--val-fraction", val_fraction, low=0, high=1)
    check_float("--meas-noise", meas_noise, low=0, high=255)
    params = parse_params(param)
    given: dict[str, Any] = {
        "method": method, "data": list(data) if data else None, "exclude": list(exclude) if exclude else None,
        "patch": patch,
        "downscale": downscale,
        "sigma_range": parse_sigma_range(sigma_range) if sigma_range is not None else None,
        "epochs": epochs, "steps_per_epoch": steps_per_epoch, "batch_size": batch_size, "lr": lr,
        "val_fraction": val_fraction, "device": device_name, "seed": seed, "workers": workers,
        "log_every": log_every, "frames": frames, "mask": mask, "meas_noise": meas_noise,
        "operator": OPERATORS.get(operator).name if operator is not None else None,
        "operator_options": parse_params(with_ratio(operator_param, ratio)) or None,
        "amp": amp or None, "compile": compile_ or None, "warmup": warmup, "supervise": supervise, "init": str(init) if init else None,
    }
    model_given = width is not None or depth is not None or bool(params)
    if resume:
        check_run_dir(out_dir, resume=True, force=force)
        stored = load_checkpoint(out_dir / "last.pt")
        run_method = method or str(stored["method"])
        stored_frames = int(stored["args"].get("frames", 8))
        given["model"] = model_config(run_method, width, depth, params, frames or stored_frames) if model_given else None
        args = resume_args(out_dir, given)
    else:
        if method is None:
            raise UsageError(f"--method is required ({METHODS})")
        if not data:
            raise UsageError("no training data: pass --data DIR (images, frame folders or videos)")
        check_run_dir(out_dir, resume=False, force=force)
        if init is not None and is_reconstruction(method) and width is None and depth is None:
            params = {**init_params(method, init), **params}  # the init's model unless -p says otherwise
        args = TrainArgs(method=method, data=[str(d) for d in data], out=str(out_dir),
                         model=model_config(method, width, depth, params, frames or 8),
                         **{k: v for k, v in given.items() if v is not None and k not in ("method", "data")})
    args.check()
    with progress_bar(interactive(quiet)) as bar:
        summary = train(args, resume=resume, force=force, reporter=CliReporter(bar, quiet, args.log_every))
    if os.environ.get("RANK", "0") != "0":  # torchrun: rank 0 reports
        return
    best = summary["best_epoch"]
    files = ", ".join(str(out_dir / f) for f in ("best.pt", "last.pt", "log.jsonl", "run.json"))
    out.print(f"{args.method}: {summary['steps']} steps ({summary['seconds_per_step']:.3f} s/step on "
              f"{summary['device']}); best epoch {best}, validation {_val_text(summary['best_val'])} "
              f"(baseline {_val_text(summary['val_noisy'])}); wrote {files}", highlight=False, soft_wrap=True)
