"""The sparsity figure (arXiv 2205.15809): final loss and, per hidden layer, the distinct
active neuron directions against width, for width sweeps whose runs record neurons/Z."""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import pandas as pd

from ..format import label
from ..tables import layer_cols
from .base import Context, Fig, shown, styled


def plan(ctx: Context) -> Iterator[Fig | str]:
    """Distinct active neuron directions (and the loss) against width, for width sweeps;
    why not for runs at one width; nothing for runs without neurons/Z."""
    cfg, finals = ctx.cfg, ctx.finals
    if not layer_cols(finals, "neurons/Z"):
        return
    df = vs_width(ctx.info, cfg, finals, ctx.swept, ctx.unconverged)
    if df.loc[df["metric"] == "neurons", "width"].nunique() < 2:
        yield "distinct neuron directions against width: needs finished runs at ≥ 2 widths"
        return
    teacher = None
    if {"task.name", "task.hidden"} <= set(cfg.columns) \
            and set(cfg["task.name"].dropna()) == {"teacher"} and cfg["task.hidden"].nunique() == 1:
        teacher = float(cfg["task.hidden"].iloc[0])
    yield Fig(
        "neurons_vs_width", "Distinct active neuron directions against width",
        "Final training (solid) and test (dashed) loss against width, and per hidden layer the "
        "number of distinct active neuron directions (solid: neurons/Z_l, active neurons whose "
        "incoming (weights, bias) vectors have cosine ≥ 0.99 count once; dotted: active "
        "neurons; docs/metrics.md), mean ± std over seeds (arXiv 2205.15809: with weight decay "
        "the effective width plateaus near the teacher's width"
        + (f", {teacher:g} here" if teacher else "") + ").",
        "neurons_vs_width", (df, teacher), key=ctx.key())


def vs_width(info: pd.DataFrame, cfg: pd.DataFrame, finals: pd.DataFrame,
             swept: list[str], unconverged: pd.Series | None = None) -> pd.DataFrame:
    """Final neuron counts per hidden layer (``neurons``, ``active``; layer l) and losses
    (``loss/fit``, ``loss/test``; layer 0) of finished runs against width: mean and std over
    seeds per (setting without width and seed, width); ``unconv``: some of those seeds is
    unconverged (per ``unconverged``)."""
    fin = info.index[info["finished"]]
    width = pd.to_numeric(cfg["width"], errors="coerce") if "width" in cfg else None
    cols = ["setting", "width", "metric", "layer", "mean", "std", "unconv"]
    if width is None or not len(fin):
        return pd.DataFrame(columns=cols)
    others = [k for k in swept if k not in ("width", "seed")]
    setting = [label({k: cfg.at[i, k] for k in others}) for i in fin]
    series = [(fam, c, layer) for fam in ("neurons", "active")
              for c, layer in layer_cols(finals, f"{fam}/Z")]
    series += [(k, k, 0) for k in ("loss/fit", "loss/test") if k in finals]
    flags = np.zeros(len(fin), bool) if unconverged is None else unconverged.loc[fin].to_numpy(bool)
    parts = []
    for metric, col, layer in series:
        d = pd.DataFrame({"setting": setting, "width": width[fin].to_numpy(), "unconv": flags,
                          "value": pd.to_numeric(finals.loc[fin, col], errors="coerce").to_numpy()})
        g = d.dropna().groupby(["setting", "width"], sort=False).agg(
            mean=("value", "mean"), std=("value", "std"), unconv=("unconv", "any")).reset_index()
        g["metric"], g["layer"] = metric, layer
        parts.append(g)
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


@styled
def draw(df: pd.DataFrame, teacher: float | None = None, max_panels: int = 2):
    """The sparsity figure (arXiv 2205.15809): final loss against width, and per setting the
    distinct active neuron directions of each hidden layer (solid; dotted: active neurons)
    against width, with y = width (every neuron distinct) and the teacher's width.

    ``df`` columns: setting, width, metric (neurons, active, loss/fit, loss/test), layer,
    mean, std (over seeds)."""
    from matplotlib import ticker as mticker

    from .. import style as ps


    settings = list(dict.fromkeys(df["setting"]))
    panels_ = settings[:max_panels]
    fig, axes = ps.panels(1, 1 + len(panels_), w=3.4, h=2.9)
    widths = np.sort(df["width"].unique())
    colors = ps.cat_colors(settings)
    ax = axes[0, 0]
    for setting in panels_:
        for metric, style in (("loss/fit", "-"), ("loss/test", "--")):
            g = df[(df["setting"] == setting) & (df["metric"] == metric)].sort_values("width")
            if len(g):
                ax.errorbar(g["width"], g["mean"], yerr=g["std"].fillna(0), fmt="o" + style,
                            color=colors[setting], capsize=2,
                            label=f"{setting + ': ' if setting else ''}{metric}")
                ps.hollow(ax, g["width"], g["mean"], g.get("unconv", False), colors[setting])
    ax.set_ylabel("final loss (solid: fit, dashed: test)")
    ax.set_title("loss against width")
    if (df.loc[df["metric"].str.startswith("loss"), "mean"] > 0).all():
        ax.set_yscale("log")
        ps.plain_log(ax.yaxis)
    ps.legend(ax, *ax.get_legend_handles_labels())
    for j, setting in enumerate(panels_, 1):
        ax = axes[0, j]
        sub = df[df["setting"] == setting]
        layers = sorted(sub.loc[sub["metric"] == "neurons", "layer"].unique())
        lcol = {l: c for l, c in zip(layers, ps.seq_colors(layers).values())}
        ax.plot(widths, widths, ":", color="0.6", lw=1, label="width (all distinct)")
        if teacher:
            ax.axhline(teacher, color="k", ls="--", lw=1, label=f"teacher width {teacher:g}")
        for l in layers:
            for metric, style, lab in (("neurons", "o-", f"distinct, layer {l}"),
                                       ("active", "s:", f"active, layer {l}")):
                g = sub[(sub["metric"] == metric) & (sub["layer"] == l)].sort_values("width")
                ax.errorbar(g["width"], g["mean"], yerr=g["std"].fillna(0), fmt=style,
                            color=lcol[l], capsize=2, ms=5 if metric == "active" else 3,
                            mfc="none" if metric == "active" else lcol[l], label=lab)
                if metric == "neurons":
                    ps.hollow(ax, g["width"], g["mean"], g.get("unconv", False), lcol[l])
        ax.set_ylabel("neurons")
        ps.title(ax, "distinct active neuron directions" + (f"\n{setting}" if setting else ""))
        ax.set_ylim(bottom=0)
        ps.legend(ax, *ax.get_legend_handles_labels())
    for ax in axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths if len(widths) <= 10 else widths[:: math.ceil(len(widths) / 8)])
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(ps.g))
        ax.xaxis.set_minor_locator(mticker.NullLocator())
        ax.set_xlabel("width")
    more = shown(len(panels_), len(settings), "settings")
    ps.suptitle(fig, "sparsity against width: mean ± std over seeds, finished runs"
                + (f" ({more})" if more else ""))
    return fig
