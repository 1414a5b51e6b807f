"""Figure 3: the parameter norm ||θ||² (and ||θ||²/L) against depth L with the
least-squares line per setting, whose slope estimates R0 (the rank) and intercept R1.
The fit itself is a report table (``fit.depth_fit_table``); this figure draws it."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from ..fit import basis, converged_mask
from ..format import pm
from .base import Context, Fig, evenly, sentence, shown, styled

MAX_SETTINGS = 12  # settings drawn (spread evenly); the caption lists every fit


def plan(ctx: Context) -> Iterator[Fig | str]:
    """The depth fit when one was made (finished runs at >= 2 depths); else why not."""
    fits = ctx.fits
    if not len(fits):
        left_out = int((ctx.info["finished"] & ~converged_mask(ctx.finals)).sum())
        why = (f"; {left_out} finished run(s) have not converged and are left out "
               "(bncli report --include-unconverged fits them too)") if left_out else ""
        yield (f"depth fit of ||θ||²: needs converged finished runs at ≥ 2 depths "
               f"({ctx.sweep_note}{why})")
        return
    lines = "; ".join(f"{r.setting or 'all runs'}: R0 = {pm(r.R0_estimate, r.R0_err)}, "
                      f"R1 = {pm(r.R1_estimate, r.R1_err)} "
                      f"({basis(r.n_depths, r.n_runs, r.n_seeds)})"
                      for r in fits.itertuples())
    settings = list(dict.fromkeys(fits["setting"]))
    picked = evenly(settings, MAX_SETTINGS)
    note = shown(len(picked), len(settings), "settings, spread evenly")
    points = ctx.fit_points[ctx.fit_points["setting"].isin(picked)]
    # unconverged runs are in the fit (and drawn hollow) only with --include-unconverged
    kept = fits.loc[fits["unconverged_left_out"] == 0, "setting"]
    fin = ctx.info[ctx.info["finished"] & ctx.info["others"].isin(picked)]
    bad = fin[ctx.unconverged.loc[fin.index] & fin["others"].isin(kept)]
    cells = pd.MultiIndex.from_frame(points[["setting", "depth"]])
    points = points.assign(unconv=cells.isin(pd.MultiIndex.from_frame(bad[["others", "depth"]]))
                           if len(bad) else False)
    key = ctx.key(fin.index) if points["unconv"].any() else ""
    yield Fig(
        "depth_fit", "Parameter norm against depth",
        "||θ||² at the end of training against depth L with a least-squares line per "
        f"setting: slope = R0 (rank) estimate, intercept = R1 estimate. {lines}."
        + sentence(note), "depth_fit", (points, fits[fits["setting"].isin(picked)].rename(
            columns={"R0_estimate": "slope", "R0_err": "slope_err",
                     "R1_estimate": "intercept", "R1_err": "intercept_err"}), note), key=key)


@styled
def draw(points: pd.DataFrame, fits: pd.DataFrame, note: str = ""):
    """||theta||^2 and ||theta||^2/L against depth L with the least-squares line.

    ``points``: setting, depth, mean, std, n (of norm/total over seeds).
    ``fits``: setting, slope, slope_err, intercept, intercept_err (slope = R0, intercept = R1),
    n_depths, n_runs, n_seeds (what each fit rests on, in the legend for a few settings);
    ``unconv`` (optional): the point includes unconverged runs (drawn hollow)."""
    from .. import style as ps

    fig, axes = ps.panels(1, 2, w=4.0, h=3.1)
    colors = ps.cat_colors(points["setting"])
    fit_by = {r.setting: r for r in fits.itertuples()}
    for setting, g in points.groupby("setting", sort=False):
        g = g.sort_values("depth")
        c = colors[setting]
        L = g["depth"].to_numpy(float)
        fit = fit_by.get(setting)
        label = setting or "all runs"
        if fit is not None:
            label += (f"\nR0 = {pm(fit.slope, fit.slope_err)}, "
                      f"R1 = {pm(fit.intercept, fit.intercept_err)}")
            if len(fits) <= 4:
                label += f"\n({basis(fit.n_depths, fit.n_runs, fit.n_seeds)})"
        bad = g["unconv"].to_numpy(bool) if "unconv" in g else np.zeros(len(g), bool)
        for ax, y, div in ((axes[0, 0], g["mean"], 1.0), (axes[0, 1], g["mean"] / L, L)):
            for no in (False, True):  # hollow: the mean includes unconverged runs
                part = bad == no
                if part.any():
                    first = not no or bad.all()
                    ax.errorbar(L[part], np.asarray(y)[part],
                                yerr=np.asarray(g["std"].fillna(0) / div)[part], capsize=2,
                                **ps.marked(no, line=False, marker="o", ls="none", color=c,
                                            label=label if ax is axes[0, 0] and first
                                            else None))
        if fit is not None:
            xs = np.linspace(L.min(), L.max(), 100)
            axes[0, 0].plot(xs, fit.slope * xs + fit.intercept, color=c, lw=1)
            axes[0, 1].plot(xs, fit.slope + fit.intercept / xs, color=c, lw=1)
            axes[0, 1].axhline(fit.slope, color=c, lw=0.8, ls=":")
    axes[0, 0].set_xlabel("depth L")
    axes[0, 0].set_ylabel("||θ||²")
    axes[0, 0].set_title("||θ||² ≈ R0·L + R1")
    axes[0, 1].set_xlabel("depth L")
    axes[0, 1].set_ylabel("||θ||² / L")
    axes[0, 1].set_title("||θ||²/L ≈ R0 + R1/L  (dotted: R0)")
    ps.sparse(axes[0, 0])
    ps.sparse(axes[0, 1])
    ps.legend(fig, *axes[0, 0].get_legend_handles_labels())
    ps.suptitle(fig, "parameter norm against depth (mean ± std over seeds, finished runs"
                + (f"; {note})" if note else ")"))
    return fig
