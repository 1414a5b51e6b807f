"""Scaling laws in the training-set size N (arXiv 2407.05664): the test error against N
with a log-log fit per setting, the fitted rate over (nu_g, nu_h), and architectures
side by side.

Fit per setting (the swept parameters minus ``task.n_train`` and ``seed``), finished runs
only: per seed, least squares log(test error) = -rate * log N + c; the rate is the mean
over seeds ± their standard deviation (one seed: ± the fit's standard error); R^2 is that of
one fit of log(mean error over seeds) against log N. A fit through fewer than 3 sizes is
flagged unreliable.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from ..fit import ols
from ..format import fmt
from .base import Context, Fig, sortkey, styled

N_KEY, ERR = "task.n_train", "loss/test"
NU = ("task.nu_g", "task.nu_h")
ARCH = "model.name"
RATE_COLUMNS = ["setting", "rate", "rate_err", "r2", "n_sizes", "n_seeds", "sizes",
                "unconverged", "caveat"]


def _setting_keys(swept: list[str]) -> list[str]:
    return [k for k in swept if k not in (N_KEY, "seed")]


def _label(row: pd.Series, keys: list[str]) -> str:
    parts = [f"{k.split('.')[-1]}={fmt(row[k])}" for k in keys if pd.notna(row[k])]
    return ", ".join(parts) or "all runs"


def points(cfg: pd.DataFrame, info: pd.DataFrame, finals: pd.DataFrame,
           swept: list[str], unconverged: pd.Series | None = None) -> pd.DataFrame:
    """Finished runs with a positive test error: setting, its keys, N, seed, error, and
    ``unconv`` (its verdict is not converged, per ``unconverged``)."""
    keys = _setting_keys(swept)
    cols = keys + [k for k in NU if k in cfg and k not in keys]  # heatmap axes, even if fixed
    ok = info["finished"].to_numpy(bool)
    if N_KEY not in cfg or ERR not in finals:
        return pd.DataFrame(columns=["setting", "n", "seed", "err", "unconv", *cols])
    df = cfg.loc[ok, cols].copy()
    df["setting"] = [_label(r, keys) for _, r in cfg.loc[ok].iterrows()]
    df["n"] = pd.to_numeric(cfg.loc[ok, N_KEY], errors="coerce")
    df["seed"] = info.loc[ok, "seed"]
    df["err"] = pd.to_numeric(finals.loc[ok, ERR], errors="coerce")
    df["unconv"] = False if unconverged is None else unconverged[ok].to_numpy(bool)
    return df[np.isfinite(df["err"]) & (df["err"] > 0) & np.isfinite(df["n"])]


def rate_table(pts: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per setting with at least two sizes: the fitted rate (see module doc)."""
    keys = keys + [k for k in NU if k in pts and k not in keys]
    rows = []
    for setting, g in pts.groupby("setting", sort=False):
        if g["n"].nunique() < 2:
            continue
        per_seed = [ols(np.log(s["n"].to_numpy(float)), np.log(s["err"].to_numpy(float)))
                    for _, s in g.groupby("seed") if s["n"].nunique() >= 2]
        if len(per_seed) >= 2:
            slopes = np.array([p[0] for p in per_seed])
            rate, err = -slopes.mean(), slopes.std(ddof=1)
        else:
            slope, err, *_ = ols(np.log(g["n"].to_numpy(float)), np.log(g["err"].to_numpy(float)))
            rate = -slope
        mean = g.groupby("n")["err"].mean()
        lx, ly = np.log(mean.index.to_numpy(float)), np.log(mean.to_numpy(float))
        a, _, b, _ = ols(lx, ly)
        ss = float(np.sum((ly - ly.mean()) ** 2))
        r2 = 1.0 - float(np.sum((ly - a * lx - b) ** 2)) / ss if ss > 0 else np.nan
        sizes = sorted(g["n"].unique())
        rows.append({"setting": setting, **{k: g[k].iloc[0] for k in keys}, "rate": rate,
                     "rate_err": err, "r2": r2, "n_sizes": len(sizes),
                     "n_seeds": g["seed"].nunique(), "sizes": ",".join(f"{n:g}" for n in sizes),
                     "unconverged": int(g["unconv"].sum()) if "unconv" in g else 0,
                     "caveat": "unreliable: < 3 sizes" if len(sizes) < 3 else ""})
    return pd.DataFrame(rows, columns=[*RATE_COLUMNS[:1], *keys, *RATE_COLUMNS[1:]])


