"""``bncli report``: aggregate run folders into tables, figures and one HTML page.

Data flow: run folders -> ``Run`` records (``load``) -> a per-run summary table, a tidy
long table and the depth fit (``tables``, ``fit``) -> the figures that apply (``plan``
asks each kind of ``figures.FIGURES``), drawn in workers -> ``html``. Reads run folders
only (``rundir`` is the contract); never imports JAX or training code.

A run that cannot be read, diverged or is unfinished becomes a *problem* line and a
row with its status, never an exception. Seeds of one setting (the swept parameters
minus ``seed``) are aggregated: mean and spread, not separate lines.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .. import rundir as rd
from .figures import FIGURES
from .figures.base import Context, Fig
from .figures.phase import check_grid
from .figures.run_spectra import warm_up
from .figures.scaling import rates_of
from .fit import depth_fit_table
from .load import ReportError, Run, discover, load_chunk, run_names
from .out import HTML, ReportFolder, choose
from .plan import job, per_run_figures, plan, render
from .pool import WorkerPool, sigterm_interrupts, worker_count
from .tables import (TABLE_FILES, bookkeeping, by_setting_table, config_frame, finals_frame,
                     run_info, summary_table, swept_keys, varying, write_tables)
from .long import LONG, write_long

MAX_HTML_ROWS = 300
RATES = "scaling_rates.csv"


@dataclass
class ReportResult:
    out_dir: Path
    html: Path
    summary: pd.DataFrame
    by_setting: pd.DataFrame
    depth_fit: pd.DataFrame
    problems: list[str]
    figures: list[Path]  # every figure file written (all formats)
    skipped: list[str]  # figures that did not apply, with the reason
    swept: list[str]
    tables: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # lines for the reader (where it went, ...)


def build_report(paths: Sequence[Path], out: Path | None = None,
                 grid: tuple[str, str] | None = None, metric: str | None = None,
                 per_run_max: int = 12, formats: Sequence[str] = ("png", "pdf"),
                 workers: int | None = None, include_unconverged: bool = False
                 ) -> ReportResult:
    """Read the runs under ``paths`` and write tables, figures and report.html to ``out``
    (default ``<first path>/report``, or ``./report-<name>`` where that cannot be written).
    ``metric`` (default: test loss, else training loss) colours the phase diagram. The
    depth fit leaves out runs whose convergence verdict is "no" unless
    ``include_unconverged``. Raises
    ReportError for bad input paths or options, and for an ``out`` holding files that are
    not a bncli report's (``out``).

    ``workers`` forked processes (default: one per available CPU, at most 8) read run
    folders and draw figures; 1, or a live JAX backend in this process, keeps everything
    in this process."""
    t0 = time.perf_counter()
    paths = [Path(p) for p in paths]
    if not paths:
        raise ReportError("no PATH given")
    if per_run_max < 0:
        raise ReportError(f"--per-run-max must be >= 0 (0: no per-run figures), got {per_run_max}")
    if grid is not None:
        grid = tuple(grid)
        if len(grid) != 2 or grid[0] == grid[1]:
            raise ReportError(f"--grid needs two different parameters, e.g. lam,lr (got "
                              f"{','.join(map(str, grid))})")
    formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    if "png" not in formats:
        formats = ("png",) + formats  # the HTML page embeds the PNGs
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad:
        raise ReportError(f"unknown figure format {bad[0]!r}; choose from png, pdf, svg")
    dirs = discover(paths)
    out, where = choose(out, paths[0])
    workers = worker_count(workers)
    with sigterm_interrupts():
        runs = _load(list(zip(dirs, run_names(dirs))), workers, formats)
        with WorkerPool(workers) if workers > 1 else nullcontext() as pool:
            result = _build(paths, runs, out, grid, metric, per_run_max, formats, pool, t0,
                            include_unconverged)
    result.notes[:0] = [where] if where else []
    return result


def _load(items: list[tuple[Path, str]], workers: int, formats: Sequence[str]) -> list[Run]:
    """Read the runs, in forked workers for large reports. Meanwhile this process loads and
    warms up matplotlib, so that the drawing workers forked later inherit loaded fonts and
    backends (the loading workers, forked first, never need it)."""
    if workers < 2 or len(items) < 64:
        from . import style  # noqa: F401 - matplotlib, loaded here for every report

        return load_chunk(items)
    n = max(1, len(items) // (8 * workers))
    chunks = [items[i:i + n] for i in range(0, len(items), n)]
    with WorkerPool(workers) as pool:
        pending = pool.map_async(load_chunk, chunks)
        warm_up(formats)
        return [r for chunk in pending.get() for r in chunk]


def _build(paths, runs, out, grid, metric, per_run_max, formats, pool, t0,
           include_unconverged=False) -> ReportResult:
    cfg = config_frame(runs)
    swept = swept_keys(cfg)
    ignored = [k for k in varying(cfg) if bookkeeping(k)]
    finals = finals_frame(runs)
    check_grid(grid, metric, cfg, finals, swept)
    folder = ReportFolder(out)  # before writing: is the folder ours to write?
    info = run_info(runs, cfg, swept)
    summary = summary_table(runs, cfg, finals, swept)
    info["order"] = pd.Series(np.arange(len(summary)), index=summary.index)
    summary = summary.reset_index(drop=True)

    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    # Per-run figures first: workers draw them while this process aggregates. A sample of
    # a larger report is for viewing (PNG); vector copies cost as much again.
    ctx = Context(runs, info, cfg, finals, swept, per_run_max=per_run_max)
    run_figs, skipped = per_run_figures(ctx)
    pending = []

    def submit(figs, fmts):
        folder.claim(fig_dir / f"{f.stem}.{fmt}" for f in figs for fmt in fmts)
        jobs = [job(f, fig_dir, fmts) for f in figs]
        if pool is not None:
            pending.append(pool.map_async(render, jobs))
        else:
            pending.append(list(map(render, jobs)))

    submit(run_figs, formats if len(runs) <= per_run_max else ("png",))
    by_setting = by_setting_table(summary, swept)
    fits, fit_points = depth_fit_table(info, finals, cfg, swept, include_unconverged)
    folder.claim([out / LONG])
    long = write_long(out / LONG, runs)  # in memory: its global metrics, for the figures
    problems = [f"{r.name}: {p}" for r in runs for p in r.problems]
    figs, skipped_agg = plan(replace(ctx, long=long, fits=fits, fit_points=fit_points,
                                     grid=grid, metric=metric))
    skipped[:0] = skipped_agg
    submit(sorted(figs, key=lambda f: -FIGURES[f.kind].cost), formats)
    html_path = out / HTML
    folder.claim([out / name for name in TABLE_FILES] + [html_path])
    tables = write_tables(out, len(runs), summary, by_setting, fits, problems)
    rates = rates_of(ctx)
    if rates is not None:  # N-sweeps: the fitted scaling rates (figures.scaling)
        tables[RATES] = out / RATES
        folder.claim([tables[RATES]])
        rates.to_csv(tables[RATES], index=False)
    drawn = dict(r for p in pending for r in (p if isinstance(p, list) else p.get()))
    figs = _collect(figs + run_figs, drawn, problems, skipped)

    from .html import heading, render as render_html

    title, sources = heading(paths, out)
    html_path.write_text(render_html(
        title=title, sources=sources,
        runs=len(runs), counts=summary["status"].value_counts().to_dict(), swept=swept,
        summary=summary, by_setting=by_setting if len(by_setting) < len(summary) else None,
        fits=fits, problems=problems,
        figures=[(f.title, f.caption, next(p for p in f.paths if p.suffix == ".png"),
                  [p.name for p in f.paths]) for f in figs],
        skipped=skipped, commands=_commands(runs), config=_config_text(runs),
        ignored=ignored, max_rows=MAX_HTML_ROWS), encoding="utf-8")
    files = [p for f in figs for p in f.paths]
    folder.finish(files + list(tables.values()) + [html_path])
    notes = [f"not compared (they do not change what is trained): {', '.join(ignored)}"] \
        if ignored else []
    return ReportResult(out_dir=out, html=html_path, summary=summary, by_setting=by_setting,
                        depth_fit=fits, problems=problems, figures=files, skipped=skipped,
                        swept=swept, tables=tables, seconds=time.perf_counter() - t0,
                        notes=notes)


def _collect(figs: list[Fig], drawn: dict, problems: list[str], skipped: list[str]) -> list[Fig]:
    """The drawn figures with their files; failures become problems, empty ones skips."""
    for f in figs:
        result = drawn[f.stem]
        if isinstance(result, str):
            problems.append(f"figure {f.stem} failed ({result})")
        elif result is None:
            skipped.append(f"{f.title}: nothing to draw (no spectra recorded)")
        else:
            f.paths = result
    return [f for f in figs if f.paths]


def _commands(runs: list[Run], cap: int = 200) -> list[str]:
    """``bncli train`` lines that reproduce the first ``cap`` runs (from overrides.json)."""
    out = []
    for r in runs[:cap]:
        try:
            ov = rd.read_json(r.path / rd.OVERRIDES)
            out.append(f"bncli train {' '.join(map(str, ov['overrides']))}    # {r.name}")
        except (OSError, ValueError, KeyError, TypeError):
            out.append(f"# {r.name}: no readable overrides.json")
    if len(runs) > cap:
        out.append(f"# ... and {len(runs) - cap} more runs")
    return out


def _config_text(runs: list[Run]) -> tuple[str, str]:
    """(run name, config.yaml text) of the first readable run."""
    for r in runs:
        if r.config:
            try:
                return r.name, (r.path / rd.CONFIG).read_text()
            except OSError:
                continue
    return "", ""
