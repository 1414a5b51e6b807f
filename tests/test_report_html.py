"""report.html reads the same on any machine: paths relative to the page, no absolute
path of the machine that made it, self-contained (one inline script, nothing fetched),
and its tables marked sortable. Sorting itself is checked in Chromium
(test_report_browser.py)."""

from __future__ import annotations

import os
import re

from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import app
from report_fixtures import depth_sweep, make_run


def report(*args: str):
    result = CliRunner().invoke(app, ["report", *args, "--per-run-max", "1"])
    assert result.exit_code == 0, result.output
    return result


def damaged_tree(root):
    """A small sweep and a run whose metrics.jsonl is damaged (its problem quotes a file)."""
    depth_sweep(root, depths=(4, 8), seeds=(0, 1))
    bad = make_run(root / "corrupt", depth=4, seed=7)
    lines = bad.file(rd.METRICS).read_text().splitlines()
    lines[1] = '{"step": 3, "loss/tra'
    bad.file(rd.METRICS).write_text("\n".join(lines) + "\n")


def absolute_forms(path) -> set[str]:
    return {str(path), os.path.abspath(path), os.path.realpath(path)}


def test_no_absolute_path_of_this_machine_in_the_page(tmp_path):
    damaged_tree(tmp_path / "runs")
    report(str(tmp_path / "runs"))  # given as an absolute path
    out = tmp_path / "runs" / "report"
    page = (out / "report.html").read_text()
    for form in absolute_forms(tmp_path):
        assert form not in page, form
        assert form not in (out / "summary.csv").read_text(), form
    assert "<title>bncli report: runs</title>" in page
    assert "in .. (relative to this page)" in page
    assert "corrupt: metrics.jsonl is damaged (metrics.jsonl: line 2" in page


def test_the_run_folders_are_named_relative_to_a_report_elsewhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    damaged_tree(tmp_path / "runs" / "sweep")
    report("runs/sweep", str(tmp_path / "runs" / "sweep" / "corrupt"),
           "--out", str(tmp_path / "reports" / "one"))
    page = (tmp_path / "reports" / "one" / "report.html").read_text()
    for form in absolute_forms(tmp_path):
        assert form not in page, form
    assert "in ../../runs/sweep, ../../runs/sweep/corrupt (relative to this page)" in page


def test_the_page_is_self_contained_and_its_tables_sortable(tmp_path):
    depth_sweep(tmp_path / "runs", depths=(4, 8, 16), seeds=(0, 1))
    report(str(tmp_path / "runs"))
    page = (tmp_path / "runs" / "report" / "report.html").read_text()
    assert not re.search(r"https?://", page)  # nothing fetched, no link out
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    assert page.count("<script>") == 1 and "<script src" not in page
    n_tables = page.count("<table")
    assert n_tables >= 3 and page.count('<table class="sortable">') == n_tables
    assert page.count('<div class="scroll">') == n_tables  # each scrolls, none is clipped
