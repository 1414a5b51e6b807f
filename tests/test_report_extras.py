"""``bncli report`` extras on synthetic run folders (``report_fixtures``): the Schatten-2/L
closed form beside ||θ||² for linear nets (SCIENCE.md §4) and the distinct active neuron
directions against width (arXiv 2205.15809, docs/metrics.md)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bottleneck_cli import rundir as rd
from bottleneck_cli.report import build_report
from bottleneck_cli.report.closed import schatten_cost
from report_fixtures import S, make_run

PNG = ("png",)
RELU = {"name": "mlp", "bias": True, "activation": "relu", "init": "he", "init_scale": 1.0,
        "ridge_on_bias": False}


def stems(result) -> set[str]:
    return {p.stem for p in result.figures}


def shear_params() -> tuple[dict, float]:
    """Depth-3 linear params (d_in = d_out = 8, width 2) whose product W01·W02·W03 has the
    nonzero block A = [[2, 6], [0, 3]], and that block's closed form by hand: A Aᵀ has
    trace 49 and determinant 36, so s² = (49 ± √2257) / 2; cost 3·Σ s^(2/3)."""
    W1 = np.zeros((8, 2))
    W1[0, 0], W1[1, 1] = 2.0, 1.0
    W2 = np.array([[1.0, 1.0], [0.0, 1.0]])
    W3 = np.zeros((2, 8))
    W3[0, 0], W3[1, 1] = 1.0, 3.0
    s2 = [(49 + math.sqrt(2257)) / 2, (49 - math.sqrt(2257)) / 2]
    cost = 3 * sum(v ** (1 / 3) for v in s2)  # (s²)^(1/3) = s^(2/3)
    params = {"W01": W1, "W02": W2, "W03": W3}
    return {k: v.astype(np.float32) for k, v in params.items()}, cost


def test_closed_form_column_and_figure_for_linear_runs(tmp_path):
    from bottleneck_cli.metrics import schatten_norm_cost

    root = tmp_path / "lin"
    params, cost = shear_params()
    for lam in (0.0, 1e-2):
        run = make_run(root / f"lam={lam}", depth=3, width=2, lam=lam)
        rd.write_npz(run.file(rd.PARAMS), params)
    make_run(root / "lam=0.1", depth=3, width=2, lam=0.1)  # no params.npz: target only
    make_run(root / "relu", depth=3, width=2, lam=0.5, model=RELU)  # not linear: neither
    res = build_report([root], per_run_max=0, formats=PNG)
    s = res.summary.set_index("run")
    target = 3 * sum(v ** (2 / 3) for v in S)
    assert s.loc["lam=0.0", "closed_form"] == pytest.approx(cost, rel=1e-6)
    assert s.loc["lam=0.01", "closed_form"] == pytest.approx(cost, rel=1e-6)
    assert s.loc["lam=0.0", "closed_form_target"] == pytest.approx(target, rel=1e-12)
    assert pd.isna(s.loc["lam=0.1", "closed_form"])
    assert s.loc["lam=0.1", "closed_form_target"] == pytest.approx(target, rel=1e-12)
    assert pd.isna(s.loc["relu", "closed_form"]) and pd.isna(s.loc["relu", "closed_form_target"])
    cols = list(res.summary.columns)
    assert cols.index("closed_form") == cols.index("norm_per_L") + 1
    csv = pd.read_csv(res.tables["summary.csv"]).set_index("run")
    assert csv.loc["lam=0.0", "closed_form"] == pytest.approx(cost, rel=1e-6)
    assert "closed_form" in res.tables["summary.md"].read_text()
    assert "closed_form" in res.html.read_text() and "closed_form_target" in res.html.read_text()
    assert "closed_form" in stems(res)
    assert schatten_cost([3, 2, 1, 0], 5) == pytest.approx(schatten_norm_cost([3, 2, 1, 0], 5))


def test_damaged_params_is_a_problem_not_a_failure(tmp_path):
    run = make_run(tmp_path / "r", depth=3, width=2)
    run.file(rd.PARAMS).write_bytes(b"not an npz")
    res = build_report([tmp_path / "r"], per_run_max=0, formats=PNG)
    assert res.summary["status"].iloc[0] == "finished"
    assert any("params.npz is damaged" in p for p in res.problems)
    assert "closed_form" not in stems(res)


def width_run(path, width: int, seed: int) -> None:
    """A finished depth-3 ReLU run whose records carry neuron counts: min(width, 5) distinct
    directions in layer 1, min(width, 3) in layer 2, every neuron active."""
    run = make_run(path, depth=3, width=width, seed=seed, model=RELU)
    recs = run.read_metrics()
    for r in recs:
        r.update({"neurons/Z01": min(width, 5), "active/Z01": width,
                  "neurons/Z02": min(width, 3), "active/Z02": width,
                  "neurons/max": min(width, 5)})
    run.file(rd.METRICS).unlink()
    run.append_metrics(recs)
    summary = rd.read_json(run.file(rd.SUMMARY))
    rd.write_json(run.file(rd.SUMMARY), {**summary, "final": recs[-1]})


def test_distinct_neurons_table_and_width_figure(tmp_path):
    from bottleneck_cli.report.figures.neurons import vs_width
    from bottleneck_cli.report.load import load_runs
    from bottleneck_cli.report.tables import config_frame, finals_frame, run_info, swept_keys

    root = tmp_path / "w"
    for width in (2, 4, 8, 16):
        for seed in (0, 1):
            width_run(root / f"width={width},seed={seed}", width, seed)
    res = build_report([root], grid=("width", "seed"), metric="neurons/max", per_run_max=0,
                       formats=PNG)
    s = res.summary
    assert list(s["distinct_neurons"]) == [min(w, 5) for w in (2, 2, 4, 4, 8, 8, 16, 16)]
    assert s.loc[s["width"] == 16, "neurons_Z"].tolist() == ["5 3", "5 3"]
    assert list(res.by_setting["distinct_neurons_mean"]) == [2, 4, 5, 5]
    assert {"neurons_vs_width", "phase_width_seed"} <= stems(res)
    assert "distinct_neurons" in res.html.read_text()
    runs = load_runs([root])
    cfg = config_frame(runs)
    swept = swept_keys(cfg)
    df = vs_width(run_info(runs, cfg, swept), cfg, finals_frame(runs), swept)
    one = df[(df["metric"] == "neurons") & (df["layer"] == 2)].sort_values("width")
    assert list(one["width"]) == [2, 4, 8, 16] and list(one["mean"]) == [2, 3, 3, 3]
    assert set(df["metric"]) == {"neurons", "active", "loss/fit", "loss/test"}
