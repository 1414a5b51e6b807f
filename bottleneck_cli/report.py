"""``bncli report``: aggregate run folders into tables, figures and one HTML page.

Data flow: run folders -> ``Run`` records (``load_runs``) -> a per-run summary
table, a tidy long table (run x step x layer x metric) and per-figure aggregates
-> ``plots`` (one function per figure) -> ``report_html``. Reads run folders only
(``rundir`` is the contract); never imports JAX or training code.

A run that cannot be read, diverged or is unfinished becomes a *problem* line and a
row with its status, never an exception. Seeds of one setting (the swept parameters
minus ``seed``) are aggregated: mean and spread, not separate lines.
"""

from __future__ import annotations

import functools
import json
import math
import multiprocessing as mp
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import yaml

from . import rundir as rd

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
IGNORED_KEYS = ("name", "out", "description")
IGNORED_PREFIXES = ("sweep.", "hydra.")
PRIORITY = ("depth", "lam", "lr", "width", "seed")  # order of swept columns and panels
LAYER_KEY = re.compile(r"^(.+/[A-Za-z]+?)(\d+)$")  # "rank_c/Z03" -> ("rank_c/Z", "03")
SV_KEY = re.compile(r"^(W|Zc|Z)(\d+)$")  # keys of spectra/<step>.npz
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
CURVES = [  # rows of the training-curve figure: (y label, log y, [(metric, line style)])
    ("loss (solid: train objective,\ndashed: test fit)", True,
     [("loss/train", "-"), ("loss/test", "--")]),
    ("rank estimate (solid: centered,\ndotted: uncentered)", False,
     [("bottleneck/rank_c", "-"), ("bottleneck/rank", ":")]),
]
MAX_SPECTRA = 64  # runs whose spectra are read for the near-one figure
MAX_LINES = 8  # lines per training-curve panel
MAX_HTML_ROWS = 300


class ReportError(Exception):
    """A user-facing problem with the report's input (printed as one line)."""


@dataclass
class Run:
    """What the report knows about one run folder."""

    name: str
    path: Path
    status: str = "missing"
    step: int | None = None
    steps: int | None = None
    config: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)
    keys: tuple = ()  # metric names of metrics.jsonl (union over records, first-seen order)
    # (records, keys) float matrix of metrics.jsonl; NaN where a record lacks the key
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    problems: list = field(default_factory=list)


@dataclass
class ReportResult:
    out_dir: Path
    html: Path
    summary: pd.DataFrame
    by_setting: pd.DataFrame
    depth_fit: pd.DataFrame
    problems: list[str]
    figures: list[Path]  # every figure file written (all formats)
    skipped: list[str]  # figures that did not apply, with the reason
    swept: list[str]
    tables: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


# ---- loading ----------------------------------------------------------------
def discover(paths: Sequence[Path]) -> list[Path]:
    """Run folders under ``paths`` (deduplicated, in order); ReportError when none."""
    found: dict[str, Path] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise ReportError(f"{p} does not exist")
        if p.is_file():
            raise ReportError(f"{p} is a file, not a run folder or a folder of runs")
        for d in rd.find_run_dirs(p):
            found.setdefault(os.path.abspath(d), d)
    if not found:
        raise ReportError(f"no run folders (with config.yaml or status.json) under "
                          f"{', '.join(map(str, paths))}")
    return list(found.values())


def _names(dirs: list[Path]) -> list[str]:
    absd = [os.path.abspath(d) for d in dirs]
    if len(absd) == 1:
        return [os.path.basename(absd[0])]
    common = os.path.commonpath(absd)
    return [os.path.relpath(d, common) for d in absd]


def load_run(path: Path, name: str) -> Run:
    """Read one run folder; every failure becomes a problem on the record."""
    run = Run(name=name, path=Path(path))
    try:
        _fill_run(run)
    except Exception as exc:  # noqa: BLE001 - one bad run must not stop the report
        run.status = "unreadable"
        run.problems.append(f"unreadable ({type(exc).__name__}: {exc})")
    return run


def _fill_run(run: Run) -> None:
    d = rd.RunDir(run.path)
    st = d.status()
    run.status = str(st.get("status", "missing"))
    unreadable = []
    if run.status == "corrupt":
        unreadable.append("status.json is damaged")
    try:
        cfg = load_config_text(d.file(rd.CONFIG).read_text())
        if not isinstance(cfg, dict):
            raise ValueError("not a mapping")
        run.config = cfg
    except FileNotFoundError:
        unreadable.append("no config.yaml")
    except (yaml.YAMLError, ValueError, OSError) as exc:
        unreadable.append(f"config.yaml is damaged ({str(exc).splitlines()[0]})")
    try:
        run.keys, run.values = _columnar(d.read_metrics())
    except (ValueError, OSError) as exc:
        unreadable.append(f"metrics.jsonl is damaged ({exc})")
    summary = None
    try:
        summary = rd.read_json(d.file(rd.SUMMARY))
    except FileNotFoundError:
        pass
    except (ValueError, OSError):
        run.problems.append("summary.json is damaged (ignored)")
    if summary is not None and not isinstance(summary, dict):
        run.problems.append("summary.json is not a record (ignored)")
        summary = None
    if isinstance(summary, dict) and isinstance(summary.get("final"), dict) and summary["final"]:
        run.final = summary["final"]
    elif len(run.values):
        run.final = {k: v for k, v in zip(run.keys, run.values[-1].tolist()) if v == v}
    run.step = _int(st.get("step"), (summary or {}).get("steps_done"), run.final.get("step"))
    run.steps = _int(st.get("steps"), (summary or {}).get("steps"), run.config.get("steps"))
    if unreadable:
        run.problems[:0] = unreadable
        run.status = "unreadable"
    elif run.status == "missing":
        run.problems.insert(0, "no status.json (never started, or stopped before writing it)")
    elif run.status == "diverged":
        at = st.get("diverged_step", (summary or {}).get("diverged_step"))
        run.problems.insert(0, f"diverged at step {at}")
    elif run.status != "finished":
        err = f": {st['error']}" if st.get("error") else ""
        run.problems.insert(0, f"unfinished (status {run.status}, step "
                               f"{run.step}/{run.steps}){err}")
    if run.status == "finished" and not len(run.values):
        run.problems.append("no metrics recorded")


class _NotSimple(Exception):
    pass


