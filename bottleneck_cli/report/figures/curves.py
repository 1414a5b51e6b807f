"""Figure 5: training curves against step (loss, test loss, rank estimate), one panel
per value of the first swept parameter, one line per setting of the others; seeds
aggregated (mean, min-max band)."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from ..format import label
from .base import Context, Fig, evenly, shown, sortkey, styled

CURVES = [  # rows of the training-curve figure: (y label, log y, [(metric, line style)])
    ("loss (solid: train objective,\ndashed: test fit)", True,
     [("loss/train", "-"), ("loss/test", "--")]),
    ("rank estimate (solid: centered,\ndotted: uncentered)", False,
     [("bottleneck/rank_c", "-"), ("bottleneck/rank", ":")]),
]
MAX_LINES = 8  # lines per training-curve panel


def plan(ctx: Context) -> Iterator[Fig | str]:
    """The training curves when metrics were recorded; else why not."""
    df, panel_title, left_out = curves(ctx.long, ctx.info, ctx.swept, ctx.cfg,
                                       ctx.unconverged)
    if not len(df):
        yield "training curves: no metrics recorded"
        return
    # off the frame before it is drawn: pandas deep-copies attrs on every operation
    key = ctx.key(ctx.runs_of(df.attrs.pop("runs", ())))
    yield Fig(
        "training_curves", "Training curves",
        f"Loss, test loss and rank estimate against step ({panel_title or 'all runs'}; "
        f"lines: other swept parameters; mean over seeds with min-max band"
        + (f"; {left_out}, spread evenly" if left_out else "")
        + ("; a hollow circle ends a line whose seeds include an unconverged run" if key
           else "") + ").",
        "training_curves", (df, CURVES, panel_title, left_out), key=key)


def curves(long: pd.DataFrame, info: pd.DataFrame, swept: list[str], cfg: pd.DataFrame,
           unconverged: pd.Series | None = None) -> tuple[pd.DataFrame, str, str]:
    """Training-curve aggregates: panel = values of the first swept parameter (not seed),
    line = the other swept parameters; mean and min/max over seeds at each step, and
    ``unconv``: whether one of the line's runs is unconverged (``unconverged``, per run).
    Also the panel title and a note on the panels and lines left out ("" when none);
    ``attrs["runs"]``: the names of the runs drawn."""
    no_seed = [k for k in swept if k != "seed"]
    panel_key = no_seed[0] if no_seed else None
    line_keys = no_seed[1:]
    if panel_key:
        panel = [label({panel_key: v}) for v in cfg[panel_key]]
        values = sorted(cfg[panel_key].dropna().unique(), key=sortkey)
        panels = evenly([label({panel_key: v}) for v in values], 3)
        notes = [shown(len(panels), len(values), f"{panel_key} values")]
    else:
        panel, panels, notes = [""] * len(info), [""], []
    if line_keys:
        sw = cfg[line_keys]
        line = [label(dict(zip(line_keys, row))) for row in sw.itertuples(index=False)]
        ordered = sorted(sw.drop_duplicates().itertuples(index=False),
                         key=lambda r: [sortkey(v) for v in r])
        lines = evenly([label(dict(zip(line_keys, r))) for r in ordered], MAX_LINES)
        notes.append(shown(len(lines), len(ordered), f"settings of {', '.join(line_keys)}"))
    else:
        line, lines = [""] * len(info), [""]
    keys = [m for _, _, ms in CURVES for m, _ in ms]
    sub = long[long["metric"].isin(keys) & long["layer"].isna()]
    note = "; ".join(n for n in notes if n)
    if not len(sub):
        return pd.DataFrame(columns=["panel", "line", "metric", "step", "mean", "lo", "hi",
                                     "unconv"]), "", ""
    rc = sub["run"].cat.codes.to_numpy()
    flags = np.zeros(len(info), bool) if unconverged is None else unconverged.to_numpy(bool)
    df = pd.DataFrame({"panel": np.asarray(panel, object)[rc],
                       "line": np.asarray(line, object)[rc],
                       "metric": sub["metric"].astype(str).to_numpy(),
                       "step": sub["step"].to_numpy(), "value": sub["value"].to_numpy(),
                       "unconv": flags[rc], "run": rc})
    df = df[df["panel"].isin(panels) & df["line"].isin(lines)]
    agg = df.groupby(["panel", "line", "metric", "step"], sort=False)["value"].agg(
        mean="mean", lo="min", hi="max").reset_index()
    bad = df.groupby(["panel", "line"], sort=False)["unconv"].any()
    agg["unconv"] = bad.reindex(pd.MultiIndex.from_frame(agg[["panel", "line"]])).to_numpy()
    agg["panel"] = pd.Categorical(agg["panel"], categories=panels, ordered=True)
    agg = agg.sort_values(["panel", "step"]).reset_index(drop=True)
    agg["panel"] = agg["panel"].astype(str)
    agg.attrs["runs"] = [info["run"].iat[i] for i in np.unique(df["run"])]
    return agg, (f"one panel per {panel_key}" if panel_key else ""), note


@styled
def draw(df: pd.DataFrame, rows: Sequence[tuple[str, bool, Sequence[tuple[str, str]]]],
         panel_title: str, left_out: str = "", max_panels: int = 3):
    """Curves against step: one column per swept value, one row per quantity; ``left_out``
    says which panels or lines the data left out (shown in the title).

    ``df`` columns: panel, line, metric, step, mean, lo, hi (colour = line, i.e. the other
    swept parameters). ``rows``: (y label, log y, [(metric, linestyle), ...]); several
    metrics share a row, told apart by line style. The step axis is symmetric-log so
    step 0 shows."""
    from .. import style as ps

    panels = list(dict.fromkeys(df["panel"]))[:max_panels] or [""]
    present = set(df["metric"])
    rows = [r for r in rows if any(k in present for k, _ in r[2])] or list(rows[:1])
    fig, axes = ps.panels(len(rows), len(panels), w=3.3, h=2.5)
    colors = ps.cat_colors(df["line"])
    for j, panel in enumerate(panels):
        for i, (label, logy, keys) in enumerate(rows):
            ax = axes[i, j]
            sub = df[(df["panel"] == panel) & df["metric"].isin([k for k, _ in keys])]
            for key, style in keys:
                for line, g in sub[sub["metric"] == key].groupby("line", sort=False):
                    g = g.sort_values("step")
                    ax.plot(g["step"], g["mean"], ls=style, color=colors[line],
                            label=(line or None) if style == "-" else None)
                    if g["unconv"].any():  # a hollow circle ends an unconverged line
                        ax.plot(g["step"].iloc[-1:], g["mean"].iloc[-1:], "o",
                                **ps.marked(True, color=colors[line], ms=5))
                    if style == "-" and (g["hi"] > g["lo"]).any():
                        ax.fill_between(g["step"], g["lo"], g["hi"], color=colors[line],
                                        alpha=0.2, linewidth=0)
            ax.set_xscale("symlog", linthresh=1)
            ps.plain_log(ax.xaxis, locate=False)
            if logy and len(sub) and (sub["mean"] > 0).all():
                ax.set_yscale("log")
                ps.plain_log(ax.yaxis)
            if not len(sub):
                ps.empty(ax)
            ps.sparse(ax)
            if j == 0:
                ax.set_ylabel(label)
            if i == 0:
                ps.title(ax, panel or panel_title)
            if i == len(rows) - 1:
                ax.set_xlabel("step")
    ps.legend(fig, *axes[0, 0].get_legend_handles_labels())
    ps.suptitle(fig, "training curves: mean over seeds, band min-max" +
                (f"  ·  {panel_title}" if panel_title else "") +
                (f"\n({left_out})" if left_out else ""))
    return fig
