"""Model configs of ``scicli train`` (from ``--width``, ``--depth``, ``-p NAME=VALUE``) and RNG
states as plain lists; the checkpoint files themselves are :mod:`scicli.weights.store`'s."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any


from scicli.core.errors import UsageError
from scicli.core.params import check_range, coerce, from_command_line, to_command_line
from scicli.fixedpoint import Backward, make_options, settings_options
from scicli.methods.learned import (DEFAULT_SOLVE, JACOBIAN_DEFAULTS, JacobianRegularisation, LearnedMap, VideoMap,
                                    option_fields)
from scicli.weights.store import MODELS, build_model, check_method, is_reconstruction, load_checkpoint

SOLVE_KEYS: dict[str, type] = ({k: type(v) for k, v in DEFAULT_SOLVE.items()} | {"iters": int}
                               | {k: type(v) for k, v in JACOBIAN_DEFAULTS.items()})
"""Fixed-point settings a reconstruction network stores (``-p NAME=VALUE`` at training), with the
Jacobian regularisation of an equilibrium map (:class:`~scicli.methods.learned.JacobianRegularisation`)."""
MAP_KEYS: dict[str, type] = {"channels": list, "width": int, "depth": int, "spectral_norm": bool, "centre": bool}
"""What every learned map has: its U-Net's scales (``channels`` or ``width``/``depth``), spectral norm, centring."""

DENOISER_KEYS: dict[str, dict[str, type]] = {
    "dncnn": {"depth": int, "width": int},
    "unet": {"channels": list, "width": int, "depth": int},
    "video": {"channels": list, "width": int, "depth": int, "frames": int},
}


def learned_map(method: str) -> type[LearnedMap]:
    """The map class of a learned reconstruction method."""
    return MODELS.get(method).factory


def model_keys(method: str) -> dict[str, type]:
    """The ``-p`` names a trainable method takes at training, with their types."""
    if method in DENOISER_KEYS:
        return DENOISER_KEYS[method]
    cls = learned_map(method)
    common = MAP_KEYS if issubclass(cls, VideoMap) else {}
    return {**common, **SOLVE_KEYS, **{f.name: type(f.default) for f in option_fields(cls)}}


DEFAULT_WIDTH = {"dncnn": 32, "unet": 16, "video": 32}
DEFAULT_DEPTH = {"dncnn": 10, "unet": 3, "video": 2}
MAP_WIDTH, MAP_DEPTH = 32, 3
"""The U-Net scales of a learned map by default: 32, 64, 128 channels."""


def _parse_value(method: str, name: str, text: str, kind: type) -> Any:
    """``-p NAME=VALUE`` of a model option, by the one parameter parser (:func:`coerce`)."""
    return coerce(name, text, kind, f"{method}: -p {name}={text} is not a valid {kind.__name__}")


def map_options(method: str, params: dict[str, str]) -> dict[str, Any]:
    """The declared options of a learned map from ``-p NAME=VALUE`` (popped from ``params``):
    typed, noise levels from 0..255, checked by their declared ranges; defaults for the rest."""
    cls = learned_map(method)
    given = {f.name: _parse_value(method, f.name, params.pop(f.name), type(f.default))
             for f in option_fields(cls) if f.name in params}
    given = from_command_line(cls.Options, given)  # noise levels typed on 0..255
    config = {}
    for f in option_fields(cls):
        value = given.get(f.name, f.default)
        check_range(f.name, value, f.metadata)
        config[f.name] = value
    return config


def solve_config(method: str, params: dict[str, str]) -> dict[str, Any]:
    """The runner settings a learned map stores, from the remaining ``-p NAME=VALUE``."""
    cls = learned_map(method)
    solve = {k: _parse_value(method, k, v, SOLVE_KEYS[k]) for k, v in params.items()}
    if "iters" in solve and not cls.unrolled:
        raise UsageError(f"{method}: -p iters applies to unrolled networks (a DEQ runs to its tolerance: max_iter, tol)")
    for f in dataclasses.fields(JacobianRegularisation):
        if f.name in solve:
            if cls.unrolled:
                raise UsageError(f"{method}: -p {f.name} applies to equilibrium maps (this network is unrolled)")
            check_range(f.name, solve[f.name], f.metadata)
    full = {**DEFAULT_SOLVE, **solve}
    Backward.parse(full["backward"])
    make_options(full["solver"], **settings_options(full, full["tol"], full["max_iter"]))
    if cls.unrolled and solve.get("iters", 10) < 1:
        raise UsageError(f"{method}: iters must be >= 1")
    return solve


