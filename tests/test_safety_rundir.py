"""Safety of `bncli train` run folders: --force deletes only a run's own files and never
a busy run, names stay inside `out`, a checkpoint is checked before it is trusted, a
damaged config.yaml or a cut metrics.jsonl is reported, and killed runs read as stale."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli import runfiles
from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.config import ConfigError, load
from bottleneck_cli.runs import check_name, prepare
from bottleneck_cli.train import metric_steps

TINY = ["model=mlp", "task=compositional", "optim=gd", "lr=0.05", "lam=1e-3", "depth=2",
        "width=4", "task.n_train=8", "task.n_test=8", "steps=10", "checkpoint.every=1000",
        "metrics.ntk=false", "metrics.jacobian_samples=0"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_line_error(result, needle: str) -> str:
    assert result.exit_code == EXIT_BAD_INPUT, (result.exit_code, result.output)
    err = result.stderr
    assert err.startswith("bncli: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in result.output
    assert needle in err, err
    return err


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under ``folder`` with its inode and content (all hidden files too)."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def train_ok(*args: str):
    result = invoke("train", *TINY, *args)
    assert result.exit_code == 0, result.output
    return result


# =========================================================================================
# 1, 2: --force replaces only a run folder of bncli's own files, never a busy one
# =========================================================================================


def test_force_refuses_a_folder_of_user_files(in_tmp):
    (in_tmp / "thesis").mkdir()
    (in_tmp / "thesis" / "ch1.tex").write_text("x")
    before = snapshot(in_tmp)
    one_line_error(invoke("train", "--force", *TINY, "name=thesis", "out=."), "ch1.tex")
    one_line_error(invoke("train", *TINY, "name=thesis", "out=."), "not a bncli run folder")
    assert snapshot(in_tmp) == before  # no .lock, no config.yaml mixed in


def test_force_refuses_out_itself_and_a_run_with_other_files(in_tmp):
    train_ok("name=a")
    before = snapshot(in_tmp)
    for name in (".", ".."):
        one_line_error(invoke("train", "--force", *TINY, f"name={name}"), "name=")
    (in_tmp / "runs" / "a" / "notes.txt").write_text("mine")
    before = snapshot(in_tmp)
    one_line_error(invoke("train", "--force", *TINY, "name=a"), "notes.txt")
    assert snapshot(in_tmp) == before


def test_force_waits_for_no_one_and_touches_nothing_of_a_busy_run(in_tmp):
    train_ok("name=r")
    folder = in_tmp / "runs" / "r"
    before = snapshot(folder)
    with FileLock(str(folder / rd.LOCK)):  # another process training it
        one_line_error(invoke("train", "--force", *TINY, "name=r"), "busy")
    assert snapshot(folder) == before


def test_force_deletes_only_the_run_files_and_keeps_the_lock(in_tmp):
    train_ok("name=r")
    folder = in_tmp / "runs" / "r"
    lock_inode = (folder / rd.LOCK).stat().st_ino
    (folder / ".metrics.jsonl.abcd1234.tmp").write_text("left by a kill")
    runfiles.clear_run(folder)
    assert [p.name for p in folder.iterdir()] == [rd.LOCK]
    assert (folder / rd.LOCK).stat().st_ino == lock_inode
    train_ok("name=r", "--force")
    assert rd.RunDir(folder).status()["status"] == "finished"


# =========================================================================================
# 11, 15: names are single folder names inside out
# =========================================================================================


@pytest.mark.parametrize("name,needle", [
    ("../../x", "single folder name"),
    ("/abs/path", "single folder name"),
    ("a/b", "single folder name"),
    (".", "must not start with '.'"),
    ("..", "must not start with '.'"),
    ("x" * 256, "longer than 255 bytes"),
])
def test_names_stay_inside_out(in_tmp, name, needle):
    (in_tmp / "sub").mkdir()
    os.chdir(in_tmp / "sub")
    one_line_error(invoke("train", *TINY, f"name={name}", "out=myout"), needle)
    assert list(in_tmp.rglob("*")) == [in_tmp / "sub"]  # nothing created, anywhere
    with pytest.raises(ConfigError, match="--name="):
        check_name(name, "--name")


def test_long_name_creates_no_runs_folder(in_tmp):
    one_line_error(invoke("train", *TINY, "name=" + "a" * 300), "255 bytes")
    one_line_error(invoke("train", *TINY, "out=runs/" + "b" * 300), "cannot write run folder")
    assert list(in_tmp.iterdir()) == []


def test_check_name_accepts_plain_names():
    for name in ("r", "depth=2,lam=0.001", "my run", "a" * 255):
        assert check_name(name) == name


# =========================================================================================
# 8: a checkpoint that loads but does not fit the config is discarded
# =========================================================================================


def interrupted_at(folder: Path, step: int, ov: list[str]):
    """A run folder as a kill at ``step`` leaves it: a checkpoint of the real state."""
    import jax

    from bottleneck_cli.train import Batch

    member = prepare(folder, load(ov), ov)
    batch = Batch([member])
    batch.run_to(step)
    arrays = batch.member_arrays(jax.device_get(batch.state), 0)
    member.run.set_status("interrupted", step=step, steps=member.cfg.steps)
    return member, arrays


def final_loss(folder: Path) -> float:
    return rd.read_json(folder / rd.SUMMARY)["final"]["loss/train"]


@pytest.mark.parametrize("damage", ["missing params", "step beyond steps", "wrong shape"])
def test_a_checkpoint_that_does_not_fit_is_discarded(in_tmp, damage):
    train_ok("name=ref")
    ov = [*TINY, "name=r"]
    folder = in_tmp / "runs" / "r"
    member, arrays = interrupted_at(folder, 3, ov)
    if damage == "missing params":
        del arrays["params/W01"]
    elif damage == "step beyond steps":
        arrays["step"] = np.asarray(50, np.int32)
    else:
        arrays["params/W02"] = np.zeros((5, 5), np.float32)
    rd.write_npz(member.run.file(rd.CHECKPOINT), arrays)
    for _ in range(2):  # never stuck: the second run finds a finished run
        result = invoke("train", *ov)
        assert result.exit_code == 0, result.output
    first = result.stderr
    assert rd.RunDir(folder).status()["status"] == "finished"
    ref = final_loss(in_tmp / "runs" / "ref")
    assert final_loss(folder) == pytest.approx(ref, rel=1e-5)
    assert [r["step"] for r in rd.RunDir(folder).read_metrics()] == metric_steps(load(ov))
    assert "nothing to do" in result.stdout and first == ""


def test_discarding_a_checkpoint_says_so(in_tmp):
    ov = [*TINY, "name=r"]
    member, arrays = interrupted_at(in_tmp / "runs" / "r", 3, ov)
    arrays["step"] = np.asarray(50, np.int32)
    rd.write_npz(member.run.file(rd.CHECKPOINT), arrays)
    result = invoke("train", *ov)
    assert result.exit_code == 0, result.output
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("bncli: warning:")]
    assert len(warnings) == 1 and "checkpoint.npz" in warnings[0] and "50" in warnings[0]
    assert "starting," in result.stdout and "resuming" not in result.stdout


def test_a_fitting_checkpoint_resumes_to_the_same_result(in_tmp):
    train_ok("name=ref")
    ov = [*TINY, "name=r"]
    member, arrays = interrupted_at(in_tmp / "runs" / "r", 4, ov)
    rd.write_npz(member.run.file(rd.CHECKPOINT), arrays)
    ref_records = rd.RunDir(in_tmp / "runs" / "ref").read_metrics()
    member.run.append_metrics([r for r in ref_records if r["step"] <= 4])
    result = invoke("train", *ov)
    assert result.exit_code == 0, result.output
    assert "resuming at step 4" in result.stdout and "warning" not in result.stderr
    assert final_loss(member.run.path) == pytest.approx(final_loss(in_tmp / "runs" / "ref"),
                                                        rel=1e-5)


# =========================================================================================
# 14: a metrics.jsonl cut short is reported on resume
# =========================================================================================


def test_resume_names_the_records_a_cut_metrics_file_lost(in_tmp):
    train_ok("name=ref", "metrics.num_log=11")
    ov = [*TINY, "metrics.num_log=11", "name=r"]
    member, arrays = interrupted_at(in_tmp / "runs" / "r", 6, ov)
    rd.write_npz(member.run.file(rd.CHECKPOINT), arrays)
    ref_records = rd.RunDir(in_tmp / "runs" / "ref").read_metrics()
    member.run.append_metrics(ref_records[:2])  # steps 0 and 1 only: cut short
    marks = [s for s in metric_steps(load(ov)) if s <= 6]
    assert len(marks) > 3
    result = invoke("train", *ov)
    assert result.exit_code == 0, result.output
    warning = [ln for ln in result.stderr.splitlines() if ln.startswith("bncli: warning:")]
    assert len(warning) == 1, result.stderr
    assert f"steps {marks[2]}..{marks[-1]}" in warning[0] and "metrics.jsonl" in warning[0]


# =========================================================================================
# 13: a damaged config.yaml is named
# =========================================================================================


@pytest.mark.parametrize("text", ["depth: [1\n", "- a list\n", "\xff\xfe binary"])
def test_damaged_config_is_named(in_tmp, text):
    train_ok("name=r", "steps=5")
    config = in_tmp / "runs" / "r" / rd.CONFIG
    config.write_bytes(text.encode("latin-1"))
    err = one_line_error(invoke("train", *TINY, "name=r", "steps=5"), str(Path("runs/r/config.yaml")))
    assert "damaged" in err and "--force" in err
    train_ok("name=r", "steps=5", "--force")  # --force replaces it


# =========================================================================================
# minor: stale temporary files and the stale status of a killed run
# =========================================================================================


def test_killed_run_reads_stale_and_resumes(in_tmp):
    ov = [*TINY, "name=r"]
    folder = in_tmp / "runs" / "r"
    member, arrays = interrupted_at(folder, 4, ov)
    rd.write_npz(member.run.file(rd.CHECKPOINT), arrays)
    member.run.set_status("running", step=4, steps=10)  # SIGKILL: status stays running
    assert rd.effective_status(folder) == "stale"
    with FileLock(str(folder / rd.LOCK)):
        assert rd.effective_status(folder) == "running"
    own = [folder / ".metrics.jsonl.k1ll3d_x.tmp", folder / "spectra" / ".00000004.npz.zz9.tmp"]
    mine = [folder / ".notes.tmp", folder / "spectra" / ".x.tmp"]
    for f in own + mine:
        f.parent.mkdir(exist_ok=True)
        f.write_text("partial")
    result = invoke("train", *ov)
    assert result.exit_code == 0, result.output
    assert "resuming at step 4" in result.stdout
    assert rd.effective_status(folder) == "finished"
    assert not any(f.exists() for f in own)
    assert all(f.exists() for f in mine)  # not bncli's own: never deleted


# =========================================================================================
# more hostile folders: --force and plain runs refuse what is not a run's own
# =========================================================================================


def _user_config_only(root: Path) -> str:
    (root / "runs" / "u").mkdir(parents=True)
    (root / "runs" / "u" / "config.yaml").write_text("mine: 1\n")
    return "u"


def _symlink_to_run(root: Path) -> str:
    train_ok("name=real")
    (root / "runs" / "link").symlink_to("real")
    return "link"


@pytest.mark.parametrize("make,needle", [
    (_user_config_only, "not a bncli run folder"),
    (_symlink_to_run, "symbolic link"),
])
def test_force_refuses_what_only_looks_like_a_run(in_tmp, make, needle):
    name = make(in_tmp)
    before = snapshot(in_tmp)
    one_line_error(invoke("train", "--force", *TINY, f"name={name}"), needle)
    assert snapshot(in_tmp) == before


def test_a_folder_of_runs_is_not_a_run(in_tmp):
    train_ok("name=real")
    before = snapshot(in_tmp)
    one_line_error(invoke("train", *TINY, "name=runs", "out=."), "not a bncli run folder")
    one_line_error(invoke("train", "--force", *TINY, "name=runs", "out=."), "did not write")
    assert snapshot(in_tmp) == before


def test_a_user_config_yaml_is_not_called_a_run(in_tmp):
    _user_config_only(in_tmp)
    err = one_line_error(invoke("train", *TINY, "name=u"), "another run or program")
    assert "--force" not in err
    assert (in_tmp / "runs" / "u" / "config.yaml").read_text() == "mine: 1\n"


def test_damaged_metrics_on_resume_is_one_line(in_tmp):
    ov = [*TINY, "name=r"]
    member, arrays = interrupted_at(in_tmp / "runs" / "r", 4, ov)
    rd.write_npz(member.run.file(rd.CHECKPOINT), arrays)
    member.run.file(rd.METRICS).write_text('{"step": 0}\nnot json\n{"step": 1}\n')
    one_line_error(invoke("train", *ov), "metrics.jsonl: line 2")
    train_ok("name=r", "--force")


# =========================================================================================
# run folders of earlier bncli versions: their config.yaml had other keys
# =========================================================================================

# Task keys that an earlier bncli recorded for every task family (kept where they still
# exist), and one that no version has any more.
OLD_TASK_KEYS = {"inputs": "gaussian", "path": None, "n_classes": 10, "singular_values": None,
                 "teacher_depth": 3, "retired_option": 7}


def make_old_style(folder: Path, **changes) -> None:
    """Rewrite a run's config.yaml as an earlier bncli wrote it: more task keys, no
    ``model._target_`` and no ``optim.stages``; ``changes`` set top-level keys."""
    import yaml

    data = yaml.safe_load((folder / rd.CONFIG).read_text())
    data["model"].pop("_target_", None)
    data["optim"].pop("stages", None)
    for key, value in OLD_TASK_KEYS.items():
        data["task"].setdefault(key, value)
    data.update(changes)
    (folder / rd.CONFIG).write_text(yaml.safe_dump(data, sort_keys=False))
    text = (folder / rd.CONFIG).read_text()
    assert "_target_" not in text and "stages" not in text and "retired_option" in text


def test_same_config_ignores_retired_keys_and_accepts_new_empty_ones():
    from omegaconf import OmegaConf

    from bottleneck_cli.runs import same_config

    cfg = load(TINY)
    saved = OmegaConf.to_container(cfg, resolve=True)
    assert same_config(saved, cfg)
    saved["model"].pop("_target_")
    saved["optim"].pop("stages")
    saved["task"].update(OLD_TASK_KEYS)
    saved.update(name="elsewhere", out="/other")
    assert same_config(saved, cfg)
    assert not same_config({**saved, "depth": 3}, cfg)
    assert not same_config({**saved, "task": {**saved["task"], "n_train": 9}}, cfg)
    assert not same_config({k: v for k, v in saved.items() if k != "lam"}, cfg)  # not empty
    stages = OmegaConf.merge(cfg, {"optim": {"stages": [{"steps": 5}]}})
    assert not same_config(saved, stages)  # a new key set to something is a difference


def test_an_old_run_folder_is_skipped_or_resumed_and_a_real_difference_refused(in_tmp):
    train_ok("name=done")
    make_old_style(in_tmp / "runs" / "done")
    assert "nothing to do" in train_ok("name=done").stdout

    ov = [*TINY, "name=r"]
    member, arrays = interrupted_at(in_tmp / "runs" / "r", 4, ov)
    rd.write_npz(member.run.file(rd.CHECKPOINT), arrays)
    make_old_style(member.run.path)
    assert "resuming at step 4" in train_ok("name=r").stdout
    assert rd.RunDir(member.run.path).status()["status"] == "finished"

    make_old_style(in_tmp / "runs" / "done", depth=3)
    before = snapshot(in_tmp / "runs" / "done")
    one_line_error(invoke("train", *TINY, "name=done"), "different config")
    assert snapshot(in_tmp / "runs" / "done") == before


SWEEP = ["steps=20", "width=4", "depth=2,3", "task.n_train=8", "task.n_test=8"]


def planned_sweep(status: str = "finished"):
    """A sweep whose members' folders exist with ``status`` (nothing trained)."""
    from bottleneck_cli import sweep as sw

    plan = sw.plan(SWEEP, name="s")
    for m in plan.members:
        prepare(plan.root / m.name, m.cfg, m.overrides).run.set_status(status, step=20,
                                                                       steps=20)
    return plan


