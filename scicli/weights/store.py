"""The one checkpoint store: plain-data checkpoints, the registry of trainable models, shipped weights.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so it loads with
``torch.load(path, weights_only=True)`` (no pickled objects, nothing executed on load):

    {format, format_version, method, config, model, optimizer, scheduler, epoch, step,
     rng: {torch, numpy, python}, args, val, scicli_version, torch_version, ...}

Models are rebuilt from ``(method, config)`` by the builder registered under ``method``
(:data:`MODELS`): the networks of :mod:`scicli.nets` register here, the learned reconstruction
methods from their own files. Loading never imports training code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from scicli.core.errors import DataError, ScicliError, UsageError
from scicli.core.registry import Registry
from scicli.core.units import LEVEL_SCALE
from scicli.io import atomic_write
from scicli.io.limits import check_regular

FORMAT = "scicli-checkpoint"
FORMAT_VERSION = 2
"""2: noise levels in a model's config on [0, 1] (version 1 quoted them on 0..255, as typed)."""
WEIGHTS_DIR = Path(__file__).resolve().parent
"""Where scicli's shipped weights and their ``manifest.json`` live."""
MANIFEST = WEIGHTS_DIR / "manifest.json"

MODELS: Registry = Registry("trainable method")
"""Builders ``config -> nn.Module`` by ``--method`` name; ``extra['kind']`` is ``denoiser`` or
``reconstruction``."""


def register_model(name: str, *, kind: str, summary: str = "") -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register the builder of a trainable model (a class or a function of its config)."""
    if kind not in ("denoiser", "reconstruction"):
        raise ValueError(f"kind must be denoiser or reconstruction, not {kind!r}")
    return MODELS.register(name, summary=summary or name, kind=kind)


def is_reconstruction(method: str) -> bool:
    """True for the methods that learn a whole reconstruction (deq-gap, deq-rnn, unrolled-gap)."""
    return method in MODELS.names() and MODELS.get(method).extra.get("kind") == "reconstruction"


def check_method(method: str) -> str:
    """A known trainable method name, else a one-line UsageError listing them."""
    if method not in MODELS.names():
        raise UsageError(f"unknown --method '{method}' (trainable: {', '.join(MODELS.names())})")
    return method


def build_model(method: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild a model from the ``(method, config)`` stored in a checkpoint."""
    check_method(method)
    try:
        return MODELS.get(method).factory(**config)
    except (TypeError, ValueError) as exc:
        raise DataError(f"bad {method} config {config}: {exc}") from None


def sha256(path: Path) -> str:
    """Hex sha256 of a file (read in 1 MB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically (temporary file + rename); overwrites ``path``."""
    return atomic_write(Path(path), lambda tmp: torch.save(payload, tmp), force=True)


def _checkpoint_problem(exc: BaseException) -> str:
    """What is wrong with a checkpoint file torch.load refused, in plain words."""
    text = str(exc)
    if isinstance(exc, (EOFError, KeyError)) or "load key" in text or "magic number" in text:
        return "it is not a PyTorch file (unrecognised content)"
    if "Weights only load failed" in text or "Unsupported global" in text:
        return ("it holds pickled Python objects, which scicli never loads (it reads plain-data checkpoints "
                "only, as scicli train writes them)")
    if ("zip archive" in text or "central directory" in text or "archive is corrupted" in text
            or isinstance(exc, OSError)):
        return "the file is truncated or corrupt (its zip archive cannot be read whole); copy it again"
    return f"torch.load failed ({type(exc).__name__})"


def load_checkpoint(path: Path, method: str | None = None) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; check its format and, if given, its method."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    check_regular(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the checkpoint file is empty")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, pickled objects, not a torch file ...
        raise DataError(f"{path}: not a readable scicli checkpoint: {_checkpoint_problem(exc)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model" not in ckpt:
        raise DataError(f"{path}: not a scicli checkpoint (no '{FORMAT}' format tag)")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise DataError(f"{path}: checkpoint format {ckpt.get('format_version')} is newer than this scicli reads")
    if method is not None and ckpt.get("method") != method:
        raise UsageError(f"{path} holds a '{ckpt.get('method')}' model, not '{method}'")
    return upgrade(ckpt)


def upgrade(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of an older format in this one's terms: version 1 configs quote the noise
    levels of a model's options (``param(level=True)`` fields of its ``Options``) on 0..255."""
    if int(ckpt.get("format_version", 0)) < 2 and ckpt.get("method") in MODELS.names():
        options = getattr(MODELS.get(str(ckpt["method"])).factory, "Options", None)
        levels = [f.name for f in dataclasses.fields(options) if f.metadata.get("level")] \
            if dataclasses.is_dataclass(options) else []

        def convert(config: Any) -> Any:
            if not isinstance(config, dict):
                return config
            return {k: float(v) / LEVEL_SCALE if k in levels and isinstance(v, (int, float)) else v
                    for k, v in config.items()}

        ckpt = {**ckpt, "config": convert(ckpt.get("config")), "format_version": FORMAT_VERSION}
        if isinstance(ckpt.get("args"), dict):  # the run's record holds the model config too
            ckpt["args"] = {**ckpt["args"], "model": convert(ckpt["args"].get("model"))}
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], label: str = "checkpoint") -> nn.Module:
    """The model of a loaded checkpoint, weights in place, in eval mode, on the CPU."""
    model = build_model(str(ckpt["method"]), dict(ckpt["config"]))
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{label}: weights do not fit the {ckpt['method']} config ({first})") from None
    return model.eval()


def shipped_variants(method: str) -> list[tuple[Path, dict[str, Any]]]:
    """The shipped weight files of ``method`` with the config recorded in the manifest: the default
    ``METHOD.pt`` first, then the variants ``METHOD@TAG.pt`` (one per operator setting, e.g.
    ``ista-net-plus@cs30`` for block CS at 30 %), in name order."""
    if not MANIFEST.is_file():
        return []
    entries = json.loads(MANIFEST.read_text())
    names = sorted((k for k, e in entries.items() if e.get("method") == method and (k == method or k.startswith(f"{method}@"))),
                   key=lambda k: (k != method, k))
    return [(WEIGHTS_DIR / entries[k]["file"], dict(entries[k].get("config", {}))) for k in names
            if (WEIGHTS_DIR / entries[k]["file"]).is_file()]


def shipped_weights(name: str, option: str = "--param weights=RUN/best.pt") -> Path:
    """``scicli/weights/<name>.pt``, or a one-line error saying how to get weights."""
    path = WEIGHTS_DIR / f"{name}.pt"
    if not path.is_file():
        raise ScicliError(f"no shipped {name} weights yet: pass {option} "
                          f"(train one with: scicli train --method {name} --data DIR --out RUN)")
    return path


def load_model(name: str, weights: str | Path | None = None, option: str = "--param weights=RUN/best.pt") -> nn.Module:
    """The eval-mode model of checkpoint ``weights`` (file or run directory; default: the shipped
    file), which must hold method ``name``."""
    path = Path(weights) if weights not in (None, "") else shipped_weights(name, option)
    return model_from_checkpoint(load_checkpoint(path, method=name), label=str(path))
