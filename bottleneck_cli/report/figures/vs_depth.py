"""Final metrics of later issues against depth, drawn when the runs record them: the NTK
trace and the Jacobian rank and log pseudo-determinant (``EXTRAS``), one panel per
metric, one line per setting."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from .base import Context, Fig, styled

EXTRAS = {  # stem: (title, {metric: axis label}, the metric without which it is not drawn)
    "ntk_vs_depth": ("NTK trace against depth",
                     {"ntk/trace_per_nl": "Tr Θ / (N·L)", "ntk/max_eig": "λ_max(Θ)"},
                     "ntk/trace_per_nl"),
    "jacobian_vs_depth": ("Jacobian rank and log pseudo-determinant against depth",
                          {"jac/rank": "rank Jf(x)", "jac/logdet": "log |Jf(x)|₊"}, None),
    "cbn_vs_depth": ("CBN rank against depth",  # arXiv 2402.08010: ||θ||²/L -> the slope
                     {"bottleneck/cbn_rank": "CBN rank (middle weights)",
                      "bottleneck/cbn_slope": "CBN rank / (h w): predicted slope",
                      "norm/per_depth": "||θ||² / L"}, "bottleneck/cbn_rank"),
}


def plan(stem: str, ctx: Context) -> Iterator[Fig | str]:
    """The figure ``stem`` of ``EXTRAS`` for a depth sweep whose runs record its metrics;
    why not for other sweeps that record them; nothing for runs that do not."""
    title, labels, needs = EXTRAS[stem]
    present = [k for k in labels if k in ctx.finals and ctx.finals[k].notna().any()]
    if not present or (needs and needs not in present):
        return
    if len(ctx.depths) < 2:
        yield f"{title.lower()}: needs a depth sweep ({ctx.sweep_note})"
        return
    yield Fig(stem, title, f"{title} (final values, mean ± std over seeds, one line per "
                           f"setting).",
              stem, (vs_depth(ctx.info, ctx.finals, present, ctx.unconverged),
                     [(k, labels[k]) for k in present], title), key=ctx.key())


def vs_depth(info: pd.DataFrame, finals: pd.DataFrame, keys: list[str],
             unconverged: pd.Series | None = None) -> pd.DataFrame:
    """Final ``keys`` of finished runs per (setting, depth): mean and std over seeds, and
    unconv (one of them is unconverged, per ``unconverged``)."""
    fin = info[info["finished"] & np.isfinite(info["depth"])]
    parts = []
    for key in keys:
        d = fin[["others", "depth"]].copy()
        d["value"] = pd.to_numeric(finals.loc[fin.index, key], errors="coerce")
        d["unconv"] = False if unconverged is None else unconverged.loc[fin.index]
        g = d.groupby(["others", "depth"], sort=False).agg(
            mean=("value", "mean"), std=("value", "std"), unconv=("unconv", "any")).reset_index()
        g["metric"] = key
        parts.append(g.rename(columns={"others": "setting"}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["setting", "depth", "mean", "std", "unconv", "metric"])


@styled
def draw(df: pd.DataFrame, metrics: Sequence[tuple[str, str]], title: str):
    """Final metrics against depth, one panel per metric, one line per setting.

    ``df`` columns: setting, metric, depth, mean, std, unconv (optional: hollow points)."""
    from .. import style as ps

    fig, axes = ps.panels(1, len(metrics), w=3.6, h=2.9)
    colors = ps.cat_colors(df["setting"])
    for ax, (key, label) in zip(axes.flat, metrics):
        sub = df[df["metric"] == key]
        for setting, g in sub.groupby("setting", sort=False):
            g = g.sort_values("depth")
            ax.plot(g["depth"], g["mean"], color=colors[setting], label=setting or None)
            ax.errorbar(g["depth"], g["mean"], yerr=g["std"].fillna(0), ls="none",
                        color=colors[setting], capsize=2, marker="o")
            ps.hollow(ax, g["depth"], g["mean"], g.get("unconv", False), colors[setting])
        ax.set_xlabel("depth L")
        ax.set_ylabel(label)
        ps.sparse(ax)
        if not len(sub):
            ps.empty(ax)
    ps.legend(fig, *axes[0, 0].get_legend_handles_labels())
    ps.suptitle(fig, title + " (mean ± std over seeds)")
    return fig

