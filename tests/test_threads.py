"""Threads and start-up (issue 15, part 2).

* ``--threads N`` > ``SCICLI_THREADS`` > ``OMP_NUM_THREADS`` > the CPUs the process may use
  (affinity, capped by a cgroup quota); idle OpenMP threads sleep (``OMP_WAIT_POLICY=PASSIVE``)
  unless the user chose a policy. The settings reach torch before it starts its pool, and the
  report of a reconstruction says which were in force.
* ``scicli --help`` and ``scicli --version`` import neither torch nor any solver; every
  subcommand's one-line help in the listing is the start of its own help text.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import scicli

from scicli.cli.app import COMMANDS, load_command
from scicli.core.errors import UsageError
from scicli.core.threads import cgroup_cpu_limit, plan

from conftest import Scene

ROOT = Path(__file__).resolve().parents[1]
THREAD_VARIABLES = ("SCICLI_THREADS", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any thread setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def reconstruct_threads(scene: Scene, tmp_path: Path, runs: dict[str, tuple[list[str], dict[str, str], object]]
                        ) -> dict[str, dict[str, object]]:
    """Run ``scicli [ROOT_OPTIONS] reconstruct`` on the small scene in fresh processes (all at
    once: each mostly waits for ``import torch``); each report's thread settings by run name."""
    procs = {}
    for name, (root_options, env, preexec_fn) in runs.items():
        args = [sys.executable, "-m", "scicli", *root_options, "reconstruct", str(scene.npy / "meas.npy"),
                "--mask", str(scene.npy / "mask.npy"), "--iters", "2", "--out", str(tmp_path / f"{name}.npy"),
                "--quiet"]
        procs[name] = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                       preexec_fn=preexec_fn)  # type: ignore[arg-type]
    found = {}
    for name, proc in procs.items():
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        found[name] = json.loads((tmp_path / f"{name}.json").read_text())["environment"]["threads"]
    return found


class TestPrecedence:
    def test_the_flag_beats_the_variables(self) -> None:
        env = {"SCICLI_THREADS": "3", "OMP_NUM_THREADS": "5"}
        assert (plan(2, env).threads, plan(2, env).source) == (2, "--threads")

    def test_scicli_threads_beats_omp_num_threads(self) -> None:
        got = plan(None, {"SCICLI_THREADS": "3", "OMP_NUM_THREADS": "5"})
        assert (got.threads, got.source) == (3, "SCICLI_THREADS")

    def test_omp_num_threads_is_respected(self) -> None:
        got = plan(None, {"OMP_NUM_THREADS": "5"})
        assert (got.threads, got.source) == (5, "OMP_NUM_THREADS")

    def test_the_default_is_the_cpus_this_process_may_use(self) -> None:
        got = plan(None, {})
        assert got.source in ("affinity", "cgroup quota")
        assert 1 <= got.threads <= len(os.sched_getaffinity(0))

    def test_idle_threads_sleep_unless_the_user_chose_a_policy(self) -> None:
        assert plan(None, {}).wait_policy == "PASSIVE"
        assert plan(None, {"OMP_WAIT_POLICY": "ACTIVE"}).wait_policy == "ACTIVE"

    @pytest.mark.parametrize("bad", ["0", "-1", "two", "1.5"])
    def test_a_bad_count_is_a_usage_error(self, bad: str) -> None:
        with pytest.raises(UsageError, match="SCICLI_THREADS"):
            plan(None, {"SCICLI_THREADS": bad})