def rate_text(rates: pd.DataFrame) -> str:
    """The rate table as lines for the caption (and docs)."""
    lines = [f"{r.setting}: rate {r.rate:.3f} ± {r.rate_err:.3f}, R² {r.r2:.3f} "
             f"({r.n_sizes} sizes, {r.n_seeds} seeds){' ' + r.caveat if r.caveat else ''}"
             for r in rates.itertuples()]
    return "; ".join(lines)


def _data(ctx: Context):
    pts = points(ctx.cfg, ctx.info, ctx.finals, ctx.swept, ctx.unconverged)
    keys = _setting_keys(ctx.swept)
    return pts, keys, rate_table(pts, keys)


def rates_of(ctx: Context) -> pd.DataFrame | None:
    """The fitted rates as the report's ``scaling_rates.csv`` (None: no N-sweep here)."""
    if N_KEY not in ctx.swept:
        return None
    rates = _data(ctx)[2]
    return None if rates.empty else rates


def plan_fit(ctx: Context) -> Iterator[Fig | str]:
    """Test error against N with the fitted lines; the rate table in the caption."""
    if N_KEY not in ctx.swept:
        return
    pts, _, rates = _data(ctx)
    if rates.empty:
        yield "scaling fit: needs finished runs at two or more task.n_train per setting"
        return
    yield Fig("scaling_fit", "Test error against N (log-log fit per setting)",
              "Test error (mean over seeds, points per seed) against the training-set size N; "
              "lines: log err = -rate·log N + c. Fitted rates (mean ± std over seeds): "
              + rate_text(rates), "scaling_fit", (pts, rates),
              key=ctx.key(pts.index))


def plan_heatmap(ctx: Context) -> Iterator[Fig | str]:
    """The fitted rate over (nu_g, nu_h), one panel per other setting."""
    if N_KEY not in ctx.swept or not any(k in ctx.swept for k in NU) or \
            not all(k in ctx.cfg for k in NU):
        return
    _, keys, rates = _data(ctx)
    if rates.empty or rates[list(NU)].drop_duplicates().shape[0] < 2:
        yield "rate heatmap: needs rates at two or more (nu_g, nu_h)"
        return
    rest = [k for k in keys if k not in NU]
    rates = rates.assign(panel=[_label(r, rest) for _, r in rates.iterrows()])
    pts = points(ctx.cfg, ctx.info, ctx.finals, ctx.swept, ctx.unconverged)
    key = ctx.key(pts.index)
    yield Fig("rate_heatmap", "Fitted rate over (ν_g, ν_h)",
              "The empirical rate (−slope of log test error against log N, mean over seeds) "
              "per (ν_g, ν_h); one panel per other setting."
              + ("; dashed border: the fit includes unconverged runs" if key else ""),
              "rate_heatmap", (rates,), key=key)


def plan_arch(ctx: Context) -> Iterator[Fig | str]:
    """Architectures side by side: error against N, one line per model, one panel per
    other setting."""
    if N_KEY not in ctx.swept or ARCH not in ctx.swept:
        return
    pts, keys, _ = _data(ctx)
    if pts.empty:
        return
    rest = [k for k in keys if k != ARCH and not k.startswith("model.")]
    pts = pts.assign(panel=[_label(r, rest) for _, r in pts.iterrows()])
    yield Fig("arch_compare", "Deep against shallow against accordion",
              "Test error against N (mean over seeds), one line per model at equal settings.",
              "arch_compare", (pts,), key=ctx.key(pts.index))


