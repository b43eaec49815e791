"""One ``--device`` option everywhere: auto, cpu, cuda, cuda:K."""

from __future__ import annotations

import torch

from scicli.core.errors import ScicliError, UsageError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for an absent GPU is a one-line error."""
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device '{name}' (use auto, cpu, cuda or cuda:K)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ScicliError(f"--device {name}: CUDA is not available on this machine (torch {torch.__version__})")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ScicliError(f"--device {name}: only {count} CUDA device(s) present")
    elif device.type != "cpu":
        raise UsageError(f"unsupported device '{name}' (use auto, cpu, cuda or cuda:K)")
    return device


def describe(device: torch.device) -> str:
    """A human-readable device name for reports."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
