"""Issue 13: nothing a user types can destroy data or pass off garbage as a result.

One test (or more) per example of the issue, by class: outputs that are inputs or coincide,
no-clobber under concurrency, output checks before any compute, signals, float options,
non-finite solves, colour masks, negative measurements, checkpoint errors, rich markup in
user text, third-party log lines, evaluate's shapes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch
from typer.testing import Result

from conftest import B, H, K, W, Scene, explain, invoke_cli
from scicli.core.errors import DataError, UsageError
from scicli.data.problem import load_problem
from scicli.io import WriteGroup, write_json, write_text
from scicli.io.atomic import remove_stale_temp_files
from scicli.methods import METHODS
from scicli.methods.base import History
from scicli.weights.store import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ROOT = Path(__file__).resolve().parents[1]


def one_line_error(result: Result, code: int, *needles: str) -> str:
    """Exit ``code`` and exactly one ``error:`` line on stderr holding every needle."""
    assert result.exit_code == code, explain(result)
    lines = [line for line in ANSI.sub("", result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), explain(result)
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    assert "Traceback" not in result.output
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes (to show that nothing was touched)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k != "SCICLI_DEBUG"}, "PYTHONPATH": str(ROOT)}


@pytest.fixture()
def inputs(tmp_path: Path, scene: Scene) -> Path:
    """A private copy of the scene's npy files (tests may try to overwrite them)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("meas.npy", "mask.npy", "orig.npy"):
        (folder / name).write_bytes((scene.npy / name).read_bytes())
    return folder


def run(inputs: Path, *extra: object) -> Result:
    return invoke_cli("reconstruct", inputs / "meas.npy", "--mask", inputs / "mask.npy", "--iters", 3, *extra)


# ----------------------------------------------------------------------------- 1. an output may be an input
class TestOutputIsInput:
    def test_out_is_the_measurement_file(self, inputs: Path) -> None:
        before = snapshot(inputs)
        one_line_error(run(inputs, "--out", inputs / "meas.npy", "--force"), 2, "meas.npy", "input")
        assert snapshot(inputs) == before

    def test_report_is_the_mask_file(self, inputs: Path, tmp_path: Path) -> None:
        before = snapshot(inputs)
        one_line_error(run(inputs, "--out", tmp_path / "r.tif", "--report", inputs / "mask.npy", "--force"),
                       2, "mask.npy", "input")
        assert snapshot(inputs) == before and not (tmp_path / "r.tif").exists()

    def test_directory_run_into_its_own_folder(self, inputs: Path) -> None:
        before = snapshot(inputs)
        result = invoke_cli("reconstruct", inputs, "--mask", inputs / "mask.npy", "--iters", 3, "--out",
                            f"{inputs}/", "--format", "npy", "--force")
        one_line_error(result, 2, "is the input folder")  # refused before any file is listed
        assert snapshot(inputs) == before

    def test_out_and_report_are_the_same_file(self, inputs: Path, tmp_path: Path) -> None:
        out = tmp_path / "o" / "x.npy"
        one_line_error(run(inputs, "--out", out, "--report", out), 2, "same file")
        assert not out.parent.exists() or snapshot(out.parent) == {}

    def test_preview_and_report_coincide(self, inputs: Path, tmp_path: Path) -> None:
        one_line_error(run(inputs, "--out", tmp_path / "x.tif", "--preview", tmp_path / "p.png",
                           "--report", tmp_path / "p.png"), 2, "same file")

    def test_two_outputs_hard_linked_to_each_other(self, inputs: Path, tmp_path: Path) -> None:
        (tmp_path / "x.tif").write_bytes(b"old")
        os.link(tmp_path / "x.tif", tmp_path / "x.json")
        one_line_error(run(inputs, "--out", tmp_path / "x.tif", "--force"), 2, "same file")
        assert (tmp_path / "x.tif").read_bytes() == b"old"

    def test_symlink_and_hard_link_to_an_input(self, inputs: Path, tmp_path: Path) -> None:
        before = snapshot(inputs)
        (tmp_path / "sym.npy").symlink_to(inputs / "meas.npy")
        one_line_error(run(inputs, "--out", tmp_path / "sym.npy", "--force"), 2, "input")
        os.link(inputs / "mask.npy", tmp_path / "hard.npy")
        one_line_error(run(inputs, "--out", tmp_path / "x.tif", "--report", tmp_path / "hard.npy", "--force"),
                       2, "input")
        assert snapshot(inputs) == before

    def test_simulate_over_its_video_and_evaluate_over_its_inputs(self, tmp_path: Path, video_tif: Path) -> None:
        video = tmp_path / "meas.npy"
        np.save(video, tifffile.imread(video_tif))
        before = video.read_bytes()
        one_line_error(invoke_cli("simulate", video, "--out", tmp_path, "--force"), 2, "input")
        assert video.read_bytes() == before
        one_line_error(invoke_cli("evaluate", video, video, "--report", tmp_path / "meas.npy", "--force"),
                       2, "--report")


