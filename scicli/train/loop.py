"""Training loop for noise-level-conditional image denoisers (``scicli train``).

Each step draws a batch of clean patches x (N, 1, P, P), noise levels
``sigma_i ~ U(lo, hi) / 255`` and Gaussian noise n, and minimises the mean squared error

    L(theta) = mean_i || D_theta(x_i + sigma_i n_i, sigma_i) - x_i ||^2

with Adam and a cosine learning-rate decay over all steps,
``lr_k = lr * (1 + cos(pi k / K)) / 2`` for step k of K = epochs x steps-per-epoch.

After every epoch the held-out files (fixed centre crops, fixed noise) give the validation PSNR
at sigma = 15, 25, 50 (/255); ``last.pt`` is written, and ``best.pt`` when the mean validation
PSNR improves. Reproducibility: patches depend only on (seed, epoch, index) and the noise of
step k only on (seed, k), so ``--resume`` from ``last.pt`` (which also stores the optimizer,
scheduler and global RNG states) continues bit-for-bit on the CPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader

from scicli.core.device import describe, resolve_device
from scicli.core.errors import ScicliError, UsageError
from scicli import __version__
from scicli.io import write_json
from scicli.io import write_text
from scicli.io.atomic import remove_stale_temp_files
from scicli.metrics import sample_psnr
from scicli.core.seeding import rng_state, set_rng_state
from scicli.core.units import level, level255
from scicli.train.checkpoint import load_init, model_options
from scicli.data.datasets import (ClipDataset, PatchDataset, Source, SourceCache, center_crops, check_downscale,
                                  list_sources, split_sources)
from scicli.core.seeding import derive_seed as _seed
from scicli.train.distributed import Distributed
from scicli.train.operators import RANDOM, OperatorTask
from scicli.train.sci import MASK_KINDS, SUPERVISE, SCITask
from scicli.train.sparse import SparseCodingTask
from scicli.weights.store import (
    FORMAT,
    FORMAT_VERSION,
    build_model,
    check_method,
    is_reconstruction,
    load_checkpoint,
    save_checkpoint,
    sha256,
)

RUN_FILES = ("last.pt", "best.pt", "log.jsonl", "run.json")
RESUME_OVERRIDABLE = ("epochs", "device", "log_every", "workers", "amp", "compile")
"""What ``--resume`` may change; every other setting is the run's own."""