_KEY_LINE = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_.\-]*):(?: (.*))?$")
_ITEM_LINE = re.compile(r"^( *)- (.*)$")


def _scalar(text: str) -> Any:
    """One YAML value, with YAML's own rules (cached: sweeps repeat the same values)."""
    value = _cached_scalar(text)
    return type(value)(value) if isinstance(value, (list, dict)) else value  # no shared lists


@functools.lru_cache(maxsize=8192)
def _cached_scalar(text: str) -> Any:
    if text[:1] in "&*!|>%@`" or ": " in text or text.endswith(":"):
        raise _NotSimple(text)
    value = yaml.load(text, Loader=_YAML_LOADER)
    if isinstance(value, dict) and value:
        raise _NotSimple(text)
    return value


def _simple_yaml(text: str) -> dict:
    """Parse the block YAML that OmegaConf writes (nested ``key: value`` mappings, ``- x``
    lists of scalars, flow ``[]``/``{}``); raise _NotSimple on anything else."""
    root: dict = {}
    stack: list[list] = [[0, root]]  # [indent of the mapping's keys (None: not yet known), dict]
    pending = None  # (indent, dict, key) of a "key:" whose value follows on the next lines
    items: list | None = None
    items_indent = -1
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" in line or line.startswith(("---", "...")):
            raise _NotSimple(line)
        m = _ITEM_LINE.match(line)
        if m:
            indent = len(m.group(1))
            if pending is not None and indent >= pending[0]:
                items, items_indent = [], indent
                pending[1][pending[2]] = items
                pending = None
            if items is None or indent != items_indent or m.group(2).startswith("- "):
                raise _NotSimple(line)
            items.append(_scalar(m.group(2)))
            continue
        m = _KEY_LINE.match(line)
        if not m:
            raise _NotSimple(line)
        indent, key, value = len(m.group(1)), m.group(2), m.group(3)
        items = None
        if pending is not None:
            if indent > pending[0]:
                child: dict = {}
                pending[1][pending[2]] = child
                stack.append([None, child])
            else:
                pending[1][pending[2]] = None
            pending = None
        while stack[-1][0] is not None and indent < stack[-1][0]:
            stack.pop()
        if stack[-1][0] is None:
            stack[-1][0] = indent
        if indent != stack[-1][0]:
            raise _NotSimple(line)
        target = stack[-1][1]
        if value is None or not value.strip():
            pending = (indent, target, key)
        else:
            target[key] = _scalar(value)
    if pending is not None:
        pending[1][pending[2]] = None
    return root


def load_config_text(text: str) -> dict:
    """config.yaml as a dict: a fast path for the YAML that runs write (parsing a thousand
    configs with PyYAML alone takes seconds), PyYAML for everything else."""
    try:
        return _simple_yaml(text)
    except (_NotSimple, yaml.YAMLError):
        return yaml.load(text, Loader=_YAML_LOADER)


def _columnar(records: list[dict]) -> tuple[tuple, np.ndarray]:
    """Records as (keys, float matrix): compact to keep and cheap to pass between processes."""
    if not records:
        return (), np.zeros((0, 0))
    keys = tuple(records[0])
    if all(len(r) == len(keys) and tuple(r) == keys for r in records):
        rows = [list(r.values()) for r in records]
    else:
        keys = tuple(dict.fromkeys(k for r in records for k in r))
        rows = [[r.get(k) for k in keys] for r in records]
    try:
        return keys, np.array(rows, dtype=float)
    except (TypeError, ValueError):  # a non-numeric value somewhere: keep it as missing
        return keys, np.array([[v if isinstance(v, (int, float)) else None for v in row]
                               for row in rows], dtype=float)


def _int(*candidates) -> int | None:
    for c in candidates:
        if isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c):
            return int(c)
    return None


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Every run under ``paths``, read in this process."""
    dirs = discover(paths)
    return [load_run(d, n) for d, n in zip(dirs, _names(dirs))]


# ---- tables -----------------------------------------------------------------
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


def swept_keys(cfg: pd.DataFrame) -> list[str]:
    """Config keys whose values differ across runs (placement and free text ignored)."""
    keys = [c for c in cfg.columns
            if c not in IGNORED_KEYS and not c.startswith(IGNORED_PREFIXES)
            and cfg[c].dropna().nunique() > 1]
    first = [k for k in PRIORITY if k in keys]
    return first + [k for k in keys if k not in first]


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}" if math.isfinite(v) else ""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def _label(values: dict) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())


def _layer_cols(finals: pd.DataFrame, prefix: str) -> list[tuple[str, int]]:
    out = []
    for c in finals.columns:
        m = LAYER_KEY.match(c)
        if m and m.group(1) == prefix:
            out.append((c, int(m.group(2))))
    return sorted(out, key=lambda t: t[1])


def _per_layer_text(finals: pd.DataFrame, prefix: str) -> pd.Series:
    cols = _layer_cols(finals, prefix)
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
    info["setting"] = [_label({k: row[k] for k in no_seed}) for _, row in sw.iterrows()]
    info["others"] = [_label({k: row[k] for k in others}) for _, row in sw.iterrows()]
    return info


def summary_table(runs: list[Run], cfg: pd.DataFrame, finals: pd.DataFrame,
                  swept: list[str]) -> pd.DataFrame:
    """One row per run: status, steps, swept parameters, final metrics, per-layer ranks;
    sorted by the swept parameters, indexed by the run's position in ``runs``."""
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
    df["ranks_Z"] = _per_layer_text(finals, "rank_c/Z")
    df["ranks_W"] = _per_layer_text(finals, "rank/W")
    df["time_s"] = pd.to_numeric(finals["time"], errors="coerce") if "time" in finals else np.nan
    df["problem"] = ["; ".join(r.problems) for r in runs]
    order = [k for k in swept if df[k].notna().any()]
    try:
        df = df.sort_values(order + ["run"], kind="stable", na_position="last")
    except TypeError:  # mixed types in a swept column
        df = df.sort_values(["run"], kind="stable")
    return df