def test_a_sweep_finds_old_member_folders_done_and_refuses_a_real_difference(in_tmp):
    plan = planned_sweep()
    for m in plan.members:
        make_old_style(plan.root / m.name)
    result = invoke("sweep", *SWEEP, "--name", "s", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "(2 already done)" in result.stdout
    make_old_style(plan.root / "depth=2", depth=4)
    err = one_line_error(invoke("sweep", *SWEEP, "--name", "s", "--dry-run"), "different config")
    assert "depth=2" in err


# =========================================================================================
# a sweep shows a killed member as stale
# =========================================================================================


def test_sweep_plan_and_summary_show_a_killed_member_as_stale(in_tmp, capsys):
    import typer

    from bottleneck_cli.cli import _print_sweep_summary

    plan = planned_sweep()
    rd.RunDir(plan.root / "depth=3").set_status("running", step=5, steps=20)  # killed
    result = invoke("sweep", *SWEEP, "--name", "s", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = {ln.split()[0]: ln.split()[-1] for ln in result.stdout.splitlines()
             if ln.strip().startswith("depth=")}
    assert lines == {"depth=2": "finished", "depth=3": "stale"}
    with FileLock(str(plan.root / "depth=3" / rd.LOCK)):  # alive: another sweep trains it
        assert "running" in invoke("sweep", *SWEEP, "--name", "s", "--dry-run").stdout
    with pytest.raises(typer.Exit):
        _print_sweep_summary(plan)
    out, err = capsys.readouterr()
    assert "stale" in out and "1 finished, 1 stale of 2" in out
    assert "depth=3 (stale)" in err


def test_metrics_lines_with_nan_and_infinity_read_back(tmp_path):
    """json writes NaN/Infinity for diverged values; they read back (a torn last line is
    skipped, a damaged middle line is an error)."""
    import math

    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 0, "loss/train": 1.5}\n{"step": 1, "loss/train": NaN, '
                    '"norm/total": Infinity}\n{"step": 2, "loss/tr')
    records = rd.read_metrics(path)
    assert [r["step"] for r in records] == [0, 1] and records[0]["loss/train"] == 1.5
    assert math.isnan(records[1]["loss/train"]) and records[1]["norm/total"] == math.inf
    path.write_text('{"step": 0}\n{"step": 1, "loss\n{"step": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        rd.read_metrics(path)
