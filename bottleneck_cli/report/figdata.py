"""Aggregates that the sweep figures draw, from the in-memory tables (no file reads):
per-layer profiles, final metrics against depth or width, training curves, phase-diagram
grids, and measured norms beside their closed forms.
Seeds are aggregated here (mean and spread), so figure lines are settings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .format import fmt, label
from .tables import layer_cols

CURVES = [  # rows of the training-curve figure: (y label, log y, [(metric, line style)])
    ("loss (solid: train objective,\ndashed: test fit)", True,
     [("loss/train", "-"), ("loss/test", "--")]),
    ("rank estimate (solid: centered,\ndotted: uncentered)", False,
     [("bottleneck/rank_c", "-"), ("bottleneck/rank", ":")]),
]
MAX_LINES = 8  # lines per training-curve panel


def evenly(items: list, k: int) -> list:
    """At most ``k`` of ``items``, spread evenly (first and last kept)."""
    if len(items) <= k:
        return list(items)
    idx = np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))
    return [items[i] for i in idx]


def sortkey(v):
    """Numbers before text, numbers by value."""
    return (0, float(v), "") if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) \
        else (1, 0.0, str(v))


def profile(info: pd.DataFrame, finals: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Final per-layer values of ``prefix`` for finished runs, aggregated over seeds by
    (setting-without-depth, depth, layer): columns panel, depth, rel, mean, lo, hi."""
    cols = layer_cols(finals, prefix)
    fin = info.index[info["finished"] & np.isfinite(info["depth"])]
    if not cols or not len(fin):
        return pd.DataFrame(columns=["panel", "depth", "rel", "mean", "lo", "hi"])
    sub = finals.loc[fin, [c for c, _ in cols]].apply(pd.to_numeric, errors="coerce")
    sub.columns = [layer for _, layer in cols]
    long = sub.stack().rename("value").reset_index()
    long.columns = ["i", "layer", "value"]
    long["panel"] = info.loc[long["i"], "others"].to_numpy()
    long["depth"] = info.loc[long["i"], "depth"].to_numpy()
    agg = long.groupby(["panel", "depth", "layer"], sort=False)["value"].agg(
        mean="mean", lo="min", hi="max").reset_index()
    agg["rel"] = agg["layer"] / agg["depth"]
    order = {p: j for j, p in enumerate(info.sort_values("order")["others"].unique())}
    agg["_o"] = agg["panel"].map(order)
    return agg.sort_values(["_o", "depth", "layer"]).drop(columns="_o").reset_index(drop=True)


