"""Which figures a report gets, and drawing them.

``plan`` and ``per_run_figures`` decide from the tables which figures apply (with the
reason for each one that does not) and pair each with a *job*: a ``plots`` function
name, or a function returning a Figure, and its arguments. ``render`` draws one job,
in a pool worker or inline.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .. import rundir as rd
from .figdata import CURVES, closed_form_points, phase, profile, vs_depth, vs_width
from .figdata import curves as curve_data
from .spectra import per_run_choice, remaining_figure, remaining_items, run_figure
from .fit import basis
from .format import pm
from .load import ReportError, Run
from .tables import bookkeeping, layer_cols

# Rough drawing cost (panels) of the aggregate figures: the costly ones are handed to the
# workers first, so that none is left running alone at the end.
COST = {"training_curves": 6, "rank_profile": 3, "near_one_profile": 3,
        "nonlinearity_profile": 3, "near_one_rest": 3, "neurons_vs_width": 3}
EXTRAS = [  # figures of later issues, drawn when their metrics exist: (stem, title, labels)
    ("ntk_vs_depth", "NTK trace against depth",
     {"ntk/trace_per_nl": "Tr Θ / (N·L)", "ntk/max_eig": "λ_max(Θ)"}),
    ("jacobian_vs_depth", "Jacobian rank and log pseudo-determinant against depth",
     {"jac/rank": "rank Jf(x)", "jac/logdet": "log |Jf(x)|₊"}),
]


@dataclass
class Fig:
    stem: str
    title: str
    caption: str
    job: tuple  # (plots function name or a function returning a Figure, args, kwargs)
    paths: list[Path] = field(default_factory=list)


def job(fn, *args, **kwargs) -> tuple:
    return fn, args, kwargs


def render(item: tuple) -> tuple[str, list[Path] | str | None]:
    """Draw and save one figure: its files, None when there was nothing to draw, or the
    error as text."""
    stem, (fn, args, kwargs), fig_dir, formats = item
    from . import plots

    try:
        fig = (getattr(plots, fn) if isinstance(fn, str) else fn)(*args, **kwargs)
        return stem, None if fig is None else plots.save(fig, fig_dir, stem, formats)
    except Exception as exc:  # noqa: BLE001 - one bad figure must not lose the report
        return stem, f"{type(exc).__name__}: {exc}"


def check_grid(grid, metric, cfg, finals, swept) -> None:
    """Fail early (before any drawing) on an unknown or bookkeeping --grid parameter, or an
    unknown --metric (None: the default, which need not be recorded)."""
    for k in grid or ():
        if k not in cfg.columns:
            raise ReportError(f"--grid: unknown parameter {k!r}{_close(k, cfg.columns)}; "
                              f"swept parameters: {', '.join(swept) or 'none'}")
        if bookkeeping(k):
            raise ReportError(f"--grid: {k!r} does not change what is trained; swept "
                              f"parameters: {', '.join(swept) or 'none'}")
    recorded = [c for c in finals.columns if c != "step"]
    if metric is not None and recorded and metric not in recorded:
        avail = sorted(c for c in recorded if rd.split_layer_key(c) is None)
        hint = _close(metric, recorded) or f"; recorded: {', '.join(avail[:30])}"
        raise ReportError(f"--metric: {metric!r} is not a recorded metric{hint}")


def _close(word: str, choices) -> str:
    """" (did you mean a, b?)" for the choices close to ``word`` ("" when none is)."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def plan(runs, info, cfg, finals, long, swept, fits, fit_points, grid,
         metric) -> tuple[list[Fig], list[str]]:
    """The aggregate figures that apply (data ready, not drawn yet), and the reasons for
    the skipped ones."""
    figs: list[Fig] = []
    skipped: list[str] = []
    depths = sorted(info.loc[info["finished"], "depth"].dropna().unique())
    sweep_note = f"finished runs at {len(depths)} depth(s)"

    # 2. rank profile across a depth sweep
    rank = _profile_figure(
        info, finals, "rank_c/Z", "rank_profile", "Rank profile against relative depth",
        "Numerical rank of the centered representations Z_l (rank_c) at the end of "
        "training against l/L, one line per depth (mean over seeds, band min-max). "
        "Bottleneck structure: high at both ends, low in the middle.",
        "rank of Z_l (centered)", "rank profile")
    if len(depths) >= 2 and rank is not None:
        figs.append(rank)
    else:
        skipped.append(f"rank profile against l/L: needs a depth sweep ({sweep_note} with "
                       f"rank_c/Z metrics)")

    # 3. depth fit
    if len(fits):
        lines = "; ".join(f"{r.setting or 'all runs'}: R0 = {pm(r.R0_estimate, r.R0_err)}, "
                          f"R1 = {pm(r.R1_estimate, r.R1_err)} "
                          f"({basis(r.n_depths, r.n_runs, r.n_seeds)})"
                          for r in fits.itertuples())
        figs.append(Fig(
            "depth_fit", "Parameter norm against depth",
            "||θ||² at the end of training against depth L with a least-squares line per "
            f"setting: slope = R0 (rank) estimate, intercept = R1 estimate. {lines}.",
            job("depth_fit", fit_points, fits.rename(columns={
                "R0_estimate": "slope", "R0_err": "slope_err",
                "R1_estimate": "intercept", "R1_err": "intercept_err"}))))
    else:
        skipped.append(f"depth fit of ||θ||²: needs finished runs at ≥ 2 depths ({sweep_note})")

    # 4. near-one singular values
    near = _profile_figure(
        info, finals, "near_one/W", "near_one_profile", "Near-one singular values per layer",
        "Count of weight singular values with |s − 1| ≤ δ per layer against l/L, one "
        "line per depth: about R0 in almost every layer.",
        "#{|s_i − 1| ≤ δ} of W_l", "near-one count")
    if near is not None:
        figs.append(near)
    else:
        skipped.append("near-one count per layer: no finished run records near_one/W")
    if len(depths) >= 2:
        figs.append(Fig(
            "near_one_rest", "Singular values away from one against depth",
            "Root-sum-square of the weight singular values with |s − 1| > δ, per middle "
            "layer (l/L in [0.25, 0.75]), against L, with an L^(-1/2) reference line "
            "(the theory: O(L^(-1/2))).",
            job(remaining_figure, remaining_items(runs, info))))
    else:
        skipped.append(f"size of the remaining singular values against L: needs a depth sweep "
                       f"({sweep_note})")

    # 5. training curves
    curves, panel_title, left_out = curve_data(long, info, swept, cfg)
    if len(curves):
        figs.append(Fig(
            "training_curves", "Training curves",
            f"Loss, test loss and rank estimate against step ({panel_title or 'all runs'}; "
            f"lines: other swept parameters; mean over seeds with min-max band"
            + (f"; {left_out}, spread evenly" if left_out else "") + ").",
            job("training_curves", curves, CURVES, panel_title, left_out)))
    else:
        skipped.append("training curves: no metrics recorded")

    # 6. phase diagram
    _phase_figure(info, cfg, finals, swept, grid, metric, figs, skipped)

    for stem, title, labels in EXTRAS:
        present = [k for k in labels if k in finals and finals[k].notna().any()]
        if not present or (stem.startswith("ntk") and "ntk/trace_per_nl" not in present):
            continue
        if len(depths) >= 2:
            figs.append(Fig(
                stem, title, f"{title} (final values, mean ± std over seeds, one line per "
                             f"setting).",
                job("vs_depth", vs_depth(info, finals, present),
                    [(k, labels[k]) for k in present], title)))
        else:
            skipped.append(f"{title.lower()}: needs a depth sweep ({sweep_note})")
    _closed_form_figure(runs, info, cfg, finals, swept, figs, skipped)
    _neurons_figure(info, cfg, finals, swept, figs, skipped)
    nonlin = _profile_figure(
        info, finals, "nonlin/Z", "nonlinearity_profile", "Nonlinearity impact per layer",
        "||relu(Z̃_l) − Z̃_l||_F / ||Z̃_l||_F against l/L, one line per depth: the "
        "nonlinearity matters at the ends and vanishes in the bottleneck.",
        "nonlinearity impact", "nonlinearity impact")
    if nonlin is not None:
        figs.append(nonlin)
    return figs, skipped


