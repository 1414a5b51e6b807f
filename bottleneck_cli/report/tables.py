"""Run records -> tables: flattened configs, the swept keys, one row per run, seeds
aggregated per setting, the tidy long table (run x step x metric x layer), and their
files (CSV, Markdown; the long table: ``long``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import rundir as rd
from ..config import BOOKKEEPING_KEYS
from .closed import COLUMNS
from .format import fmt, label
from .load import Run
from .long import LONG, long_table  # noqa: F401 - the long table's home is long.py

PRIORITY = ("depth", "lam", "lr", "width", "seed")  # order of swept columns and panels
SUMMARY_METRICS = {  # summary column -> metrics.jsonl key (docs/metrics.md)
    "loss": "loss/train",
    "test_loss": "loss/test",
    "fit": "loss/fit",
    "ridge": "loss/ridge",
    "norm": "norm/total",
    "norm_per_L": "norm/per_depth",
    "bottleneck_rank": "bottleneck/rank_c",
    "bottleneck_rank_unc": "bottleneck/rank",
    "near_one": "bottleneck/near_one",
}
SETTING_METRICS = ["loss", "test_loss", "norm", "norm_per_L", "bottleneck_rank"]
OPTIONAL_METRICS = {  # columns added only when some run has them (docs/metrics.md)
    "distinct_neurons": "neurons/max",
    "converged": "converged",  # the convergence verdict (1 yes, 0 no; empty: not recorded)
    "rank_A": "rank/A",  # deep linear chains: the end-to-end matrix (metrics/end_to_end.py)
    "jumps_down": "traj/jumps_down",  # rank changes of A over the run (trajectory.py)
    "jumps_up": "traj/jumps_up",
    "rel_err": "loss/rel_err",  # completion: ||A - M*||_F / ||M*||_F
}
TABLE_FILES = ("summary.csv", "summary_by_setting.csv", "depth_fit.csv", "summary.md", LONG)
# Optional columns that the by-setting table also aggregates, where present.
OPTIONAL_SETTING = ["converged", "closed_form", "closed_form_target", "distinct_neurons", "rank_A",
                    "jumps_down", "jumps_up", "rel_err"]


def _hashable(v: Any) -> Any:
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return json.dumps(v, sort_keys=True, default=str)


def config_frame(runs: list[Run]) -> pd.DataFrame:
    """Flattened configs (dotted keys), one row per run; lists/dicts as JSON text."""
    cfg = pd.json_normalize([r.config for r in runs], sep=".")
    cfg.index = range(len(runs))
    for col in cfg.columns[cfg.dtypes == object]:
        cfg[col] = cfg[col].map(_hashable)
    return cfg


def finals_frame(runs: list[Run]) -> pd.DataFrame:
    """Final metric records, one row per run, numeric."""
    finals = pd.DataFrame.from_records([r.final for r in runs], index=range(len(runs)))
    for c in finals.columns[finals.dtypes == object]:
        finals[c] = pd.to_numeric(finals[c], errors="coerce")
    return finals


def bookkeeping(key: str) -> bool:
    """Whether the dotted config ``key`` leaves what is trained unchanged
    (``config.BOOKKEEPING_KEYS``: names, placement, log/metric/checkpoint cadence, ...)."""
    return any(key == p or key.startswith(p + ".") for p in BOOKKEEPING_KEYS)


def varying(cfg: pd.DataFrame) -> list[str]:
    """Config keys whose values differ across runs."""
    return [c for c in cfg.columns if cfg[c].dropna().nunique() > 1]


def swept_keys(cfg: pd.DataFrame) -> list[str]:
    """Experimental config keys whose values differ across runs (bookkeeping ignored)."""
    keys = [c for c in varying(cfg) if not bookkeeping(c)]
    first = [k for k in PRIORITY if k in keys]
    return first + [k for k in keys if k not in first]


def layer_cols(finals: pd.DataFrame, prefix: str) -> list[tuple[str, int]]:
    """(column, layer) of the per-layer metric ``prefix`` (e.g. ``rank_c/Z``), by layer."""
    out = []
    for c in finals.columns:
        parts = rd.split_layer_key(c)
        if parts and parts[0] == prefix:
            out.append((c, parts[1]))
    return sorted(out, key=lambda t: t[1])


def _per_layer_text(finals: pd.DataFrame, prefix: str) -> pd.Series:
    cols = layer_cols(finals, prefix)
    if not cols:
        return pd.Series([""] * len(finals), index=finals.index)
    mat = finals[[c for c, _ in cols]].to_numpy(float)
    return pd.Series([" ".join(str(int(v)) for v in row if np.isfinite(v)) for row in mat],
                     index=finals.index)


def run_info(runs: list[Run], cfg: pd.DataFrame, swept: list[str]) -> pd.DataFrame:
    """Per-run bookkeeping: status, depth, seed and setting labels used for grouping."""
    info = pd.DataFrame({"run": [r.name for r in runs], "status": [r.status for r in runs]})
    info["finished"] = info["status"] == "finished"
    info["depth"] = pd.to_numeric(cfg["depth"], errors="coerce") if "depth" in cfg else np.nan
    info["seed"] = cfg["seed"].fillna(0) if "seed" in cfg else 0
    no_seed = [k for k in swept if k != "seed"]
    others = [k for k in no_seed if k != "depth"]
    sw = cfg.reindex(columns=swept)
    info["setting"] = [label({k: row[k] for k in no_seed}) for _, row in sw.iterrows()]
    info["others"] = [label({k: row[k] for k in others}) for _, row in sw.iterrows()]
    return info


def summary_table(runs: list[Run], cfg: pd.DataFrame, finals: pd.DataFrame,
                  swept: list[str]) -> pd.DataFrame:
    """One row per run: status, steps, swept parameters, final metrics, per-layer ranks,
    and where some run has them the closed forms (linear nets) and neuron counts; sorted
    by the swept parameters, indexed by the run's position in ``runs``."""
    df = pd.DataFrame({
        "run": [r.name for r in runs],
        "status": [r.status for r in runs],
        "step": pd.array([r.step for r in runs], dtype="Int64"),
        "steps": pd.array([r.steps for r in runs], dtype="Int64"),
    })
    for k in swept:
        df[k] = cfg[k].to_numpy()
    for col, key in SUMMARY_METRICS.items():
        df[col] = pd.to_numeric(finals[key], errors="coerce") if key in finals else np.nan
    _add_closed_forms(df, runs)
    for col, key in OPTIONAL_METRICS.items():
        if key in finals and pd.to_numeric(finals[key], errors="coerce").notna().any():
            df[col] = pd.to_numeric(finals[key], errors="coerce")
    df["ranks_Z"] = _per_layer_text(finals, "rank_c/Z")
    df["ranks_W"] = _per_layer_text(finals, "rank/W")
    if layer_cols(finals, "neurons/Z"):
        df["neurons_Z"] = _per_layer_text(finals, "neurons/Z")
    df["time_s"] = pd.to_numeric(finals["time"], errors="coerce") if "time" in finals else np.nan
    df["problem"] = ["; ".join(r.problems) for r in runs]
    order = [k for k in swept if df[k].notna().any()]
    try:
        df = df.sort_values(order + ["run"], kind="stable", na_position="last")
    except TypeError:  # mixed types in a swept column
        df = df.sort_values(["run"], kind="stable")
    return df


