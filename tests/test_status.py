"""`bncli status`, `sweep --name X --dry-run` of an existing sweep, default sweep names
and the progress lines: through the CLI, on tiny sweeps."""

from __future__ import annotations

import json
import shlex
import shutil
import time
from pathlib import Path

import pytest
from filelock import FileLock
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import app
from bottleneck_cli.naming import NAME_MAX, legacy_sweep_name, sweep_name
from bottleneck_cli.progress import LogProgress

TINY = ["depth=2", "width=4", "steps=10", "task.n_train=16", "task.n_test=16",
        "metrics.num_log=3"]
GRID = ["lam=1e-3,1e-2", *TINY]


def invoke(*args: str, **env):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80", **env})


def files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


@pytest.fixture
def sweep_root(in_tmp) -> Path:
    result = invoke("sweep", *GRID, "--name", "s")
    assert result.exit_code == 0, result.output
    return in_tmp / "runs" / "s"


def status_lines(result) -> dict[str, list[str]]:
    """The table's rows by (abbreviated) member name."""
    return {ln.split()[0]: ln.split()[1:] for ln in result.stdout.splitlines()
            if ln.startswith("lam=")}


def test_status_of_a_finished_sweep_writes_nothing_and_reads_a_copy(sweep_root, in_tmp):
    before = files(in_tmp)
    result = invoke("status", "runs/s")
    assert result.exit_code == 0, result.output
    assert files(in_tmp) == before, "status writes nothing"
    head = next(ln for ln in result.stdout.splitlines() if ln.startswith("member"))
    assert head.split()[:5] == ["member", "status", "step", "objective", "test"]
    rows = status_lines(result)
    assert set(rows) == {"lam=0.001", "lam=0.01"}
    assert all(r[0] == "finished" and r[1] == "10/10" for r in rows.values()), rows
    assert "2 finished of 2" in result.stdout
    copy = in_tmp / "elsewhere" / "copied"
    shutil.copytree(sweep_root, copy)
    moved = invoke("status", str(copy))
    assert moved.exit_code == 0 and status_lines(moved) == rows


def test_status_of_a_running_an_interrupted_and_a_pending_member(sweep_root):
    a, b = rd.RunDir(sweep_root / "lam=0.001"), rd.RunDir(sweep_root / "lam=0.01")
    (a.path / rd.SUMMARY).unlink()
    a.set_status("running", step=0, steps=10)
    with FileLock(str(a.path / rd.LOCK)):  # a live trainer holds it
        rows = status_lines(invoke("status", "runs/s"))
    assert rows["lam=0.001"][:2] == ["running", "10/10"], rows
    # killed: no process holds the lock any more
    assert status_lines(invoke("status", "runs/s"))["lam=0.001"][0] == "stale"
    b.set_status("interrupted", step=4, steps=10)
    (b.path / rd.SUMMARY).unlink()
    records = [r for r in b.read_metrics() if r["step"] <= 4]
    rd.write_text(b.file(rd.METRICS), "".join(json.dumps(r) + "\n" for r in records))
    result = invoke("status", "runs/s")
    assert status_lines(result)["lam=0.01"][:2] == ["interrupted", "4/10"], result.stdout
    assert "re-run the sweep command to resume" in " ".join(result.stdout.split())
    shutil.rmtree(b.path)  # not started yet: sweep.json still lists it
    assert status_lines(invoke("status", "runs/s"))["lam=0.01"][0] == "pending"


def test_a_running_member_gets_an_eta_from_its_recent_records(sweep_root):
    run = rd.RunDir(sweep_root / "lam=0.001")
    (run.path / rd.SUMMARY).unlink()
    run.set_status("running", step=0, steps=1000)
    rd.write_text(run.file(rd.METRICS), "".join(
        f'{{"step": {s}, "time": {t}, "loss/train": 1.5, "loss/test": 2.5}}\n'
        for s, t in [(0, 0.0), (1, 60.0), (101, 70.0), (201, 80.0)]))  # compile: 60 s
    with FileLock(str(run.path / rd.LOCK)):
        result = invoke("status", "runs/s")
    row = status_lines(result)["lam=0.001"]
    assert row[:4] == ["running", "201/1000", "1.5", "2.5"], row
    assert row[-1] == "1m20s", row  # 799 steps at 0.1 s, not counting the compilation
    assert "last one done in about 1m20s" in result.stdout


