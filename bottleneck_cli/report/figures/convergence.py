"""Convergence of each run: the objective's relative gradient norm and the layer-norm
balance against step (convergence.py; docs/metrics.md), one line per run, unconverged
runs dashed."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from .base import Context, Fig, evenly, sentence, shown, styled

MAX_LINES = 24


def plan(ctx: Context) -> Iterator[Fig | str]:
    """Drawn when the runs record ``conv/grad`` (bncli records it at every record)."""
    if ctx.long is None or "metric" not in ctx.long or \
            not ctx.long["metric"].isin(["conv/grad"]).any():
        return
    data = curves(ctx.long, ctx.info, ctx.finals)
    runs = list(data["run"].unique())
    picked = evenly(runs, MAX_LINES)
    note = shown(len(picked), len(runs), "runs, spread evenly")
    yield Fig("convergence", "Convergence: gradient norm and layer-norm balance",
              "Relative gradient norm ||∇(fit + λ||θ||²)|| / ||θ|| and, where the model has "
              "the identity, the layer-norm balance max/min ||W_l||² − 1, against step, one "
              "line per run." + sentence(note),
              "convergence", (data[data["run"].isin(picked)], note),
              key=ctx.key(ctx.runs_of(picked)))


def curves(long: pd.DataFrame, info: pd.DataFrame, finals: pd.DataFrame) -> pd.DataFrame:
    """Rows (run, step, metric, value, converged) for conv/grad and conv/balance."""
    d = long[long["metric"].isin(["conv/grad", "conv/balance"])][["run", "step", "metric",
                                                                   "value"]].copy()
    verdict = pd.to_numeric(finals.get("converged", pd.Series(np.nan, index=finals.index)),
                            errors="coerce")
    d["converged"] = d["run"].map(dict(zip(info["run"], verdict.reindex(info.index))))
    return d


@styled
def draw(df: pd.DataFrame, note: str = ""):
    from .. import style as ps

    fig, axes = ps.panels(1, 2, w=3.8, h=2.9)
    colors = ps.cat_colors(df["run"].astype(str))
    for ax, (metric, label) in zip(axes.flat, [("conv/grad", "||∇|| / ||θ||"),
                                               ("conv/balance", "max/min ||W_l||² − 1")]):
        sub = df[df["metric"] == metric]
        for run, g in sub.groupby("run", sort=False):
            g = g[g["value"] > 0].sort_values("step")
            no = len(g) and g["converged"].iloc[0] == 0
            ax.plot(g["step"], g["value"], **ps.marked(no, color=colors[str(run)], lw=1,
                                                        label=str(run)))
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        if not len(sub):
            ps.empty(ax, "not recorded for these models")
    few = len(colors) <= ps.LEGEND_RIGHT
    if few:
        ps.legend(fig, *axes[0, 0].get_legend_handles_labels(), title="run")
    ps.suptitle(fig, "Convergence diagnostics" + "".join(
        f" ({t})" for t in (note, "" if few else "colour: runs in table order") if t))
    return fig
