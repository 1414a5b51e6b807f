"""Figure 4b: the size of the weight singular values away from one (root-sum-square per
middle layer) against depth, with an L^(-1/2) reference. The spectra of a bounded set of
runs are read inside the drawing job (``figure``), so only paths travel to the workers."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from ... import rundir as rd
from ..load import Run
from .base import Context, Fig, sentence, shown, styled

MAX_SPECTRA = 64  # runs whose spectra are read for the near-one figure


def plan(ctx: Context) -> Iterator[Fig | str]:
    """The figure for a depth sweep (finished runs at >= 2 depths); else why not."""
    if len(ctx.depths) < 2:
        yield (f"size of the remaining singular values against L: needs a depth sweep "
               f"({ctx.sweep_note})")
        return
    chosen = items(ctx.runs, ctx.info, ctx.unconverged)
    n = int((ctx.info["finished"] & np.isfinite(ctx.info["depth"])).sum())
    yield Fig(
        "near_one_rest", "Singular values away from one against depth",
        "Root-sum-square of the weight singular values with |s − 1| > δ, per middle "
        "layer (l/L in [0.25, 0.75]), against L, with an L^(-1/2) reference line "
        "(the theory: O(L^(-1/2)))."
        + sentence(shown(len(chosen), n, "finished runs, round robin over setting and depth")),
        "near_one_rest", (chosen,), key=ctx.key([c[5] for c in chosen]))


def items(runs: list[Run], info: pd.DataFrame, unconverged: pd.Series | None = None
          ) -> list[tuple]:
    """(path, setting, depth, delta, unconverged, row of ``info``) of the finished runs
    that feed the near-one figure: at most MAX_SPECTRA, round robin over the (setting,
    depth) groups."""
    fin = info[info["finished"] & np.isfinite(info["depth"])]
    groups = [list(g.index) for _, g in fin.groupby(["others", "depth"], sort=False)]
    chosen: list[int] = []
    for r in range(max((len(g) for g in groups), default=0)):
        chosen.extend(g[r] for g in groups if r < len(g))
        if len(chosen) >= MAX_SPECTRA:
            break
    return [(runs[i].path, info.at[i, "others"], info.at[i, "depth"],
             float((runs[i].config.get("metrics") or {}).get("near_one_delta", 0.5)),
             bool(unconverged is not None and unconverged.at[i]), i)
            for i in chosen[:MAX_SPECTRA]]


def _last_weight_spectra(path: Path) -> list[tuple[int, np.ndarray]]:
    """(layer, singular values of W_l) at the last spectra step; reads only the W arrays."""
    run = rd.RunDir(path)
    steps = run.spectra_steps()
    if not steps:
        return []
    with np.load(run.file(rd.SPECTRA) / f"{steps[-1]:08d}.npz", allow_pickle=False) as data:
        return sorted(((p[1], data[k]) for k in data.files
                       if (p := rd.split_layer_key(k)) and p[0] == "W"), key=lambda t: t[0])


def remaining(items: list[tuple]) -> pd.DataFrame:
    """Per run, the root-sum-square of the weight singular values with |s - 1| > delta,
    averaged (in square) over the middle layers l/L in [0.25, 0.75]; mean/std over seeds
    per (setting, depth). Runs without spectra drop out."""
    rows = []
    for path, setting, depth, delta, unconv, _ in items:
        try:
            ws = _last_weight_spectra(path)
        except Exception:  # noqa: BLE001 - a run without spectra just drops out
            continue
        if not ws:
            continue
        L = len(ws)
        mid = [s for layer, s in ws if 0.25 <= layer / L <= 0.75] or [s for _, s in ws]
        sq = [float(np.sum(np.where(np.abs(s - 1) > delta, s, 0.0) ** 2)) for s in mid]
        rows.append({"setting": setting, "depth": depth, "value": math.sqrt(float(np.mean(sq))),
                     "delta": delta, "unconv": unconv})
    if not rows:
        return pd.DataFrame(columns=["setting", "depth", "mean", "std", "delta", "unconv"])
    return pd.DataFrame(rows).groupby(["setting", "depth"], sort=False).agg(
        mean=("value", "mean"), std=("value", "std"), delta=("delta", "first"),
        unconv=("unconv", "any")).reset_index()


def figure(items: list[tuple]):
    """Figure 4b; None with fewer than two depths."""
    rest = remaining(items)
    if rest["depth"].nunique() < 2:
        return None
    return draw(rest, float(rest["delta"].iloc[0]))


@styled
def draw(df: pd.DataFrame, delta: float):
    """Size of the weight singular values not near 1 against depth, log-log, with an
    L^(-1/2) reference. ``df``: setting, depth, mean, std (per-layer root-sum-square of
    the singular values with |s-1| > delta, middle layers, mean over seeds)."""
    from .. import style as ps

    fig, axes = ps.panels(1, 1, w=4.2, h=3.1)
    ax = axes[0, 0]
    colors = ps.cat_colors(df["setting"])
    for setting, g in df.groupby("setting", sort=False):
        g = g.sort_values("depth")
        ax.errorbar(g["depth"], g["mean"], yerr=g["std"].fillna(0), fmt="o-",
                    color=colors[setting], capsize=2, label=setting or "all runs")
        ps.hollow(ax, g["depth"], g["mean"], g["unconv"], colors[setting])
    ok = df[np.isfinite(df["mean"]) & (df["mean"] > 0)]
    if len(ok):
        L = np.geomspace(ok["depth"].min(), ok["depth"].max(), 50)
        c = float(np.exp(np.mean(np.log(ok["mean"]) + 0.5 * np.log(ok["depth"]))))
        ax.plot(L, c * L ** -0.5, "k--", lw=1, label="∝ L^(-1/2)", zorder=5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ps.plain_log(ax.xaxis, ax.yaxis)
    ax.set_xlabel("depth L")
    ax.set_ylabel(f"size of s_i with |s_i − 1| > {delta:g}")
    ax.set_title("weight singular values away from 1\n(root-sum-square per middle layer)")
    ps.legend(fig, *ax.get_legend_handles_labels())
    return fig