def by_setting_table(summary: pd.DataFrame, swept: list[str]) -> pd.DataFrame:
    """Seeds aggregated: per setting, counts and mean/std of the main metrics over finished runs."""
    keys = [k for k in swept if k != "seed"]
    metrics = ["loss", "test_loss", "norm", "norm_per_L", "bottleneck_rank"]
    df = summary.copy()
    df["_key"] = [_label({k: row[k] for k in keys}) for _, row in df[keys].iterrows()] \
        if keys else ""
    fin = df[df["status"] == "finished"]
    counts = df.groupby("_key", sort=False).agg(runs=("run", "size"))
    counts["finished"] = fin.groupby("_key", sort=False)["run"].size().reindex(counts.index)
    counts["finished"] = counts["finished"].fillna(0).astype(int)
    agg = fin.groupby("_key", sort=False)[metrics].agg(["mean", "std"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    first = (df.groupby("_key", sort=False)[keys].first() if keys
             else pd.DataFrame(index=counts.index))
    out = pd.concat([first, counts, agg.reindex(counts.index)], axis=1).reset_index(drop=True)
    return out


def long_table(runs: list[Run]) -> pd.DataFrame:
    """Tidy table of every recorded metric: run, step, metric, layer (NA if global), value.

    Vectorized: key names are parsed once per distinct set of keys; absent or non-finite
    values (JSON null) have no row."""
    key_ids: dict[str, int] = {}
    layouts: dict[tuple, np.ndarray] = {}
    codes, values, run_codes, steps = [], [], [], []
    for i, run in enumerate(runs):
        if not run.values.size or "step" not in run.keys:
            continue
        layout = layouts.get(run.keys)
        if layout is None:
            layout = np.array([key_ids.setdefault(k, len(key_ids)) for k in run.keys], np.int32)
            layouts[run.keys] = layout
        n_rec, n_key = run.values.shape
        codes.append(np.tile(layout, n_rec))
        values.append(run.values.ravel())
        run_codes.append(np.full(n_rec * n_key, i, np.int32))
        steps.append(np.repeat(run.values[:, run.keys.index("step")], n_key))
    keys = list(key_ids)
    metric_code = np.zeros(len(keys), np.int32)
    layer_of = np.zeros(len(keys), np.int16)
    seen: dict[str, int] = {}
    for j, k in enumerate(keys):
        m = LAYER_KEY.match(k)
        name, layer = (m.group(1), int(m.group(2))) if m else (k, 0)
        metric_code[j] = seen.setdefault(name, len(seen))
        layer_of[j] = layer
    cat = lambda parts, dt: np.concatenate(parts) if parts else np.zeros(0, dt)  # noqa: E731
    codes, vals = cat(codes, np.int32), cat(values, float)
    run_codes, step_col = cat(run_codes, np.int32), cat(steps, float)
    keep = (codes != key_ids.get("step", -1)) & np.isfinite(vals)
    codes, vals, run_codes, step_col = codes[keep], vals[keep], run_codes[keep], step_col[keep]
    layer = layer_of[codes]
    return pd.DataFrame({
        "run": pd.Categorical.from_codes(run_codes, categories=[r.name for r in runs]),
        "step": step_col.astype(np.int64),
        "metric": pd.Categorical.from_codes(metric_code[codes], categories=list(seen)),
        "layer": pd.arrays.IntegerArray(layer, layer == 0),
        "value": vals,
    })


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Least squares y = a·x + b with standard errors (NaN with two points)."""
    X = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    n = len(x)
    if n > 2:
        s2 = float(np.sum((y - X @ coef) ** 2)) / (n - 2)
        cov = s2 * np.linalg.inv(X.T @ X)
        err = np.sqrt(np.diag(cov))
    else:
        err = np.array([np.nan, np.nan])
    return float(coef[0]), float(err[0]), float(coef[1]), float(err[1])


def depth_fit_table(info: pd.DataFrame, finals: pd.DataFrame, cfg: pd.DataFrame,
                    swept: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit ||theta||^2 = R0·L + R1 per setting (swept minus depth and seed).

    Per seed a least-squares line, then mean ± std over seeds; with one seed a single
    fit with its standard errors. Finished runs only, at least two distinct depths.
    Returns (fits, points) where points hold mean/std of ||theta||^2 per (setting, depth)."""
    df = info[["others", "depth", "seed", "finished"]].copy()
    df["norm"] = pd.to_numeric(finals["norm/total"], errors="coerce") if "norm/total" in finals \
        else np.nan
    df = df[df["finished"] & np.isfinite(df["norm"]) & np.isfinite(df["depth"])]
    if "order" in info:  # settings in table order
        df = df.loc[info.loc[df.index, "order"].sort_values(kind="stable").index]
    others = [k for k in swept if k not in ("depth", "seed")]
    rows, points = [], []
    for setting, g in df.groupby("others", sort=False):
        if g["depth"].nunique() < 2:
            continue
        per_seed = [_ols(s["depth"].to_numpy(float), s["norm"].to_numpy(float))
                    for _, s in g.groupby("seed") if s["depth"].nunique() >= 2]
        if len(per_seed) >= 2:
            a = np.array(per_seed)
            slope, intercept = a[:, 0].mean(), a[:, 2].mean()
            slope_err, intercept_err = a[:, 0].std(ddof=1), a[:, 2].std(ddof=1)
            method = f"mean ± std over {len(per_seed)} seeds"
        else:
            slope, slope_err, intercept, intercept_err = _ols(g["depth"].to_numpy(float),
                                                              g["norm"].to_numpy(float))
            method = "one least-squares fit ± standard error"
        row = {"setting": setting}
        row.update({k: cfg.loc[g.index[0], k] for k in others})
        row.update({
            "n_runs": len(g), "n_seeds": g["seed"].nunique(),
            "depths": ",".join(f"{d:g}" for d in sorted(g["depth"].unique())),
            "R0_estimate": slope, "R0_err": slope_err,
            "R1_estimate": intercept, "R1_err": intercept_err, "method": method,
        })
        rows.append(row)
        pts = g.groupby("depth")["norm"].agg(["mean", "std", "size"]).reset_index()
        pts["setting"] = setting
        points.append(pts.rename(columns={"size": "n"}))
    fits = pd.DataFrame(rows, columns=["setting", *others, "n_runs", "n_seeds", "depths",
                                       "R0_estimate", "R0_err", "R1_estimate", "R1_err", "method"])
    pts = pd.concat(points, ignore_index=True) if points else \
        pd.DataFrame(columns=["depth", "mean", "std", "n", "setting"])
    return fits, pts


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table (no extra dependency)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        cells = [_fmt(v).replace("|", "\\|").replace("\n", " ") for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---- figure data ---------------------------------------------------------------
def _profile(info: pd.DataFrame, finals: pd.DataFrame, prefix: str) -> pd.DataFrame:
    """Final per-layer values of ``prefix`` for finished runs, aggregated over seeds by
    (setting-without-depth, depth, layer): columns panel, depth, rel, mean, lo, hi."""
    cols = _layer_cols(finals, prefix)
    fin = info.index[info["finished"] & np.isfinite(info["depth"])]
    if not cols or not len(fin):
        return pd.DataFrame(columns=["panel", "depth", "rel", "mean", "lo", "hi"])
    sub = finals.loc[fin, [c for c, _ in cols]].apply(pd.to_numeric, errors="coerce")
    sub.columns = [l for _, l in cols]
    long = sub.stack().rename("value").reset_index()
    long.columns = ["i", "layer", "value"]
    long["panel"] = info.loc[long["i"], "others"].to_numpy()
    long["depth"] = info.loc[long["i"], "depth"].to_numpy()
    agg = long.groupby(["panel", "depth", "layer"], sort=False)["value"].agg(
        mean="mean", lo="min", hi="max").reset_index()
    agg["rel"] = agg["layer"] / agg["depth"]
    ordered = info.sort_values("order") if "order" in info else info
    order = {p: j for j, p in enumerate(ordered["others"].unique())}
    agg["_o"] = agg["panel"].map(order)
    return agg.sort_values(["_o", "depth", "layer"]).drop(columns="_o").reset_index(drop=True)


def _vs_depth(info: pd.DataFrame, finals: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    fin = info[info["finished"] & np.isfinite(info["depth"])]
    parts = []
    for key in keys:
        if key not in finals:
            continue
        d = fin[["others", "depth"]].copy()
        d["value"] = pd.to_numeric(finals.loc[fin.index, key], errors="coerce")
        g = d.groupby(["others", "depth"], sort=False)["value"].agg(["mean", "std"]).reset_index()
        g["metric"] = key
        parts.append(g.rename(columns={"others": "setting"}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["setting", "depth", "mean", "std", "metric"])


def _evenly(items: list, k: int) -> list:
    if len(items) <= k:
        return list(items)
    idx = np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))
    return [items[i] for i in idx]


def _remaining_items(runs: list[Run], info: pd.DataFrame) -> list[tuple]:
    """Finished runs whose spectra feed the near-one figure: at most MAX_SPECTRA, taken
    round robin over the (setting, depth) groups so every group is represented."""
    fin = info[info["finished"] & np.isfinite(info["depth"])]
    groups = [list(g.index) for _, g in fin.groupby(["others", "depth"], sort=False)]
    chosen: list[int] = []
    for r in range(max((len(g) for g in groups), default=0)):
        chosen.extend(g[r] for g in groups if r < len(g))
        if len(chosen) >= MAX_SPECTRA:
            break
    return [(runs[i].path, info.at[i, "others"], info.at[i, "depth"],
             float((runs[i].config.get("metrics") or {}).get("near_one_delta", 0.5)))
            for i in chosen[:MAX_SPECTRA]]


def _last_weight_spectra(path: Path) -> list[tuple[int, np.ndarray]]:
    """(layer, singular values of W_l) at the last spectra step; reads only the W arrays."""
    run = rd.RunDir(path)
    steps = run.spectra_steps()
    if not steps:
        return []
    with np.load(run.file(rd.SPECTRA) / f"{steps[-1]:08d}.npz", allow_pickle=False) as data:
        return sorted(((int(m.group(2)), data[k]) for k in data.files
                       if (m := SV_KEY.match(k)) and m.group(1) == "W"), key=lambda t: t[0])


def _remaining(items: list[tuple]) -> pd.DataFrame:
    """Per run, the root-sum-square of the weight singular values with |s - 1| > delta,
    averaged (in square) over the middle layers l/L in [0.25, 0.75]; mean/std over seeds
    per (setting, depth). Runs without spectra drop out."""
    rows = []
    for path, setting, depth, delta in items:
        try:
            ws = _last_weight_spectra(path)
        except Exception:  # noqa: BLE001 - a run without spectra just drops out
            continue
        if not ws:
            continue
        L = len(ws)
        mid = [s for l, s in ws if 0.25 <= l / L <= 0.75] or [s for _, s in ws]
        sq = [float(np.sum(np.where(np.abs(s - 1) > delta, s, 0.0) ** 2)) for s in mid]
        rows.append({"setting": setting, "depth": depth, "value": math.sqrt(float(np.mean(sq))),
                     "delta": delta})
    if not rows:
        return pd.DataFrame(columns=["setting", "depth", "mean", "std", "delta"])
    return pd.DataFrame(rows).groupby(["setting", "depth"], sort=False).agg(
        mean=("value", "mean"), std=("value", "std"), delta=("delta", "first")).reset_index()


def _remaining_figure(items: list[tuple]):
    """Figure 4b (reads spectra, so it runs where the figures are drawn); None if < 2 depths."""
    from . import plots

    rest = _remaining(items)
    if rest["depth"].nunique() < 2:
        return None
    return plots.remaining_size(rest, float(rest["delta"].iloc[0]))


def _curves(long: pd.DataFrame, info: pd.DataFrame, swept: list[str],
            cfg: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Training-curve aggregates: panel = values of the first swept parameter (not seed),
    line = the other swept parameters; mean and min/max over seeds at each step."""
    no_seed = [k for k in swept if k != "seed"]
    panel_key = no_seed[0] if no_seed else None
    line_keys = no_seed[1:]
    if panel_key:
        panel = [_label({panel_key: v}) for v in cfg[panel_key]]
        values = sorted(cfg[panel_key].dropna().unique(), key=_sortkey)
        panels = _evenly([_label({panel_key: v}) for v in values], 3)
    else:
        panel, panels = [""] * len(info), [""]
    if line_keys:
        sw = cfg[line_keys]
        line = [_label(dict(zip(line_keys, row))) for row in sw.itertuples(index=False)]
        distinct = sw.drop_duplicates()
        ordered = sorted(distinct.itertuples(index=False), key=lambda r: [_sortkey(v) for v in r])
        lines = _evenly([_label(dict(zip(line_keys, r))) for r in ordered], MAX_LINES)
    else:
        line, lines = [""] * len(info), [""]
    keys = [m for _, _, ms in CURVES for m, _ in ms]
    sub = long[long["metric"].isin(keys) & long["layer"].isna()]
    if not len(sub):
        return pd.DataFrame(columns=["panel", "line", "metric", "step", "mean", "lo", "hi"]), ""
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
    return agg, (f"one panel per {panel_key}" if panel_key else "")


def _sortkey(v):
    return (0, float(v), "") if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) \
        else (1, 0.0, str(v))


def _phase(info: pd.DataFrame, cfg: pd.DataFrame, finals: pd.DataFrame, grid: tuple[str, str],
           metric: str) -> tuple[pd.DataFrame, str]:
    a, b = grid
    df = pd.DataFrame({"x": cfg[a].to_numpy(), "y": cfg[b].to_numpy(),
                       "v": pd.to_numeric(finals[metric], errors="coerce").to_numpy(),
                       "finished": info["finished"].to_numpy()})
    df = df.dropna(subset=["x", "y"])
    df.loc[~df["finished"], "v"] = np.nan
    table = df.pivot_table(index="y", columns="x", values="v", aggfunc="mean", dropna=False)
    allcells = df.groupby(["y", "x"]).size()
    table = table.reindex(index=sorted(df["y"].unique(), key=_sortkey),
                          columns=sorted(df["x"].unique(), key=_sortkey))
    n = int(allcells.max()) if len(allcells) else 0
    note = f"mean over up to {n} finished runs per cell; × = none finished" if n > 1 else \
        "× = run not finished"
    return table, note


# ---- building the report -------------------------------------------------------
@dataclass
class _Fig:
    stem: str
    title: str
    caption: str
    paths: list[Path]
    job: tuple = ()  # (plots function name or a function returning a Figure, args, kwargs)


# Rough drawing cost (panels) of the aggregate figures: the costly ones are handed to the
# workers first, so that none is left running alone at the end.
_COST = {"training_curves": 6, "rank_profile": 3, "near_one_profile": 3,
         "nonlinearity_profile": 3, "near_one_rest": 3}


def _job(fn: str, *args, **kwargs) -> tuple:
    return fn, args, kwargs


def _render(item: tuple) -> tuple[str, list[Path] | str | None]:
    """Draw and save one figure (in a pool worker or inline): its files, None when there
    was nothing to draw, or the error as text."""
    stem, (fn, args, kwargs), fig_dir, formats = item
    from . import plots

    try:
        fig = (getattr(plots, fn) if isinstance(fn, str) else fn)(*args, **kwargs)
        return stem, None if fig is None else plots.save(fig, fig_dir, stem, formats)
    except Exception as exc:  # noqa: BLE001 - one bad figure must not lose the report
        return stem, f"{type(exc).__name__}: {exc}"


def _fork_ok() -> bool:
    """Forking is safe unless a JAX backend is live in this process (DESIGN.md)."""
    if os.name != "posix" or "fork" not in mp.get_all_start_methods():
        return False
    if "jax" in sys.modules:
        try:
            from jax._src import xla_bridge

            return not getattr(xla_bridge, "_backends", True)
        except Exception:  # noqa: BLE001
            return False
    return True


def _load_chunk(items: list[tuple[Path, str]]) -> list[Run]:
    return [load_run(p, n) for p, n in items]


def default_out(paths: Sequence[Path]) -> Path:
    return Path(paths[0]) / "report"


def build_report(paths: Sequence[Path], out: Path | None = None,
                 grid: tuple[str, str] | None = None, metric: str = "loss/test",
                 per_run_max: int = 12, formats: Sequence[str] = ("png", "pdf"),
                 workers: int | None = None) -> ReportResult:
    """Read the runs under ``paths`` and write tables, figures and report.html to ``out``
    (default ``<first path>/report``). Raises ReportError for bad input paths or options.

    ``workers`` forked processes (default: one per available CPU, at most 8) read run
    folders and draw figures; 1, or a live JAX backend in this process, keeps everything
    in this process."""
    t0 = time.perf_counter()
    paths = [Path(p) for p in paths]
    if not paths:
        raise ReportError("no PATH given")
    if grid is not None:
        grid = tuple(grid)
        if len(grid) != 2 or grid[0] == grid[1]:
            raise ReportError(f"--grid needs two different parameters, e.g. lam,lr (got {grid})")
    formats = tuple(dict.fromkeys(f.lower().lstrip(".") for f in formats))
    if "png" not in formats:
        formats = ("png",) + formats  # the HTML page embeds the PNGs
    bad = [f for f in formats if f not in ("png", "pdf", "svg")]
    if bad:
        raise ReportError(f"unknown figure format {bad[0]!r}; choose from png, pdf, svg")
    dirs = discover(paths)
    out = Path(out) if out is not None else default_out(paths)
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out} exists and is not a folder")
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = min(8, cpus or 1)
    if workers < 2 or not _fork_ok():
        workers = 1
    runs = _load(list(zip(dirs, _names(dirs))), workers, formats)
    pool = mp.get_context("fork").Pool(workers) if workers > 1 else None
    try:
        return _build(paths, runs, out, grid, metric, per_run_max, formats, pool, t0)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def _load(items: list[tuple[Path, str]], workers: int, formats: Sequence[str]) -> list[Run]:
    """Read the runs, in forked workers for large reports. Meanwhile this process warms up
    matplotlib, so that the drawing workers forked later inherit loaded fonts and backends."""
    from . import plots

    if workers < 2 or len(items) < 64:
        return _load_chunk(items)
    n = max(1, len(items) // (8 * workers))
    chunks = [items[i:i + n] for i in range(0, len(items), n)]
    with mp.get_context("fork").Pool(workers) as pool:
        pending = pool.map_async(_load_chunk, chunks, chunksize=1)
        plots.warm_up(formats)
        return [r for chunk in pending.get() for r in chunk]


def _build(paths, runs, out, grid, metric, per_run_max, formats, pool, t0) -> ReportResult:
    cfg = config_frame(runs)
    swept = swept_keys(cfg)
    finals = pd.DataFrame.from_records([r.final for r in runs], index=range(len(runs)))
    for c in finals.columns[finals.dtypes == object]:
        finals[c] = pd.to_numeric(finals[c], errors="coerce")
    _check_grid(grid, metric, cfg, finals, swept)
    info = run_info(runs, cfg, swept)
    summary = summary_table(runs, cfg, finals, swept)
    info["order"] = pd.Series(np.arange(len(summary)), index=summary.index)
    summary = summary.reset_index(drop=True)

    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for old in fig_dir.iterdir():  # a previous report's figures would be stale
        if old.suffix in (".png", ".pdf", ".svg"):
            old.unlink()
    # Per-run figures first: workers draw them while this process aggregates. A sample of
    # a larger report is for viewing (PNG); vector copies cost as much again.
    skipped: list[str] = []
    run_figs = _per_run_figures(runs, info, per_run_max, skipped)
    run_formats = formats if len(runs) <= per_run_max else ("png",)
    pending = []

    def submit(figs, fmts):
        jobs = [(f.stem, f.job, fig_dir, fmts) for f in figs]
        if pool is not None:
            pending.append(pool.map_async(_render, jobs, chunksize=1))
        else:
            pending.append(list(map(_render, jobs)))

    submit(run_figs, run_formats)
    by_setting = by_setting_table(summary, swept)
    fits, fit_points = depth_fit_table(info, finals, cfg, swept)
    long = long_table(runs)
    problems = [f"{r.name}: {p}" for r in runs for p in r.problems]
    figs, skipped_agg = _figures(runs, info, cfg, finals, long, swept, fits, fit_points, grid,
                                 metric)
    skipped[:0] = skipped_agg
    submit(sorted(figs, key=lambda f: -_COST.get(f.stem, 2)), formats)
    tables = _write_tables(out, runs, summary, by_setting, fits, long, problems)
    drawn = dict(r for p in pending for r in (p if isinstance(p, list) else p.get()))
    figs = figs + run_figs
    for f in figs:
        result = drawn[f.stem]
        if isinstance(result, str):
            problems.append(f"figure {f.stem} failed ({result})")
        elif result is None:
            skipped.append(f"{f.title}: nothing to draw (no spectra recorded)")
        else:
            f.paths = result
    figs = [f for f in figs if f.paths]

    from . import report_html

    html_path = out / "report.html"
    html_path.write_text(report_html.render(
        title=f"bncli report: {', '.join(map(str, paths))}",
        runs=len(runs), counts=summary["status"].value_counts().to_dict(), swept=swept,
        summary=summary, by_setting=by_setting if len(by_setting) < len(summary) else None,
        fits=fits, problems=problems,
        figures=[(f.title, f.caption, next(p for p in f.paths if p.suffix == ".png"),
                  [p.name for p in f.paths]) for f in figs],
        skipped=skipped, commands=_commands(runs), config=_config_text(runs),
        max_rows=MAX_HTML_ROWS), encoding="utf-8")
    return ReportResult(out_dir=out, html=html_path, summary=summary, by_setting=by_setting,
                        depth_fit=fits, problems=problems,
                        figures=[p for f in figs for p in f.paths], skipped=skipped, swept=swept,
                        tables=tables, seconds=time.perf_counter() - t0)


def _write_tables(out: Path, runs, summary, by_setting, fits, long, problems) -> dict[str, Path]:
    """summary.csv/.md, summary_by_setting.csv, depth_fit.csv and long.parquet."""
    tables = {name: out / name for name in ("summary.csv", "summary_by_setting.csv",
                                            "depth_fit.csv", "summary.md", "long.parquet")}
    summary.to_csv(tables["summary.csv"], index=False)
    by_setting.to_csv(tables["summary_by_setting.csv"], index=False)
    fits.to_csv(tables["depth_fit.csv"], index=False)
    long.to_parquet(tables["long.parquet"], index=False)
    md = [f"# bncli report: {len(runs)} runs\n", markdown_table(summary)]
    if len(by_setting) < len(summary):
        md += ["\n## Seeds aggregated (finished runs)\n", markdown_table(by_setting)]
    if len(fits):
        md += ["\n## Depth fit ||θ||² = R0·L + R1 (R0: rank estimate, R1: regularity)\n",
               markdown_table(fits)]
    if problems:
        md += ["\n## Problems\n", "".join(f"- {p}\n" for p in problems)]
    tables["summary.md"].write_text("\n".join(md), encoding="utf-8")
    return tables


def _check_grid(grid, metric, cfg, finals, swept) -> None:
    """Fail early (before any drawing) on an unknown --grid parameter or --metric."""
    if grid is None:
        return
    for k in grid:
        if k not in cfg.columns:
            raise ReportError(f"--grid: unknown parameter {k!r}; swept parameters: "
                              f"{', '.join(swept) or 'none'}")
    if metric not in finals:
        avail = sorted(c for c in finals.columns if not LAYER_KEY.match(c))
        raise ReportError(f"--metric: {metric!r} is not a recorded metric; choose from "
                          f"{', '.join(avail[:30])}")


def _figures(runs, info, cfg, finals, long, swept, fits, fit_points, grid,
             metric) -> tuple[list[_Fig], list[str]]:
    """Plan every figure that applies (data ready, not drawn yet); return them and the
    reasons for the skipped ones."""
    figs: list[_Fig] = []
    skipped: list[str] = []

    def emit(stem, title, caption, job):
        figs.append(_Fig(stem, title, caption, [], job))

    depths = sorted(info.loc[info["finished"], "depth"].dropna().unique())
    sweep_note = f"finished runs at {len(depths)} depth(s)"

    # 2. rank profile across a depth sweep
    prof = _profile(info, finals, "rank_c/Z")
    if len(depths) >= 2 and len(prof):
        emit("rank_profile", "Rank profile against relative depth",
             "Numerical rank of the centered representations Z_l (rank_c) at the end of "
             "training against l/L, one line per depth (mean over seeds, band min-max). "
             "Bottleneck structure: high at both ends, low in the middle.",
             _job("layer_profiles", prof, "rank of Z_l (centered)", "rank profile"))
    else:
        skipped.append(f"rank profile against l/L: needs a depth sweep ({sweep_note} with "
                       f"rank_c/Z metrics)")

    # 3. depth fit
    if len(fits):
        lines = "; ".join(f"{r.setting or 'all runs'}: R0 = {_pm(r.R0_estimate, r.R0_err)}, "
                          f"R1 = {_pm(r.R1_estimate, r.R1_err)}" for r in fits.itertuples())
        emit("depth_fit", "Parameter norm against depth",
             "||θ||² at the end of training against depth L with a least-squares line per "
             f"setting: slope = R0 (rank) estimate, intercept = R1 estimate. {lines}.",
             _job("depth_fit", fit_points, fits.rename(columns={
                 "R0_estimate": "slope", "R0_err": "slope_err",
                 "R1_estimate": "intercept", "R1_err": "intercept_err"})))
    else:
        skipped.append(f"depth fit of ||θ||²: needs finished runs at ≥ 2 depths ({sweep_note})")

    # 4. near-one singular values
    near = _profile(info, finals, "near_one/W")
    if len(near):
        emit("near_one_profile", "Near-one singular values per layer",
             "Count of weight singular values with |s − 1| ≤ δ per layer against l/L, one "
             "line per depth: about R0 in almost every layer.",
             _job("layer_profiles", near, "#{|s_i − 1| ≤ δ} of W_l", "near-one count"))
    else:
        skipped.append("near-one count per layer: no finished run records near_one/W")
    if len(depths) >= 2:
        emit("near_one_rest", "Singular values away from one against depth",
             "Root-sum-square of the weight singular values with |s − 1| > δ, per middle "
             "layer (l/L in [0.25, 0.75]), against L, with an L^(-1/2) reference line "
             "(the theory: O(L^(-1/2))).",
             _job(_remaining_figure, _remaining_items(runs, info)))
    else:
        skipped.append(f"size of the remaining singular values against L: needs a depth sweep "
                       f"({sweep_note})")

    # 5. training curves
    curves, panel_title = _curves(long, info, swept, cfg)
    if len(curves):
        emit("training_curves", "Training curves",
             f"Loss, test loss and rank estimate against step ({panel_title or 'all runs'}; "
             f"lines: other swept parameters; mean over seeds with min-max band).",
             _job("training_curves", curves, CURVES, panel_title))
    else:
        skipped.append("training curves: no metrics recorded")

    # 6. phase diagram
    _phase_figure(info, cfg, finals, swept, grid, metric, emit, skipped)

    # extras of later issues, drawn when their metrics exist
    extras = [("ntk_vs_depth", "NTK trace against depth", ["ntk/trace_per_nl", "ntk/max_eig"],
               {"ntk/trace_per_nl": "Tr Θ / (N·L)", "ntk/max_eig": "λ_max(Θ)"}),
              ("jacobian_vs_depth", "Jacobian rank and log pseudo-determinant against depth",
               ["jac/rank", "jac/logdet"],
               {"jac/rank": "rank Jf(x)", "jac/logdet": "log |Jf(x)|₊"})]
    for stem, title, keys, labels in extras:
        present = [k for k in keys if k in finals and finals[k].notna().any()]
        if not present or (stem.startswith("ntk") and "ntk/trace_per_nl" not in present):
            continue
        if len(depths) >= 2:
            emit(stem, title, f"{title} (final values, mean ± std over seeds, one line per "
                              f"setting).",
                 _job("vs_depth", _vs_depth(info, finals, present),
                      [(k, labels[k]) for k in present], title))
        else:
            skipped.append(f"{title.lower()}: needs a depth sweep ({sweep_note})")
    nonlin = _profile(info, finals, "nonlin/Z")
    if len(nonlin):
        emit("nonlinearity_profile", "Nonlinearity impact per layer",
             "||relu(Z̃_l) − Z̃_l||_F / ||Z̃_l||_F against l/L, one line per depth: the "
             "nonlinearity matters at the ends and vanishes in the bottleneck.",
             _job("layer_profiles", nonlin, "nonlinearity impact", "nonlinearity impact"))

    return figs, skipped


def _per_run_figures(runs: list[Run], info: pd.DataFrame, per_run_max: int,
                     skipped: list[str]) -> list[_Fig]:
    """Figure 1 for a bounded, representative set of runs (see ``_per_run_choice``)."""
    figs = []
    chosen = _per_run_choice(runs, info, per_run_max)
    for k, i in enumerate(chosen):
        r = runs[i]
        light = Run(name=r.name, path=r.path, status=r.status, config=r.config, final=r.final)
        figs.append(_Fig(f"run_{k:03d}_{_safe(r.name)}", f"Run {r.name}",
                         "Weight and representation singular values per layer (log colour; "
                         "grey: none) and ranks against layer, at the last recorded step.",
                         [], _job(_run_figure, light)))
    n_read = sum(1 for r in runs if r.status != "unreadable")
    if n_read > len(chosen):
        png_only = ", as PNG only" if len(runs) > per_run_max else ""
        skipped.append(f"per-run spectra figures drawn for {len(chosen)} of {n_read} readable "
                       f"runs (--per-run-max {per_run_max}){png_only}; the rest are in the "
                       f"tables (report one run folder for all its figure formats)")
    return figs


def _phase_figure(info, cfg, finals, swept, grid, metric, emit, skipped) -> None:
    candidates = [k for k in swept if k != "seed" and cfg[k].dropna().nunique() >= 2]
    if grid is None:
        if len(candidates) < 2:
            skipped.append("phase diagram: needs two swept parameters besides seed "
                           "(choose with --grid A,B --metric M)")
            return
        grid = (candidates[0], candidates[1])
        if metric not in finals:
            metric = "loss/train" if "loss/train" in finals else None
            if metric is None:
                skipped.append("phase diagram: no loss metric recorded")
                return
    table, note = _phase(info, cfg, finals, grid, metric)
    others = [k for k in swept if k not in (*grid, "seed")]
    if others:
        note += f"; averaged over {', '.join(others)}"
    emit(f"phase_{_safe(grid[0])}_{_safe(grid[1])}", f"Final {metric} over {grid[0]} × {grid[1]}",
         f"Phase diagram of the final {metric} ({note}).",
         _job("phase_diagram", table, grid[0], grid[1], metric, note))


def _safe(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9=.,_+-]+", "_", name).strip("_")
    return s[:60] or "run"


def _per_run_choice(runs: list[Run], info: pd.DataFrame, k: int) -> list[int]:
    """Up to ``k`` runs with spectra for per-run figures: finished first, lowest seed of
    each setting, spread evenly over the settings in table order."""
    if k <= 0:
        return []
    has = np.array([(r.path / rd.SPECTRA).is_dir() for r in runs])
    ok = info[(info["status"] != "unreadable") & has]
    if not len(ok):
        return []
    ok = ok.assign(_rank=~ok["finished"]).sort_values(["_rank", "seed"], kind="stable")
    firsts = list(ok.drop_duplicates("setting").index)
    chosen = _evenly(sorted(firsts, key=lambda i: info.at[i, "order"]), k)
    if len(chosen) < k:
        taken = set(chosen)
        chosen += [i for i in ok.index if i not in taken][: k - len(chosen)]
    return chosen


def _run_figure(run: Run):
    """Figure 1 for one run from its last spectra (read where the figure is drawn); None
    when the run recorded no spectra."""
    from . import plots

    try:
        spec = rd.RunDir(run.path).read_spectra()
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - reported as a failed figure
        raise ValueError(f"spectra unreadable ({type(exc).__name__}: {exc})") from None
    groups: dict[str, list[tuple[int, np.ndarray]]] = {"W": [], "Z": [], "Zc": []}
    for key, arr in spec.items():
        m = SV_KEY.match(key)
        if m:
            groups[m.group(1)].append((int(m.group(2)), np.asarray(arr, float).ravel()))
    for g in groups.values():
        g.sort(key=lambda t: t[0])
    z_key, z_label = ("Zc", "centered") if groups["Zc"] else ("Z", "uncentered")
    mcfg = run.config.get("metrics") or {}
    atol, rtol = float(mcfg.get("atol", 0.1)), float(mcfg.get("rtol", 0.1))

    def from_final(prefix, fallback):
        cols = sorted(((int(m.group(2)), v) for k, v in run.final.items()
                       if (m := LAYER_KEY.match(k)) and m.group(1) == prefix
                       and isinstance(v, (int, float))), key=lambda t: t[0])
        if cols:
            return np.array([c[0] for c in cols]), np.array([c[1] for c in cols], float)
        if fallback:
            return (np.array([l for l, _ in fallback]),
                    np.array([_num_rank(s, atol, rtol) for _, s in fallback], float))
        return None

    ranks = {}
    for label, prefix, fb in [("rank W_l", "rank/W", groups["W"]),
                              ("near-one W_l", "near_one/W", None),
                              ("rank Z_l (centered)", "rank_c/Z", groups["Zc"]),
                              ("rank Z_l (uncentered)", "rank/Z", groups["Z"])]:
        v = from_final(prefix, fb)
        if v is not None:
            ranks[label] = v
    name = run.name + (f"  [{run.status}]" if run.status != "finished" else "")
    return plots.run_spectra(name, [s for _, s in groups["W"]], [s for _, s in groups[z_key]],
                             z_label, ranks)


def _pm(value: float, err: float) -> str:
    return f"{value:.3g}" + (f" ± {err:.2g}" if math.isfinite(err) else "")


def _num_rank(s: np.ndarray, atol: float, rtol: float) -> int:
    if not len(s):
        return 0
    return int(np.sum(s > max(atol, rtol * float(np.max(s)))))


def _commands(runs: list[Run], cap: int = 200) -> list[str]:
    """``bncli train`` lines that reproduce the first ``cap`` runs (from overrides.json)."""
    out = []
    for r in runs[:cap]:
        try:
            ov = rd.read_json(r.path / rd.OVERRIDES)
            out.append(f"bncli train {' '.join(map(str, ov['overrides']))}    # {r.name}")
        except (OSError, ValueError, KeyError, TypeError):
            out.append(f"# {r.name}: no readable overrides.json")
    if len(runs) > cap:
        out.append(f"# ... and {len(runs) - cap} more runs")
    return out


def _config_text(runs: list[Run]) -> tuple[str, str]:
    """(run name, config.yaml text) of the first readable run."""
    for r in runs:
        if r.config:
            try:
                return r.name, (r.path / rd.CONFIG).read_text()
            except OSError:
                continue
    return "", ""


# ---- terminal -----------------------------------------------------------------
def print_summary(result: ReportResult, console, max_rows: int = 15) -> None:
    """A short rich table (settings when seeds repeat, else runs), fits, problems, and
    where the report went."""
    from rich.table import Table
    from rich.text import Text

    s = result.summary
    counts = s["status"].value_counts().to_dict()
    title = f"{len(s)} runs (" + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")"
    use_settings = len(result.by_setting) < len(s) and len(result.by_setting) > 0
    if use_settings:
        df = result.by_setting
        keys = [k for k in result.swept if k != "seed"]
        cols = keys + ["runs", "finished", "loss_mean", "test_loss_mean", "norm_per_L_mean",
                       "bottleneck_rank_mean"]
    else:
        df = s
        cols = ["run", "status"] + [k for k in result.swept if k != "seed" and k in s][:4] + \
            ["loss", "test_loss", "norm_per_L", "bottleneck_rank"]
    cols = [c for c in cols if c in df.columns]
    table = Table(title=Text(title), title_justify="left")
    for c in cols:
        left = c in ("run", "status")
        table.add_column(c.replace("_mean", ""), justify="left" if left else "right",
                         overflow="fold", max_width=40 if c == "run" else None)
    for row in df[cols].head(max_rows).itertuples(index=False):
        table.add_row(*[Text(_fmt(v)) for v in row])
    if len(df) > max_rows:
        table.caption = f"... {len(df) - max_rows} more rows in {result.tables.get('summary.csv')}"
    console.print(table)
    fits = result.depth_fit
    for r in fits.head(6).itertuples():
        depths = r.depths.split(",")
        console.print(f"depth fit {r.setting or '(all runs)'}: R0 (rank) ≈ "
                      f"{_pm(r.R0_estimate, r.R0_err)}, R1 ≈ {_pm(r.R1_estimate, r.R1_err)} "
                      f"(L = {depths[0]}..{depths[-1]}, {r.n_seeds} seed(s))", markup=False)
    if len(fits) > 6:
        console.print(f"... {len(fits) - 6} more depth fits in "
                      f"{result.tables.get('depth_fit.csv')}",
                      markup=False)
    if result.problems:
        console.print(f"[yellow]{len(result.problems)} problem(s):[/yellow]")
        for p in result.problems[:8]:
            console.print(f"  {p}", markup=False)
        if len(result.problems) > 8:
            console.print(f"  ... and {len(result.problems) - 8} more (see report.html)")
    console.print(f"report written to {result.html}", markup=False)
