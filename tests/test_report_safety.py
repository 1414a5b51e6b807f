"""``bncli report`` against hostile use: it writes only into a report folder of its own and
deletes only files it wrote; bookkeeping settings never split settings; a typo'd metric or
option is a one-line error; figures and fits say what they leave out and rest on; a
killed report leaves no workers behind. Run folders are synthetic (``report_fixtures``)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bottleneck_cli.report import out as report_out
from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import app
from bottleneck_cli.report import build_report
from report_fixtures import base_config, depth_sweep, make_run, make_tree

PNG = ("png",)
USER_FILES = ("figures/my.pdf", "figures/my.png", "figures/my.svg", "notes.txt")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "300"})


def one_line_error(result, *words: str) -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert err.startswith("bncli: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in result.output
    for w in words:
        assert w in err, (w, err)
    return err


def put_user_files(folder: Path) -> None:
    for rel in USER_FILES:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(f"mine: {rel}")


def assert_user_files(folder: Path) -> None:
    for rel in USER_FILES:
        assert (folder / rel).read_text() == f"mine: {rel}", rel


# ---- the report folder: never delete or overwrite what bncli did not write ----------------
def test_out_with_user_figures_is_refused_and_untouched(in_tmp):
    depth_sweep(in_tmp / "runs", depths=(2, 4), seeds=(0,))
    put_user_files(in_tmp / "mine")
    one_line_error(invoke("report", "runs", "--out", "mine"), "mine", "not empty", "--out")
    assert_user_files(in_tmp / "mine")
    assert sorted(p.name for p in (in_tmp / "mine").rglob("*")) == \
        sorted(["figures", "my.pdf", "my.png", "my.svg", "notes.txt"])


def test_rerun_deletes_only_its_own_stale_files(in_tmp):
    depth_sweep(in_tmp / "runs", depths=(2, 4), seeds=(0,))
    assert invoke("report", "runs", "--out", "rep", "--per-run-max", "2").exit_code == 0
    rep = in_tmp / "rep"
    stale = sorted(p.name for p in (rep / "figures").glob("run_*"))
    assert stale and (rep / report_out.MANIFEST).is_file()
    put_user_files(rep)  # the user's own files beside the report's
    result = invoke("report", "runs", "--out", "rep", "--per-run-max", "0")
    assert result.exit_code == 0, result.output
    assert_user_files(rep)
    assert not list((rep / "figures").glob("run_*"))  # the report's stale figures went
    listed = json.loads((rep / report_out.MANIFEST).read_text())["files"]
    assert "report.html" in listed and "figures/depth_fit.png" in listed
    assert not any(k in listed for k in USER_FILES)


def test_run_folder_as_out_is_refused(in_tmp):
    depth_sweep(in_tmp / "runs", depths=(2, 4), seeds=(0,))
    run = in_tmp / "runs" / "depth=2,lam=0.001,seed=0"
    before = sorted(p.name for p in run.rglob("*"))
    one_line_error(invoke("report", "runs", "--out", str(run)), "not empty")
    assert sorted(p.name for p in run.rglob("*")) == before


def test_changed_or_foreign_manifest_entries_are_kept(in_tmp):
    depth_sweep(in_tmp / "runs", depths=(2, 4), seeds=(0,))
    assert invoke("report", "runs", "--out", "rep", "--per-run-max", "0").exit_code == 0
    rep = in_tmp / "rep"
    manifest = json.loads((rep / report_out.MANIFEST).read_text())
    manifest["files"]["../victim.txt"] = None  # a tampered manifest
    manifest["files"]["figures/run_000_x.png"] = [1, 1]  # listed, but no longer bncli's
    (rep / report_out.MANIFEST).write_text(json.dumps(manifest))
    (in_tmp / "victim.txt").write_text("keep")
    (rep / "figures" / "run_000_x.png").write_text("the user's now")
    assert invoke("report", "runs", "--out", "rep", "--per-run-max", "0").exit_code == 0
    assert (in_tmp / "victim.txt").read_text() == "keep"
    assert (rep / "figures" / "run_000_x.png").read_text() == "the user's now"
    # a report file the user replaced is neither overwritten nor deleted
    (rep / "figures" / "depth_fit.png").write_text("edited by hand")
    one_line_error(invoke("report", "runs", "--out", "rep"), "depth_fit.png", "not written")
    assert (rep / "figures" / "depth_fit.png").read_text() == "edited by hand"


def test_files_of_a_killed_report_are_cleaned_next_time(tmp_path):
    depth_sweep(tmp_path / "runs", depths=(2, 4), seeds=(0,))
    rep = tmp_path / "rep"
    build_report([tmp_path / "runs"], out=rep, per_run_max=0, formats=PNG)
    manifest = json.loads((rep / report_out.MANIFEST).read_text())
    manifest["files"]["figures/run_007_half.png"] = None  # claimed, then killed
    (rep / report_out.MANIFEST).write_text(json.dumps(manifest))
    (rep / "figures" / "run_007_half.png").write_text("half written")
    build_report([tmp_path / "runs"], out=rep, per_run_max=0, formats=PNG)
    assert not (rep / "figures" / "run_007_half.png").exists()


def test_read_only_input_tree_falls_back_to_the_working_folder(in_tmp, monkeypatch):
    depth_sweep(in_tmp / "runs", depths=(2, 4), seeds=(0,))
    real = report_out.writable
    monkeypatch.setattr(report_out, "writable", lambda p: "read-only file system" if
                        str(Path(os.path.abspath(p))).startswith(str(in_tmp / "runs"))
                        else real(p))
    result = invoke("report", "runs", "--per-run-max", "0")
    assert result.exit_code == 0, result.output
    assert "report-runs" in result.stdout and "cannot be written" in result.stdout
    assert (in_tmp / "report-runs" / "report.html").is_file()
    assert not (in_tmp / "runs" / "report").exists()
    one_line_error(invoke("report", "runs", "--out", "runs/rep"), "--out", "read-only")


# ---- what defines a setting ---------------------------------------------------------------
def test_bookkeeping_settings_do_not_split_settings(in_tmp):
    root = in_tmp / "runs"
    for i, (log, every, ckpt) in enumerate([(10.0, 0, 1000), (5.0, 7, 50)]):
        for depth in (2, 3, 4):
            make_run(root / f"d{depth}_{i}", depth=depth, seed=i, log_every_s=log,
                     metrics={**base_config()["metrics"], "every": every},
                     checkpoint={"every": ckpt})
    res = build_report([root], per_run_max=0, formats=PNG)
    assert res.swept == ["depth", "seed"]
    assert len(res.depth_fit) == 1 and res.depth_fit["n_seeds"].iloc[0] == 2
    assert len(res.by_setting) == 3 and set(res.by_setting["runs"]) == {2}
    assert any("log_every_s" in n and "metrics.every" in n for n in res.notes)
    assert "log_every_s" in res.html.read_text()
    out = invoke("report", "runs", "--out", "rep2", "--per-run-max", "0")
    assert out.exit_code == 0 and "not compared" in out.stdout


def test_bookkeeping_keys_are_real_config_keys():
    from bottleneck_cli.config import BOOKKEEPING_KEYS, Config

    top = {f.name for f in dataclasses.fields(Config)}
    assert {"name", "out", "log_every_s", "metrics", "checkpoint", "sweep"} <= set(BOOKKEEPING_KEYS)
    # family keys (task.cache: where a task caches its data) are dotted; the rest top-level
    assert {k for k in BOOKKEEPING_KEYS if "." not in k} - {"hydra"} <= top
    trained = {"model", "task", "optim", "lam", "lr", "depth", "width", "steps", "seed", "dtype"}
    assert not trained & set(BOOKKEEPING_KEYS)


# ---- options ------------------------------------------------------------------------------
def test_unknown_metric_is_an_error_with_close_matches(in_tmp):
    depth_sweep(in_tmp / "runs", depths=(2, 4), seeds=(0,), lams=(1e-3, 1e-2))
    err = one_line_error(invoke("report", "runs", "--metric", "loss/tset"), "loss/tset",
                         "did you mean", "loss/test")
    assert "loss/train" in err
    assert not (in_tmp / "runs" / "report").exists()  # nothing written


def test_default_metric_falls_back_to_training_loss(tmp_path):
    root = tmp_path / "runs"
    for lam in (1e-3, 1e-2):
        for lr in (0.01, 0.1):
            run = make_run(root / f"lam={lam},lr={lr}", lam=lam, lr=lr)
            recs = [{k: v for k, v in r.items() if k != "loss/test"} for r in run.read_metrics()]
            run.file(rd.METRICS).write_text("".join(json.dumps(r) + "\n" for r in recs))
            summary = rd.read_json(run.file(rd.SUMMARY))
            summary["final"].pop("loss/test")
            rd.write_json(run.file(rd.SUMMARY), summary)
    res = build_report([root], per_run_max=0, formats=PNG)
    assert "phase_lam_lr" in {p.stem for p in res.figures}
    assert "Final loss/train" in res.html.read_text()


@pytest.mark.parametrize("args,words", [
    (["--per-run-max", "-1"], ["--per-run-max", ">= 0"]),
    (["--grid", "lam,lrr"], ["unknown parameter 'lrr'", "did you mean lr"]),
    (["--grid", "depth,log_every_s"], ["log_every_s", "does not change what is trained"]),
    (["--grid", "lam,lam"], ["two different parameters", "lam,lam"]),
    (["--out", "afile"], ["not a folder"]),
])
def test_bad_options_are_one_line_errors(in_tmp, args, words):
    depth_sweep(in_tmp / "runs", depths=(2, 4), seeds=(0,))
    (in_tmp / "afile").write_text("x")
    one_line_error(invoke("report", "runs", *args), *words)
    assert not (in_tmp / "runs" / "report").exists()


def test_per_run_max_zero_draws_no_run_figures(tmp_path):
    depth_sweep(tmp_path / "runs", depths=(2, 4), seeds=(0,))
    res = build_report([tmp_path / "runs"], per_run_max=0, formats=PNG)
    assert not any(p.stem.startswith("run_") for p in res.figures)


# ---- damaged runs are problems, never the end of a report ---------------------------------
def test_damaged_status_and_summary_records_are_problems(tmp_path):
    root = tmp_path / "runs"
    depth_sweep(root, depths=(2, 4), seeds=(0,))
    make_run(root / "status_list", depth=2, seed=1).file(rd.STATUS).write_text("[1]")
    make_run(root / "status_odd", depth=2, seed=2).file(rd.STATUS).write_text(
        '{"status": 5, "step": "x", "steps": -3}')
    make_run(root / "final_text", depth=2, seed=3).file(rd.SUMMARY).write_text(
        '{"final": "oops"}')
    res = build_report([root], per_run_max=0, formats=PNG)
    st = dict(zip(res.summary["run"], res.summary["status"]))
    assert st["status_list"] == st["status_odd"] == "unreadable"
    text = "\n".join(res.problems)
    assert "status_list: status.json is damaged" in text
    assert "status_odd: status.json is damaged" in text
    assert "final_text: summary.json has no final record" in text


# ---- figures and fits say what they leave out and rest on ---------------------------------
def test_training_curves_say_how_many_settings_they_show(tmp_path):
    from bottleneck_cli.report import config_frame, load_runs, swept_keys
    from bottleneck_cli.report.figures import curves as tc
    from bottleneck_cli.report.tables import long_table, run_info

    lams = [1e-4 * 2 ** i for i in range(10)]
    depth_sweep(tmp_path / "runs", depths=(2, 3), seeds=(0,), lams=lams)
    res = build_report([tmp_path / "runs"], per_run_max=0, formats=PNG)
    assert "showing 8 of 10 settings of lam" in res.html.read_text()
    runs = load_runs([tmp_path / "runs"])
    cfg = config_frame(runs)
    swept = swept_keys(cfg)
    curves, title, left_out = tc.curves(long_table(runs), run_info(runs, cfg, swept), swept, cfg)
    assert left_out == "showing 8 of 10 settings of lam"
    fig = tc.draw(curves, tc.CURVES, title, left_out)
    assert "showing 8 of 10 settings of lam" in fig._suptitle.get_text()


def test_depth_fit_states_its_points_and_flags_two_depths(in_tmp):
    depth_sweep(in_tmp / "two", depths=(2, 4), seeds=(0,))
    result = invoke("report", "two", "--out", "rep", "--per-run-max", "0")
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(in_tmp / "rep" / "depth_fit.csv")
    row = csv.iloc[0]
    assert (row["n_runs"], row["n_seeds"], row["n_depths"]) == (2, 1, 2)
    assert "unreliable" in row["caveat"]
    assert "2 depths, 2 runs, 1 seed" in result.stdout and "unreliable" in result.stdout
    html = (in_tmp / "rep" / "report.html").read_text()
    assert "unreliable: only 2 depths" in html and "2 depths, 2 runs, 1 seed" in html
    depth_sweep(in_tmp / "three", depths=(2, 3, 4), seeds=(0, 1))
    fits = build_report([in_tmp / "three"], per_run_max=0, formats=PNG).depth_fit
    assert (fits["n_depths"].iloc[0], fits["n_runs"].iloc[0]) == (3, 6)
    assert fits["caveat"].fillna("").iloc[0] == ""


def test_depth_fit_figure_legend_states_its_points(tmp_path):
    from bottleneck_cli.report.figures import depth_fit

    points = pd.DataFrame({"setting": ["", ""], "depth": [2, 4], "mean": [5.0, 9.0],
                           "std": [0.0, 0.0], "n": [1, 1]})
    fits = pd.DataFrame({"setting": [""], "slope": [2.0], "slope_err": [float("nan")],
                         "intercept": [1.0], "intercept_err": [float("nan")], "n_depths": [2],
                         "n_runs": [2], "n_seeds": [1]})
    fig = depth_fit.draw(points, fits)
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())  # outside the axes
    assert "2 depths, 2 runs, 1 seed" in legend and "unreliable" in legend


# ---- signals: no orphaned workers ---------------------------------------------------------
def _children(pid: int) -> list[int]:
    kids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
        except (OSError, ValueError, IndexError):
            continue
    return kids


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir() or len(os.sched_getaffinity(0)) < 2,
                    reason="needs Linux /proc and two CPUs (report workers)")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_killed_report_leaves_no_workers(tmp_path, sig):
    make_tree(tmp_path / "runs", 100)
    proc = subprocess.Popen([sys.executable, "-m", "bottleneck_cli.cli", "report",
                             str(tmp_path / "runs"), "--out", str(tmp_path / "rep")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    kids: list[int] = []
    while not kids and proc.poll() is None and time.time() < deadline:
        kids = _children(proc.pid)
        time.sleep(0.05)
    if not kids:
        proc.wait()
        pytest.skip("the report ended before its workers could be seen")
    proc.send_signal(sig)
    rc = proc.wait(timeout=30)
    deadline = time.time() + 2
    while any(map(_alive, kids)) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, kids)), "workers outlived the report"
    if sig != signal.SIGKILL:
        if rc == 0:  # the signal came as the last workers were ending: nothing to stop
            pytest.skip("the report finished before the signal reached it")
        assert rc == 130, (rc, proc.stderr.read())
