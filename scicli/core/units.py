"""Units: intensities and noise levels are on [0, 1] inside scicli.

The command line quotes noise levels as the field does, on the 0..255 scale of 8-bit images
(``--sigma 50,25,12,6``, ``--sigma-range 0,50``, ``--meas-noise 10``, ``simulate --noise 5``);
they are converted here, once, on their way in (:func:`level`), and back for display
(:func:`level255`).
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

LEVEL_SCALE = 255.0
"""Noise levels typed on the command line are on 0..LEVEL_SCALE."""


def level(value255: T) -> T:
    """Noise level(s) typed on the 0..255 scale (a number or a tensor), on [0, 1]: ``value / 255``."""
    return value255 / LEVEL_SCALE  # type: ignore[operator,return-value]


def level255(value: T) -> T:
    """Noise level(s) on [0, 1], on the 0..255 scale of the command line."""
    return value * LEVEL_SCALE  # type: ignore[operator,return-value]
