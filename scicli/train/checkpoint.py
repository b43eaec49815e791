"""Model configs of ``scicli train`` (from ``--width``, ``--depth``, ``-p NAME=VALUE``) and RNG
states as plain lists; the checkpoint files themselves are :mod:`scicli.weights.store`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from scicli.core.errors import UsageError
from scicli.core.params import coerce
from scicli.fixedpoint import Backward, make_options, settings_options
from scicli.methods.deq_models import DEFAULT_SOLVE, PRIORS, RECONSTRUCTORS, STARTS
from scicli.weights.store import build_model, check_method, is_reconstruction, load_checkpoint

GAP_KEYS: dict[str, type] = {"prior": str, "sigma": float, "accelerate": bool, "start": str, "learned_start": bool}
"""Options of the GAP map of deq-gap and unrolled-gap (see :class:`scicli.nets.deq.DEQGap`)."""
GAP_DEFAULTS: dict[str, Any] = {"prior": "ffdnet", "sigma": 10.0, "accelerate": True, "start": "gap-tv",
                                "learned_start": True}

RNN_KEYS: dict[str, type] = {"hidden": int, "start": str, "accelerate": bool, "tv_weight": float, "tv_iters": int}
"""Options of the deq-rnn cell (see :class:`scicli.nets.deq.DEQRnn`)."""
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


def _parse_value(method: str, name: str, text: str, kind: type) -> Any:
    """``-p NAME=VALUE`` of a model option, by the one parameter parser (:func:`coerce`)."""
    return coerce(name, text, kind, f"{method}: -p {name}={text} is not a valid {kind.__name__}")


def reconstruction_config(method: str, frames: int, channels: list[int], params: dict[str, str]) -> dict[str, Any]:
    """Config of a reconstruction network: U-Net ``channels`` (from :func:`model_config`),
    spectral norm, hidden channels (deq-rnn) and the fixed-point settings in ``params``."""
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