def _add_closed_forms(df: pd.DataFrame, runs: list[Run]) -> None:
    """``closed_form`` / ``closed_form_target`` (``closed``) after ``norm_per_L``,
    when some run has them."""
    at = list(df.columns).index("norm_per_L") + 1
    for col in reversed(COLUMNS):
        values = [r.closed.get(col, np.nan) for r in runs]
        if np.isfinite(values).any():
            df.insert(at, col, values)


def by_setting_table(summary: pd.DataFrame, swept: list[str]) -> pd.DataFrame:
    """Seeds aggregated: per setting, counts and mean/std of the main metrics over finished runs."""
    keys = [k for k in swept if k != "seed"]
    df = summary.copy()
    df["_key"] = [label({k: row[k] for k in keys}) for _, row in df[keys].iterrows()] \
        if keys else ""
    fin = df[df["status"] == "finished"]
    counts = df.groupby("_key", sort=False).agg(runs=("run", "size"))
    counts["finished"] = fin.groupby("_key", sort=False)["run"].size().reindex(counts.index)
    counts["finished"] = counts["finished"].fillna(0).astype(int)
    metrics = SETTING_METRICS + [c for c in OPTIONAL_SETTING if c in df.columns]
    agg = fin.groupby("_key", sort=False)[metrics].agg(["mean", "std"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    first = (df.groupby("_key", sort=False)[keys].first() if keys
             else pd.DataFrame(index=counts.index))
    return pd.concat([first, counts, agg.reindex(counts.index)], axis=1).reset_index(drop=True)


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        cells = [fmt(v).replace("|", "\\|").replace("\n", " ") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(out: Path, n_runs: int, summary: pd.DataFrame, by_setting: pd.DataFrame,
                 fits: pd.DataFrame, problems: list[str]) -> dict[str, Path]:
    """summary.csv/.md, summary_by_setting.csv and depth_fit.csv (and the path of
    long.parquet, written by ``long.write_long``)."""
    tables = {name: out / name for name in TABLE_FILES}
    summary.to_csv(tables["summary.csv"], index=False)
    by_setting.to_csv(tables["summary_by_setting.csv"], index=False)
    fits.to_csv(tables["depth_fit.csv"], index=False)
    md = [f"# bncli report: {n_runs} runs\n", markdown_table(summary)]
    if len(by_setting) < len(summary):
        md += ["\n## Seeds aggregated (finished runs)\n", markdown_table(by_setting)]
    if len(fits):
        md += ["\n## Depth fit ||θ||² = R0·L + R1 (R0: rank estimate, R1: regularity)\n",
               markdown_table(fits)]
    if problems:
        md += ["\n## Problems\n", "".join(f"- {p}\n" for p in problems)]
    tables["summary.md"].write_text("\n".join(md), encoding="utf-8")
    return tables
