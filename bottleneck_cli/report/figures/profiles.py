"""Per-layer profiles against relative depth l/L, one line per depth: the rank of the
centered representations (figure 2), the near-one count of the weight singular values
(figure 4a) and the impact of the nonlinearity. One drawing for all three; ``PROFILES``
holds what tells them apart."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

from ..tables import layer_cols
from .base import Context, Fig, sentence, shown, styled


@dataclass(frozen=True)
class Profile:
    prefix: str  # per-layer metric: prefix + layer
    title: str
    caption: str
    ylabel: str
    panel: str  # panel title when there is one setting
    depth_sweep: bool  # drawn only for finished runs at >= 2 depths
    missing: str  # why it is skipped ("": left out silently)


PROFILES = {
    "rank_profile": Profile(
        "rank_c/Z", "Rank profile against relative depth",
        "Numerical rank of the centered representations Z_l (rank_c) at the end of "
        "training against l/L, one line per depth (mean over seeds, band min-max). "
        "Bottleneck structure: high at both ends, low in the middle.",
        "rank of Z_l (centered)", "rank profile", True,
        "rank profile against l/L: needs a depth sweep ({sweep_note} with rank_c/Z metrics)"),
    "near_one_profile": Profile(
        "near_one/W", "Near-one singular values per layer",
        "Count of weight singular values with |s − 1| ≤ δ per layer against l/L, one "
        "line per depth: about R0 in almost every layer.",
        "#{|s_i − 1| ≤ δ} of W_l", "near-one count", False,
        "near-one count per layer: no finished run records near_one/W"),
    "nonlinearity_profile": Profile(
        "nonlin/Z", "Nonlinearity impact per layer",
        "||relu(Z̃_l) − Z̃_l||_F / ||Z̃_l||_F against l/L, one line per depth: the "
        "nonlinearity matters at the ends and vanishes in the bottleneck.",
        "nonlinearity impact", "nonlinearity impact", False, ""),
}


def profile(info: pd.DataFrame, finals: pd.DataFrame, prefix: str,
            unconverged: pd.Series | None = None) -> pd.DataFrame:
    """Final per-layer values of ``prefix`` for finished runs, aggregated over seeds by
    (setting-without-depth, depth, layer): columns panel, depth, rel, mean, lo, hi, and
    unconv (one of the runs is unconverged, per ``unconverged``)."""
    cols = layer_cols(finals, prefix)
    fin = info.index[info["finished"] & np.isfinite(info["depth"])]
    if not cols or not len(fin):
        return pd.DataFrame(columns=["panel", "depth", "rel", "mean", "lo", "hi", "unconv"])
    sub = finals.loc[fin, [c for c, _ in cols]].apply(pd.to_numeric, errors="coerce")
    sub.columns = [layer for _, layer in cols]
    long = sub.stack().rename("value").reset_index()
    long.columns = ["i", "layer", "value"]
    long["panel"] = info.loc[long["i"], "others"].to_numpy()
    long["depth"] = info.loc[long["i"], "depth"].to_numpy()
    long["unconv"] = False if unconverged is None else unconverged.loc[long["i"]].to_numpy()
    agg = long.groupby(["panel", "depth", "layer"], sort=False).agg(
        mean=("value", "mean"), lo=("value", "min"), hi=("value", "max"),
        unconv=("unconv", "any")).reset_index()
    agg["rel"] = agg["layer"] / agg["depth"]
    order = {p: j for j, p in enumerate(info.sort_values("order")["others"].unique())}
    agg["_o"] = agg["panel"].map(order)
    return agg.sort_values(["_o", "depth", "layer"]).drop(columns="_o").reset_index(drop=True)


def plan(stem: str, ctx: Context) -> Iterator[Fig | str]:
    """The profile ``stem`` of ``PROFILES`` when a finished run records its metric (and,
    where it needs one, the runs sweep depth); else why not."""
    p = PROFILES[stem]
    if len(ctx.depths) >= 2 or not p.depth_sweep:
        prof = profile(ctx.info, ctx.finals, p.prefix, ctx.unconverged)
        if len(prof):
            n = prof["panel"].nunique()
            note = shown(min(MAX_PANELS, n), n, "settings (panels), spread evenly")
            yield Fig(stem, p.title, p.caption + sentence(note), stem,
                      (prof, p.ylabel, p.panel), key=ctx.key())
            return
    if p.missing:
        yield p.missing.format(sweep_note=ctx.sweep_note)


MAX_PANELS = 3


@styled
def draw(df: pd.DataFrame, ylabel: str, title: str, max_panels: int = MAX_PANELS):
    """Lines of a per-layer quantity against relative depth l/L, one line per depth.

    ``df`` columns: panel (setting label), depth, rel, mean, lo, hi. One panel per
    setting (at most ``max_panels``, spread over the settings); depth colours are shared
    and explained once."""
    from .. import style as ps

    allp = list(dict.fromkeys(df["panel"])) or [""]
    picks = np.unique(np.linspace(0, len(allp) - 1, max_panels).round().astype(int))
    panels = [allp[i] for i in picks]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = ps.panels(nrows, ncols)
    colors = ps.seq_colors(df["depth"]) if len(df) else {}
    few = len(colors) <= 6
    for ax, panel in zip(axes.flat, panels):
        sub = df[df["panel"] == panel]
        for depth, g in sub.groupby("depth", sort=True):
            g = g.sort_values("rel")
            ps.band(ax, g["rel"], g["mean"], g["lo"], g["hi"], colors[depth], f"L={depth:g}",
                    marker="o" if few and len(g) <= 16 else None,
                    unconverged="unconv" in g and g["unconv"].any())
        ax.set_xlabel("relative depth l/L")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=min(0, float(sub["lo"].min())) if len(sub) else 0)
        ps.title(ax, panel or title)
        ps.sparse(ax)
        if not len(sub):
            ps.empty(ax)
    if colors:
        ps.depth_legend(fig, colors)
    ps.hide_unused(axes, len(panels))
    more = shown(len(panels), len(allp), "settings")
    ps.suptitle(fig, title + ": mean over seeds, band min-max" + (f" ({more})" if more else ""))
    return fig
