"""Evaluation reports: JSON, CSV and Markdown, chosen by the output file's suffix.

A report is a dict of the shape::

    {'frames': {'psnr': [...], 'ssim': [...]},   # one value per frame
     'psnr_mean': float, 'ssim_mean': float,     # arithmetic means over frames
     'convention': str,                          # how the scores were computed
     'meta': {...}}                              # optional: data set, solver, seed, versions...

``make_report`` builds one from the output of ``scicli.metrics.frame_metrics``.
Every write is atomic (temp file + ``os.replace``) and refuses to overwrite an existing
file unless ``force=True``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from scicli.core.errors import UsageError
from scicli.io.atomic import atomic_write

SUPPORTED_SUFFIXES: tuple[str, ...] = (".json", ".csv", ".md")


def make_report(metrics: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> dict:
    """Turn ``frame_metrics`` output (top-level 'psnr'/'ssim' lists) into a report dict."""
    conv = metrics.get("convention", "")
    conv_text = conv.get("text", "") if isinstance(conv, Mapping) else str(conv)
    report: dict[str, Any] = {
        "frames": {"psnr": list(metrics["psnr"]), "ssim": list(metrics["ssim"])},
        "psnr_mean": metrics["psnr_mean"],
        "ssim_mean": metrics["ssim_mean"],
        "convention": conv_text,
        "meta": dict(meta or {}),
    }
    if isinstance(conv, Mapping):
        report["convention_details"] = dict(conv)
    return report


def _jsonable(obj: Any) -> Any:
    """Recursively convert numpy types, paths and tuples to plain JSON values.

    Non-finite floats become the strings ``'inf'``, ``'-inf'`` and ``'nan'`` so that the
    file stays strict JSON (a PSNR of identical frames is infinite).
    """
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (list, tuple, set)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else str(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def _convention_str(report: Mapping[str, Any]) -> str:
    conv = report.get("convention", "")
    if isinstance(conv, Mapping):
        return str(conv.get("text", "; ".join(f"{k}={v}" for k, v in conv.items())))
    return str(conv)


def _rows(report: Mapping[str, Any]) -> list[tuple[str, float, float]]:
    """Rows ``(frame, psnr, ssim)``, frames numbered from 0, then a final 'mean' row."""
    frames = report.get("frames")
    if frames is None:  # also accept frame_metrics output directly
        frames = {"psnr": report.get("psnr", []), "ssim": report.get("ssim", [])}
    psnrs = [float(v) for v in frames.get("psnr", [])]
    ssims = [float(v) for v in frames.get("ssim", [])]
    if len(psnrs) != len(ssims):
        raise ValueError(f"report has {len(psnrs)} PSNR values but {len(ssims)} SSIM values")
    rows = [(str(i), p, s) for i, (p, s) in enumerate(zip(psnrs, ssims))]
    psnr_mean = report.get("psnr_mean", float(np.mean(psnrs)) if psnrs else float("nan"))
    ssim_mean = report.get("ssim_mean", float(np.mean(ssims)) if ssims else float("nan"))
    rows.append(("mean", float(psnr_mean), float(ssim_mean)))
    return rows


def _write_json(report: Mapping[str, Any]) -> Callable[[Path], None]:
    text = json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n"

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return write


def _write_csv(report: Mapping[str, Any]) -> Callable[[Path], None]:
    rows = _rows(report)

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["frame", "psnr", "ssim"])
            for frame, p, s in rows:
                w.writerow([frame, repr(p), repr(s)])

    return write


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _write_md(report: Mapping[str, Any]) -> Callable[[Path], None]:
    rows = _rows(report)
    lines = ["# Evaluation report", "", f"Convention: {_md_cell(_convention_str(report))}", ""]
    meta = report.get("meta") or {}
    for key, value in _jsonable(meta).items():
        lines.append(f"- {_md_cell(key)}: {_md_cell(value)}")
    if meta:
        lines.append("")
    lines += ["| frame | PSNR (dB) | SSIM |", "|---|---|---|"]
    for frame, p, s in rows:
        label = f"**{frame}**" if frame == "mean" else frame
        lines.append(f"| {label} | {p:.2f} | {s:.4f} |")
    text = "\n".join(lines) + "\n"

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return write


_WRITERS: dict[str, Callable[[Mapping[str, Any]], Callable[[Path], None]]] = {
    ".json": _write_json,
    ".csv": _write_csv,
    ".md": _write_md,
}


def write_report(path: Path, report: dict, *, force: bool = False) -> Path:
    """Write ``report`` to ``path`` as JSON, CSV or Markdown, chosen by the suffix.

    JSON holds the whole dict (indent 2, numpy types converted); CSV and Markdown hold one
    row per frame (``frame, psnr, ssim``) and a final ``mean`` row; Markdown adds the
    convention and the ``meta`` entries above the table. Raises ``UsageError`` for an
    unknown suffix or for an existing file without ``force``. Returns the path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITERS:
        raise UsageError(
            f"cannot write report {str(path)!r}: unknown suffix {path.suffix!r}; "
            f"supported: {', '.join(SUPPORTED_SUFFIXES)}"
        )
    write = _WRITERS[suffix](report)  # build the content first: fail before touching disk
    return atomic_write(path, write, force=force)
