"""Denoisers ``D(x, sigma)`` for plug-and-play reconstruction, by name."""

from scicli.priors import ffdnet, learned, tv  # noqa: F401  (each import registers a denoiser)
from scicli.priors.registry import DENOISERS

__all__ = ["DENOISERS"]