def reconstruction_config(method: str, frames: int, channels: list[int], params: dict[str, str]) -> dict[str, Any]:
    """Config of a learned map: U-Net ``channels`` (from :func:`model_config`), spectral norm,
    centring, the map's declared options (``Options``: checked by their declared ranges) and the
    fixed-point settings in ``params``."""
    config: dict[str, Any] = {"frames": int(frames), "channels": channels,
                              "spectral_norm": _parse_value(method, "spectral_norm", params.pop("spectral_norm", "0"), bool),
                              "centre": _parse_value(method, "centre", params.pop("centre", "1"), bool)}
    config.update(map_options(method, params))
    config["solve"] = solve_config(method, params)
    return config


def model_options(method: str, config: dict[str, Any]) -> list[str]:
    """The ``scicli train`` options that rebuild ``config`` (for the reproducing command)."""
    parts = ["-p", "channels=" + ",".join(str(c) for c in config["channels"])] if "channels" in config and \
        issubclass(learned_map(method), VideoMap) else []
    if config.get("spectral_norm", False):
        parts += ["-p", "spectral_norm=1"]
    if "centre" in config and not config["centre"]:
        parts += ["-p", "centre=0"]
    cls = learned_map(method)
    typed = to_command_line(cls.Options(**{f.name: config[f.name] for f in option_fields(cls) if f.name in config}))
    for f in option_fields(cls):  # as typed: noise levels on 0..255
        if f.name in config and config[f.name] != f.default:
            value = typed[f.name]
            parts += ["-p", f"{f.name}={int(value) if isinstance(value, bool) else value:g}"
                      if isinstance(value, (float, bool)) else f"{f.name}={value}"]
    for key, value in (config.get("solve") or {}).items():
        if key in DEFAULT_SOLVE and DEFAULT_SOLVE[key] == value:
            continue
        parts += ["-p", f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"]
    return parts


SAME_MAP = ({"deq-gap", "unrolled-gap"}, {"red-deq", "oder"})
"""Methods whose weights fit each other: the same map, solved to a fixed point or unrolled
(deq-gap, unrolled-gap), or with all or w drawn views per evaluation (red-deq, oder)."""


def weights_fit(method: str, other: str) -> bool:
    """True when weights trained for ``other`` fit ``method``: the same method, or the same map."""
    return method == other or any({method, other} <= group for group in SAME_MAP)


def load_init(path: Path, method: str) -> dict[str, Any]:
    """The checkpoint ``--init`` names: of ``method`` or of a method with the same map."""
    if not Path(path).exists():
        raise UsageError(f"--init {path}: no such checkpoint")
    ckpt = load_checkpoint(Path(path))
    if not weights_fit(method, ckpt["method"]):
        raise UsageError(f"--init {path} holds a '{ckpt['method']}' model, which does not fit '{method}'")
    return ckpt


def init_params(method: str, path: Path) -> dict[str, str]:
    """The ``-p`` options that rebuild the model of checkpoint ``path`` (``--init``): its
    architecture and stored settings, with the defaults of the code that wrote it filled in.
    Runner settings that only the other kind of map has (``iters`` of an unrolled network) stay
    behind, so an unrolled-gap checkpoint starts a deq-gap run and back (and options the other
    method has not, ODER's w for a red-deq run); so does the Jacobian
    regularisation (``jac_*``), a choice of the run that trained the checkpoint, not of its
    model: a new run has it only where its own ``-p`` sets it."""
    ckpt = load_init(path, method)
    model = build_model(str(ckpt["method"]), dict(ckpt["config"]))
    parts = model_options(str(ckpt["method"]), dict(model.config))
    params = dict(part.split("=", 1) for part in parts[1::2])
    foreign = set(JACOBIAN_DEFAULTS) | ({"iters"} if not learned_map(method).unrolled else set())
    foreign |= ({f.name for f in option_fields(learned_map(str(ckpt["method"])))}  # oder's w for red-deq
                - {f.name for f in option_fields(learned_map(method))})
    return {k: v for k, v in params.items() if k not in foreign}


def model_config(method: str, width: int | None = None, depth: int | None = None,
                 params: dict[str, str] | None = None, frames: int = 8) -> dict[str, Any]:
    """The model config from ``--width``, ``--depth`` and ``-p NAME=VALUE``; unknown names are errors.

    dncnn: ``depth`` conv layers of ``width`` channels. unet and the reconstruction networks:
    ``depth`` scales with ``width * 2^l`` channels at scale l, or an explicit ``channels=16,32,64``.
    """
    check_method(method)
    params = dict(params or {})
    allowed = model_keys(method)
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
        if value is None:
            defaults = (DEFAULT_WIDTH, MAP_WIDTH) if name == "width" else (DEFAULT_DEPTH, MAP_DEPTH)
            value = defaults[0].get(method, defaults[1])
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
    if is_reconstruction(method) and not issubclass(learned_map(method), VideoMap):
        if width is not None or depth is not None:
            raise UsageError(f"{method}: --width/--depth do not apply; set its options with -p (see scicli methods -v)")
        config = map_options(method, params)
        config["solve"] = solve_config(method, params)
        return config
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
