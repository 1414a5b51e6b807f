"""Convergence of each run: the objective's relative gradient norm and the layer-norm
balance against step (convergence.py; docs/metrics.md), one line per run, unconverged
runs dashed."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from .base import Context, Fig, evenly, styled

MAX_LINES = 24


def plan(ctx: Context) -> Iterator[Fig | str]:
    """Drawn when the runs record ``conv/grad`` (bncli records it at every record)."""
    if ctx.long is None or "metric" not in ctx.long or \
            not ctx.long["metric"].isin(["conv/grad"]).any():
        return
    data = curves(ctx.long, ctx.info, ctx.finals)
    runs = list(data["run"].unique())
    shown = evenly(runs, MAX_LINES)
    note = f" Showing {len(shown)} of {len(runs)} runs." if len(shown) < len(runs) else ""
    yield Fig("convergence", "Convergence: gradient norm and layer-norm balance",
              "Relative gradient norm ||∇(fit + λ||θ||²)|| / ||θ|| and, where the model has "
              "the identity, the layer-norm balance max/min ||W_l||² − 1, against step; "
              "dashed: runs whose verdict is not converged." + note,
              "convergence", (data[data["run"].isin(shown)],))


def curves(long: pd.DataFrame, info: pd.DataFrame, finals: pd.DataFrame) -> pd.DataFrame:
    """Rows (run, step, metric, value, converged) for conv/grad and conv/balance."""
    d = long[long["metric"].isin(["conv/grad", "conv/balance"])][["run", "step", "metric",
                                                                   "value"]].copy()
    verdict = pd.to_numeric(finals.get("converged", pd.Series(np.nan, index=finals.index)),
                            errors="coerce")
    d["converged"] = d["run"].map(dict(zip(info["run"], verdict.reindex(info.index))))
    return d


@styled
def draw(df: pd.DataFrame):
    from .. import style as ps

    fig, axes = ps.panels(1, 2, w=3.8, h=2.9)
    colors = ps.cat_colors(df["run"])
    for ax, (metric, label) in zip(axes.flat, [("conv/grad", "||∇|| / ||θ||"),
                                               ("conv/balance", "max/min ||W_l||² − 1")]):
        sub = df[df["metric"] == metric]
        for run, g in sub.groupby("run", sort=False):
            g = g[g["value"] > 0].sort_values("step")
            dashed = g["converged"].iloc[0] == 0 if len(g) else False
            ax.plot(g["step"], g["value"], "--" if dashed else "-", color=colors[run],
                    label=run, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        if not len(sub):
            ps.empty(ax, "not recorded for these models")
    if len(df["run"].unique()) <= 8:
        axes[0, 0].legend(loc="best", fontsize=6)
    fig.suptitle("Convergence diagnostics", fontsize=10)
    return fig