def test_status_of_the_runs_folder_lists_sweeps_and_runs(sweep_root):
    assert invoke("train", *TINY, "name=lone").exit_code == 0
    result = invoke("status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(ln.split()[:3] == ["s", "2", "finished"] for ln in lines), result.stdout
    assert any(ln.split()[:2] == ["lone", "finished"] for ln in lines), result.stdout


def test_status_of_a_missing_folder_is_a_one_line_error(in_tmp):
    result = invoke("status", "nope")
    assert result.exit_code == 2 and result.stderr == "bncli: error: no such folder: nope\n"
    assert list(in_tmp.iterdir()) == []


def test_dry_run_of_an_existing_named_sweep_shows_it(sweep_root, in_tmp):
    before = files(in_tmp)
    result = invoke("sweep", "--name", "s", "--dry-run")
    assert result.exit_code == 0, result.output
    assert files(in_tmp) == before
    assert set(status_lines(result)) == {"lam=0.001", "lam=0.01"}
    command = shlex.join(rd.read_json(sweep_root / "sweep.json")["command"])
    assert f"made by (re-run it to resume):\n  {command}" in result.stdout
    missing = invoke("sweep", "--name", "nope", "--dry-run")
    assert missing.exit_code == 2 and missing.stderr.startswith("bncli: error: no sweep runs/nope")
    fresh = invoke("sweep", "--name", "new", "--dry-run", *GRID)  # no such sweep: the plan
    assert fresh.exit_code == 0 and "2 members in 1 jobs" in fresh.stdout
    assert not (in_tmp / "runs" / "new").exists()


# ---------------------------------------------------------------- names
def test_default_names_are_short_and_never_hold_bookkeeping_keys():
    long = ["depth=2,4,8,16", "lam=1e-5,1e-4,1e-3,1e-2", "seed=range(4)",
            "optim.schedule=cosine", "task.n_train=1000", "model.init_scale=0.5",
            "optim.lam_schedule=anneal", "optim.lam_warm_steps=1000", "out=/tmp/a/long/path",
            "metrics.every=10", "checkpoint.every=100"]
    name = sweep_name(long, {"depth", "lam", "seed"})
    assert len(name) <= NAME_MAX and name.startswith("depth=2+4+8+16_lam=")
    for word in ("out=", "metrics", "checkpoint", "/tmp"):
        assert word not in name, name
    assert sweep_name(["depth=2,4", "out=x"], {"depth"}) == "depth=2+4"
    other = sweep_name(["depth=2,4", "metrics.every=10"], {"depth"})
    assert "metrics" not in other and other != "depth=2+4"  # a hash keeps them apart


def test_a_sweep_named_by_an_earlier_bncli_is_resumed(in_tmp):
    args = ["depth=2,3", *TINY[1:], "out=runs"]
    old = legacy_sweep_name(args)
    assert "out=runs" in old and old != sweep_name(args, {"depth"})
    assert invoke("sweep", *args, "--name", old).exit_code == 0  # as an earlier bncli named it
    again = invoke("sweep", *args)
    assert again.exit_code == 0, again.output
    assert "(2 already done)" in again.stdout.splitlines()[0]
    assert [p.name for p in (in_tmp / "runs").iterdir()] == [old]


# ---------------------------------------------------------------- progress
def test_plain_progress_lines_name_the_member_and_show_the_objective(in_tmp):
    result = invoke("sweep", *GRID, "log_every_s=0")
    assert result.exit_code == 0, result.output
    steps = [ln for ln in result.stdout.splitlines() if ln.startswith("[bncli]") and " step " in ln]
    assert steps and all(ln.startswith(("[bncli] lam=0.001: ", "[bncli] lam=0.01: "))
                         for ln in steps), steps
    # records wait while the metrics program compiles (records.py), so early lines may
    # have no values yet; each member's last line has its final values
    for member in ("lam=0.001", "lam=0.01"):
        last = [ln for ln in steps if ln.startswith(f"[bncli] {member}: ")][-1]
        assert "objective " in last and "test fit " in last, steps
    assert max(len(ln) for ln in result.stdout.splitlines()) <= 80


def test_the_eta_leaves_out_the_compilation(monkeypatch):
    clock = iter([100.0, 101.0])  # step 1 after 100 s (compiling), then 1 step/s
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    lines = []
    progress = LogProgress(every_s=0)
    progress._print = lines.append
    progress.start_batch(["run"], 0, 10)
    progress.update(1, ["running"], [{"loss/train": 0.5}])
    progress.update(2, ["running"], [{"loss/train": 0.25}])
    assert "objective 0.5" in lines[1] and "ETA" not in lines[1]
    assert "objective 0.25" in lines[2] and "ETA 8s" in lines[2], lines
