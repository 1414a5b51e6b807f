"""Tests for the bncli command line: help, one-line bad-input errors that leave no run
folder behind, a full `bncli train` run folder, and a sweep (dry run, run, re-run)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.config import load
from bottleneck_cli.train import metric_steps

BNCLI = Path(sys.executable).parent / "bncli"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result, *, runs_root: Path) -> str:
    assert result.exit_code == EXIT_BAD_INPUT == 2, (result.exit_code, result.output)
    err = result.stderr
    assert err.startswith("bncli: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in result.output and "Traceback" not in err
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (runs_root / "runs").exists(), "bad input must not create a runs/ folder"
    return err


# =========================================================================================
# help
# =========================================================================================

HELP = {
    (): ["train", "sweep", "report", "--debug"],
    ("train",): ["--force", "--config-dir", "Exit status", "depth=", "runs/<name>"],
    ("sweep",): ["--dry-run", "--name", "--retry-failed", "--config-dir", "range("],
    ("report",): ["--out", "--grid", "--metric", "--per-run-max"],
}


@pytest.mark.parametrize("command", list(HELP), ids=lambda c: " ".join(c) or "main")
def test_help(command, in_tmp):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Usage:")
    for word in HELP[command]:
        assert word in result.stdout, (word, result.stdout)
    assert not (in_tmp / "runs").exists()


def test_no_arguments_prints_help(in_tmp):
    result = invoke()
    assert "Usage:" in result.output and "train" in result.output


@pytest.mark.skipif(not BNCLI.exists(), reason="bncli console script not installed")
def test_installed_script_help_and_error(in_tmp):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    helped = subprocess.run([str(BNCLI), "--help"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert helped.stdout.startswith("Usage: bncli")
    bad = subprocess.run([str(BNCLI), "train", "depth=0"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr == "bncli: error: depth=0 must be >= 1\n"
    assert bad.stdout == ""
    assert not (in_tmp / "runs").exists()


# =========================================================================================
# bad input: exit 2, one line, no traceback, no runs/ folder
# =========================================================================================

BAD = {
    "depth=0": (["depth=0"], "depth"),
    "width=-1": (["width=-1"], "width"),
    "lam=-1": (["lam=-1"], "lam"),
    "lr=0": (["lr=0"], "lr"),
    "steps=0": (["steps=0"], "steps"),
    "unknown key": (["foo=1"], "foo"),
    "not an int": (["depth=abc"], "depth"),
    "unknown model": (["model=nope"], "nope"),
    "malformed": (["depth=[1"], "[1"),
    "npz without path": (["task=npz"], "task.path"),
    "missing npz": (["task=npz", "task.path=missing.npz"], "missing.npz"),
    "npz with NaN": (["task=npz", "task.path=nan.npz"], "NaN"),
    "bad choice": (["optim.name=rmsprop"], "optim.name"),
    "seed out of range": (["seed=-1"], "seed"),
}


@pytest.mark.parametrize("args,needle", list(BAD.values()), ids=list(BAD))
def test_train_bad_input(in_tmp, args, needle):
    np.savez(in_tmp / "nan.npz", x_train=np.array([[1.0, np.nan], [0.0, 1.0]]),
             y_train=np.array([[1.0], [2.0]]))
    err = assert_one_line_error(invoke("train", *args), runs_root=in_tmp)
    assert needle in err, err


@pytest.mark.parametrize("args,needle", [
    (["depth=0,2"], "depth"),
    (["foo=1,2"], "foo"),
    (["depth=2,4", "lr=0"], "lr"),
    (["depth=[1,2"], "malformed"),
])
def test_sweep_bad_input(in_tmp, args, needle):
    err = assert_one_line_error(invoke("sweep", *args), runs_root=in_tmp)
    assert needle in err, err


def test_out_under_a_regular_file(in_tmp):
    (in_tmp / "somefile").write_text("not a folder")
    err = assert_one_line_error(invoke("train", "out=somefile/sub"), runs_root=in_tmp)
    assert "cannot write run folder" in err
    assert (in_tmp / "somefile").read_text() == "not a folder"


def test_out_unwritable_system_path(in_tmp):
    err = assert_one_line_error(invoke("train", "out=/proc/forbidden"), runs_root=in_tmp)
    assert "/proc/forbidden" in err
    assert not Path("/proc/forbidden").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root ignores folder permissions")
def test_out_read_only_folder(in_tmp):
    ro = in_tmp / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        err = assert_one_line_error(invoke("train", "out=ro"), runs_root=in_tmp)
        assert "cannot write run folder" in err
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


# =========================================================================================
# bncli train: the complete run folder
# =========================================================================================


def contract_files() -> list[str]:
    """The file names listed in rundir.py's run-folder contract (its module docstring)."""
    block = rd.__doc__.split("holds::", 1)[1].split("\n\n", 2)[1]
    names = [line.split()[0] for line in block.splitlines() if line.strip()]
    assert rd.CONFIG in names and rd.STATUS in names
    return names


