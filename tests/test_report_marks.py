"""Unconverged runs are marked in the family figures too (neurons, scaling laws, leaky
ResNets, the staircase), the mixed family's figures say it has no verdict, and the
tables carry the verdict (synthetic runs, ``report_fixtures``; report through the CLI)."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import app
from report_fixtures import make_run


def patch_run(path, cfg: dict, final: dict) -> None:
    """Set dotted config keys ``cfg`` (config.json) and add ``final`` to every metric
    record and to summary.json's final record of the run at ``path``."""
    config = json.loads((path / rd.CONFIG_JSON).read_text())
    for dotted, value in cfg.items():
        *head, last = dotted.split(".")
        node = config
        for part in head:
            node = node.setdefault(part, {})
        node[last] = value
    (path / rd.CONFIG_JSON).write_text(json.dumps(config))
    recs = [json.loads(line) for line in (path / rd.METRICS).read_text().splitlines()]
    for r in recs:
        r.update(final)
    (path / rd.METRICS).write_text("".join(json.dumps(r) + "\n" for r in recs))
    summary = json.loads((path / rd.SUMMARY).read_text())
    summary["final"] = recs[-1]
    (path / rd.SUMMARY).write_text(json.dumps(summary))


def report(root, out) -> tuple[str, dict]:
    """``bncli report`` through the CLI: the page and its captions by figure title."""
    result = CliRunner().invoke(app, ["report", str(root), "--out", str(out),
                                      "--per-run-max", "0"])
    assert result.exit_code == 0, result.output
    html = (out / "report.html").read_text()
    return html, dict(re.findall(r"<h3>([^<]*)</h3>.*?<figcaption>(.*?)</figcaption>", html))


@pytest.fixture(scope="module")
def families(tmp_path_factory):
    """8 runs: depth x seed x two variants of (width, leak, layer steps, init scale), with
    neuron counts, the leaky rank estimates and rise steps; seed 1 at depth 4 unconverged."""
    root = tmp_path_factory.mktemp("marks") / "runs"
    variants = [(4, 1.0, "a", 0.5), (8, 2.0, "b", 1.0)]
    for depth in (2, 4):
        for seed in (0, 1):
            for width, leak, steps, gamma in variants:
                path = root / f"w={width},depth={depth},seed={seed}"
                make_run(path, depth=depth, seed=seed, width=width)
                patch_run(path, {"model.leak": leak, "model.steps": steps,
                                 "model.init_gamma": gamma, "task.name": "teacher"},
                          {"neurons/Z01": width / 2, "active/Z01": width,
                           "bottleneck/hamiltonian_rank": 2.0 + leak / 10,
                           "bottleneck/min_coi": 3.0 - leak / 10, "rank/A": 2.0,
                           "traj/rise/1": 10.0 * gamma, "traj/rise/2": 30.0 * gamma,
                           "converged": float(not (seed == 1 and depth == 4))})
    return root


@pytest.fixture(scope="module")
def scaling(tmp_path_factory):
    """12 runs: N x nu_g x architecture; the mlp run at N = 400, nu_g = 2 unconverged."""
    root = tmp_path_factory.mktemp("marks") / "scaling"
    for n in (100, 200, 400):
        for nu in (1.0, 2.0):
            for arch in ("mlp", "shallow"):
                path = root / f"n={n},nu={nu},{arch}"
                make_run(path)
                patch_run(path, {"task.n_train": n, "task.nu_g": nu, "task.nu_h": 1.0,
                                 "model.name": arch},
                          {"loss/test": n ** -(0.3 * nu),
                           "converged": float(not (n == 400 and nu == 2.0 and arch == "mlp"))})
    return root


def test_family_figures_key_their_unconverged_runs(families, tmp_path):
    html, captions = report(families, tmp_path / "rep")
    key = "Dashed / hollow: not converged (2 of 8 runs)"
    for title in ("Distinct active neuron directions against width",
                  "Hamiltonian rank estimate and minimal COI against Lt",
                  "Test error against L per layer-step scheme",
                  "Staircase: rise step of each singular value"):
        assert title in captions, (title, sorted(captions))
        assert key in captions[title], title
    summary = pd.read_csv(tmp_path / "rep" / "summary.csv")
    assert sorted(summary["converged"]) == [0, 0] + [1] * 6
    assert "converged" in (tmp_path / "rep" / "summary.md").read_text().splitlines()[2]
    assert re.search(r"<th[^>]*>converged</th>", html)  # the page's summary table
    by_setting = pd.read_csv(tmp_path / "rep" / "summary_by_setting.csv")
    assert "converged_mean" in by_setting
    assert not (tmp_path / "rep" / "scaling_rates.csv").exists()  # no N-sweep here