def _profile_figure(info, finals, prefix, stem, title, caption, ylabel, panel) -> Fig | None:
    """A per-layer metric (``prefix`` + layer) against l/L, one line per depth; None when no
    finished run records it."""
    prof = profile(info, finals, prefix)
    if not len(prof):
        return None
    return Fig(stem, title, caption, job("layer_profiles", prof, ylabel, panel))


def _closed_form_figure(runs, info, cfg, finals, swept, figs, skipped) -> None:
    """Measured ||θ||² beside the Schatten-2/L closed form, for finished linear runs."""
    points, keys = closed_form_points(runs, info, cfg, finals, swept)
    if not len(points):
        if any(r.closed for r in runs):
            skipped.append("closed form beside ||θ||²: needs params.npz of finished linear runs")
        return
    ratio = (points["norm"] / points["closed"]).median()
    figs.append(Fig(
        "closed_form", "Parameter norm against the Schatten-2/L closed form",
        "Measured ||θ||² (norm/total) against L·Σ_i s_i(M)^(2/L), the smallest ||θ||² of any "
        "depth-L linear net computing the trained end-to-end matrix M = W_1⋯W_L (from "
        "params.npz; SCIENCE.md §4). Points lie on or above y = x; on it the layers are "
        "balanced. Bars: per setting (mean over seeds), with the same closed form for the "
        f"target A where the task has one. Median ||θ||² / closed form: {ratio:.3g}.",
        job("closed_form", points, keys)))