@dataclass
class TrainArgs:
    """Everything that defines a training run (stored in every checkpoint as plain values): the
    record of the command line, so noise levels (``sigma_range``, ``val_sigmas``, ``meas_noise``)
    are on 0..255 as typed; the tasks take them on [0, 1] (:func:`make_task`)."""

    method: str
    data: list[str]
    out: str
    model: dict[str, Any] = field(default_factory=dict)
    patch: int = 64
    downscale: float = 1.0  # every training and validation frame area-averaged by this factor first
    sigma_range: list[float] = field(default_factory=lambda: [0.0, 50.0])  # 0..255 scale
    epochs: int = 10
    steps_per_epoch: int | None = None  # None: one pass over the training pixels
    batch_size: int = 32
    lr: float = 1e-3
    val_fraction: float = 0.05
    val_size: int = 128
    val_sigmas: list[float] = field(default_factory=lambda: [15.0, 25.0, 50.0])
    seed: int = 0
    log_every: int = 10
    workers: int = 0
    device: str = "auto"
    frames: int = 8  # reconstruction methods: frames per snapshot B
    mask: str = "random"  # random | shifted (video-sci) | a file of the operator's arrays
    operator: str = "video-sci"  # reconstruction methods: the forward model trained on
    operator_options: dict[str, Any] = field(default_factory=dict)  # -O NAME=VALUE (e.g. ratio=0.1)
    meas_noise: float = 0.0  # measurement noise level, up to this (0..255 scale)
    amp: bool = False  # bfloat16 autocast (CUDA)
    compile: bool = False  # torch.compile the networks (the fixed-point loop stays eager)
    warmup: int = 0  # reconstruction methods: steps of denoising pre-training of the map
    supervise: str = "last"  # reconstruction methods: last (the solution) | all (a random iterate) | start
    init: str = ""  # a checkpoint of the same method whose matching weights start the run
    exclude: list[str] = field(default_factory=list)  # source names left out of --data (held-out sequences)

    def sources(self) -> list[Source]:
        """The data sources of the run: everything under ``data`` but the ``exclude`` names."""
        return list_sources(self.data, exclude=self.exclude)

    def check(self) -> "TrainArgs":
        """Range checks: one UsageError naming the option."""
        check_method(self.method)
        lo, hi = self.sigma_range
        if not (0.0 <= lo <= hi <= 255.0) or hi <= 0.0:
            raise UsageError(f"--sigma-range {lo:g},{hi:g}: need 0 <= low <= high <= 255 and high > 0")
        for name, low in (("patch", 4), ("epochs", 1), ("batch_size", 1), ("val_size", 4), ("log_every", 1)):
            if getattr(self, name) < low:
                raise UsageError(f"--{name.replace('_', '-')} must be at least {low}, got {getattr(self, name)}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise UsageError(f"--steps-per-epoch must be at least 1, got {self.steps_per_epoch}")
        check_downscale(self.downscale)
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UsageError(f"--lr must be a positive number, got {self.lr}")
        if self.workers < 0:
            raise UsageError(f"--workers must be >= 0, got {self.workers}")
        if self.warmup < 0:
            raise UsageError(f"--warmup must be >= 0, got {self.warmup}")
        if is_reconstruction(self.method):
            if self.frames < 1:
                raise UsageError(f"--frames must be at least 1, got {self.frames}")
            kinds = MASK_KINDS if self.operator == "video-sci" else (RANDOM,)
            if self.mask not in kinds and not Path(self.mask).is_file():
                raise UsageError(f"--mask {self.mask}: not {' or '.join(kinds)} or an existing file")
            if self.operator == "video-sci" and self.operator_options:  # others: checked by the task
                raise UsageError(f"-O {', '.join(self.operator_options)}: video-sci takes no settings")
            if not (0.0 <= self.meas_noise <= 255.0):
                raise UsageError(f"--meas-noise must be in [0, 255], got {self.meas_noise}")
            if self.supervise not in SUPERVISE:
                raise UsageError(f"--supervise must be one of {', '.join(SUPERVISE)}, got '{self.supervise}'")
            if self.operator != "video-sci" and (self.warmup or self.supervise != "last"):
                raise UsageError(f"--warmup and --supervise apply to video-sci maps, not --operator {self.operator}")
            if self.supervise == "start" and not (self.model or {}).get("learned_start"):
                raise UsageError("--supervise start trains the learned start: it needs -p learned_start=1 "
                                 "(deq-gap, unrolled-gap)")
        return self

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def command(self) -> str:
        """The ``scicli train`` command line that reproduces this run."""
        parts = ["scicli", "train", "--method", self.method]
        for d in self.data:
            parts += ["--data", d]
        for name in self.exclude:
            parts += ["--exclude", name]
        parts += ["--out", self.out, "--patch", str(self.patch)]
        if self.downscale != 1.0:
            parts += ["--downscale", f"{self.downscale:g}"]
        if is_reconstruction(self.method) and self.operator != "video-sci":
            parts += ["--operator", self.operator, "--mask", self.mask, "--meas-noise", f"{self.meas_noise:g}"]
            for key, value in self.operator_options.items():
                parts += ["-O", f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"]
        elif is_reconstruction(self.method):
            parts += ["--frames", str(self.frames), "--mask", self.mask, "--meas-noise", f"{self.meas_noise:g}",
                      "--warmup", str(self.warmup), "--supervise", self.supervise, "--sigma-range", f"{self.sigma_range[0]:g},{self.sigma_range[1]:g}"]
        else:
            parts += ["--sigma-range", f"{self.sigma_range[0]:g},{self.sigma_range[1]:g}"]
        if self.init:
            parts += ["--init", self.init]
        parts += ["--epochs", str(self.epochs)]
        if self.steps_per_epoch is not None:
            parts += ["--steps-per-epoch", str(self.steps_per_epoch)]
        parts += ["--batch-size", str(self.batch_size), "--lr", f"{self.lr:g}",
                  "--val-fraction", f"{self.val_fraction:g}", "--seed", str(self.seed)]
        if self.method == "dncnn" and self.model:
            parts += ["--depth", str(self.model["depth"]), "--width", str(self.model["width"])]
        elif self.method == "unet" and self.model:
            parts += ["-p", "channels=" + ",".join(str(c) for c in self.model["channels"])]
        elif is_reconstruction(self.method) and self.model:
            parts += model_options(self.method, self.model)
        if self.amp:
            parts.append("--amp")
        if self.compile:
            parts.append("--compile")
        return " ".join(parts)


class Reporter:
    """Progress hooks; the base class is silent (the CLI shows a bar or plain lines)."""

    def start(self, info: dict[str, Any]) -> None: ...

    def step(self, epoch: int, index: int, steps: int, loss: float, lr: float) -> None: ...

    def epoch(self, record: dict[str, Any]) -> None: ...

    def finish(self) -> None: ...


# ----------------------------------------------------------------------------- helpers
def seed_everything(seed: int) -> None:
    """Seed the global torch / numpy / python generators (model initialisation uses torch's)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _sigma_key(s: float) -> str:
    return f"{s:g}"


def cosine_factor(step: int, total: int) -> float:
    """``(1 + cos(pi k / K)) / 2``: 1 at the first step, 0 after the last."""
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))


def noisy_batch(x: Tensor, lo: float, hi: float, seed: int, step: int) -> tuple[Tensor, Tensor]:
    """``(x + sigma n, sigma)`` with ``sigma ~ U(lo, hi)`` per image (noise levels on [0, 1]) and
    the noise of step ``step`` drawn on the CPU from (seed, step): identical on every device and on resume."""
    gen = torch.Generator().manual_seed(_seed(seed, 0x7E57, step))
    sigma = lo + (hi - lo) * torch.rand(x.shape[0], generator=gen, dtype=torch.float64)
    noise = torch.randn(x.shape, generator=gen, dtype=torch.float32)
    sigma = sigma.to(torch.float32)
    noisy = x + (sigma.reshape(-1, 1, 1, 1) * noise).to(x.device)
    return noisy, sigma.to(x.device)


@torch.no_grad()
def validate(model: nn.Module | None, items: Sequence[np.ndarray], sigmas: Sequence[float],
             device: torch.device, chunk: int = 16) -> dict[str, float]:
    """Mean PSNR of ``D(x + sigma n, sigma)`` over the validation items, per sigma (on [0, 1];
    the scores are keyed by the level on 0..255, as the command line quotes it).

    The noise is fixed (seeded by sigma and item), so epochs and runs compare directly.
    ``model=None`` scores the noisy input itself.
    """
    was_training = model.training if model is not None else False
    if model is not None:
        model.eval()
    scores: dict[str, float] = {}
    for s in sigmas:
        values: list[float] = []
        groups: dict[tuple[int, ...], list[int]] = {}
        for j, item in enumerate(items):
            groups.setdefault(tuple(item.shape), []).append(j)
        for idx in groups.values():
            for k in range(0, len(idx), chunk):
                part = idx[k:k + chunk]
                clean = torch.stack([torch.from_numpy(items[j]) for j in part])  # (n, 1, h, w)
                noise = torch.stack([
                    torch.randn(items[j].shape,
                                generator=torch.Generator().manual_seed(_seed(0x7A1, float(_sigma_key(level255(s))), j)))
                    for j in part
                ])
                noisy = clean + s * noise
                out = noisy if model is None else model(noisy.to(device), s).cpu()
                c = clean.shape[1] // 2  # multi-frame items: score the centre frame
                values.extend(sample_psnr(out[:, -1:] if out.shape[1] == 1 else out[:, c:c + 1], clean[:, c:c + 1]).tolist())
        scores[_sigma_key(level255(s))] = float(np.mean(values)) if values else float("nan")
    if model is not None and was_training:
        model.train()
    return scores


class Task(Protocol):
    """What a training task provides the :class:`Trainer`: data, a loss, validation scores.

    Implemented by :class:`DenoiseTask` (denoisers) and :class:`scicli.train.sci.SCITask`
    (reconstruction networks on random forward operators)."""

    def dataset(self, sources: Sequence[Any], patch: int, cache: SourceCache) -> Any:
        """The training dataset of random patches or clips (sized by the trainer)."""

    def val_items(self, sources: Sequence[Any], size: int, cache: SourceCache) -> list[np.ndarray]:
        """The fixed validation items (centre crops)."""

    def loss(self, model: nn.Module, x: Tensor, step: int, key: int | None = None) -> Tensor:
        """The loss of step ``step`` on the clean batch ``x`` (random streams from ``key``)."""

    def baseline(self, items: Sequence[np.ndarray], device: torch.device) -> dict[str, float]:
        """The scores of what the model improves on (noisy input, or the solver's start)."""

    def validate(self, model: nn.Module, items: Sequence[np.ndarray], device: torch.device) -> dict[str, float]:
        """The model's validation scores."""


class DenoiseTask:
    """Clean patches (or clips, for a video denoiser: its centre frame is the target) plus
    Gaussian noise; validation PSNR per noise level."""

    def __init__(self, args: TrainArgs) -> None:
        self.args = args
        self.window = int((args.model or {}).get("frames", 0)) if args.method == "video" else 0
        self.sigma_range = tuple(level(s) for s in args.sigma_range)  # the record's 0..255, on [0, 1]
        self.val_sigmas = [level(s) for s in args.val_sigmas]

    def dataset(self, sources: Sequence[Any], patch: int, cache: SourceCache) -> Any:
        if self.window:
            return ClipDataset(sources, frames=self.window, patch=patch, seed=self.args.seed, cache=cache)
        return PatchDataset(sources, patch=patch, seed=self.args.seed, cache=cache)

    def val_items(self, sources: Sequence[Any], size: int, cache: SourceCache) -> list[np.ndarray]:
        return center_crops(sources, size, frames=max(self.window, 1), cache=cache)

    def loss(self, model: nn.Module, x: Tensor, step: int, key: int | None = None) -> Tensor:
        lo, hi = self.sigma_range
        noisy, sigma = noisy_batch(x, lo, hi, self.args.seed, step if key is None else key)
        w = self.window
        target = x[:, w // 2: w // 2 + 1] if w else x
        return F.mse_loss(model(noisy, sigma), target)

    def baseline(self, items: Sequence[np.ndarray], device: torch.device) -> dict[str, float]:
        return validate(None, items, self.val_sigmas, device)

    def validate(self, model: nn.Module, items: Sequence[np.ndarray], device: torch.device) -> dict[str, float]:
        return validate(model, items, self.val_sigmas, device)


class Objective(nn.Module):
    """The loss of a training step as a module, ``objective(x, step, key) = task.loss(model, ...)``:
    what DDP wraps, so that every hook the task calls on the model (the reconstruction, one step
    of the map, the start) runs inside one ``forward`` and its gradients are synchronised."""

    def __init__(self, task: Task, model: nn.Module) -> None:
        super().__init__()
        self.task, self.model = task, model

    def forward(self, x: Tensor, step: int, key: int) -> Tensor:
        return self.task.loss(self.model, x, step, key)


def make_task(args: TrainArgs) -> Task:
    """The training task of ``args.method``: denoising, sparse coding (the ``dictionary``
    operator, whose unknown is a code), or reconstruction on an operator."""
    if is_reconstruction(args.method) and args.operator == "dictionary":
        return SparseCodingTask(args.mask, args.operator_options, args.model or {}, args.meas_noise, args.seed,
                                args.patch)
    if is_reconstruction(args.method) and args.operator != "video-sci":
        return OperatorTask(args.operator, args.operator_options, args.mask, level(args.meas_noise), args.seed,
                            args.patch)
    if is_reconstruction(args.method):
        return SCITask(args.frames, args.mask, level(args.meas_noise), args.seed, args.warmup,
                       [level(s) for s in args.sigma_range],
                       args.supervise)
    return DenoiseTask(args)


def _write_log_line(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")
        fh.flush()


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a run's ``log.jsonl`` (a torn last line is skipped)."""
    records = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def check_run_dir(out: Path, resume: bool, force: bool) -> None:
    """Refuse to overwrite a run: ``RUN_DIR`` must be new or empty unless --resume / --force."""
    if resume and force:
        raise UsageError("--resume and --force exclude each other (continue the run, or start it over)")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a directory")
    probe = out.parent
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if os.path.lexists(probe) and not probe.is_dir():
        raise UsageError(f"--out {out}: {probe} is a file, not a folder")
    if resume:
        if not (out / "last.pt").is_file():
            raise UsageError(f"--resume: {out / 'last.pt'} not found (nothing to resume)")
        return
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"{out} exists and is not empty; pass --resume to continue that run or --force to start over")


def resume_args(out: Path, given: dict[str, Any]) -> TrainArgs:
    """The run's own arguments from ``out/last.pt``, with the overridable ones taken from ``given``.

    Any other explicitly given value that differs from the run's is an error (a resumed run is
    the same run); a different method is an error too.
    """
    ckpt = load_checkpoint(out / "last.pt")
    stored = dict(ckpt["args"])
    method = given.get("method")
    if method is not None and method != ckpt["method"]:
        raise UsageError(f"--resume: {out / 'last.pt'} is a '{ckpt['method']}' run, not '{method}'")
    for key, value in given.items():
        if value is None or key in ("method", "out"):
            continue
        if key in RESUME_OVERRIDABLE:
            stored[key] = value
        elif key == "model":
            if value and value != stored.get("model"):
                raise UsageError(f"--resume: model options {value} differ from the run's {stored.get('model')}")
        elif _norm(value) != _norm(stored.get(key)):
            raise UsageError(f"--resume: --{key.replace('_', '-')} {_show(value)} differs from the run's "
                             f"{_show(stored.get(key))}; leave it out to continue the run")
    stored["out"] = str(out)
    fields = {f.name for f in dataclasses.fields(TrainArgs)}
    return TrainArgs(**{k: v for k, v in stored.items() if k in fields}).check()


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


def _show(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_show(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


# ----------------------------------------------------------------------------- the loop
def compile_networks(model: nn.Module) -> None:
    """``torch.compile`` the model's networks in place (``Module.compile``: the parameters and
    their names stay as they are, so checkpoints do not change): a denoiser as a whole, a
    reconstruction model's sub-networks one by one (its fixed-point loop stays eager: how many
    evaluations it makes depends on the data)."""
    parts = [m for m in model.children() if any(True for _ in m.parameters())] \
        if is_reconstruction(getattr(model, "method", "")) else [model]
    for part in parts:
        part.compile()


def initialise(model: nn.Module, path: str, method: str) -> dict[str, Any]:
    """Copy into ``model`` the weights of checkpoint ``path`` (same method or map) whose names and
    shapes match (fine-tuning, or adding a part such as a learned start to trained weights);
    returns its provenance: file, sha256, how many tensors were copied, which were left fresh."""

    ckpt = load_init(Path(path), method)
    own = model.state_dict()
    taken = {k: v for k, v in ckpt["model"].items() if k in own and own[k].shape == v.shape}
    if not taken:
        raise UsageError(f"--init {path}: none of its weights fit this {method} model (its config: {ckpt.get('config')})")
    model.load_state_dict({**own, **taken})
    return {"file": str(path), "sha256": sha256(Path(path)), "copied": len(taken),
            "fresh": sorted(k for k in own if k not in taken)}


class Trainer:
    """One training run in four parts: set-up (``__init__``: data, task, model, optimizer, resume
    or ``--init``, run directory), :meth:`step` (one optimisation step), :meth:`evaluate` (the
    validation scores) and :meth:`save` (checkpoints and the log); :meth:`run` loops over epochs.

    Writes ``log.jsonl`` (step records every ``log_every`` steps, one record per epoch),
    ``last.pt`` after every epoch, ``best.pt`` at the best mean validation PSNR, and
    ``run.json`` (the summary) at the end.
    """

    def __init__(self, args: TrainArgs, *, resume: bool = False, force: bool = False,
                 reporter: Reporter | None = None) -> None:
        args.check()
        self.args = args
        self.rep = reporter or Reporter()
        self.out = out = Path(args.out)
        check_run_dir(out, resume, force)
        ckpt = load_checkpoint(out / "last.pt", method=args.method) if resume else None
        device = resolve_device(args.device)
        seed_everything(args.seed)

        self.dist = dist = Distributed.from_env(device)
        self.device = device = dist.device
        sources = args.sources()
        self.train_src, self.val_src = split_sources(sources, args.val_fraction, args.seed)
        cache = SourceCache(downscale=args.downscale)
        self.task: Task = make_task(args)
        self.dataset = self.task.dataset(self.train_src, args.patch, cache)
        self.steps = steps = args.steps_per_epoch or max(1, math.ceil(self.dataset.default_length() / args.batch_size))
        self.dataset.length = steps * args.batch_size
        self.val_items = self.task.val_items(self.val_src, args.val_size, cache) if dist.is_main else []
        self.local_batch = dist.local_batch(args.batch_size)
        if args.amp and device.type != "cuda":
            raise UsageError("--amp (bfloat16 autocast) needs a CUDA device")

        facts = self.task.model_facts() if hasattr(self.task, "model_facts") else {}
        self.model = model = build_model(args.method, {**(args.model or {}), **facts}).to(device)
        if hasattr(self.task, "prepare_model"):  # the task's start (LISTA: ISTA); --resume/--init replace it
            self.task.prepare_model(model)
        args.model = dict(model.config)
        if args.compile:
            if (getattr(model, "config", {}).get("solve") or {}).get("jac_weight"):
                raise UsageError("--compile and -p jac_weight do not go together: the Jacobian penalty needs a "
                                 "double backward, which torch.compile does not support; drop one of them")
            if device.type == "cpu" and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
                raise UsageError("--compile on a CPU needs a C++ compiler (c++, g++ or clang++ on PATH)")
            compile_networks(model)
        self.objective = dist.wrap(Objective(self.task, model))
        # frozen parameters (a prior) get no gradient: Adam skips them
        self.optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
        total_steps = args.epochs * steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda k: cosine_factor(k, total_steps))

        self.start_epoch, self.step_count = 0, 0
        self.best_score, self.best_epoch, self.best_val = -math.inf, 0, None
        init_from: dict[str, Any] | None = None
        if ckpt is not None:
            self._resume(ckpt)
        else:
            init_from = initialise(model, args.init, args.method) if args.init else None  # a new run only
            for name in RUN_FILES:  # --force: start over (only scicli's own files are removed)
                try:
                    (out / name).unlink()
                except FileNotFoundError:
                    pass
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:  # half-written files of a run killed during a save (kill -9)
                remove_stale_temp_files(out / name)
        self.log_path = out / "log.jsonl"
        if ckpt is not None and dist.is_main:  # drop records written after the checkpoint (an interrupted epoch)
            kept = [r for r in read_log(self.log_path) if int(r.get("step", 0)) <= self.step_count]
            write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in kept), force=True)

        self.noisy_val = self.task.baseline(self.val_items, device) if self.val_items else {}
        info = {
            "method": args.method, "config": args.model, "device": describe(device), "epochs": args.epochs,
            "start_epoch": self.start_epoch, "steps_per_epoch": steps, "batch_size": args.batch_size,
            "train_files": len(self.train_src), "val_files": len(self.val_src),
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "val_noisy": self.noisy_val, "world_size": dist.world_size,
        }
        if init_from:
            info["init"] = init_from
        if hasattr(self.task, "run_info"):  # what a task measured on the data (sparse coding: the signal scale)
            info.update(self.task.run_info())
        if not dist.is_main:
            self.rep = Reporter()
        self.rep.start(info)
        if ckpt is None and dist.is_main:
            _write_log_line(self.log_path, {"type": "start", "step": 0, **info, "args": args.to_dict(),
                                            "scicli_version": __version__, "torch_version": str(torch.__version__)})

    def _resume(self, ckpt: dict[str, Any]) -> None:
        """Model, optimizer, schedule, RNG states and bookkeeping from the run's ``last.pt``."""
        args = self.args
        if int(ckpt["steps_per_epoch"]) != self.steps or int(ckpt["train_files"]) != len(self.train_src):
            raise UsageError(f"--resume: the data under {', '.join(args.data)} changed since the run started "
                             f"({ckpt['train_files']} training files, {ckpt['steps_per_epoch']} steps per epoch then)")
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        set_rng_state(ckpt["rng"])
        self.start_epoch, self.step_count = int(ckpt["epoch"]), int(ckpt["step"])
        self.best_score, self.best_epoch = float(ckpt["best_score"]), int(ckpt["best_epoch"])
        self.best_val = ckpt.get("best_val")
        if self.start_epoch >= args.epochs:
            raise UsageError(f"--resume: the run already has {self.start_epoch} epochs; "
                             f"pass --epochs N with N > {self.start_epoch}")

    def step(self, x: Tensor) -> float:
        """One optimisation step on the batch ``x``; returns the loss (mean over processes)."""
        x = x.to(self.device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.args.amp):
            loss = self.objective(x, self.step_count, self.dist.step_key(self.step_count))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step_count += 1
        value = self.dist.mean(float(loss.item()))
        if not math.isfinite(value):
            raise ScicliError(f"the loss became {value} at step {self.step_count}; lower --lr")
        return value

    def evaluate(self) -> tuple[dict[str, float], float | None]:
        """The validation scores of the model now and their mean (None without a validation split)."""
        val = self.task.validate(self.model, self.val_items, self.device) if self.val_items else {}
        return val, (float(np.mean(list(val.values()))) if val else None)

    def save(self, record: dict[str, Any], improved: bool) -> None:
        """``last.pt`` (and ``best.pt`` when ``improved``) and the epoch's log line (rank 0)."""
        args = self.args
        payload = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "method": args.method, "config": dict(self.model.config),
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "epoch": record["epoch"], "step": self.step_count,
            "steps_per_epoch": self.steps, "train_files": len(self.train_src), "val_files": len(self.val_src),
            "rng": rng_state(), "args": args.to_dict(), "val": record["val"], "val_mean": record["val_mean"],
            "val_noisy": self.noisy_val, "loss": record["loss"], "best_score": self.best_score,
            "best_epoch": self.best_epoch, "best_val": self.best_val, "scicli_version": __version__,
            "torch_version": str(torch.__version__), "training_data": [str(d) for d in args.data],
            "command": args.command(),
        }
        if self.dist.is_main:
            save_checkpoint(self.out / "last.pt", payload)
            if improved:
                save_checkpoint(self.out / "best.pt", payload)
            _write_log_line(self.log_path, record)
        self.dist.barrier()

    def run_epoch(self, epoch: int) -> dict[str, Any]:
        """Steps of epoch ``epoch`` (0-based), then evaluate and save; returns the epoch record."""
        args = self.args
        self.dataset.set_epoch(epoch)
        loader = DataLoader(self.dist.shard(self.dataset), batch_size=self.local_batch, shuffle=False,
                            drop_last=True, num_workers=args.workers, pin_memory=self.device.type == "cuda")
        self.model.train()
        losses: list[float] = []
        lr = float(self.optimizer.param_groups[0]["lr"])
        t0 = time.perf_counter()
        for i, x in enumerate(loader):
            lr = float(self.optimizer.param_groups[0]["lr"])  # this step's rate
            value = self.step(x)
            losses.append(value)
            if self.step_count % args.log_every == 0 and self.dist.is_main:
                record = {"type": "step", "epoch": epoch + 1, "step": self.step_count, "loss": value, "lr": lr}
                for key, attr in (("jac_penalty", "last_penalty"), ("jac_norm", "last_jac_norm")):
                    if getattr(self.model, attr, None) is not None:  # the Jacobian penalty (unweighted)
                        record[key] = getattr(self.model, attr)
                _write_log_line(self.log_path, record)
            self.rep.step(epoch + 1, i + 1, self.steps, value, lr)
        seconds = time.perf_counter() - t0
        self.train_seconds += seconds
        self.steps_run += len(losses)
        val, val_mean = self.evaluate()
        mean_loss = float(np.mean(losses))
        score = val_mean if val_mean is not None else -mean_loss
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_epoch, self.best_val = score, epoch + 1, val
        record = {"type": "epoch", "epoch": epoch + 1, "step": self.step_count, "loss": mean_loss,
                  "lr": lr, "val": val, "val_mean": val_mean, "best": improved, "seconds": round(seconds, 3),
                  "seconds_per_step": round(seconds / max(len(losses), 1), 4)}
        self.save(record, improved)
        return record

    def run(self) -> dict[str, Any]:
        """All remaining epochs; returns the run summary (also written to ``run.json``)."""
        args = self.args
        t_run = time.perf_counter()
        self.steps_run, self.train_seconds = 0, 0.0
        last_record: dict[str, Any] = {}
        try:
            for epoch in range(self.start_epoch, args.epochs):
                last_record = self.run_epoch(epoch)
                self.rep.epoch(last_record)
        finally:
            self.rep.finish()
            self.dist.close()
        summary = {
            "method": args.method, "config": dict(self.model.config), "run_dir": str(self.out),
            "epochs": args.epochs, "steps": self.step_count, "steps_per_epoch": self.steps,
            "best_epoch": self.best_epoch, "best_val": self.best_val, "last": last_record,
            "val_noisy": self.noisy_val, "val_sigmas": args.val_sigmas,
            "seconds": round(time.perf_counter() - t_run, 2),
            "seconds_per_step": round(self.train_seconds / max(self.steps_run, 1), 4),
            "device": describe(self.device), "threads": torch.get_num_threads(), "world_size": self.dist.world_size,
            "args": args.to_dict(), "command": args.command(), "training_data": [str(d) for d in args.data],
            "train_files": len(self.train_src), "val_files": len(self.val_src),
            "scicli_version": __version__, "torch_version": str(torch.__version__),
        }
        if self.dist.is_main:
            write_json(self.out / "run.json", summary, force=True)
        return summary


def train(args: TrainArgs, *, resume: bool = False, force: bool = False,
          reporter: Reporter | None = None) -> dict[str, Any]:
    """Train ``args.method`` on ``args.data`` into ``args.out``; returns the run summary
    (:class:`Trainer`: set-up, then epochs of steps, evaluation and checkpoints)."""
    return Trainer(args, resume=resume, force=force, reporter=reporter).run()
