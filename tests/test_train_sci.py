"""``scicli train`` for reconstruction networks (deq-gap, deq-rnn, unrolled-gap) and their use.

Tiny runs on generated stills panned into clips: B = 4 frames, 16 x 16 patches, 2 steps per
epoch, U-Net channels 4,8; seconds on a CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import invoke_cli, ok, write_stills
from scicli.core.errors import ScicliError
from scicli.train.checkpoint import model_config
from scicli.train.loop import Reporter, TrainArgs, read_log, train
from scicli.train.sci import MaskSampler, SCITask

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]  # untrained tiny maps need not converge

TINY = ["--frames", "4", "--patch", "16", "--batch-size", "2", "--steps-per-epoch", "2", "--log-every", "1",
        "-p", "channels=4,8", "-p", "max_iter=4", "--quiet"]
TINY_RUN = TINY[:8] + ["--quiet"]  # the same run without model options (they come from --init)


@pytest.fixture(scope="module")
def stills(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_stills(tmp_path_factory.mktemp("sci_stills"), size=40)


def one_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    return lines[0]


def test_masks_are_drawn_like_the_camera(tmp_path: Path):
    random = MaskSampler("random", 4, seed=0).batch(3, 16, 16, step=5)
    assert random.shape == (3, 4, 16, 16) and set(random.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(random, MaskSampler("random", 4, seed=0).batch(3, 16, 16, step=5))  # (seed, step)
    assert not torch.equal(random, MaskSampler("random", 4, seed=0).batch(3, 16, 16, step=6))
    shifted = MaskSampler("shifted", 4, seed=0).batch(1, 16, 16, step=0)[0]
    assert torch.equal(shifted[1, :, 1:], shifted[0, :, :-1])  # one pixel to the right per frame
    np.save(tmp_path / "mask.npy", (np.random.default_rng(0).random((4, 20, 20)) < 0.5).astype(np.uint8))
    from_file = MaskSampler(str(tmp_path / "mask.npy"), 4, seed=0).batch(2, 8, 8, step=0)
    assert from_file.shape == (2, 4, 8, 8)


def test_a_mask_file_has_the_same_values_in_train_and_reconstruct(tmp_path: Path):
    from scicli.data.problem import mask_values
    from scicli.train.sci import load_mask_file

    binary = (np.random.default_rng(0).random((4, 8, 8)) < 0.5).astype(np.uint8) * 255  # 8-bit file
    gains = np.random.default_rng(1).uniform(0.0, 2.0, (4, 8, 8)).astype(np.float32)  # calibrated, > 1
    for name, arr in (("binary.npy", binary), ("gains.npy", gains)):
        np.save(tmp_path / name, arr)
        assert np.array_equal(load_mask_file(str(tmp_path / name), 4), mask_values(arr, name))
    assert set(np.unique(load_mask_file(str(tmp_path / "binary.npy"), 4))) == {0.0, 1.0}
    assert load_mask_file(str(tmp_path / "gains.npy"), 4).max() > 1


def test_measurements_follow_the_forward_model():
    task = SCITask(frames=4, mask="random", meas_noise=0.0, seed=0)
    x = torch.rand(2, 4, 8, 8)
    op, y = task.problem(x, step=3)
    assert torch.allclose(y, (op.mask * x).sum(dim=1))
    noisy = SCITask(frames=4, mask="random", meas_noise=25 / 255, seed=0)
    _, yn = noisy.problem(x, step=3)
    assert 0 < float((yn - y).std()) < 25 / 255


@pytest.mark.parametrize("method", ["deq-gap", "deq-rnn", "unrolled-gap"])
def test_train_then_reconstruct_with_the_checkpoint_alone(method: str, stills: Path, tmp_path: Path):
    run = tmp_path / "run"
    extra = {"unrolled-gap": ["-p", "iters=3"], "deq-rnn": ["-p", "tv_weight=0.05", "-p", "hidden=2"]}.get(method, [])
    result = ok(invoke_cli("train", "--method", method, "--data", stills, "--out", run, "--epochs", "2",
                           "--warmup", "1", *TINY, *extra))
    assert "best epoch" in result.stdout
    ckpt = torch.load(run / "best.pt", weights_only=True)
    assert ckpt["method"] == method and ckpt["config"]["frames"] == 4
    assert ckpt["args"]["mask"] == "random" and ckpt["args"]["frames"] == 4
    epochs = [r for r in read_log(run / "log.jsonl") if r["type"] == "epoch"]
    assert len(epochs) == 2 and np.isfinite(epochs[-1]["val"]["psnr"])
    summary = json.loads((run / "run.json").read_text())
    assert summary["command"].startswith(f"scicli train --method {method}") and "--frames 4" in summary["command"]
    for option in extra[1::2]:  # the reproducing command rebuilds the same model
        assert f"-p {option}" in summary["command"]

    # the checkpoint alone drives reconstruct: method, frames, network, settings
    video = np.random.default_rng(0).random((4, 24, 20)).astype(np.float32)
    mask = (np.random.default_rng(1).random((4, 24, 20)) < 0.5).astype(np.float32)
    np.save(tmp_path / "meas.npy", (mask * video).sum(axis=0))
    np.save(tmp_path / "mask.npy", mask)
    ok(invoke_cli("reconstruct", tmp_path / "meas.npy", "--mask", tmp_path / "mask.npy", "--weights", run / "best.pt",
                  "--out", tmp_path / "recon.npy", "-q"))
    recon = np.load(tmp_path / "recon.npy")
    assert recon.shape == (4, 24, 20) and np.isfinite(recon).all()
    report = json.loads((tmp_path / "recon.json").read_text())
    assert report["method"] == method


class _StopAfterFirstEpoch(Reporter):
    def epoch(self, record: dict) -> None:
        raise KeyboardInterrupt


def test_resume_continues_bit_for_bit(stills: Path, tmp_path: Path):
    common = ["--method", "deq-gap", "--data", stills, "--epochs", "2", "--warmup", "2", *TINY]
    ok(invoke_cli("train", *common, "--out", tmp_path / "whole"))
    args = TrainArgs(method="deq-gap", data=[str(stills)], out=str(tmp_path / "cut"),
                     model=model_config("deq-gap", params={"channels": "4,8", "max_iter": "4"}, frames=4),
                     frames=4, patch=16, batch_size=2, steps_per_epoch=2, epochs=2, log_every=1, warmup=2)
    with pytest.raises(KeyboardInterrupt):
        train(args, reporter=_StopAfterFirstEpoch())
    ok(invoke_cli("train", "--resume", "--out", tmp_path / "cut", "--quiet"))
    losses = lambda run: [(r["type"], r["step"], r["loss"]) for r in read_log(run / "log.jsonl")  # noqa: E731
                          if r["type"] in ("step", "epoch")]
    assert losses(tmp_path / "cut") == losses(tmp_path / "whole")
    a = torch.load(tmp_path / "whole" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_supervising_every_iterate_trains_random_depths(stills: Path, tmp_path: Path, monkeypatch):
    """--supervise all: each step's loss is on the iterate after k + 1 evaluations, k drawn from
    (seed, step) in 0..max_iter-1, with the gradient of that last evaluation only."""
    from scicli.methods.deq_gap import DEQGap

    budgets = []
    original = DEQGap.run

    def spy(self, f, z0, s):
        budgets.append((int(s["max_iter"]), s["backward"]))
        return original(self, f, z0, s)

    monkeypatch.setattr(DEQGap, "run", spy)
    run = tmp_path / "run"
    ok(invoke_cli("train", "--method", "deq-gap", "--data", stills, "--out", run, "--epochs", "1",
                  "--supervise", "all", *TINY, "--steps-per-epoch", "12"))
    training = budgets[:12]  # then validation solves with the stored budget
    assert all(b == "jfb" and 0 <= k < 4 for k, b in training)
    assert len({k for k, _ in training}) > 1  # depths vary from step to step
    assert "--supervise all" in json.loads((run / "run.json").read_text())["command"]


def test_init_adds_a_learned_start_to_trained_weights_and_trains_only_it(stills: Path, tmp_path: Path):
    """--init copies the matching weights and the model options of a run; --supervise start
    trains the learned start alone (the map keeps the weights it came with)."""
    ok(invoke_cli("train", "--method", "deq-gap", "--data", stills, "--out", tmp_path / "a", "--epochs", "1",
                  "-p", "learned_start=0", "-p", "centre=0", *TINY))
    base = torch.load(tmp_path / "a" / "best.pt", weights_only=True)
    result = ok(invoke_cli("train", "--method", "deq-gap", "--data", stills, "--out", tmp_path / "b",
                           "--epochs", "1", "--init", tmp_path / "a" / "best.pt", "-p", "learned_start=1",
                           "--supervise", "start", *TINY_RUN))
    assert "initialised from" in result.stderr + result.stdout
    ckpt = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert ckpt["config"]["centre"] is False and ckpt["config"]["learned_start"] is True  # the init's model + -p
    assert ckpt["config"]["solve"]["max_iter"] == base["config"]["solve"]["max_iter"]
    for name, value in base["model"].items():  # the map is untouched
        assert torch.equal(ckpt["model"][name], value), name
    assert ckpt["model"]["refine.body.head.weight"].abs().sum() > 0  # the start learned (its head began at 0)
    start = read_log(tmp_path / "b" / "log.jsonl")[0]
    assert start["init"]["copied"] == len(base["model"]) and len(start["init"]["sha256"]) == 64
    assert all(k.startswith("refine.") for k in start["init"]["fresh"])
    command = json.loads((tmp_path / "b" / "run.json").read_text())["command"]
    assert "--init" in command and "--supervise start" in command and "-p centre=0" in command
    # the same map unrolled starts from the DEQ's weights
    ok(invoke_cli("train", "--method", "unrolled-gap", "--data", stills, "--out", tmp_path / "c", "--epochs", "1",
                  "--init", tmp_path / "a" / "best.pt", "-p", "iters=2", *TINY_RUN))
    unrolled = torch.load(tmp_path / "c" / "last.pt", weights_only=True)
    assert unrolled["method"] == "unrolled-gap" and unrolled["config"]["solve"]["iters"] == 2
    assert unrolled["config"]["centre"] is False and set(unrolled["model"]) == set(base["model"])
    # and back: the unrolled run starts a DEQ (its iters stays behind), trained through its recorded solve
    ok(invoke_cli("train", "--method", "deq-gap", "--data", stills, "--out", tmp_path / "d", "--epochs", "1",
                  "--init", tmp_path / "c" / "last.pt", "-p", "backward=unroll", "-p", "tol=0", *TINY_RUN))
    back = torch.load(tmp_path / "d" / "last.pt", weights_only=True)
    assert "iters" not in back["config"]["solve"] and back["config"]["solve"]["backward"] == "unroll"
    assert any(not torch.equal(back["model"][k], unrolled["model"][k]) for k in unrolled["model"])  # it learned


@pytest.mark.skipif(not any(shutil.which(c) for c in ("c++", "g++", "clang++")),
                    reason="torch.compile on a CPU needs a C++ compiler")
def test_compiled_training_gives_the_same_weights_under_the_same_names(stills: Path, tmp_path: Path):
    """--compile (torch.compile of the networks, the loop eager): same checkpoint keys, same
    weights up to float rounding, and the flag is in the reproducing command."""
    args = ["--method", "deq-rnn", "--data", stills, "--epochs", "1", *TINY]
    ok(invoke_cli("train", *args, "--out", tmp_path / "eager"))
    ok(invoke_cli("train", *args, "--out", tmp_path / "compiled", "--compile"))
    eager = torch.load(tmp_path / "eager" / "last.pt", weights_only=True)["model"]
    compiled = torch.load(tmp_path / "compiled" / "last.pt", weights_only=True)["model"]
    assert eager.keys() == compiled.keys()
    assert all(torch.allclose(eager[k], compiled[k], atol=1e-5) for k in eager)
    assert any(not torch.equal(eager[k], torch.zeros_like(eager[k])) for k in eager)
    assert json.loads((tmp_path / "compiled" / "run.json").read_text())["command"].endswith("--compile")


def test_compile_without_a_compiler_on_a_cpu_is_one_line(stills: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    result = invoke_cli("train", "--method", "deq-rnn", "--data", stills, "--out", tmp_path / "r", "--epochs", "1",
                        "--device", "cpu", "--compile", *TINY)
    assert "--compile on a CPU needs a C++ compiler" in one_error(result)


def test_train_errors_are_one_line(stills: Path, tmp_path: Path):
    base = ["train", "--method", "deq-gap", "--data", stills, "--out", tmp_path / "r"]
    assert "--mask" in one_error(invoke_cli(*base, "--mask", "nonsense"))
    assert "--frames" in one_error(invoke_cli(*base, "--frames", "0"))
    assert "unknown deq-gap option(s) depthx" in one_error(invoke_cli(*base, "-p", "depthx=3"))
    assert "backward mode" in one_error(invoke_cli(*base, "-p", "backward=exact"))
    assert "iters applies to unrolled networks" in one_error(invoke_cli(*base, "-p", "iters=3"))
    assert "'prior' must be one of ffdnet, none" in one_error(invoke_cli(*base, "-p", "prior=bm3d"))
    assert "'start' must be one of gap-tv, mean" in one_error(invoke_cli(*base, "-p", "start=zeros"))
    assert "'sigma' must be > 0" in one_error(invoke_cli(*base, "-p", "sigma=0"))
    assert "accelerate=maybe is not a valid bool" in one_error(invoke_cli(*base, "-p", "accelerate=maybe"))
    assert "--supervise must be one of last, all" in one_error(invoke_cli(*base, "--supervise", "some"))
    assert "needs -p learned_start=1" in one_error(invoke_cli(*base, "--supervise", "start", "-p", "learned_start=0"))
    assert "--init nothing.pt: no such checkpoint" in one_error(invoke_cli(*base, "--init", "nothing.pt"))
    from scicli.weights.store import WEIGHTS_DIR

    assert "'deq-rnn' model, which does not fit 'deq-gap'" in one_error(
        invoke_cli(*base, "--init", WEIGHTS_DIR / "deq-rnn.pt"))
    rnn = ["train", "--method", "deq-rnn", "--data", stills, "--out", tmp_path / "r"]
    assert "'tv_weight' must be >= 0" in one_error(invoke_cli(*rnn, "-p", "tv_weight=-1"))
    assert "unknown deq-rnn option(s) prior" in one_error(invoke_cli(*rnn, "-p", "prior=ffdnet"))


def test_reconstruct_errors(stills: Path, tmp_path: Path):
    run = tmp_path / "run"
    ok(invoke_cli("train", "--method", "deq-gap", "--data", stills, "--out", run, "--epochs", "1", *TINY))
    mask = (np.random.default_rng(1).random((6, 16, 16)) < 0.5).astype(np.float32)
    np.save(tmp_path / "meas.npy", mask.sum(axis=0))
    np.save(tmp_path / "mask.npy", mask)
    err = one_error(invoke_cli("reconstruct", tmp_path / "meas.npy", "--mask", tmp_path / "mask.npy",
                               "--weights", run, "--out", tmp_path / "o.npy"))
    assert "B=4" in err and "B=6" in err
    err = one_error(invoke_cli("reconstruct", tmp_path / "meas.npy", "--mask", tmp_path / "mask.npy",
                               "--method", "deq-gap", "--weights", run, "-p", "solver=newton", "--out", tmp_path / "o.npy"))
    assert "unknown fixed-point solver 'newton'" in err


@pytest.mark.skipif(sys.platform == "win32", reason="torchrun with gloo on POSIX")
def test_two_process_torchrun_gloo(stills: Path, tmp_path: Path):
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "scicli", "train", "--method", "deq-gap", "--data", str(stills), "--out", str(run),
           "--epochs", "1", "--device", "cpu", *[str(t) for t in TINY]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((run / "run.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 2
    assert torch.load(run / "last.pt", weights_only=True)["method"] == "deq-gap"


def test_ship_stores_inference_settings_and_the_untrained_baseline(stills: Path, tmp_path: Path):
    from scicli.train.ship import ship

    run = tmp_path / "run"
    ok(invoke_cli("train", "--method", "deq-gap", "--data", stills, "--out", run, "--epochs", "1", *TINY))
    (run / "run.json").unlink()  # a run stopped early: time and device come from the log
    ship(run, "deq-gap", baseline="untrained", solve=["max_iter=3", "beta=1.5"], weights_dir=tmp_path)
    entry = json.loads((tmp_path / "manifest.json").read_text())["deq-gap"]
    shipped = torch.load(tmp_path / "deq-gap.pt", weights_only=True)
    assert shipped["config"]["solve"]["max_iter"] == 3 and shipped["config"]["solve"]["beta"] == 1.5
    assert entry["config"] == shipped["config"] and entry["trained_with_solve"]["max_iter"] == 4
    assert np.isfinite(entry["validation_psnr_untrained"]["psnr"]) and entry["hardware"].startswith("cpu")
    assert "depends_on" in entry and not any(k.startswith("prior.") for k in shipped["model"])
    assert "KEY=VALUE" in one_error(invoke_cli("weights", "ship", run, "x", "--solve", "backward=implicit"))
    assert "'many' is not a valid int" in one_error(invoke_cli("weights", "ship", run, "x", "--solve", "max_iter=many"))


def test_unrolled_gap_weights_ship_as_deq_gap_weights_of_the_same_map(stills: Path, tmp_path: Path):
    """unrolled-gap trains deq-gap's map through its whole trajectory; shipped as deq-gap the
    weights are the same tensors, with deq-gap's solve settings (given) and a note of how."""
    from scicli.train.ship import ship
    from scicli.weights.store import load_model

    run = tmp_path / "run"
    ok(invoke_cli("train", "--method", "unrolled-gap", "--data", stills, "--out", run, "--epochs", "1",
                  "-p", "correction=none", "-p", "learned_start=0", "-p", "sigma_mode=estimate", "-p", "iters=3",
                  *TINY_RUN))
    ship(run, "deq-gap", solve=["max_iter=5", "tol=1e-3"], weights_dir=tmp_path)
    entry = json.loads((tmp_path / "manifest.json").read_text())["deq-gap"]
    shipped = torch.load(tmp_path / "deq-gap.pt", weights_only=True)
    trained = torch.load(run / "best.pt", weights_only=True)
    assert shipped["method"] == entry["method"] == "deq-gap" and "unrolled-gap" in entry["trained_as"]
    assert entry["command"].startswith("scicli train --method unrolled-gap")
    assert shipped["config"]["solve"]["max_iter"] == 5 and "iters" not in shipped["config"]["solve"]
    assert set(shipped["model"]) == {"log_sigma", "log_gain", "log_rate", "log_step"}  # the map's four numbers
    assert all(torch.equal(shipped["model"][k], trained["model"][k]) for k in shipped["model"])
    model = load_model("deq-gap", tmp_path / "deq-gap.pt")
    assert model.net is None and float(model.log_sigma) == float(trained["model"]["log_sigma"])
    with pytest.raises(ScicliError, match="--solve"):
        ship(run, "deq-gap", weights_dir=tmp_path)
    with pytest.raises(ScicliError, match="use unrolled-gap"):
        ship(run, "deq-rnn", solve=["max_iter=5"], weights_dir=tmp_path)
