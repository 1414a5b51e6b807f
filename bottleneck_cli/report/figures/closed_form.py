"""The measured parameter norm ||θ||² of finished linear runs beside the Schatten-2/L
closed form of their trained end-to-end matrix (SCIENCE.md §4; the closed forms are
computed when the runs are read, ``closed``)."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from ..format import fmt
from .base import Context, Fig, styled


def plan(ctx: Context) -> Iterator[Fig | str]:
    """Measured ||θ||² beside the Schatten-2/L closed form, for finished linear runs; why
    not when linear runs lack params.npz; nothing for other runs."""
    points, keys = norm_points(ctx.runs, ctx.info, ctx.cfg, ctx.finals, ctx.swept,
                               ctx.unconverged)
    if not len(points):
        if any(r.closed for r in ctx.runs):
            yield "closed form beside ||θ||²: needs params.npz of finished linear runs"
        return
    ratio = (points["norm"] / points["closed"]).median()
    yield Fig(
        "closed_form", "Parameter norm against the Schatten-2/L closed form",
        "Measured ||θ||² (norm/total) against L·Σ_i s_i(M)^(2/L), the smallest ||θ||² of any "
        "depth-L linear net computing the trained end-to-end matrix M = W_1⋯W_L (from "
        "params.npz; SCIENCE.md §4). Points lie on or above y = x; on it the layers are "
        "balanced. Bars: per setting (mean over seeds), with the same closed form for the "
        f"target A where the task has one. Median ||θ||² / closed form: {ratio:.3g}.",
        "closed_form", (points, keys), key=ctx.key(points.index))


def norm_points(runs, info: pd.DataFrame, cfg: pd.DataFrame, finals: pd.DataFrame,
                swept: list[str], unconverged: pd.Series | None = None
                ) -> tuple[pd.DataFrame, str]:
    """Finished linear runs with a trained closed form (``closed``): columns setting
    (the swept values but seed, as text), norm (measured ||θ||²), closed (L·Σ s_i(M)^(2/L)
    of the trained M), target (the same for the target A; NaN if unknown). Also the names
    of the swept keys that the setting text lists. Indexed by the run's row of ``info``;
    ``unconv``: its verdict is not converged (per ``unconverged``)."""
    keys = [k for k in swept if k != "seed"]
    norm = pd.to_numeric(finals["norm/total"], errors="coerce") if "norm/total" in finals \
        else pd.Series(np.nan, index=finals.index)
    rows, index = [], []
    for i, r in enumerate(runs):
        if info.at[i, "finished"] and "closed_form" in r.closed and np.isfinite(norm.iloc[i]):
            rows.append({"setting": ", ".join(fmt(cfg.at[i, k]) for k in keys),
                         "norm": float(norm.iloc[i]), "closed": r.closed["closed_form"],
                         "target": r.closed.get("closed_form_target", np.nan),
                         "unconv": bool(unconverged is not None and unconverged.iat[i])})
            index.append(info.index[i])
    return pd.DataFrame(rows, index=index, columns=["setting", "norm", "closed", "target",
                                                    "unconv"]), ", ".join(keys)


@styled
def draw(points: pd.DataFrame, keys: str):
    """Measured ||θ||² against the Schatten-2/L closed form L·Σ s_i^(2/L) (SCIENCE.md §4).

    ``points``: one row per finished linear run: setting (swept values as text), norm,
    closed (of the trained end-to-end matrix M), target (of the target A, may be NaN).
    Left: one point per run with the line y = x (no net computing M lies below it; on it:
    a balanced minimum). Right: per setting (mean over seeds), the three as bars."""
    from matplotlib import ticker as mticker

    from .. import style as ps


    settings = list(dict.fromkeys(points["setting"]))
    fig, axes = ps.panels(1, 2, w=3.9, h=max(2.9, 0.2 * len(settings) + 1.0))
    ax = axes[0, 0]
    colors = ps.cat_colors(settings)
    bad = points["unconv"] if "unconv" in points else pd.Series(False, index=points.index)
    for setting, g in points.groupby("setting", sort=False):
        ax.plot(g["closed"], g["norm"], "o", color=colors[setting], label=setting or "all runs")
        ps.hollow(ax, g["closed"], g["norm"], bad.loc[g.index], colors[setting])
    vals = np.r_[points["closed"], points["norm"]]
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    log = lo > 0 and hi / lo > 20
    pad = 0.06 * (hi - lo) or 0.5
    ends = np.array([lo / 1.2, hi * 1.2]) if log else np.array([lo - pad, hi + pad])
    ax.plot(ends, ends, "k--", lw=1, label="y = x (balanced minimum)", zorder=0)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ps.plain_log(ax.xaxis, ax.yaxis)
        if hi / lo > 200:  # decades only, or the 1-2-5 labels collide
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(mticker.LogLocator(numticks=6))
    else:
        ps.sparse(ax)
    ax.set_xlabel("closed form L·Σ s_i(M)^(2/L) of the trained M")
    ax.set_ylabel("measured ||θ||²")
    ax.set_title("measured norm against its lower bound")
    handles, labels = ax.get_legend_handles_labels()

    ax = axes[0, 1]
    mean = points.groupby("setting", sort=False)[["norm", "closed", "target"]].mean()
    y = np.arange(len(mean))
    bars = [("norm", "measured ||θ||²", "0.35"), ("closed", "closed form, trained M", "C0"),
            ("target", "closed form, target A", "C1")]
    bars = [b for b in bars if mean[b[0]].notna().any()]
    h = 0.8 / len(bars)
    for k, (col, lab, c) in enumerate(bars):
        ax.barh(y + (k - (len(bars) - 1) / 2) * h, mean[col], height=h, color=c, label=lab)
    ax.set_yticks(y, [s or "all runs" for s in mean.index])
    ax.yaxis.tick_right()  # setting labels in the right margin, clear of the left panel
    ax.yaxis.set_label_position("right")
    ax.invert_yaxis()
    ax.set_ylabel(keys or "setting")
    ax.set_xlabel("||θ||²")
    ax.set_title("per setting (mean over seeds)")
    h2, l2 = ax.get_legend_handles_labels()
    ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=4))
    ps.legend(fig, handles + h2, labels + l2, title=f"colour: {keys}" if keys else None)
    ps.suptitle(fig, "parameter norm and the Schatten-2/L closed form (SCIENCE.md §4), "
                "finished linear runs")
    return fig