def _neurons_figure(info, cfg, finals, swept, figs, skipped) -> None:
    """Distinct active neuron directions (and the loss) against width, for width sweeps."""
    if not layer_cols(finals, "neurons/Z"):
        return
    df = vs_width(info, cfg, finals, swept)
    if df.loc[df["metric"] == "neurons", "width"].nunique() < 2:
        skipped.append("distinct neuron directions against width: needs finished runs at "
                       "≥ 2 widths")
        return
    teacher = None
    if {"task.name", "task.hidden"} <= set(cfg.columns) \
            and set(cfg["task.name"].dropna()) == {"teacher"} and cfg["task.hidden"].nunique() == 1:
        teacher = float(cfg["task.hidden"].iloc[0])
    figs.append(Fig(
        "neurons_vs_width", "Distinct active neuron directions against width",
        "Final training (solid) and test (dashed) loss against width, and per hidden layer the "
        "number of distinct active neuron directions (solid: neurons/Z_l, active neurons whose "
        "incoming (weights, bias) vectors have cosine ≥ 0.99 count once; dotted: active "
        "neurons; docs/metrics.md), mean ± std over seeds (arXiv 2205.15809: with weight decay "
        "the effective width plateaus near the teacher's width"
        + (f", {teacher:g} here" if teacher else "") + ").",
        job("neurons_vs_width", df, teacher)))


def _phase_figure(info, cfg, finals, swept, grid, metric, figs, skipped) -> None:
    candidates = [k for k in swept if k != "seed" and cfg[k].dropna().nunique() >= 2]
    if grid is None:
        if len(candidates) < 2:
            skipped.append("phase diagram: needs two swept parameters besides seed "
                           "(choose with --grid A,B --metric M)")
            return
        grid = (candidates[0], candidates[1])
    if metric is None:  # the default: test loss, else training loss
        metric = next((m for m in ("loss/test", "loss/train") if m in finals), None)
        if metric is None:
            skipped.append("phase diagram: no loss metric recorded")
            return
    table, note = phase(info, cfg, finals, grid, metric)
    others = [k for k in swept if k not in (*grid, "seed")]
    if others:
        note += f"; averaged over {', '.join(others)}"
    figs.append(Fig(f"phase_{safe(grid[0])}_{safe(grid[1])}",
                    f"Final {metric} over {grid[0]} × {grid[1]}",
                    f"Phase diagram of the final {metric} ({note}).",
                    job("phase_diagram", table, grid[0], grid[1], metric, note)))


def per_run_figures(runs: list[Run], info: pd.DataFrame, per_run_max: int,
                    skipped: list[str]) -> list[Fig]:
    """Figure 1 for a bounded, representative set of runs (``spectra.per_run_choice``)."""
    figs = []
    chosen = per_run_choice(runs, info, per_run_max)
    for k, i in enumerate(chosen):
        r = runs[i]
        light = Run(name=r.name, path=r.path, status=r.status, config=r.config, final=r.final)
        figs.append(Fig(f"run_{k:03d}_{safe(r.name)}", f"Run {r.name}",
                        "Weight and representation singular values per layer (log colour; "
                        "grey: none) and ranks against layer, at the last recorded step.",
                        job(run_figure, light)))
    n_read = sum(1 for r in runs if r.status != "unreadable")
    if n_read > len(chosen):
        png_only = ", as PNG only" if len(runs) > per_run_max else ""
        skipped.append(f"per-run spectra figures drawn for {len(chosen)} of {n_read} readable "
                       f"runs (--per-run-max {per_run_max}){png_only}; the rest are in the "
                       f"tables (report one run folder for all its figure formats)")
    return figs


def safe(name: str) -> str:
    """``name`` as part of a file name."""
    s = re.sub(r"[^A-Za-z0-9=.,_+-]+", "_", name).strip("_")
    return s[:60] or "run"
