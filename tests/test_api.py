"""The Python API (`from bottleneck_cli import load_runs, load_records`) and the
config.json it reads: the README's example as pasted, the report's values, light
imports, runs of earlier versions (config.yaml only) and damaged runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import app
from report_fixtures import depth_sweep, make_run

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=mlp", "task=compositional", "optim=gd", "lr=0.05", "lam=1e-3", "width=4",
        "task.n_train=8", "task.n_test=8", "steps=10", "checkpoint.every=1000",
        "metrics.ntk=false", "metrics.jacobian_samples=0"]


def readme_python() -> str:
    section = README_SECTION.search((ROOT / "README.md").read_text())
    assert section, "README has no Python API section with a python example"
    return section.group(1)


README_SECTION = re.compile(r"### Python API.*?```python\n(.*?)```", re.S)


def python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120)


def test_readme_example_runs_on_trained_runs_without_jax(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", *TINY, "depth=2,3", "--name", "s"])
    assert result.exit_code == 0, result.output
    code = readme_python() + (
        "\nimport sys\nassert 'jax' not in sys.modules and 'matplotlib' not in sys.modules\n"
        "assert len(runs) == 2 and set(runs['depth']) == {2, 3}\n"
        "assert (runs['status'] == 'finished').all() and len(records) > 4\n")
    done = python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "loss/test" in done.stdout and "depth=2" in done.stdout


def test_import_is_light():
    done = python("import sys, time\nt = time.perf_counter()\nimport bottleneck_cli\n"
                  "from bottleneck_cli import load_runs\n"
                  "print(time.perf_counter() - t, 'pandas' in sys.modules, 'jax' in sys.modules)",
                  ROOT)
    assert done.returncode == 0, done.stderr
    seconds, pandas, jax = done.stdout.split()
    assert jax == "False" and pandas == "True"  # load_runs loads its module on first use
    done = python("import sys, bottleneck_cli\nprint(sorted(m for m in ('pandas', 'jax', "
                  "'numpy') if m in sys.modules))", ROOT)
    assert done.stdout.strip() == "[]"
    with pytest.raises(AttributeError):
        import bottleneck_cli

        bottleneck_cli.no_such_name  # noqa: B018


def test_load_runs_matches_the_report(tmp_path):
    from bottleneck_cli import load_records, load_runs
    from bottleneck_cli.report import build_report

    depth_sweep(tmp_path / "runs", depths=(4, 8, 16), seeds=(0, 1))
    make_run(tmp_path / "runs" / "running", status="running", depth=4, seed=5)
    runs = load_runs(tmp_path / "runs")
    assert len(runs) == 7 and list(runs.columns[:7]) == [
        "run", "path", "status", "step", "steps", "converged", "problems"]
    assert {"depth", "lam", "seed", "model.name", "task.rank", "loss/test", "norm/total",
            "final/lam", "closed_form_target"} <= set(runs.columns)
    assert runs.set_index("run").loc["running", "status"] == "running"
    assert "unfinished" in runs.set_index("run").loc["running", "problems"]
    report = build_report([tmp_path / "runs"], per_run_max=0, formats=("png",))
    mine = runs.set_index("run")
    theirs = report.summary.set_index("run")
    for name in theirs.index:
        assert mine.loc[name, "loss/test"] == theirs.loc[name, "test_loss"]
        assert mine.loc[name, "norm/total"] == theirs.loc[name, "norm"]
        assert mine.loc[name, "depth"] == theirs.loc[name, "depth"]

    one = sorted((tmp_path / "runs").glob("depth=8*"))[0]
    records = load_records(one)
    assert list(records.columns[:3]) == ["run", "step", "time"]
    assert records["step"].tolist() == [r["step"] for r in rd.read_metrics(one / rd.METRICS)]
    every = load_records([tmp_path / "runs"])
    assert every["run"].nunique() == 7 and len(every) > len(records)


def test_config_json_is_the_resolved_config_and_old_runs_still_load(tmp_path):
    from bottleneck_cli import load_runs

    result = CliRunner().invoke(app, ["train", *TINY, "depth=2", f"out={tmp_path / 'runs'}",
                                      "name=new"])
    assert result.exit_code == 0, result.output
    new = tmp_path / "runs" / "new"
    assert rd.read_json(new / rd.CONFIG_JSON) == yaml.safe_load((new / rd.CONFIG).read_text())

    depth_sweep(tmp_path / "old", depths=(4, 8), seeds=(0,), json_config=False)
    depth_sweep(tmp_path / "same", depths=(4, 8), seeds=(0,))
    assert not list((tmp_path / "old").rglob(rd.CONFIG_JSON))
    old, same = load_runs(tmp_path / "old"), load_runs(tmp_path / "same")
    assert (old["status"] == "finished").all()
    cols = [c for c in old.columns if c != "path"]
    assert old[cols].equals(same[cols])


def test_damaged_runs_are_rows_and_warnings(tmp_path):
    from bottleneck_cli import load_records, load_runs
    from bottleneck_cli.report import ReportError

    depth_sweep(tmp_path / "runs", depths=(4,), seeds=(0,))
    bad = make_run(tmp_path / "runs" / "bad", depth=8, seed=0)
    bad.file(rd.METRICS).write_text("{not json\n{}\n")
    (bad.file(rd.CONFIG_JSON)).write_text("[1, 2]")  # damaged: config.yaml read instead
    runs = load_runs(str(tmp_path / "runs")).set_index("run")
    assert runs.loc["bad", "status"] == "unreadable"
    assert "metrics.jsonl is damaged" in runs.loc["bad", "problems"]
    assert "config.json is damaged, config.yaml read instead" in runs.loc["bad", "problems"]
    assert runs.loc["bad", "depth"] == 8
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = load_records(tmp_path / "runs")
    assert set(records["run"]) == {"depth=4,lam=0.001,seed=0"}
    assert any("bad: " in str(w.message) for w in caught)
    with pytest.raises(ReportError, match="does not exist"):
        load_runs(tmp_path / "nowhere")
    with pytest.raises(TypeError):
        load_runs()
