"""A researcher's own model through ``model._target_``: trained through the CLI, recorded
(weight and representation spectra, ranks, norms, Jacobian, NTK) and reported; the
worked example of docs/extending.md (tests/gated_mlp.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import EXIT_BAD_INPUT, app

HERE = Path(__file__).resolve().parent
RUN = ["train", "model._target_=gated_mlp.GatedMLP", "+model.gate=0.5", "depth=3", "width=6",
       "task.n_train=16", "task.n_test=8", "steps=20", "metrics.ntk=true",
       "metrics.ntk_samples=8", "metrics.jacobian_samples=2", "name=gated"]


def test_own_model_trains_records_and_reports(in_tmp, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    result = CliRunner().invoke(app, RUN)
    assert result.exit_code == 0, result.output
    run = rd.RunDir(in_tmp / "runs" / "gated")
    assert run.status()["status"] == "finished"
    final = run.read_metrics()[-1]
    for key in ("norm/total", "rank/W01", "rank_c/Z01", "rank/Z02", "bottleneck/rank_c",
                "jac/rank", "ntk/trace", "ntk/max_eig"):
        assert np.isfinite(final[key]), key
    spectra = run.read_spectra()
    assert {"W01", "W02", "W03", "Z01", "Z02", "Zc01", "Zc02", "J"} <= set(spectra)
    assert "nonlin/Z01" not in final  # needs preactivations, which this model does not offer
    assert sorted(rd.read_npz(run.file(rd.PARAMS))) == ["W01", "W02", "W03"]

    report = CliRunner().invoke(app, ["report", "runs", "--out", "rep"])
    assert report.exit_code == 0, report.output
    assert "gated" in (in_tmp / "rep" / "summary.csv").read_text()
    assert any((in_tmp / "rep" / "figures").glob("*gated*.png"))


def test_gate_changes_what_is_trained(in_tmp, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    for gate in ("0.5", "4.0"):
        args = [a if not a.startswith("+model.gate") else f"+model.gate={gate}" for a in RUN]
        args = [a if a != "name=gated" else f"name=g{gate}" for a in args]
        assert CliRunner().invoke(app, args + ["metrics.ntk=false"]).exit_code == 0
    a = rd.read_npz(in_tmp / "runs/g0.5" / rd.PARAMS)["W01"]
    b = rd.read_npz(in_tmp / "runs/g4.0" / rd.PARAMS)["W01"]
    assert not np.allclose(a, b)


def test_unknown_target_is_a_one_line_error(in_tmp):
    result = CliRunner().invoke(app, ["train", "model._target_=nowhere.Nothing", "steps=2"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "nowhere.Nothing" in result.output and len(result.output.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()
