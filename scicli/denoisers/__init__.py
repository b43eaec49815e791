"""Denoisers ``D(x, sigma)`` for plug-and-play reconstruction, by name."""

from scicli.denoisers import tv  # noqa: F401  (registers "tv")
from scicli.denoisers.registry import DENOISERS

__all__ = ["DENOISERS"]
