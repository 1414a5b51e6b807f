"""A report of 20 settings x 3 seeds (synthetic runs, ``report_fixtures``): every figure
drawn without matplotlib layout warnings, what is left out said as "showing k of n",
unconverged runs drawn apart (dashed / hollow, one legend key), and the terminal table
within 80 columns."""

from __future__ import annotations

import json
import re
import warnings

import pandas as pd
import pytest
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import app
from bottleneck_cli.report import build_report
from report_fixtures import make_run

DEPTHS, LAMS, SEEDS = (4, 8), tuple(round(1e-4 * 2 ** k, 6) for k in range(10)), (0, 1, 2)
LAYOUT_WARNINGS = r".*(layout not applied|not applied because|loc=.best.|layout engine).*"


def unconverged(depth: int, seed: int) -> bool:
    return seed == 2 and depth == 8


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """depth x lam x seed = 2 x 10 x 3 runs (20 settings); seed 2 at depth 8 has the
    verdict "not converged"; every record carries the convergence diagnostics."""
    root = tmp_path_factory.mktemp("scale") / "runs"
    for lam in LAMS:
        for depth in DEPTHS:
            for seed in SEEDS:
                path = root / f"depth={depth},lam={lam},seed={seed}"
                make_run(path, depth=depth, lam=lam, seed=seed, n_records=8, extras=True)
                recs = [json.loads(line) for line in (path / rd.METRICS).read_text().splitlines()]
                for r in recs:
                    r.update({"conv/grad": 1e-2 / (1 + r["step"]), "conv/balance": 1e-3,
                              "converged": float(not unconverged(depth, seed))})
                (path / rd.METRICS).write_text("".join(json.dumps(r) + "\n" for r in recs))
                summary = json.loads((path / rd.SUMMARY).read_text())
                summary["final"] = recs[-1]
                (path / rd.SUMMARY).write_text(json.dumps(summary))
    return root


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "report"
    with warnings.catch_warnings():  # inherited by the forked drawing workers
        warnings.filterwarnings("error", message=LAYOUT_WARNINGS)
        res = build_report([sweep], out=out, per_run_max=3, formats=("png",),
                           include_unconverged=True)
    return res


def test_every_figure_drawn_without_layout_warnings(report):
    assert not report.problems, report.problems  # a warning fails its figure: a problem
    stems = {p.stem for p in report.figures}
    want = {"depth_fit", "rank_profile", "near_one_profile", "near_one_rest",
            "nonlinearity_profile", "training_curves", "convergence", "ntk_vs_depth",
            "jacobian_vs_depth", "phase_depth_lam"}
    assert want <= stems, want - stems
    assert sum(s.startswith("run_") for s in stems) == 3


def test_left_out_is_said_as_showing_k_of_n(report):
    html = report.html.read_text()
    assert "showing 8 of 10 settings of lam" in html  # training curves: lines
    assert "Showing 3 of 10 settings (panels), spread evenly" in html  # profiles
    assert "Showing 10 of 20" not in html  # the depth fit draws all 10 settings
    assert any("3 of 60 readable runs" in s for s in report.skipped)


def test_unconverged_runs_are_keyed_in_every_figure_that_draws_them(report):
    html = report.html.read_text()
    n_bad = len(LAMS)  # seed 2 at depth 8, per lam
    key = f"Dashed / hollow: not converged ({n_bad} of 60 runs)"
    captions = dict(re.findall(r"<h3>([^<]*)</h3>.*?<figcaption>(.*?)</figcaption>", html))
    for title in ("Parameter norm against depth", "Rank profile against relative depth",
                  "NTK trace against depth", "Final loss/test over depth × lam"):
        assert key in captions[title], title
    # figures that leave runs out count the runs they draw
    assert "not converged (8 of 48 runs)" in captions["Training curves"]  # 8 of 10 lams
    conv = captions["Convergence: gradient norm and layer-norm balance"]
    assert re.search(r"not converged \(\d+ of 24 runs\)", conv) and "Showing 24 of 60" in conv
    assert "Training curves" in html and "a hollow circle ends a line" in html
    assert "dashed border: the cell includes unconverged runs" in html


def test_unconverged_lines_and_points_are_drawn_apart():
    from bottleneck_cli.report.figures import profiles, vs_depth
    from bottleneck_cli.report.style import UNCONVERGED, plt, unconverged_key

    df = pd.DataFrame({"panel": "", "depth": [4, 4, 8, 8], "layer": [1, 2, 1, 2],
                       "rel": [0.25, 0.5, 0.125, 0.25], "mean": [2.0, 3, 2, 3],
                       "lo": [2.0, 3, 2, 3], "hi": [2.0, 3, 2, 3],
                       "unconv": [False, False, True, True]})
    fig = profiles.draw(df, "rank", "rank profile")
    styles = {tuple(l.get_xdata()): l.get_linestyle() for l in fig.axes[0].get_lines()}
    assert styles[(0.25, 0.5)] == "-" and styles[(0.125, 0.25)] == "--"
    unconverged_key(fig, "dashed / hollow: not converged (1 of 2 runs)")
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert texts[-1].startswith("dashed / hollow") and "L=4" in texts  # one legend, keyed
    plt.close(fig)

    pts = pd.DataFrame({"setting": "lam=0.1", "depth": [4, 8], "mean": [1.0, 2.0],
                        "std": [0.0, 0.0], "metric": "ntk/trace_per_nl",
                        "unconv": [False, True]})
    fig = vs_depth.draw(pts, [("ntk/trace_per_nl", "Tr")], "NTK")
    hollow = [l for l in fig.axes[0].get_lines() if l.get_markerfacecolor() == UNCONVERGED["mfc"]]
    assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [8]
    plt.close(fig)


def test_terminal_table_fits_80_columns(sweep, tmp_path):
    out = tmp_path / "rep"
    result = CliRunner().invoke(app, ["report", str(sweep), "--out", str(out),
                                      "--per-run-max", "0"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table), max(map(len, table))
    assert all(len(line) <= 80 for line in lines if str(out) not in line)
    header = next(line for line in lines if line.startswith("┃"))
    for col in ("depth", "lam", "objective", "test fit", "rank", "conv"):
        assert col in header, col
    assert "objective = train fit + λ·||θ||² (with the ridge)" in " ".join(result.output.split())
    assert "test fit = test loss, no ridge" in " ".join(result.output.split())
    assert any(re.fullmatch(r"\│\s+8 │\s*0\.0001 │ 3/3 │.*│ 2/3 │.*", line) for line in table)
    assert f"report written to {out / 'report.html'}" in lines  # the path in one piece