def vs_depth(info: pd.DataFrame, finals: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Final ``keys`` of finished runs per (setting, depth): mean and std over seeds."""
    fin = info[info["finished"] & np.isfinite(info["depth"])]
    parts = []
    for key in keys:
        d = fin[["others", "depth"]].copy()
        d["value"] = pd.to_numeric(finals.loc[fin.index, key], errors="coerce")
        g = d.groupby(["others", "depth"], sort=False)["value"].agg(["mean", "std"]).reset_index()
        g["metric"] = key
        parts.append(g.rename(columns={"others": "setting"}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["setting", "depth", "mean", "std", "metric"])


def shown(k: int, n: int, what: str) -> str:
    """"showing k of n <what>" when something was left out, else ""."""
    return f"showing {k} of {n} {what}" if k < n else ""


def curves(long: pd.DataFrame, info: pd.DataFrame, swept: list[str],
           cfg: pd.DataFrame) -> tuple[pd.DataFrame, str, str]:
    """Training-curve aggregates: panel = values of the first swept parameter (not seed),
    line = the other swept parameters; mean and min/max over seeds at each step. Also the
    panel title and a note on the panels and lines left out ("" when none)."""
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
        return pd.DataFrame(columns=["panel", "line", "metric", "step", "mean", "lo", "hi"]), "", ""
    rc = sub["run"].cat.codes.to_numpy()
    df = pd.DataFrame({"panel": np.asarray(panel, object)[rc],
                       "line": np.asarray(line, object)[rc],
                       "metric": sub["metric"].astype(str).to_numpy(),
                       "step": sub["step"].to_numpy(), "value": sub["value"].to_numpy()})
    df = df[df["panel"].isin(panels) & df["line"].isin(lines)]
    agg = df.groupby(["panel", "line", "metric", "step"], sort=False)["value"].agg(
        mean="mean", lo="min", hi="max").reset_index()
    agg["panel"] = pd.Categorical(agg["panel"], categories=panels, ordered=True)
    agg = agg.sort_values(["panel", "step"]).reset_index(drop=True)
    agg["panel"] = agg["panel"].astype(str)
    return agg, (f"one panel per {panel_key}" if panel_key else ""), note


def phase(info: pd.DataFrame, cfg: pd.DataFrame, finals: pd.DataFrame, grid: tuple[str, str],
          metric: str) -> tuple[pd.DataFrame, str]:
    """Mean final ``metric`` of finished runs over the grid (rows: grid[1], columns:
    grid[0]; NaN where none finished), and a note on what a cell averages."""
    a, b = grid
    df = pd.DataFrame({"x": cfg[a].to_numpy(), "y": cfg[b].to_numpy(),
                       "v": pd.to_numeric(finals[metric], errors="coerce").to_numpy(),
                       "finished": info["finished"].to_numpy()})
    df = df.dropna(subset=["x", "y"])
    df.loc[~df["finished"], "v"] = np.nan
    table = df.pivot_table(index="y", columns="x", values="v", aggfunc="mean", dropna=False)
    allcells = df.groupby(["y", "x"]).size()
    table = table.reindex(index=sorted(df["y"].unique(), key=sortkey),
                          columns=sorted(df["x"].unique(), key=sortkey))
    n = int(allcells.max()) if len(allcells) else 0
    note = f"mean over up to {n} finished runs per cell; × = none finished" if n > 1 else \
        "× = run not finished"
    return table, note


def closed_form_points(runs, info: pd.DataFrame, cfg: pd.DataFrame, finals: pd.DataFrame,
                       swept: list[str]) -> tuple[pd.DataFrame, str]:
    """Finished linear runs with a trained closed form (``closed``): columns setting
    (the swept values but seed, as text), norm (measured ||θ||²), closed (L·Σ s_i(M)^(2/L)
    of the trained M), target (the same for the target A; NaN if unknown). Also the names
    of the swept keys that the setting text lists."""
    keys = [k for k in swept if k != "seed"]
    norm = pd.to_numeric(finals["norm/total"], errors="coerce") if "norm/total" in finals \
        else pd.Series(np.nan, index=finals.index)
    rows = []
    for i, r in enumerate(runs):
        if info.at[i, "finished"] and "closed_form" in r.closed and np.isfinite(norm.iloc[i]):
            rows.append({"setting": ", ".join(fmt(cfg.at[i, k]) for k in keys),
                         "norm": float(norm.iloc[i]), "closed": r.closed["closed_form"],
                         "target": r.closed.get("closed_form_target", np.nan)})
    return pd.DataFrame(rows, columns=["setting", "norm", "closed", "target"]), ", ".join(keys)


def vs_width(info: pd.DataFrame, cfg: pd.DataFrame, finals: pd.DataFrame,
             swept: list[str]) -> pd.DataFrame:
    """Final neuron counts per hidden layer (``neurons``, ``active``; layer l) and losses
    (``loss/fit``, ``loss/test``; layer 0) of finished runs against width: mean and std over
    seeds per (setting without width and seed, width)."""
    fin = info.index[info["finished"]]
    width = pd.to_numeric(cfg["width"], errors="coerce") if "width" in cfg else None
    cols = ["setting", "width", "metric", "layer", "mean", "std"]
    if width is None or not len(fin):
        return pd.DataFrame(columns=cols)
    others = [k for k in swept if k not in ("width", "seed")]
    setting = [label({k: cfg.at[i, k] for k in others}) for i in fin]
    series = [(fam, c, layer) for fam in ("neurons", "active")
              for c, layer in layer_cols(finals, f"{fam}/Z")]
    series += [(k, k, 0) for k in ("loss/fit", "loss/test") if k in finals]
    parts = []
    for metric, col, layer in series:
        d = pd.DataFrame({"setting": setting, "width": width[fin].to_numpy(),
                          "value": pd.to_numeric(finals.loc[fin, col], errors="coerce").to_numpy()})
        g = d.dropna().groupby(["setting", "width"], sort=False)["value"].agg(
            ["mean", "std"]).reset_index()
        g["metric"], g["layer"] = metric, layer
        parts.append(g)
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
