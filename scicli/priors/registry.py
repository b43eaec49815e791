"""Registry of denoisers: every entry builds a callable ``D(x, sigma)`` on (N, B, H, W) tensors."""

from __future__ import annotations

from scicli.core.registry import Registry

DENOISERS: Registry = Registry("denoiser")
register = DENOISERS.register