# ----------------------------------------------------------------------------- 2. no-clobber under concurrency
class TestNoClobber:
    def test_a_second_writer_cannot_replace_the_first(self, tmp_path: Path) -> None:
        target, report = tmp_path / "a.npy", tmp_path / "a.json"
        first, second = WriteGroup(), WriteGroup()
        with first, second:  # both pass the existence check, then race for the names
            write_text(target, "array 1", group=first)
            write_json(report, {"run": 1}, group=first)
            write_text(target, "array 2", group=second)
            write_json(report, {"run": 2}, group=second)
            first.commit()
            with pytest.raises(UsageError, match="exists"):
                second.commit()
        assert target.read_text() == "array 1" and json.loads(report.read_text()) == {"run": 1}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.npy"]

    def test_a_pair_is_never_mixed(self, tmp_path: Path) -> None:
        """The second run's array name is free but its report is taken: its array is taken back."""
        first, second = WriteGroup(), WriteGroup()
        with first, second:
            write_text(tmp_path / "b.npy", "array 2", group=second)
            write_json(tmp_path / "r.json", {"run": 2}, group=second)
            write_json(tmp_path / "r.json", {"run": 1}, group=first)
            first.commit()
            with pytest.raises(UsageError, match="exists"):
                second.commit()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]
        assert json.loads((tmp_path / "r.json").read_text()) == {"run": 1}

    def test_force_replaces(self, tmp_path: Path) -> None:
        write_text(tmp_path / "c.txt", "old")
        write_text(tmp_path / "c.txt", "new", force=True)
        assert (tmp_path / "c.txt").read_text() == "new"
        with pytest.raises(UsageError, match="exists"):
            write_text(tmp_path / "c.txt", "newer")


