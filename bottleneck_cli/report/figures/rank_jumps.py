"""Rank over time of a deep linear net's end-to-end matrix A (arXiv 2305.16038, 2106.15933):
``rank_over_time`` (rank of A and its singular values against step, GD and SGD overlaid),
``loss_plateaus`` (loss against step with the detected plateaus shaded) and ``staircase``
(the step at which the k-th singular value reaches half its final value, against k, one
line per init setting). Plateaus and rise steps: ``trajectory.py``."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from ...trajectory import plateaus
from ..format import label
from .base import Context, Fig, evenly, sentence, shown, sortkey, styled

MAX_RUNS = 12  # runs per figure (spread evenly)
MAX_K = 6  # singular values drawn


def _series(ctx: Context, metrics: list[str]) -> pd.DataFrame:
    long = ctx.long
    if long is None or not len(long):
        return pd.DataFrame()
    sub = long[long["metric"].isin(metrics) & long["layer"].isna()]
    return sub.assign(run=sub["run"].astype(str), metric=sub["metric"].astype(str))


def _runs_by(ctx: Context, key: str) -> dict[str, str]:
    """run name -> label of ``key`` (the optimizer, the init setting) for finished or
    diverged runs (a diverged member stays a recorded outcome)."""
    out = {}
    for i, run in enumerate(ctx.runs):
        if key in ctx.cfg.columns and run.status in ("finished", "diverged"):
            out[run.name] = label({key: ctx.cfg[key].iloc[i]})
    return out


def plan(which: str, ctx: Context) -> Iterator[Fig | str]:
    """Figure ``which`` (rank_over_time, loss_plateaus, staircase) where runs recorded
    ``rank/A``."""
    data = _series(ctx, ["rank/A", "loss/train", *[f"sval/A/{k}" for k in range(1, MAX_K + 1)]])
    if not len(data) or "rank/A" not in set(data["metric"]):
        yield f"{which}: no run recorded rank/A (deep linear chains only)"
        return
    opt = _runs_by(ctx, "optim.name")
    runs = evenly(sorted(opt, key=lambda r: (opt[r], r)), MAX_RUNS)
    keep = data[data["run"].isin(runs)]
    bad = set(ctx.info.loc[ctx.unconverged, "run"])
    if which == "rank_over_time":
        yield Fig("rank_over_time", "Rank of A over training",
                  "Numerical rank of the end-to-end matrix A and its largest singular values "
                  "against step, one line per run, coloured by optimizer (GD and SGD overlaid)."
                  + sentence(shown(len(runs), len(opt), "runs, spread evenly")),
                  "rank_over_time", (keep, {r: opt[r] for r in runs},
                                     sorted(bad & set(runs))), key=ctx.key(ctx.runs_of(runs)))
    elif which == "loss_plateaus":
        yield Fig("loss_plateaus", "Loss plateaus",
                  "Training objective against step, one panel per run; shaded: the plateaus "
                  "detected by trajectory.py (|d log loss/d step| below 5% of its "
                  "peak)." + sentence(shown(len(runs[:6]), len(opt), "runs")), "loss_plateaus",
                  (keep[keep["metric"] == "loss/train"], runs[:6],
                   sorted(bad & set(runs[:6]))), key=ctx.key(ctx.runs_of(runs[:6])))
    else:
        yield from _plan_staircase(ctx)


def _plan_staircase(ctx: Context) -> Iterator[Fig | str]:
    rise = [c for c in ctx.finals.columns if str(c).startswith("traj/rise/")]
    init = next((k for k in ("model.init_gamma", "model.init_scale") if k in ctx.swept), None)
    if not rise or init is None:
        yield "staircase: needs rise steps (traj/rise/k) and a swept model.init_gamma or init_scale"
        return
    rows, used = [], set()
    for i, run in enumerate(ctx.runs):
        if run.status != "finished":
            continue
        for c in rise:
            v = pd.to_numeric(ctx.finals[c].iloc[i], errors="coerce")
            if np.isfinite(v):
                rows.append({"init": ctx.cfg[init].iloc[i], "k": int(c.rsplit("/", 1)[1]),
                             "step": float(v), "unconv": bool(ctx.unconverged.iat[i])})
                used.add(ctx.info.index[i])
    if rows:
        df = pd.DataFrame(rows).groupby(["init", "k"]).agg(
            mean=("step", "mean"), min=("step", "min"), max=("step", "max"),
            unconv=("unconv", "any"))
        yield Fig("staircase", "Staircase: rise step of each singular value",
                  f"Step at which the k-th singular value of A first reaches half its final "
                  f"value, against k, one line per {init} (mean over the other settings: "
                  f"seeds, ridges; min-max bars; symlog axis).",
                  "staircase", (df.reset_index(), init),
                  key=ctx.key(sorted(used)))


@styled
def draw_rank(df: pd.DataFrame, opt: dict, unconverged: list = ()):
    from .. import style as ps

    fig, axes = ps.panels(1, 2, w=3.6, h=2.6)
    colors = ps.cat_colors(sorted(set(opt.values())))
    seen = set()
    for run, g in df.groupby("run", sort=False):
        c = colors[opt[run]]
        lab = None if opt[run] in seen else opt[run]
        seen.add(opt[run])
        r = g[g["metric"] == "rank/A"].sort_values("step")
        no = run in unconverged
        axes[0, 0].step(r["step"], r["value"], where="post", alpha=0.7,
                        **ps.marked(no, color=c, label=lab))
        for k in range(1, MAX_K + 1):
            s = g[g["metric"] == f"sval/A/{k}"].sort_values("step")
            axes[0, 1].plot(s["step"], s["value"], alpha=0.5, lw=0.8, **ps.marked(no, color=c))
    axes[0, 0].set_ylabel("rank(A)")
    axes[0, 1].set_ylabel("singular values of A")
    axes[0, 1].set_yscale("symlog", linthresh=1e-2)
    for ax in axes[0]:
        ax.set_xlabel("step")
    ps.legend(fig, *axes[0, 0].get_legend_handles_labels())
    return fig


@styled
def draw_plateaus(df: pd.DataFrame, runs: list, unconverged: list = ()):
    from .. import style as ps

    runs = [r for r in runs if (df["run"] == r).any()] or runs[:1]
    fig, axes = ps.panels(1, len(runs), w=2.6, h=2.3)
    for j, run in enumerate(runs):
        ax = axes[0, j]
        g = df[df["run"] == run].sort_values("step")
        if not len(g):
            ps.empty(ax)
            continue
        ax.plot(g["step"], g["value"], lw=1, **ps.marked(run in unconverged, color="k"))
        for a, b in plateaus(g["step"].to_numpy(), g["value"].to_numpy()):
            ax.axvspan(a, b, color="tab:orange", alpha=0.25, lw=0)
        if (g["value"] > 0).all():
            ax.set_yscale("log")
        ps.title(ax, run, size=7)
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("loss/train")
    return fig


@styled
def draw_staircase(df: pd.DataFrame, init: str):
    from .. import style as ps

    fig, axes = ps.panels(1, 1, w=3.6, h=2.6)
    ax = axes[0, 0]
    values = sorted(df["init"].unique(), key=sortkey)
    colors = ps.cat_colors(values)
    for v in values:
        g = df[df["init"] == v].sort_values("k")
        ax.errorbar(g["k"], g["mean"], yerr=[g["mean"] - g["min"], g["max"] - g["mean"]],
                    color=colors[v], marker="o", ms=3, capsize=2, label=label({init: v}))
        ps.hollow(ax, g["k"], g["mean"], g.get("unconv", False), colors[v])
    ax.set_xlabel("k (k-th singular value of A)")
    ax.set_xticks(sorted(df["k"].unique()))
    ax.set_ylabel("rise step")
    ax.set_yscale("symlog", linthresh=100)
    ax.set_ylim(bottom=0)
    ps.legend(ax, *ax.get_legend_handles_labels())
    return fig
