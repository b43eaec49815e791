"""Learning curves: ``scicli weights curve`` reads a run's log.jsonl, prints the best score and a
projection of the steps still needed, and draws the figure through the output checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from scicli.train.curve import learning_curve, project_steps
from conftest import invoke_cli, ok


def write_run(folder: Path, scores: list[float], steps_per_epoch: int = 100, baseline: float = 30.0,
              resumed_from: int | None = None) -> Path:
    """A run directory whose log.jsonl has the records scicli train writes (start, steps, epochs);
    ``resumed_from``: a resume that repeats the epochs after it with other scores first."""
    folder.mkdir()
    lines = [{"type": "start", "step": 0, "method": "admm-net", "val_noisy": {"psnr": baseline}}]
    for e, s in enumerate(scores, 1):
        lines.append({"type": "step", "epoch": e, "step": e * steps_per_epoch, "loss": 0.1})
        lines.append({"type": "epoch", "epoch": e, "step": e * steps_per_epoch, "val_mean": s, "seconds": 60.0})
    if resumed_from is not None:
        lines.append({"type": "start", "step": resumed_from * steps_per_epoch, "method": "admm-net",
                      "val_noisy": {"psnr": baseline}})
        for e in range(resumed_from + 1, len(scores) + 1):
            lines.append({"type": "epoch", "epoch": e, "step": e * steps_per_epoch, "val_mean": scores[e - 1],
                          "seconds": 60.0})
    (folder / "log.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n{\"torn", encoding="utf-8")
    return folder


def test_curve_reads_epochs_baseline_and_time(tmp_path: Path) -> None:
    c = learning_curve(write_run(tmp_path / "run", [31.0, 32.0, 32.5]))
    assert c.method == "admm-net" and c.baseline == 30.0
    assert c.steps.tolist() == [100, 200, 300] and c.scores.tolist() == [31.0, 32.0, 32.5]
    assert c.seconds.tolist() == [60.0, 120.0, 180.0] and c.best == 32.5


def test_a_resumed_run_keeps_the_last_record_of_each_epoch(tmp_path: Path) -> None:
    c = learning_curve(write_run(tmp_path / "run", [31.0, 32.0, 33.0, 34.0], resumed_from=2))
    assert c.steps.tolist() == [100, 200, 300, 400]


def test_projection_inverts_a_log_linear_curve(tmp_path: Path) -> None:
    steps = 100 * np.arange(1, 9)
    scores = (30 + 2 * np.log10(steps)).tolist()  # 2 dB per decade
    c = learning_curve(write_run(tmp_path / "run", scores))
    need = project_steps(c, 30 + 2 * np.log10(8000))
    assert need == pytest.approx(8000, rel=1e-6)
    assert project_steps(c, scores[2]) == 300  # already reached: the first step at or above it


def test_no_projection_for_a_flat_or_falling_curve(tmp_path: Path) -> None:
    c = learning_curve(write_run(tmp_path / "run", [32.0, 32.0, 31.9, 31.8]))
    assert project_steps(c, 33.0) is None


def test_a_folder_without_a_training_log_is_one_line_data_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = invoke_cli("weights", "curve", str(tmp_path / "empty"))
    assert r.exit_code == 1 and "no validated epoch" in r.output and "Traceback" not in r.output


def test_cli_prints_the_projection_and_writes_the_figure_once(tmp_path: Path) -> None:
    steps = 100 * np.arange(1, 7)
    run = write_run(tmp_path / "run", (30 + 2 * np.log10(steps)).tolist())
    png = tmp_path / "curve.png"
    r = ok(invoke_cli("weights", "curve", str(run), "--gain", "2", "--out", str(png)))
    assert "best 35.56 at step 600" in r.output and "projected at ~6,000 steps" in r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = invoke_cli("weights", "curve", str(run), "--out", str(png))
    assert again.exit_code == 2 and "exists" in again.output
    onto_log = invoke_cli("weights", "curve", str(run), "--out", str(run / "log.jsonl"))
    assert onto_log.exit_code == 2  # never the input (and not a .png)
    bad = invoke_cli("weights", "curve", str(run), "--target", "nan")
    assert bad.exit_code == 2 and "--target" in bad.output