class TestCgroupQuota:
    def test_v2_quota_rounds_up_to_whole_cpus(self, tmp_path: Path) -> None:
        (tmp_path / "cpu.max").write_text("150000 100000\n")
        assert cgroup_cpu_limit(tmp_path) == 2

    def test_v2_without_quota(self, tmp_path: Path) -> None:
        (tmp_path / "cpu.max").write_text("max 100000\n")
        assert cgroup_cpu_limit(tmp_path) is None

    def test_v1_quota_and_none(self, tmp_path: Path) -> None:
        (tmp_path / "cpu").mkdir()
        (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000\n")
        assert cgroup_cpu_limit(tmp_path) == 1
        (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
        assert cgroup_cpu_limit(tmp_path) is None


class TestTheCommandLine:
    def test_flag_variable_and_default_reach_torch_before_it_starts(self, scene: Scene, tmp_path: Path) -> None:
        one_cpu = min(os.sched_getaffinity(0))
        got = reconstruct_threads(scene, tmp_path, {
            "flag": (["--threads", "2"], clean_env(SCICLI_THREADS="1", OMP_WAIT_POLICY="ACTIVE"), None),
            "variable": ([], clean_env(SCICLI_THREADS="1"), None),
            "default": ([], clean_env(), lambda: os.sched_setaffinity(0, {one_cpu})),  # one CPU allowed
        })
        # the flag beats the variable, and the user's own wait policy is kept
        assert got["flag"] == {"source": "--threads", "OMP_WAIT_POLICY": "ACTIVE", "intra_op": 2, "inter_op": 2}
        assert got["variable"] == {"source": "SCICLI_THREADS", "OMP_WAIT_POLICY": "PASSIVE", "intra_op": 1,
                                   "inter_op": 1}
        # the default: the CPUs of the affinity mask, threads that sleep when idle
        assert got["default"] == {"source": "affinity", "OMP_WAIT_POLICY": "PASSIVE", "intra_op": 1, "inter_op": 1}

    def test_a_bad_thread_count_is_one_line(self) -> None:
        proc = subprocess.run([sys.executable, "-m", "scicli", "--threads", "0", "methods"], capture_output=True,
                              text=True, env=clean_env(), timeout=120)
        assert proc.returncode == 2
        assert proc.stderr.strip().splitlines() == ["error: --threads must be >= 1, got 0 (see python -m scicli --help)"]


class TestStartUp:
    def test_help_and_version_load_neither_torch_nor_a_solver(self) -> None:
        code = (
            "import sys\n"
            "from scicli.cli.app import main\n"
            "for argv in (['scicli', '--help'], ['scicli', '--version']):\n"
            "    sys.argv = argv\n"
            "    try:\n"
            "        main()\n"
            "    except SystemExit as exc:\n"
            "        assert exc.code == 0, exc.code\n"
            "heavy = [m for m in sys.modules if m in ('torch', 'scipy', 'skimage') or m.startswith(\n"
            "    ('scicli.methods', 'scicli.priors', 'scicli.nets', 'scicli.physics', 'scicli.pipeline'))]\n"
            "print('loaded:', sorted(heavy))\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(),
                              timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert "loaded: []" in proc.stdout
        assert "reconstruct" in proc.stdout and f"scicli {scicli.__version__}" in proc.stdout

    @pytest.mark.parametrize("name", list(COMMANDS))
    def test_the_listed_help_is_the_start_of_the_commands_own(self, name: str) -> None:
        own = " ".join((load_command(name).help or "").split())
        assert own.startswith(COMMANDS[name][2])


class TestReconstructStartUp:
    def test_reconstruct_with_scores_loads_no_scikit_image_nor_scipy_ndimage(self, scene: Scene,
                                                                             tmp_path: Path) -> None:
        """``scicli reconstruct`` of a .mat with ground truth (read, solve, score PSNR/SSIM/SNR,
        write the TIFF and the report) imports neither scikit-image nor scipy.ndimage (0.3-0.5 s of
        start-up: the SSIM is computed with numpy alone) nor matplotlib. The garbage collector,
        paused while the modules load, collects again while the command runs."""
        out = tmp_path / "recon.tif"
        code = (
            "import gc, sys\n"
            "from scicli.cli.app import main\n"
            "after_imports, ended = [], []\n"
            "gc.callbacks.append(lambda phase, info: ended or after_imports.append('scicli.pipeline' in sys.modules))\n"
            f"sys.argv = ['scicli', 'reconstruct', {str(scene.mat / 'sim.mat')!r}, '--iters', '2', '--out', "
            f"{str(out)!r}, '--quiet']\n"
            "try:\n"
            "    main()\n"
            "except SystemExit as exc:\n"
            "    ended.append(True)\n"
            "    assert exc.code == 0, exc.code\n"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('skimage', 'matplotlib') or m == 'scipy.ndimage']\n"
            "print('loaded:', sorted(heavy))\n"
            "print('collected during the command:', any(after_imports), 'frozen:', gc.get_freeze_count() > 10000)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean_env(),
                              timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "loaded: []" in proc.stdout, proc.stdout
        assert "collected during the command: True frozen: True" in proc.stdout, proc.stdout
        report = json.loads(out.with_suffix(".json").read_text())
        assert 0 < report["metrics"]["ssim_mean"] <= 1 and "torch" in sys.modules
