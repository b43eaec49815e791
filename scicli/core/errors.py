"""User-facing errors: each one prints as a single line and maps to an exit code.

Exit codes: 2 for usage mistakes (bad options, missing files, shapes that do not fit,
an output that exists without ``--force``), 1 for run-time failures (unreadable or corrupt
data, NaN/Inf in the input, an unavailable device).
"""

from __future__ import annotations


class ScicliError(Exception):
    """A failure the user can act on; printed as one line, no traceback."""

    exit_code: int = 1


class UsageError(ScicliError):
    """The command line or its inputs do not fit together (exit code 2)."""

    exit_code = 2


class DataError(ScicliError):
    """An input file exists but cannot be used: unreadable, corrupt, NaN/Inf (exit code 1)."""

    exit_code = 1
