"""`bncli sweep` under hostile use: the README's launcher commands as written, bad
launchers, names and grids refused before sweep.json is written, a rejected sweep that
leaves the existing one alone (and the --force it names), a sweep that waited for a
killed one, and a damaged member."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from filelock import FileLock
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli import sweep as sw
from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.runs import prepare

TINY = ["steps=20", "width=4", "depth=2,3"]  # two members, one job each
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def invoke(*args: str):
    return CliRunner().invoke(app, ["sweep", *args])


def bncli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``bncli`` as a real process (launchers start worker processes of their own)."""
    return subprocess.run([sys.executable, "-m", "bottleneck_cli.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600, env=ENV)


def one_line_error(result) -> str:
    assert result.exit_code == EXIT_BAD_INPUT, (result.exit_code, result.output)
    err = result.stderr
    assert err.startswith("bncli: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in result.output
    return err


def statuses(root: Path) -> dict[str, str]:
    return {p.name: rd.RunDir(p).status()["status"] for p in root.iterdir() if rd.is_run_dir(p)}


def existing_sweep(name: str = "s", args=TINY) -> Path:
    """A planned sweep folder with its sweep.json (nothing trained)."""
    plan = sw.plan(list(args), name=name)
    sw.write_index(plan, ["bncli", "sweep", *args])
    return plan.root


# ---------------------------------------------------------------- defect 4: launchers
@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"],
                                      ["hydra/launcher=submitit_local"]],
                         ids=["joblib", "submitit_local"])
def test_readme_launcher_sweeps_run_as_written_without_name(in_tmp, launcher):
    """The sweep folder's default name holds '=' (depth=2+3_lam=...): jobs still start."""
    result = bncli(in_tmp, "sweep", "depth=2,3", "lam=1e-3,1e-2", "steps=20", "width=4",
                   *launcher)
    assert result.returncode == 0, result.stdout + result.stderr
    (root,) = (in_tmp / "runs").iterdir()
    assert "=" in root.name
    index = json.loads((root / sw.INDEX).read_text())
    assert len(index["members"]) == 4
    assert {m["status"] for m in index["members"]} == {"finished"}
    assert set(statuses(root).values()) == {"finished"}
    assert "4 finished of 4" in result.stdout


def test_launcher_jobs_find_a_sweep_folder_with_quotes_spaces_and_commas(in_tmp):
    name = "it's a b=c,d"
    result = bncli(in_tmp, "sweep", *TINY, "hydra/launcher=basic", "--name", name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(statuses(in_tmp / "runs" / name).values()) == {"finished"}


def test_a_dollar_brace_sweep_name_trains_in_process_and_is_refused_by_launchers(in_tmp):
    name = "a${x}"
    err = one_line_error(invoke(*TINY, "hydra/launcher=basic", "--name", name))
    assert "'${'" in err, err
    assert not (in_tmp / "runs").exists()
    result = invoke(*TINY, "--name", name)
    assert result.exit_code == 0, result.output
    assert set(statuses(in_tmp / "runs" / name).values()) == {"finished"}


@pytest.mark.parametrize("launcher, needles", [
    (["hydra/launcher=nope"], ["nope", "basic", "joblib", "submitit_local", "submitit_slurm"]),
    (["hydra/launcher=joblib", "hydra.launcher.nope=1"], ["hydra.launcher.nope"]),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=abc"], ["n_jobs", "abc"]),
    (["hydra.launcher.n_jobs=2"], ["hydra.launcher.n_jobs"]),
    (["hydra/launcher=joblib,basic"], ["joblib,basic"]),
])
def test_bad_launcher_is_refused_before_anything_is_written(in_tmp, launcher, needles):
    err = one_line_error(invoke(*TINY, *launcher))
    for word in needles:
        assert word in err, err
    assert not (in_tmp / "runs").exists()
    # into an existing sweep: its sweep.json stays as it was
    root = existing_sweep()
    before = (root / sw.INDEX).read_bytes()
    one_line_error(invoke(*TINY, *launcher, "--name", "s"))
    assert (root / sw.INDEX).read_bytes() == before


# ---------------------------------------------------------------- names, grids
@pytest.mark.parametrize("args, needle", [
    (["--name", "../escaped_sweep"], "single folder name"),
    (["--name", "ABSOLUTE"], "single folder name"),
    (["--name", "x" * 300], "255 bytes"),
    (["--name", ""], "empty"),
    (["--name", ".."], "'..'"),
    (["--name", "."], "'.'"),
    (["name=../escaped_sweep"], "single folder name"),
])
def test_hostile_sweep_names_are_refused(in_tmp, args, needle):
    absolute = in_tmp / "elsewhere" / "abs_sweep"
    err = one_line_error(invoke(*TINY, *[str(absolute) if a == "ABSOLUTE" else a for a in args]))
    assert needle in err, err
    assert not (in_tmp / "runs").exists() and not (in_tmp / "elsewhere").exists()
    assert not (in_tmp.parent / "escaped_sweep").exists()


@pytest.mark.parametrize("args", [["out=afile"], ["out=afile/sub"], ["--name", "afile", "out=."]])
def test_a_sweep_folder_under_or_at_a_file_is_refused(in_tmp, args):
    (in_tmp / "afile").write_text("x")
    err = one_line_error(invoke(*TINY, *args))
    assert "afile is not a folder" in err, err
    assert (in_tmp / "afile").read_text() == "x" and not (in_tmp / "runs").exists()


@pytest.mark.parametrize("args, needle", [
    (["depth=range(0)"], "no members"),
    (["model=glob(zzz*)"], "no members"),
    (["depth="], "depth"),
    (["deph=2,3"], "deph"),
    (["sweep.grid={deph: '2,3'}"], "deph"),
    (["depth=2,3", "lam=1e-3,"], "malformed"),
])
def test_empty_grids_and_key_typos_leave_the_sweep_json_alone(in_tmp, args, needle):
    root = existing_sweep()
    before = (root / sw.INDEX).read_bytes()
    err = one_line_error(invoke("steps=20", "width=4", *args, "--name", "s"))
    assert needle in err, err
    assert (root / sw.INDEX).read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == [".sweep.lock", sw.INDEX]


# ---------------------------------------------------------------- defect 12: rejected sweep, --force
def test_rejected_sweep_keeps_the_index_and_force_retrains_the_members(in_tmp):
    first = invoke(*TINY, "--name", "s")
    assert first.exit_code == 0, first.output
    root = in_tmp / "runs" / "s"
    index = (root / sw.INDEX).read_bytes()
    params = {n: (root / n / rd.PARAMS).stat().st_mtime_ns for n in ("depth=2", "depth=3")}

    err = one_line_error(invoke("steps=10", "width=4", "depth=2,3", "--name", "s"))
    assert "different config" in err and "--force" in err, err
    assert (root / sw.INDEX).read_bytes() == index
    assert {n: (root / n / rd.PARAMS).stat().st_mtime_ns for n in params} == params

    forced = invoke("steps=10", "width=4", "depth=2,3", "--name", "s", "--force")
    assert forced.exit_code == 0, forced.output
    assert "2 finished of 2" in forced.output
    for name in params:
        run = rd.RunDir(root / name)
        assert run.status()["status"] == "finished" and run.status()["steps"] == 10
        assert [r["step"] for r in run.read_metrics()][-1] == 10
    assert "steps=10" in json.loads((root / sw.INDEX).read_text())["common"]


def test_force_touches_neither_user_files_nor_a_member_another_process_trains(in_tmp):
    assert invoke(*TINY, "--name", "s").exit_code == 0
    root = in_tmp / "runs" / "s"
    (root / "depth=2" / "notes.txt").write_text("mine")
    index = (root / sw.INDEX).read_bytes()
    err = one_line_error(invoke(*TINY, "--name", "s", "--force"))
    assert "notes.txt" in err, err
    assert (root / "depth=2" / "notes.txt").read_text() == "mine"
    assert (root / "depth=2" / rd.PARAMS).is_file() and (root / sw.INDEX).read_bytes() == index

    (root / "depth=2" / "notes.txt").unlink()
    with FileLock(str(root / "depth=3" / ".lock")):  # another process trains depth=3
        err = one_line_error(invoke(*TINY, "--name", "s", "--force"))
    assert "another process" in err, err
    assert set(statuses(root).values()) == {"finished"}
    assert (root / "depth=2" / rd.PARAMS).is_file() and (root / sw.INDEX).read_bytes() == index


def test_force_dry_run_deletes_nothing(in_tmp):
    assert invoke(*TINY, "--name", "s").exit_code == 0
    root = in_tmp / "runs" / "s"
    assert invoke(*TINY, "--name", "s", "--force", "--dry-run").exit_code == 0
    assert set(statuses(root).values()) == {"finished"}
    assert (root / "depth=2" / rd.PARAMS).is_file()


# ---------------------------------------------------------------- defect 7: waited for a killed sweep
def test_a_sweep_that_waited_trains_what_a_killed_sweep_left(in_tmp):
    """Another sweep holds both members' locks and 'dies' (releases them) with the
    members still `running`: the waiting sweep trains them instead of reporting them."""
    plan = sw.plan(TINY, name="s")
    locks = []
    for m in plan.members:
        member = prepare(plan.root / m.name, m.cfg, m.overrides)
        member.run.set_status("running", step=0, steps=20)
        locks.append(FileLock(str(plan.root / m.name / ".lock")))
        locks[-1].acquire()
    proc = subprocess.Popen([sys.executable, "-m", "bottleneck_cli.cli", "sweep", *TINY,
                             "--name", "s"], cwd=in_tmp, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: lines.put(proc.stderr.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=300)  # the sweep says it waits (never hangs the test)
        assert "waiting for the process that holds" in line, line
    finally:
        for lock in locks:  # the other sweep is killed: its locks go, its statuses stay
            lock.release()
    try:
        out, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 0, out + err
    assert "2 finished of 2" in out
    assert statuses(plan.root) == {"depth=2": "finished", "depth=3": "finished"}


# ---------------------------------------------------------------- defect 13: a damaged member
@pytest.mark.parametrize("damage", [b"depth: [1", b"- a list\n", b"\xff\xfe\x00bin", b""],
                         ids=["bad yaml", "a list", "binary", "empty"])
def test_a_damaged_member_config_fails_that_member_only(in_tmp, damage):
    args = ["steps=20", "width=4", "depth=2,3,4"]
    plan = sw.plan(args, name="s")
    first = plan.members[0]
    prepare(plan.root / first.name, first.cfg, first.overrides)
    (plan.root / first.name / rd.CONFIG).write_bytes(damage)
    result = invoke(*args, "--name", "s")
    assert result.exit_code == 1, result.output
    assert statuses(plan.root) == {"depth=2": "failed", "depth=3": "finished",
                                   "depth=4": "finished"}
    error = rd.RunDir(plan.root / first.name).status()["error"]
    assert "config.yaml" in error and "damaged" in error
    assert (plan.root / first.name / rd.CONFIG).read_bytes() == damage  # left for the user
    assert "1 of 3 members unfinished: depth=2 (failed:" in result.stderr, result.stderr
    # --force replaces the damaged run and trains it
    forced = invoke(*args, "--name", "s", "--force")
    assert forced.exit_code == 0, forced.output
    assert set(statuses(plan.root).values()) == {"finished"}


def test_unfinished_members_are_named_and_fail_the_sweep(in_tmp):
    """A member a launcher job left interrupted (or failed) makes the sweep exit 1."""
    assert invoke(*TINY, "--name", "s").exit_code == 0
    root = in_tmp / "runs" / "s"
    rd.RunDir(root / "depth=3").set_status("failed", error="boom")
    result = invoke(*TINY, "--name", "s")
    assert result.exit_code == 1, result.output
    assert "1 of 2 members unfinished: depth=3 (failed: boom)" in result.stderr
    assert "--retry-failed" in result.stderr
