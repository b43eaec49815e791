"""Checkpoints as plain data: models rebuilt from ``(method, config)``, RNG states as lists.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts only, so it loads with
``torch.load(path, weights_only=True)`` (no pickled objects, nothing executed on load):

    {format, format_version, method, config, model, optimizer, scheduler, epoch, step,
     rng: {torch, numpy, python}, args, val, scicli_version, torch_version, ...}
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from scicli.errors import DataError, UsageError
from scicli.nn.deq import DEFAULT_SOLVE, PRIORS, RECONSTRUCTORS, STARTS
from scicli.nn.dncnn import DnCNN
from scicli.nn.unet import UNet
from scicli.nn.video import VideoDenoiser

FORMAT = "scicli-checkpoint"
FORMAT_VERSION = 1

MODELS: dict[str, Callable[..., nn.Module]] = {"dncnn": DnCNN, "unet": UNet, "video": VideoDenoiser,
                                               **RECONSTRUCTORS}
"""Trainable models by ``--method`` name: denoisers and reconstruction networks."""

GAP_KEYS: dict[str, type] = {"prior": str, "sigma": float, "accelerate": bool, "start": str, "learned_start": bool}
"""Options of the GAP map of deq-gap and unrolled-gap (see :class:`scicli.nn.deq.DEQGap`)."""
GAP_DEFAULTS: dict[str, Any] = {"prior": "ffdnet", "sigma": 10.0, "accelerate": True, "start": "gap-tv",
                                "learned_start": True}

RNN_KEYS: dict[str, type] = {"hidden": int, "start": str, "accelerate": bool, "tv_weight": float, "tv_iters": int}
"""Options of the deq-rnn cell (see :class:`scicli.nn.deq.DEQRnn`)."""
RNN_DEFAULTS: dict[str, Any] = {"hidden": 8, "start": "gap-tv", "accelerate": True, "tv_weight": 0.1, "tv_iters": 5}

SOLVE_KEYS: dict[str, type] = {k: type(v) for k, v in DEFAULT_SOLVE.items()} | {"iters": int}
"""Fixed-point settings a reconstruction network stores (``-p NAME=VALUE`` at training)."""

MODEL_KEYS: dict[str, dict[str, type]] = {
    "dncnn": {"depth": int, "width": int},
    "unet": {"channels": list, "width": int, "depth": int},
    "video": {"channels": list, "width": int, "depth": int, "frames": int},
    **{m: {"channels": list, "width": int, "depth": int, "spectral_norm": bool, "centre": bool, **SOLVE_KEYS,
           **(RNN_KEYS if m == "deq-rnn" else GAP_KEYS)} for m in RECONSTRUCTORS},
}
DEFAULT_WIDTH = {"dncnn": 32, "unet": 16, "video": 32, **{m: 32 for m in RECONSTRUCTORS}}
DEFAULT_DEPTH = {"dncnn": 10, "unet": 3, "video": 2, **{m: 3 for m in RECONSTRUCTORS}}


def is_reconstruction(method: str) -> bool:
    """True for the methods that learn a whole reconstruction (deq-gap, deq-rnn, unrolled-gap)."""
    return method in RECONSTRUCTORS


def _parse_value(method: str, name: str, text: str, kind: type) -> Any:
    try:
        if kind is bool:
            if str(text).lower() in ("1", "true", "yes", "on"):
                return True
            if str(text).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        return kind(text)
    except ValueError:
        raise UsageError(f"{method}: -p {name}={text} is not a valid {kind.__name__}") from None


def reconstruction_config(method: str, frames: int, channels: list[int], params: dict[str, str]) -> dict[str, Any]:
    """Config of a reconstruction network: U-Net ``channels`` (from :func:`model_config`),
    spectral norm, hidden channels (deq-rnn) and the fixed-point settings in ``params``."""
    from scicli.deq import Backward, make_options, settings_options

    config: dict[str, Any] = {"frames": int(frames), "channels": channels,
                              "spectral_norm": _parse_value(method, "spectral_norm", params.pop("spectral_norm", "0"), bool),
                              "centre": _parse_value(method, "centre", params.pop("centre", "1"), bool)}
    keys, defaults = (RNN_KEYS, RNN_DEFAULTS) if method == "deq-rnn" else (GAP_KEYS, GAP_DEFAULTS)
    for key, kind in keys.items():
        config[key] = _parse_value(method, key, params.pop(key), kind) if key in params else defaults[key]
    if config.get("hidden", 1) < 1 or config.get("tv_iters", 1) < 1 or config.get("tv_weight", 0) < 0:
        raise UsageError(f"{method}: need hidden >= 1, tv_iters >= 1 and tv_weight >= 0")
    if config.get("prior", PRIORS[0]) not in PRIORS:
        raise UsageError(f"{method}: prior must be one of {', '.join(PRIORS)}, got '{config['prior']}'")
    if config["start"] not in STARTS:
        raise UsageError(f"{method}: start must be one of {', '.join(STARTS)}, got '{config['start']}'")
    if not 0 < config.get("sigma", 1.0) <= 255:
        raise UsageError(f"{method}: sigma must be in (0, 255], got {config['sigma']:g}")
    solve = {k: _parse_value(method, k, v, SOLVE_KEYS[k]) for k, v in params.items()}
    if "iters" in solve and method != "unrolled-gap":
        raise UsageError(f"{method}: -p iters applies to unrolled-gap (a DEQ runs to its tolerance: max_iter, tol)")
    full = {**DEFAULT_SOLVE, **solve}
    Backward.parse(full["backward"])
    make_options(full["solver"], **settings_options(full, full["tol"], full["max_iter"]))
    if method == "unrolled-gap" and solve.get("iters", 10) < 1:
        raise UsageError("unrolled-gap: iters must be >= 1")
    config["solve"] = solve
    return config


def model_options(method: str, config: dict[str, Any]) -> list[str]:
    """The ``scicli train`` options that rebuild ``config`` (for the reproducing command)."""
    parts = ["-p", "channels=" + ",".join(str(c) for c in config["channels"])]
    if config.get("spectral_norm", False):
        parts += ["-p", "spectral_norm=1"]
    if "centre" in config and not config["centre"]:
        parts += ["-p", "centre=0"]
    for key, default in (RNN_DEFAULTS if method == "deq-rnn" else GAP_DEFAULTS).items():
        if key in config and config[key] != default:
            value = config[key]
            parts += ["-p", f"{key}={int(value) if isinstance(value, bool) else value:g}"
                      if isinstance(value, (float, bool)) else f"{key}={value}"]
    for key, value in (config.get("solve") or {}).items():
        if key in DEFAULT_SOLVE and DEFAULT_SOLVE[key] == value:
            continue
        parts += ["-p", f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"]
    return parts


SAME_MAP = ({"deq-gap", "unrolled-gap"},)
"""Methods whose weights fit each other (the same map, solved to a fixed point or unrolled)."""


def load_init(path: Path, method: str) -> dict[str, Any]:
    """The checkpoint ``--init`` names: of ``method`` or of a method with the same map."""
    if not Path(path).exists():
        raise UsageError(f"--init {path}: no such checkpoint")
    ckpt = load_checkpoint(Path(path))
    if ckpt["method"] != method and not any({ckpt["method"], method} <= group for group in SAME_MAP):
        raise UsageError(f"--init {path} holds a '{ckpt['method']}' model, which does not fit '{method}'")
    return ckpt


def init_params(method: str, path: Path) -> dict[str, str]:
    """The ``-p`` options that rebuild the model of checkpoint ``path`` (``--init``): its
    architecture and stored settings, with the defaults of the code that wrote it filled in."""
    ckpt = load_init(path, method)
    model = build_model(str(ckpt["method"]), dict(ckpt["config"]))
    parts = model_options(str(ckpt["method"]), dict(model.config))
    return dict(part.split("=", 1) for part in parts[1::2])


def check_method(method: str) -> str:
    """A known trainable method name, else a one-line UsageError listing them."""
    if method not in MODELS:
        raise UsageError(f"unknown --method '{method}' (trainable: {', '.join(sorted(MODELS))})")
    return method


def model_config(method: str, width: int | None = None, depth: int | None = None,
                 params: dict[str, str] | None = None, frames: int = 8) -> dict[str, Any]:
    """The model config from ``--width``, ``--depth`` and ``-p NAME=VALUE``; unknown names are errors.

    dncnn: ``depth`` conv layers of ``width`` channels. unet and the reconstruction networks:
    ``depth`` scales with ``width * 2^l`` channels at scale l, or an explicit ``channels=16,32,64``.
    """
    check_method(method)
    params = dict(params or {})
    allowed = MODEL_KEYS[method]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise UsageError(f"unknown {method} option(s) {', '.join(unknown)} (known: {', '.join(sorted(allowed))})")

    def number(name: str, given: int | None) -> int:
        value: Any = given
        if name in params:
            if given is not None:
                raise UsageError(f"--{name} and -p {name}=... both given; use one")
            try:
                value = int(params[name])
            except ValueError:
                raise UsageError(f"-p {name}={params[name]}: expected an integer") from None
        value = (DEFAULT_WIDTH if name == "width" else DEFAULT_DEPTH)[method] if value is None else value
        low = 2 if (name == "depth" and method == "dncnn") else 1
        high = 6 if (name == "depth" and method != "dncnn") else (1024 if is_reconstruction(method) else 4096)
        if value < low or value > high:
            raise UsageError(f"{method} {name} {value} is out of range")
        return int(value)

    if method == "dncnn":
        return {"depth": number("depth", depth), "width": number("width", width), "channels": 1}
    if method == "video":  # U-Net fusion channels from --width/--depth; -p frames=T (odd) window
        frames = params.pop("frames", "5")
        try:
            t = int(frames)
        except ValueError:
            raise UsageError(f"-p frames={frames}: expected an odd integer like 5") from None
        if t < 1 or t % 2 == 0:
            raise UsageError(f"-p frames={frames}: the temporal window must be odd (3, 5, 7)")
        w, d = number("width", width), number("depth", depth)
        return {"frames": t, "channels": [w * 2 ** i for i in range(d)]}
    # U-Nets (unet and the reconstruction networks): explicit channels, or --width/--depth
    if "channels" in params:
        if width is not None or depth is not None or "width" in params or "depth" in params:
            raise UsageError(f"{method}: give either -p channels=... or --width/--depth, not both")
        try:
            chans = [int(c) for c in params["channels"].split(",") if c.strip()]
        except ValueError:
            raise UsageError(f"-p channels={params['channels']}: expected integers like 16,32,64") from None
        if not 1 <= len(chans) <= 6 or min(chans) < 1:
            raise UsageError(f"-p channels={params['channels']}: 1 to 6 positive channel counts")
    else:
        w, d = number("width", width), number("depth", depth)
        chans = [w * 2 ** i for i in range(d)]
    if is_reconstruction(method):
        rest = {k: v for k, v in params.items() if k not in ("channels", "width", "depth")}
        return reconstruction_config(method, frames, chans, rest)
    return {"channels": chans, "in_channels": 1}


def build_model(method: str, config: dict[str, Any]) -> nn.Module:
    """Rebuild a model from the ``(method, config)`` stored in a checkpoint."""
    check_method(method)
    try:
        return MODELS[method](**config)
    except (TypeError, ValueError) as exc:
        raise DataError(f"bad {method} config {config}: {exc}") from None


# ----------------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """torch / numpy / python global RNG states as tensors and plain lists."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [str(kind), torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss),
                  float(gauss)],
        "python": [int(version), list(internal), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except RuntimeError:  # a different number of GPUs: keep the fresh seeds
            pass


# ----------------------------------------------------------------------------- files
def save_checkpoint(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically (temporary file + rename); overwrites ``path``."""
    from scicli.io import atomic_write

    return atomic_write(Path(path), lambda tmp: torch.save(payload, tmp), force=True)


def load_checkpoint(path: Path, method: str | None = None) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; check its format and, if given, its method."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.is_file():
        raise UsageError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - truncated zip, pickled objects, not a torch file ...
        text = str(exc).strip().splitlines()
        first = text[0][:120] if text else type(exc).__name__
        raise DataError(f"{path}: not a readable scicli checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "model" not in ckpt:
        raise DataError(f"{path}: not a scicli checkpoint (no '{FORMAT}' format tag)")
    if int(ckpt.get("format_version", 0)) > FORMAT_VERSION:
        raise DataError(f"{path}: checkpoint format {ckpt.get('format_version')} is newer than this scicli reads")
    if method is not None and ckpt.get("method") != method:
        raise UsageError(f"{path} holds a '{ckpt.get('method')}' model, not '{method}'")
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

