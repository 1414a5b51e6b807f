"""Every experiment preset's CI-sized variant runs end to end and its report is produced."""

import json

import pytest
from typer.testing import CliRunner

from bottleneck_cli.cli import app
from bottleneck_cli.config import CONFIG_DIR

SMALL = ["bottleneck2023_small", "rank2022_small", "sparsity2022_small", "dln2021_small",
         "learning_rate_small", "jumps2023_small", "leaky2024_small", "leaky2024_steps_small",
         "mixed2024_small", "matern2024_small", "cbn2024_small", "cbn2024_classify_small"]
PRESETS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_plans(in_tmp, preset):
    """Every preset composes and plans a sweep (without training)."""
    result = CliRunner().invoke(app, ["sweep", f"+experiment={preset}", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "members in" in result.output
    assert not (in_tmp / "runs").exists()


@pytest.mark.slow
@pytest.mark.parametrize("preset", SMALL)
def test_small_preset_runs_and_reports(in_tmp, preset):
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", f"+experiment={preset}"])
    assert result.exit_code == 0, result.output
    root = in_tmp / "runs" / preset
    index = json.loads((root / "sweep.json").read_text())
    statuses = {m["name"]: m["status"] for m in index["members"]}
    assert len(statuses) >= 2
    if preset == "learning_rate_small":  # lr = 100 must diverge, its batch-mate must not
        assert statuses == {"lr=0.01,depth=3": "finished", "lr=100.0,depth=3": "diverged"}
    else:
        assert set(statuses.values()) == {"finished"}
    result = runner.invoke(app, ["report", str(root)])
    assert result.exit_code == 0, result.output
    html = (root / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3
    if preset.startswith("leaky2024"):  # the weight spectra against p (Fig. 1b / 2b)
        assert (root / "report" / "figures" / "leaky_weights.png").exists()
    if preset == "dln2021_small":  # lazy gamma 1 against the staircase of gamma 2.5
        rises = {g: json.loads((root / f"model.init_gamma={g},lam=0" / "summary.json")
                               .read_text())["trajectory"]["rise_steps"] for g in ("1", "2.5")}
        stair = [rises["2.5"][k] for k in sorted(rises["2.5"], key=int)]
        assert len(stair) >= 2 and stair == sorted(set(stair))  # one at a time
        assert stair[0] > max(rises["1"].values())
        assert (root / "report" / "figures" / "staircase.png").exists()


@pytest.mark.slow
def test_learning_rate_preset_records_the_ntk(in_tmp):
    result = CliRunner().invoke(app, ["train", "+experiment=learning_rate_small", "depth=3", "name=ntk"])
    assert result.exit_code == 0, result.output
    final = json.loads((in_tmp / "runs/ntk/summary.json").read_text())["final"]
    assert final["ntk/trace"] > 0 and final["ntk/max_eig"] > 0
    assert final["ntk/trace_per_nl"] == pytest.approx(
        final["ntk/trace"] / (final["ntk/samples"] * 3))


@pytest.mark.slow
def test_cbn2024_small_report_shows_the_frequency_figures(in_tmp):
    runner = CliRunner()
    assert runner.invoke(app, ["sweep", "+experiment=cbn2024_small"]).exit_code == 0
    root = in_tmp / "runs" / "cbn2024_small"
    # CI-sized runs are far from converged: their depth fit is asked for explicitly
    result = runner.invoke(app, ["report", str(root), "--include-unconverged"])
    assert result.exit_code == 0, result.output
    figures = {p.name for p in (root / "report" / "figures").glob("*.png")}
    assert sum(name.startswith("freq_") for name in figures) == 2
    assert "cbn_vs_depth.png" in figures and "depth_fit.png" in figures
    html = (root / "report" / "report.html").read_text()
    assert "Frequencies kept by" in html and "CBN rank against depth" in html
