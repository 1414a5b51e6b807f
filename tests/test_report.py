"""Tests for bottleneck_cli.report: tables, figures, HTML, problems, the depth fit.

Run folders are synthetic (``report_fixtures``: the deep-linear closed form of SCIENCE.md
section 4, written with the ``rundir`` writers); tests/test_report_real.py reports real
``bncli`` runs.

``python tests/test_report.py [N]`` runs ``bench_report(N)`` (the ``make bench`` entry).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bottleneck_cli import rundir as rd
from bottleneck_cli.report import ReportError, build_report, print_summary, swept_keys
from report_fixtures import S, base_config, depth_sweep, make_run, records

PNG = ("png",)  # tests that do not check vector output skip it (it doubles the drawing time)


def assert_files(result):
    assert result.figures
    for p in result.figures:
        assert p.is_file() and p.stat().st_size > 500, p
    for p in result.tables.values():
        assert p.is_file() and p.stat().st_size > 0, p
    assert result.html.is_file()


def stems(result) -> set[str]:
    return {p.stem for p in result.figures}


# ---- tests --------------------------------------------------------------------------
def test_depth_sweep_fit_slope_is_rank(tmp_path):
    depths = (4, 8, 16, 32)
    depth_sweep(tmp_path / "sweep", depths=depths)
    res = build_report([tmp_path / "sweep"], per_run_max=2)
    assert res.out_dir == tmp_path / "sweep" / "report"
    assert_files(res)
    s = res.summary
    assert len(s) == 8 and set(s["status"]) == {"finished"}
    assert res.swept == ["depth", "seed"]
    row = s[(s["depth"] == 8) & (s["seed"] == 0)].iloc[0]
    assert row["norm"] == pytest.approx(8 * sum(x ** (2 / 8) for x in S))
    assert row["norm_per_L"] == pytest.approx(row["norm"] / 8)
    assert row["bottleneck_rank"] == 2 and row["steps"] == 100 and row["step"] == 100
    assert row["ranks_W"] == "2 2 2 2 2 2 2 2"
    fit = res.depth_fit
    assert len(fit) == 1 and fit["n_seeds"].iloc[0] == 2 and fit["n_runs"].iloc[0] == 8
    assert fit["R0_estimate"].iloc[0] == pytest.approx(2.0, abs=0.15)
    assert fit["R1_estimate"].iloc[0] == pytest.approx(2 * sum(map(math.log, S)), abs=0.4)
    assert fit["R0_err"].iloc[0] > 0  # spread over seeds
    csv = pd.read_csv(res.tables["depth_fit.csv"])
    assert csv["R0_estimate"].iloc[0] == pytest.approx(fit["R0_estimate"].iloc[0])
    want = {"rank_profile", "depth_fit", "near_one_profile", "near_one_rest", "training_curves"}
    assert want <= stems(res)
    assert sum(st.startswith("run_") for st in stems(res)) == 2
    assert {p.suffix for p in res.figures} == {".png", ".pdf"}
    assert not res.problems


def test_tables_contents(tmp_path):
    depth_sweep(tmp_path / "runs", depths=(4, 8), seeds=(0, 1, 2), lams=(1e-3, 1e-2))
    res = build_report([tmp_path / "runs"], out=tmp_path / "rep", per_run_max=3, formats=PNG)
    assert res.out_dir == tmp_path / "rep"
    s = pd.read_csv(res.tables["summary.csv"])
    assert len(s) == 12
    for col in ["run", "status", "step", "steps", "depth", "lam", "seed", "loss", "test_loss",
                "fit", "ridge", "norm", "norm_per_L", "bottleneck_rank", "ranks_Z", "ranks_W"]:
        assert col in s.columns, col
    assert list(s["depth"]) == sorted(s["depth"])  # sorted by swept parameters
    md = res.tables["summary.md"].read_text()
    assert md.count("\n| ") >= 12 and "| run | status |" in md
    by = res.by_setting
    assert len(by) == 4 and set(by["runs"]) == {3} and "norm_mean" in by and "norm_std" in by
    assert len(res.depth_fit) == 2  # one line per lam
    assert sum(st.startswith("run_") for st in stems(res)) == 3
    assert any("per-run spectra figures drawn for 3 of 12" in x for x in res.skipped)
    assert any(st.startswith("phase_depth_lam") for st in stems(res))
    long = pd.read_parquet(res.tables["long.parquet"])
    assert list(long.columns) == ["run", "step", "metric", "layer", "value"]
    rec = records(4, 100)
    n_expected = 6 * sum(len(r) - 1 for r in rec) + 6 * sum(len(r) - 1 for r in records(8, 100))
    assert len(long) == n_expected
    one = long[(long["metric"] == "rank/W") & (long["layer"] == 3)]
    assert len(one) and (one["value"] == 2).all()
    assert long.loc[long["metric"] == "loss/test", "layer"].isna().all()


def test_problem_runs_are_listed_not_raised(tmp_path):
    root = tmp_path / "runs"
    depth_sweep(root, depths=(4, 8), seeds=(0,))
    make_run(root / "diverged", status="diverged", depth=4, seed=5)
    make_run(root / "running", status="running", depth=4, seed=6)
    bad = make_run(root / "corrupt", depth=4, seed=7)
    lines = bad.file(rd.METRICS).read_text().splitlines()
    lines[1] = '{"step": 3, "loss/tra'
    bad.file(rd.METRICS).write_text("\n".join(lines) + "\n")
    gone = make_run(root / "nometrics", depth=4, seed=8)
    gone.file(rd.METRICS).unlink()
    gone.file(rd.SUMMARY).unlink()
    torn = make_run(root / "torn", depth=8, seed=9)
    with open(torn.file(rd.METRICS), "a") as fh:
        fh.write('{"step": 999, "loss')  # torn final line: tolerated
    nocfg = make_run(root / "noconfig", depth=4, seed=10)
    nocfg.file(rd.CONFIG).unlink()
    nocfg.file(rd.CONFIG_JSON).unlink()
    badstatus = make_run(root / "badstatus", depth=4, seed=11)
    badstatus.file(rd.STATUS).write_text("{not json")
    (root / "junk" / "spectra").mkdir(parents=True)  # not a run folder: ignored
    res = build_report([root], per_run_max=2, formats=PNG)
    assert_files(res)
    st = dict(zip(res.summary["run"], res.summary["status"]))
    assert st["diverged"] == "diverged" and st["running"] == "running"
    assert st["corrupt"] == "unreadable" and st["noconfig"] == "unreadable"
    assert st["badstatus"] == "unreadable" and st["torn"] == "finished"
    text = "\n".join(res.problems)
    assert "diverged: diverged at step" in text
    assert "running: unfinished (status running" in text
    assert "corrupt: metrics.jsonl is damaged" in text
    assert "nometrics: no metrics recorded" in text
    assert "noconfig: no config.yaml" in text
    assert "badstatus: status.json is damaged" in text
    assert not any(p.startswith("torn") for p in res.problems)
    html = res.html.read_text()
    assert "metrics.jsonl is damaged" in html
    # the depth fit uses finished runs only (2 depths, 1 seed)
    assert res.depth_fit["n_runs"].iloc[0] == 3


def test_report_never_imports_jax_or_training_code(tmp_path):
    code = (
        "import sys; from pathlib import Path\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from bottleneck_cli.report import build_report\n"
        "from report_fixtures import bench_report, make_run\n"
        f"make_run(Path({str(tmp_path)!r}) / 'r')\n"
        f"build_report([Path({str(tmp_path)!r}) / 'r'], per_run_max=1, formats=('png',))\n"
        "bad = [m for m in ('jax', 'flax', 'optax', 'bottleneck_cli.train', "
        "'bottleneck_cli.models', 'bottleneck_cli.metrics', 'bottleneck_cli.tasks') "
        "if m in sys.modules]\n"
        "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_bad_paths_raise_report_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no run folders"):
        build_report([tmp_path / "empty"])
    with pytest.raises(ReportError, match="does not exist"):
        build_report([tmp_path / "nope"])
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(ReportError, match="is a file"):
        build_report([tmp_path / "f.txt"])


def test_html_is_self_contained(tmp_path):
    depth_sweep(tmp_path / "s", depths=(4, 8), seeds=(0,))
    res = build_report([tmp_path / "s"], formats=("png", "svg"))
    html = res.html.read_text()
    assert '<img src="data:image/png;base64,' in html
    assert "Summary (one row per run)" in html and "depth=4,lam=0.001,seed=0" in html
    assert "bncli train depth=4 seed=0 lam=0.001" in html
    assert "R0" in html and 'src="http' not in html
    assert html.count("<script") == 1 and "<script>" in html  # the inline sort script only
    n_png = len([p for p in res.figures if p.suffix == ".png"])
    assert html.count("data:image/png;base64,") == n_png
    assert {p.suffix for p in res.figures} == {".png", ".svg"}


def test_single_run_and_skipped_figures(tmp_path):
    run = tmp_path / "one"
    make_run(run, depth=6)
    res = build_report([run], formats=PNG)
    assert res.out_dir == run / "report"
    assert_files(res)
    assert len(res.summary) == 1 and res.swept == []
    assert len(res.depth_fit) == 0
    assert "depth_fit" not in stems(res) and "training_curves" in stems(res)
    assert any("depth fit" in x for x in res.skipped)
    assert "Not drawn" in res.html.read_text()
    # a second report of the same folder does not see the report as a run
    assert len(build_report([run], formats=PNG, per_run_max=0).summary) == 1


def test_phase_diagram_grid_and_errors(tmp_path):
    root = tmp_path / "g"
    for lam in (1e-4, 1e-3, 1e-2):
        for lr in (0.01, 0.1):
            for seed in (0, 1):
                make_run(root / f"lam={lam},lr={lr},seed={seed}", lam=lam, lr=lr, seed=seed,
                         status="diverged" if lr == 0.1 and lam == 1e-4 else "finished")
    res = build_report([root], grid=("lam", "lr"), metric="loss/test", per_run_max=0, formats=PNG)
    assert "phase_lam_lr" in stems(res)
    with pytest.raises(ReportError, match="unknown parameter"):
        build_report([root], grid=("lam", "momentum"))
    with pytest.raises(ReportError, match="not a recorded metric"):
        build_report([root], grid=("lam", "lr"), metric="loss/nope")


def test_extra_metrics_figures(tmp_path):
    depth_sweep(tmp_path / "x", depths=(4, 8, 12), seeds=(0,), extras=True)
    res = build_report([tmp_path / "x"], per_run_max=1, formats=PNG)
    assert {"ntk_vs_depth", "jacobian_vs_depth", "nonlinearity_profile"} <= stems(res)


def test_several_paths_and_terminal_summary(tmp_path):
    from rich.console import Console

    depth_sweep(tmp_path / "a", depths=(4, 8), seeds=(0, 1))
    depth_sweep(tmp_path / "b", depths=(16,), seeds=(0, 1))
    res = build_report([tmp_path / "a", tmp_path / "b"], per_run_max=0, formats=PNG)
    assert res.out_dir == tmp_path / "a" / "report"
    assert len(res.summary) == 6 and res.summary["run"].str.startswith(("a/", "b/")).all()
    console = Console(record=True, width=140)
    print_summary(res, console)
    out = console.export_text()
    assert "report written to" in out and "report.html" in out
    assert "depth fit" in out and "R0" in out


def test_config_yaml_of_an_earlier_run_reads_as_pyyaml(tmp_path):
    """A run folder without config.json (an earlier bncli's) is read from config.yaml by
    libyaml, with PyYAML's meaning, and a broken one is a YAMLError."""
    from bottleneck_cli.report import read_config

    texts = [yaml.safe_dump(base_config(depth=7, lam=1e-4), sort_keys=False),
             yaml.safe_dump(base_config(), sort_keys=True),
             "a:\n  b:\n  - 1\n  - x\n  c: null\nd: []\ne: {}\ng:\n- 1.0\n- 2\nh: 1e-3\n"
             "i: 1.0e-3\nj: ~\nk: yes\nl: '007'\nm:\nn: x # note\no: 'it''s'\n",
             "a:\n  - 1\n  - 2\nb: 3\n", "a: |\n  text\n", "a: [1, 2]\nb: {x: 1}\n",
             "a:\n- b: 1\n", "a: &x 1\nb: *x\n", "a: 'q: r'\n", "a:\n\n  b: 1\n# c\nc:\n"
             "  d:\n    e: 5\n  f: 6\ng: 7\n"]
    for text in texts:
        (tmp_path / "config.yaml").write_text(text)
        assert read_config(tmp_path) == yaml.safe_load(text), text
    for bad in ["a: 1\n  b: 2\n", "a:\n    b: 1\n  c: 2\n", "a: b: c\n"]:
        (tmp_path / "config.yaml").write_text(bad)
        with pytest.raises(yaml.YAMLError):
            read_config(tmp_path)


def test_swept_keys_ignore_placement_and_text():
    from bottleneck_cli.report import config_frame, Run

    runs = [Run(name=str(i), path=Path("."), config=base_config(
        depth=d, description=f"d{i}", name=f"n{i}", out=f"o{i}")) for i, d in enumerate((2, 4))]
    runs[1].config["task"] = dict(runs[1].config["task"], singular_values=[3.0, 1.0])
    assert swept_keys(config_frame(runs)) == ["depth", "task.singular_values"]


if __name__ == "__main__":
    from report_fixtures import bench_report

    bench_report(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
