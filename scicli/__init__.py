"""scicli: reconstruct images and video from compressive measurements (snapshot compressive imaging,
CASSI, block compressed sensing, MRI, CT).

Forward model: ``y = A x + n``; for video SCI ``y = sum_t M_t * x_t + n`` with B coded frames
``x_t`` and masks ``M_t``.

The Python API (:mod:`scicli.api`) is re-exported here and imported on first use, so
``import scicli`` stays light (no torch)::

    sim = scicli.simulate(video, frames=8)
    res = scicli.reconstruct(sim.meas, sim.mask, method="gap-tv")
    scicli.evaluate(res.recon, sim.orig)["psnr_mean"]
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["Problem", "Result", "Simulation", "__version__", "evaluate", "load", "methods", "operators",
           "reconstruct", "simulate"]

_API = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    """PEP 562: the API names load :mod:`scicli.api` (and torch) when first used."""
    if name in _API:
        api = importlib.import_module("scicli.api")
        # ``scicli.methods`` is also a subpackage (set here by the import system): that module is callable
        value = importlib.import_module("scicli.methods") if name == "methods" else getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'scicli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
