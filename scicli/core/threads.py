"""How many CPU threads scicli's torch uses, and how they wait: right on a busy, shared machine.

torch's CPU kernels run on an OpenMP pool. By default OpenMP threads *spin* after each parallel
region (``OMP_WAIT_POLICY=ACTIVE``-like behaviour) and the pool is sized to the machine, not to the
CPUs this process may use. With a second process on the same cores the spinning threads take the
cores the working threads need: measured on a 2-core machine, one GAP-TV solve of drop40 took
16-33 s instead of 1.5 s (issue 15). The settings here avoid that:

* ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep when idle) unless the user set a policy;
* ``n`` intra-op threads, where ``n`` is, in order of precedence,

  1. ``--threads N`` (the root option of the ``scicli`` command),
  2. the environment variable ``SCICLI_THREADS``,
  3. ``OMP_NUM_THREADS`` when the user set it (the standard OpenMP setting is respected),
  4. the CPUs this process may run on: ``len(os.sched_getaffinity(0))``, capped by a cgroup CPU
     quota ``ceil(quota / period)`` (containers, CI runners) when one is set.

OpenMP reads its environment once, when torch's pool starts (at ``import torch``), so
:func:`apply_environment` must run before anything imports torch: the ``scicli`` entry point
calls it while parsing the root options, before it imports the subcommand's module. Once torch
is loaded, :func:`apply_torch` also sets ``torch.set_num_threads(n)`` and
``torch.set_num_interop_threads(n)`` (the latter only where torch still allows it).

This module never imports torch itself.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from scicli.core.errors import UsageError

ENV_THREADS = "SCICLI_THREADS"
WAIT_POLICY = "OMP_WAIT_POLICY"
# thread-count variables of the libraries torch (and numpy) may use: OpenMP, MKL, OpenBLAS
COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class ThreadPlan:
    """The thread settings of one process.

    Attributes
    ----------
    threads : int
        Intra-op (and inter-op) threads, >= 1.
    source : str
        Where ``threads`` came from: ``--threads``, ``SCICLI_THREADS``, ``OMP_NUM_THREADS``,
        ``affinity`` or ``cgroup quota``.
    wait_policy : str
        The OpenMP wait policy in force (``PASSIVE`` unless the user set one).
    """

    threads: int
    source: str
    wait_policy: str


def _positive(text: str, what: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise UsageError(f"{what} must be a whole number of threads >= 1, got '{text}'") from None
    if value < 1:
        raise UsageError(f"{what} must be >= 1, got {value}")
    return value


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The CPU quota of this process's cgroup as a whole number of CPUs, ``ceil(quota / period)``.

    Reads cgroup v2 (``cpu.max``: ``"QUOTA PERIOD"`` or ``"max PERIOD"``) or v1
    (``cpu/cpu.cfs_quota_us``, -1 for none, and ``cpu/cpu.cfs_period_us``) under ``root``.
    None when there is no quota or it cannot be read.
    """
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            if quota == "max":
                return None
            return max(1, math.ceil(int(quota) / int(period)))
        quota_file, period_file = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if quota_file.is_file() and period_file.is_file():
            quota, period = int(quota_file.read_text()), int(period_file.read_text())
            if quota <= 0 or period <= 0:
                return None
            return max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        return None
    return None


def available_cpus() -> tuple[int, str]:
    """CPUs this process may use: its affinity mask, capped by a cgroup quota; and which one decided."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None and quota < cpus:
        return quota, "cgroup quota"
    return max(1, cpus), "affinity"


def plan(threads: int | None = None, environ: dict[str, str] | None = None) -> ThreadPlan:
    """The thread settings, by precedence: ``threads`` (``--threads``) > ``SCICLI_THREADS`` >
    ``OMP_NUM_THREADS`` > the available CPUs (see the module docstring)."""
    env = os.environ if environ is None else environ
    policy = env.get(WAIT_POLICY) or "PASSIVE"
    if threads is not None:
        return ThreadPlan(_positive(str(threads), "--threads"), "--threads", policy)
    if env.get(ENV_THREADS, "").strip():
        return ThreadPlan(_positive(env[ENV_THREADS], ENV_THREADS), ENV_THREADS, policy)
    if env.get("OMP_NUM_THREADS", "").strip():
        try:
            return ThreadPlan(_positive(env["OMP_NUM_THREADS"], "OMP_NUM_THREADS"), "OMP_NUM_THREADS", policy)
        except UsageError:
            pass  # a malformed standard variable: fall back to the default, as OpenMP does
    cpus, source = available_cpus()
    return ThreadPlan(cpus, source, policy)


_APPLIED: list[ThreadPlan] = []


def apply_environment(settings: ThreadPlan) -> None:
    """Export ``settings`` to the environment OpenMP/MKL read when torch starts (and that child
    processes inherit), then size torch's pools if torch is already loaded (:func:`apply_torch`).

    The wait policy is only written when the user did not set one. A process that loaded torch
    before (a test session, a notebook using the CLI in-process) keeps its own settings unless
    they were asked for explicitly (``--threads``, ``SCICLI_THREADS``).
    """
    explicit = settings.source in ("--threads", ENV_THREADS)
    torch = sys.modules.get("torch")
    if torch is not None and not explicit:
        _APPLIED[:] = [ThreadPlan(torch.get_num_threads(), "torch loaded before the command line",
                                  os.environ.get(WAIT_POLICY, "(OpenMP default)"))]
        return
    os.environ.setdefault(WAIT_POLICY, settings.wait_policy)
    for name in COUNT_VARIABLES:
        if explicit or name == "OMP_NUM_THREADS":
            os.environ[name] = str(settings.threads)
        else:  # the default respects a user's MKL_NUM_THREADS / OPENBLAS_NUM_THREADS
            os.environ.setdefault(name, str(settings.threads))
    _APPLIED[:] = [settings]
    if torch is not None:
        apply_torch()


def apply_torch() -> None:
    """Set torch's intra-op and inter-op pools to the applied plan (no-op before
    :func:`apply_environment`). The inter-op pool can be sized only once, before its first use;
    later attempts are skipped."""
    if not _APPLIED or "torch" not in sys.modules:
        return
    torch = sys.modules["torch"]
    n = _APPLIED[0].threads
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # already sized or already used: torch allows it once
            pass


def describe() -> dict[str, object]:
    """The thread settings in force, for reports: torch's pools (when loaded), the plan's source
    and the wait policy."""
    info: dict[str, object] = {}
    if _APPLIED:
        info["source"] = _APPLIED[0].source
    info[WAIT_POLICY] = os.environ.get(WAIT_POLICY, "(OpenMP default)")
    torch = sys.modules.get("torch")
    if torch is not None:
        info["intra_op"] = torch.get_num_threads()
        info["inter_op"] = torch.get_num_interop_threads()
    return info