def test_train_writes_the_run_folder(in_tmp):
    overrides = ["steps=30", "width=16", "depth=4"]
    result = invoke("train", *overrides)
    assert result.exit_code == 0, result.output
    folder = in_tmp / "runs" / "steps=30,width=16,depth=4"
    *_, status_line, values_line = result.stdout.strip().splitlines()
    assert status_line.startswith(f"runs/{folder.name}: finished")
    assert values_line.startswith("  objective ") and "test fit " in values_line

    for name in contract_files():
        if name == rd.CHECKPOINT:
            assert not (folder / name).exists(), "the checkpoint is removed when finished"
        elif name.startswith(rd.SPECTRA + "/"):
            assert list((folder / rd.SPECTRA).glob("*.npz")), name
        else:
            assert (folder / name).is_file(), name

    run = rd.RunDir(folder)
    cfg = load(overrides)
    assert rd.read_json(run.file(rd.OVERRIDES)) == {"overrides": overrides}
    saved = OmegaConf.load(run.file(rd.CONFIG))
    assert (saved.depth, saved.width, saved.steps) == (4, 16, 30)
    status = run.status()
    assert status["status"] == "finished" and status["step"] == 30

    records = run.read_metrics()
    assert [r["step"] for r in records] == metric_steps(cfg)
    assert run.spectra_steps() == metric_steps(cfg)
    assert all(re.fullmatch(r"\d{8}\.npz", p.name) for p in (folder / rd.SPECTRA).iterdir())
    final = records[-1]
    keys = ["loss/train", "loss/fit", "loss/ridge", "loss/test", "norm/total", "norm/W04",
            "bottleneck/rank_c", "balance/W03", "rank_c/Z03"]
    keys += ["ntk/trace", "ntk/max_eig"] if cfg.metrics.ntk else []  # the defaults decide
    keys += ["jac/rank", "jac/logdet"] if cfg.metrics.jacobian_samples > 0 else []
    for key in keys:
        assert key in final, key
    assert ("ntk/trace" in final) == bool(cfg.metrics.ntk)
    summary = rd.read_json(run.file(rd.SUMMARY))
    assert summary["status"] == "finished" and summary["final"] == final

    params = rd.read_npz(run.file(rd.PARAMS))
    d = cfg.task.d_in
    assert {k: v.shape for k, v in params.items()} == {
        "W01": (d, 16), "W02": (16, 16), "W03": (16, 16), "W04": (16, cfg.task.d_out),
        "b01": (16,), "b02": (16,), "b03": (16,), "b04": (cfg.task.d_out,)}
    spectra = run.read_spectra(30)
    np.testing.assert_allclose(spectra["W02"], np.linalg.svd(params["W02"], compute_uv=False),
                               rtol=1e-4, atol=1e-6)


# =========================================================================================
# bncli sweep: dry run, run, re-run
# =========================================================================================

PLAN = ["depth=2,4", "lam=1e-3,1e-2", "seed=0,1", "steps=20", "width=8"]
# The same grid plus metric switches that only save time (no NTK/Jacobian, fewer records).
SWEEP = ["depth=2,4", "lam=1e-3,1e-2", "seed=0,1", "steps=20", "width=8",
         "metrics.ntk=false", "metrics.jacobian_samples=0", "metrics.num_log=5"]


def member_files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))
            if p.is_file() and p.parent != root}


def test_sweep_dry_run_run_and_rerun(in_tmp):
    dry = invoke("sweep", *PLAN, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "8 members in 2 jobs" in dry.stdout.splitlines()[0]
    member_lines = [ln for ln in dry.stdout.splitlines() if ln.startswith("    ")]
    assert len(member_lines) == 8 and all(ln.split()[-1] == "missing" for ln in member_lines)
    assert list(in_tmp.iterdir()) == [], "a dry run creates nothing"

    first = invoke("sweep", *SWEEP)
    assert first.exit_code == 0, first.output
    roots = list((in_tmp / "runs").iterdir())
    assert len(roots) == 1
    root = roots[0]
    members = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert len(members) == 8
    expected = {f"depth={d},lam={lam},seed={s}"
                for d in (2, 4) for lam in ("0.001", "0.01") for s in (0, 1)}
    assert {p.name for p in members} == expected
    for p in members:
        run = rd.RunDir(p)
        assert run.status()["status"] == "finished", p.name
        assert run.file(rd.PARAMS).is_file() and not run.file(rd.CHECKPOINT).exists()
        cfg = OmegaConf.load(run.file(rd.CONFIG))
        assert (cfg.steps, cfg.width) == (20, 8)
        assert p.name == f"depth={cfg.depth},lam={cfg.lam},seed={cfg.seed}"
    index = rd.read_json(root / "sweep.json")
    assert len(index["members"]) == 8 and len(index["jobs"]) == 2
    assert all(m["status"] == "finished" for m in index["members"])
    assert "8 finished of 8" in first.stdout

    before = member_files(root)
    metrics = {p.name: (p / rd.METRICS).read_text() for p in members}
    again = invoke("sweep", *SWEEP)
    assert again.exit_code == 0, again.output
    assert "(8 already done)" in again.stdout.splitlines()[0]
    assert "starting" not in again.stdout  # no batch was trained
    assert member_files(root) == before
    assert {p.name: (p / rd.METRICS).read_text() for p in members} == metrics
    assert all(m["status"] == "finished" for m in rd.read_json(root / "sweep.json")["members"])