@pytest.fixture(scope="module")
def scaling_report(scaling, tmp_path_factory):
    out = tmp_path_factory.mktemp("marks") / "rep"
    return (out, *report(scaling, out))


def test_scaling_figures_key_their_unconverged_runs(scaling_report):
    _, html, captions = scaling_report
    key = "Dashed / hollow: not converged (1 of 12 runs)"
    for title in ("Test error against N (log-log fit per setting)", "Fitted rate over (ν_g, ν_h)",
                  "Deep against shallow against accordion"):
        assert key in captions[title], title
    assert "dashed border: the fit includes unconverged runs" in captions[
        "Fitted rate over (ν_g, ν_h)"]


def test_scaling_rates_are_a_table_of_the_report(scaling_report):
    out, html, captions = scaling_report
    rates = pd.read_csv(out / "scaling_rates.csv")
    assert len(rates) == 4  # nu_g x architecture
    assert {"setting", "task.nu_g", "model.name", "rate", "rate_err", "r2", "n_sizes",
            "n_seeds", "sizes", "unconverged", "caveat"} <= set(rates.columns)
    exact = rates[rates["task.nu_g"] == 1.0]
    assert ((exact["rate"] - 0.3).abs() < 1e-6).all() and (exact["r2"] > 0.999).all()
    assert rates["n_sizes"].tolist() == [3] * 4 and rates["sizes"].tolist() == ["100,200,400"] * 4
    assert rates["unconverged"].sum() == 1
    manifest = json.loads((out / ".bncli-report.json").read_text())["files"]
    assert "scaling_rates.csv" in manifest and "summary.csv" in manifest


def test_family_drawings_mark_unconverged_points_hollow():
    from bottleneck_cli.report.figures import leaky, neurons, rank_jumps, scaling
    from bottleneck_cli.report.style import UNCONVERGED, plt

    def hollow_x(fig):
        return sorted(x for ax in fig.axes for line in ax.get_lines()
                      if line.get_markerfacecolor() == UNCONVERGED["mfc"]
                      for x in line.get_xdata())

    rank = pd.DataFrame({"depth": 4, "leak": [1.0, 2.0], "rank": [2.1, 2.2],
                         "coi": [2.9, 2.8], "unconv": [False, True]})
    steps = pd.DataFrame({"scheme": "a", "depth": [2, 4], "mean": [0.1, 0.2],
                          "std": [0.0, 0.0], "unconv": [True, False]})
    stair = pd.DataFrame({"init": 0.5, "k": [1, 2], "mean": [5.0, 15.0], "min": [5.0, 15.0],
                          "max": [5.0, 15.0], "unconv": [False, True]})
    width = pd.DataFrame({"setting": "", "width": [4, 8, 4, 8], "metric": "neurons",
                          "layer": 1, "mean": [2.0, 4.0, 4.0, 8.0], "std": 0.0,
                          "unconv": [False, True, False, False]})
    width.loc[2:, "metric"] = "active"
    pts = pd.DataFrame({"setting": "s", "n": [100, 200, 100, 200], "seed": [0, 0, 1, 1],
                        "err": [0.5, 0.3, 0.6, 0.35], "unconv": [False, False, False, True],
                        "model.name": "mlp", "panel": ""})
    rates = scaling.rate_table(pts, [])
    assert rates["unconverged"].tolist() == [1]
    for fig, want in [(leaky.draw_rank(rank, None), [2.0, 2.0]),
                      (leaky.draw_steps(steps), [2]), (rank_jumps.draw_staircase(stair, "g"), [2]),
                      (neurons.draw(width), [8]), (scaling.draw_fit(pts, rates), [200]),
                      (scaling.draw_arch(pts), [200])]:
        assert hollow_x(fig) == want
        plt.close(fig)


def test_mixed_figures_say_there_is_no_verdict():
    from bottleneck_cli.report.figures.base import Context
    from bottleneck_cli.report.figures.mixed import no_verdict

    info = pd.DataFrame({"finished": [True]})
    ctx = Context([], info, pd.DataFrame(index=[0]), pd.DataFrame({"phase/min_test": [1.0]}),
                  [])
    assert "no convergence verdict" in no_verdict(ctx)
    ctx = Context([], info, pd.DataFrame(index=[0]), pd.DataFrame({"converged": [1.0]}), [])
    assert no_verdict(ctx) == ""