# ----------------------------------------------------------------------------- 3. checks before the compute
class TestChecksFirst:
    @pytest.fixture()
    def no_reading(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def refuse(*_a: object, **_k: object) -> None:
            raise AssertionError("data was read before the outputs were checked")

        monkeypatch.setattr("scicli.data.problem.read_array", refuse)

    @pytest.mark.usefixtures("no_reading")
    def test_bad_preview_suffix(self, inputs: Path, tmp_path: Path) -> None:
        one_line_error(run(inputs, "--out", tmp_path / "x.tif", "--preview", tmp_path / "p.jpg"), 2, "p.jpg")
        assert list(tmp_path.glob("x.*")) == []

    @pytest.mark.usefixtures("no_reading")
    def test_report_that_is_not_json(self, inputs: Path, tmp_path: Path) -> None:
        one_line_error(run(inputs, "--out", tmp_path / "x.tif", "--report", tmp_path / "r.npy"), 2, "r.npy", ".json")

    @pytest.mark.usefixtures("no_reading")
    def test_parent_of_out_is_a_file(self, inputs: Path, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("x")
        one_line_error(run(inputs, "--out", tmp_path / "file" / "sub" / "x.tif"), 2, "is a file, not a folder")

    @pytest.mark.usefixtures("no_reading")
    def test_report_exists_without_force(self, inputs: Path, tmp_path: Path) -> None:
        (tmp_path / "r.json").write_text("{}")
        one_line_error(run(inputs, "--out", tmp_path / "x.tif", "--report", tmp_path / "r.json"), 2, "exists")
        assert not (tmp_path / "x.tif").exists()

    @pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
    @pytest.mark.usefixtures("no_reading")
    def test_report_folder_not_writable(self, inputs: Path, tmp_path: Path) -> None:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        one_line_error(run(inputs, "--out", tmp_path / "x.tif", "--report", locked / "r.json"), 2, "permission")

    def test_evaluate_report_under_a_file(self, tmp_path: Path, scene: Scene) -> None:
        (tmp_path / "f").write_text("x")
        one_line_error(invoke_cli("evaluate", scene.npy / "orig.npy", scene.npy / "orig.npy", "--report",
                                  tmp_path / "f" / "r.json"), 2, "is a file, not a folder")

    def test_train_out_under_a_file(self, tmp_path: Path) -> None:
        (tmp_path / "f").write_text("x")
        one_line_error(invoke_cli("train", "--method", "dncnn", "--data", tmp_path, "--out", tmp_path / "f" / "run"),
                       2, "is a file, not a folder")


# ----------------------------------------------------------------------------- 4. signals
def test_sigterm_during_a_write_leaves_no_temp_file(tmp_path: Path, scene: Scene) -> None:
    out = tmp_path / "out"
    script = textwrap.dedent(f"""
        import os, signal, sys
        import numpy as np
        real_save = np.save
        def save_then_die(*args, **kwargs):
            real_save(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)
        np.save = save_then_die
        sys.argv = ["scicli", "reconstruct", {str(scene.npy / 'meas.npy')!r}, "--mask",
                    {str(scene.npy / 'mask.npy')!r}, "--iters", "2", "--out", {str(out / 'x.npy')!r}]
        from scicli.cli.app import main
        main()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env(), timeout=120)
    assert proc.returncode == 143, proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(out.iterdir()) == []  # neither the array nor its hidden temporary file


def test_sighup_exits_129(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import os, signal, sys
        from scicli.cli import common
        common.install_signal_handlers()
        @common.guarded
        def cmd():
            os.kill(os.getpid(), signal.SIGHUP)
        try:
            cmd()
        except SystemExit as exc:
            sys.exit(exc.code)
        except BaseException as exc:
            sys.exit(getattr(exc, "exit_code", 99))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env(), timeout=120)
    assert proc.returncode == 129, proc.stderr


def test_kill_9_during_a_checkpoint_write_keeps_the_previous_one(tmp_path: Path) -> None:
    last = tmp_path / "last.pt"
    save_checkpoint(last, {"format": "scicli-checkpoint", "format_version": 1, "method": "dncnn",
                           "config": {}, "model": {"w": torch.ones(3)}, "epoch": 1})
    script = textwrap.dedent(f"""
        import os, signal, torch
        from scicli.weights.store import save_checkpoint
        real = torch.save
        def half_then_die(obj, f, *a, **k):
            real(obj, f, *a, **k)
            with open(f, "r+b") as fh:
                fh.truncate(100)
            os.kill(os.getpid(), signal.SIGKILL)
        torch.save = half_then_die
        save_checkpoint({str(last)!r}, {{"format": "scicli-checkpoint", "format_version": 1, "method": "dncnn",
                                        "config": {{}}, "model": {{"w": torch.zeros(100000)}}, "epoch": 2}})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env(), timeout=120)
    assert proc.returncode == -signal.SIGKILL
    ckpt = load_checkpoint(last)
    assert ckpt["epoch"] == 1 and torch.equal(ckpt["model"]["w"], torch.ones(3))
    leftovers = list(tmp_path.glob(".last.tmp-*.pt"))
    assert len(leftovers) == 1  # the killed write's temporary file: a resumed run removes it
    assert remove_stale_temp_files(last) == 1 and not list(tmp_path.glob(".last.tmp-*"))
    assert load_checkpoint(last)["epoch"] == 1


# ----------------------------------------------------------------------------- 5. float options
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_max_value_must_be_finite_and_positive(value: str, inputs: Path, tmp_path: Path, video_tif: Path) -> None:
    one_line_error(run(inputs, "--out", tmp_path / "x.tif", "--max-value", value), 2, "--max-value")
    one_line_error(invoke_cli("simulate", video_tif, "--out", tmp_path / "sim", "--max-value", value), 2, "--max-value")
    one_line_error(invoke_cli("evaluate", inputs / "orig.npy", inputs / "orig.npy", "--max-value", value),
                   2, "--max-value")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.parametrize("value", ["1e-300", "1e-3"])
def test_a_max_value_far_below_the_data_is_an_error_not_a_clipped_score(value: str, inputs: Path, tmp_path: Path,
                                                                        video_tif: Path) -> None:
    """Images scaled by a --max-value far below their peak would be clipped to [0, 1] (a
    plausible PSNR of garbage) or overflow: one line naming the file, exit 1, nothing written."""
    one_line_error(invoke_cli("evaluate", inputs / "orig.npy", inputs / "orig.npy", "--max-value", value,
                              "--report", tmp_path / "r.json"), 1, "orig.npy")
    one_line_error(invoke_cli("simulate", video_tif, "--out", tmp_path / "sim", "--max-value", value), 1, "--max-value")
    one_line_error(run(inputs, "--out", tmp_path / "x.tif", "--max-value", value), 1, "--max-value")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.parametrize("option, value", [("--density", "nan"), ("--density", "1.5"), ("--noise", "inf")])
def test_simulate_float_options(option: str, value: str, tmp_path: Path, video_tif: Path) -> None:
    one_line_error(invoke_cli("simulate", video_tif, "--out", tmp_path / "sim", option, value), 2, option)


@pytest.mark.parametrize("option, value", [("--tol", "nan"), ("--tv-weight", "inf"), ("--step", "nan"),
                                           ("--gamma", "-inf")])
def test_solver_float_options(option: str, value: str, inputs: Path, tmp_path: Path) -> None:
    result = run(inputs, "--out", tmp_path / "x.tif", option, value)
    one_line_error(result, 2)
    assert not (tmp_path / "x.tif").exists()


def test_train_float_options(tmp_path: Path) -> None:
    for option, value in (("--lr", "nan"), ("--val-fraction", "inf"), ("--meas-noise", "-1")):
        one_line_error(invoke_cli("train", "--method", "dncnn", "--data", tmp_path, "--out", tmp_path / "run",
                                  option, value), 2, option)


# ----------------------------------------------------------------------------- 6. non-finite solves
def test_a_mask_scaled_by_1e20_is_an_error_not_a_result(inputs: Path, tmp_path: Path, scene: Scene) -> None:
    np.save(inputs / "mask.npy", scene.mask.astype(np.float32) * np.float32(1e20))
    one_line_error(run(inputs, "--out", tmp_path / "x.tif"), 1, "NaN/Inf", "mask")
    assert not (tmp_path / "x.tif").exists() and not (tmp_path / "x.json").exists()


def test_a_float64_mask_near_1e300_overflows_on_read(inputs: Path, tmp_path: Path, scene: Scene) -> None:
    np.save(inputs / "mask.npy", scene.mask.astype(np.float64) * 1e300)
    one_line_error(run(inputs, "--out", tmp_path / "x.tif"), 1, "mask.npy", "overflow float32")
    assert not (tmp_path / "x.tif").exists()


def test_write_array_refuses_nan(tmp_path: Path) -> None:
    from scicli.io import write_array  # noqa: PLC0415 - the writer under test only

    with pytest.raises(DataError, match="NaN/Inf"):
        write_array(tmp_path / "x.npy", np.full((2, 3, 3), np.nan, dtype=np.float32))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- 7. colour masks
def test_a_0_255_rgb_mask_is_normalised_like_the_grey_one(tmp_path: Path, scene: Scene) -> None:
    grey = load_problem(scene.npy / "meas.npy", scene.npy / "mask.npy")
    folder = tmp_path / "rgb"
    folder.mkdir()
    for t in range(B):
        frame = scene.mask[t].astype(np.uint8) * 255
        iio.imwrite(folder / f"m{t}.png", np.stack([frame] * 3, axis=-1))
    colour = load_problem(scene.npy / "meas.npy", folder)
    np.testing.assert_array_equal(colour.mask, grey.mask)
    assert colour.info["max_value"] == grey.info["max_value"]


# ----------------------------------------------------------------------------- 8. negative measurements
def test_negative_measurements_warn_once(tmp_path: Path, scene: Scene) -> None:
    np.save(tmp_path / "meas.npy", scene.meas - 0.5 * scene.meas.max())
    with pytest.warns(RuntimeWarning, match="negative") as record:
        load_problem(tmp_path / "meas.npy", scene.npy / "mask.npy")
    assert len([w for w in record if "negative" in str(w.message)]) == 1


def test_non_negative_measurements_do_not_warn(scene: Scene, recwarn: pytest.WarningsRecorder) -> None:
    load_problem(scene.npy / "meas.npy", scene.npy / "mask.npy")
    assert not [w for w in recwarn if "negative" in str(w.message)]


# ----------------------------------------------------------------------------- 11. lazy schedules, bounded history
def test_pnp_schedule_is_lazy() -> None:
    tracemalloc.start()
    solver = METHODS.get("pnp-gap").factory.from_command_line(denoiser="tv", iters="1000000000", sigma="20")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert solver.total_iters() == 1_000_000_000
    assert peak < 50_000_000
    two = METHODS.get("pnp-gap").factory.from_command_line(denoiser="tv", iters="2,3", sigma="50,10")
    assert [two.schedule[k] for k in range(5)] == pytest.approx([50 / 255] * 2 + [10 / 255] * 3)
    with pytest.raises(IndexError):
        two.schedule[5]


def test_history_is_bounded() -> None:
    history = History(limit=100)
    for k in range(1, 100_001):
        history.append({"iter": k, "residual": 1.0 / k})
    kept = history.records()
    assert len(kept) <= 102
    assert kept[0]["iter"] == 1 and kept[-1]["iter"] == 100_000
    assert [r["iter"] for r in kept] == sorted(r["iter"] for r in kept)


# ----------------------------------------------------------------------------- 12. user text is not markup
def test_paths_with_brackets_are_printed_as_they_are(tmp_path: Path, scene: Scene) -> None:
    odd = tmp_path / "odd[" / "]x"
    src = tmp_path / "[red]x.npy"
    src.write_bytes((scene.npy / "meas.npy").read_bytes())
    result = invoke_cli("reconstruct", src, "--mask", scene.npy / "mask.npy", "--iters", 2, "--out", odd / "r.tif")
    assert result.exit_code == 0, explain(result)
    assert "[red]x.npy" in result.stdout and str(odd / "r.tif") in result.stdout.replace("\n", "")
    assert (odd / "r.tif").is_file()
    bad = tmp_path / "[bold]gone.npy"
    one_line_error(invoke_cli("reconstruct", bad, "--mask", scene.npy / "mask.npy", "--out", tmp_path / "y.tif"),
                   2, "[bold]gone.npy")


def test_a_batch_with_bracket_paths_runs_every_input(tmp_path: Path, scene: Scene) -> None:
    folder = tmp_path / "in[1]"
    folder.mkdir()
    for name in ("a[/].npy", "b.npy"):
        (folder / name.replace("/", "_")).write_bytes((scene.npy / "meas.npy").read_bytes())
    result = invoke_cli("reconstruct", folder, "--mask", scene.npy / "mask.npy", "--iters", 2, "--out",
                        tmp_path / "o[/]x", "--quiet")
    assert result.exit_code == 0, explain(result)
    assert len(list((tmp_path / "o[" / "]x").glob("*.tif"))) == 2


# ----------------------------------------------------------------------------- 13. third-party log lines
def test_numpy_overflow_warnings_do_not_precede_the_error(tmp_path: Path, video_tif: Path) -> None:
    """A mask near float32's limit overflows the simulated snapshot: the failure is one ``error:``
    line (numpy's "overflow encountered" warnings are held back when the command fails)."""
    np.save(tmp_path / "m.npy", np.full((B, H, W), 3e38, np.float32))
    proc = subprocess.run([sys.executable, "-m", "scicli", "simulate", str(video_tif), "--mask", str(tmp_path / "m.npy"),
                           "--out", str(tmp_path / "s")], capture_output=True, text=True, env=env(), timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_corrupt_tiff_gives_one_line(tmp_path: Path, video: np.ndarray) -> None:
    """tifffile logs each bad tag of a corrupt file (several lines before the fix)."""
    path = tmp_path / "v.tif"
    tifffile.imwrite(path, video, photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        offsets = [page.offset for page in tif.pages]
    data = bytearray(path.read_bytes())
    for offset in offsets[1:6]:  # the type field of the first tag of pages 1..5: an invalid type
        data[offset + 4:offset + 6] = (222).to_bytes(2, "little")
    path.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "scicli", "simulate", str(path), "--out", str(tmp_path / "s")],
                          capture_output=True, text=True, env=env(), timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode in (0, 1, 2) and len(lines) <= 1, proc.stderr
    assert all(line.startswith("error:") for line in lines), proc.stderr


# ----------------------------------------------------------------------------- 14. evaluate, checkpoints
def test_evaluate_names_the_shapes_of_the_files(tmp_path: Path, scene: Scene) -> None:
    np.save(tmp_path / "r.npy", np.zeros((K, B, H, W), np.float32))
    np.save(tmp_path / "g.npy", np.zeros((K * B, H, W + 4), np.float32))
    line = one_line_error(invoke_cli("evaluate", tmp_path / "r.npy", tmp_path / "g.npy"), 2)
    assert f"({K}, {B}, {H}, {W})" in line and f"({K * B}, {H}, {W + 4})" in line


@pytest.mark.parametrize("kind, needle", [("truncated", "truncated or corrupt"), ("garbage", "not a PyTorch file"),
                                          ("pickled", "pickled Python objects"), ("empty", "empty")])
def test_checkpoint_errors_in_plain_words(kind: str, needle: str, tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save({"w": torch.zeros(1000)}, good)
    path = tmp_path / "bad.pt"
    if kind == "truncated":
        path.write_bytes(good.read_bytes()[:-200])
    elif kind == "garbage":
        path.write_bytes(b"hello world" * 20)
    elif kind == "pickled":
        torch.save({"w": Path("x")}, path)
    else:
        path.write_bytes(b"")
    with pytest.raises(DataError) as exc:
        load_checkpoint(path)
    text = str(exc.value)
    assert needle in text and "PyTorch 2.6" not in text and "(101)" not in text and "\n" not in text


def test_shipping_never_replaces_the_checkpoint_it_reads(tmp_path: Path) -> None:
    from scicli.train.ship import ship  # noqa: PLC0415 - the training stack, for this test only

    ckpt = tmp_path / "dncnn.pt"
    ckpt.write_bytes(b"a checkpoint")
    with pytest.raises(UsageError, match="is the input"):
        ship(ckpt, "dncnn", weights_dir=tmp_path)
    assert ckpt.read_bytes() == b"a checkpoint"


@pytest.mark.parametrize("text, kind", [("nan", float), ("inf", float), ("-inf", float), ("1,nan", tuple),
                                        ("1e400", float)])
def test_the_one_parameter_parser_refuses_non_finite_numbers(text: str, kind: type) -> None:
    from scicli.core.params import coerce  # noqa: PLC0415 - the parser under test only

    with pytest.raises(UsageError, match="finite"):
        coerce("x", text, kind)