@styled
def draw_fit(pts: pd.DataFrame, rates: pd.DataFrame):
    from .. import style as ps

    fig, axes = ps.panels(1, 1, w=5.2, h=3.8)
    ax = axes[0, 0]
    colors = ps.cat_colors(rates["setting"])
    for r in rates.itertuples():
        g = pts[pts["setting"] == r.setting]
        mean = g.groupby("n")["err"].mean()
        ax.scatter(g["n"], g["err"], s=8, alpha=0.4, color=colors[r.setting])
        ps.hollow(ax, g["n"], g["err"], g.get("unconv", False), colors[r.setting])
        ax.plot(mean.index, mean.values, "o", color=colors[r.setting])
        n = np.array([mean.index.min(), mean.index.max()], float)
        lx, ly = np.log(mean.index.to_numpy(float)), np.log(mean.to_numpy(float))
        c = float(np.mean(ly + r.rate * lx))
        ax.plot(n, np.exp(c - r.rate * np.log(n)), "-", color=colors[r.setting],
                label=f"{r.setting}: {r.rate:.2f}±{0 if np.isnan(r.rate_err) else r.rate_err:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training set size N")
    ax.set_ylabel("test error")
    ps.legend(fig, *ax.get_legend_handles_labels(), title="setting: rate")
    return fig


@styled
def draw_heatmap(rates: pd.DataFrame):
    from .. import style as ps

    panels = sorted(rates["panel"].unique(), key=sortkey)
    fig, axes = ps.panels(1, len(panels), w=3.6, h=3.2)
    for ax, panel in zip(axes.flat, panels):
        sub = rates[rates["panel"] == panel]
        grid = sub.pivot_table(index=NU[0], columns=NU[1], values="rate", aggfunc="mean")
        im = ax.imshow(grid.to_numpy(float), origin="lower", cmap="viridis", aspect="auto")
        if "unconverged" in sub:
            bad = sub.pivot_table(index=NU[0], columns=NU[1], values="unconverged",
                                  aggfunc="sum").reindex_like(grid).fillna(0) > 0
            ps.dashed_cells(ax, bad.to_numpy(), grid.to_numpy(float), im.cmap, im.norm)
        ax.set_xticks(range(grid.shape[1]), [fmt(v) for v in grid.columns])
        ax.set_yticks(range(grid.shape[0]), [fmt(v) for v in grid.index])
        for (i, j), v in np.ndenumerate(grid.to_numpy(float)):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w")
        ax.set_xlabel("ν_h")
        ax.set_ylabel("ν_g")
        ps.title(ax, panel, size=8)
        fig.colorbar(im, ax=ax, label="rate")
    return fig


@styled
def draw_arch(pts: pd.DataFrame):
    from .. import style as ps

    panels = sorted(pts["panel"].unique(), key=sortkey)
    fig, axes = ps.panels(1, len(panels), w=3.4, h=2.9)
    colors = ps.cat_colors(pts[ARCH])
    for ax, panel in zip(axes.flat, panels):
        for arch, g in pts[pts["panel"] == panel].groupby(ARCH, sort=False):
            mean = g.groupby("n").agg(mean=("err", "mean"), std=("err", "std"),
                                      unconv=("unconv", "any"))
            ax.errorbar(mean.index, mean["mean"], yerr=mean["std"].fillna(0), fmt="o-",
                        color=colors[arch], capsize=2, label=str(arch))
            ps.hollow(ax, mean.index, mean["mean"], mean["unconv"], colors[arch])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N")
        ax.set_ylabel("test error")
        ps.title(ax, panel, size=8)
    ps.legend(fig, *axes[0, 0].get_legend_handles_labels())
    return fig
