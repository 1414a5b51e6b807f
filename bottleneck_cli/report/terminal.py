"""What ``bncli report`` prints: a short table (settings when seeds repeat, else runs)
that fits the terminal (80 columns and up), the depth fits, the problems, and where the
report went.

The table keeps whole values: columns that do not fit are left out (and named), never
cut; run names lose the parts every row shares; numbers get 3-4 significant digits.
Paths are printed on lines of their own that the terminal may wrap but rich does not.
"""

from __future__ import annotations

import re

import pandas as pd

from .build import ReportResult
from .fit import basis
from .format import fmt, pm

# Terminal-table columns shown where the runs have them (tables adds them only then).
EXTRA_COLUMNS = ["norm", "closed_form", "closed_form_target", "distinct_neurons"]
HEADERS = {  # column -> (header, meaning for the legend line; "" when plain)
    "loss": ("objective", "objective = train fit + λ·||θ||² (with the ridge)"),
    "test_loss": ("test fit", "test fit = test loss, no ridge"),
    "norm_per_L": ("||θ||²/L", ""),
    "norm": ("||θ||²", ""),
    "bottleneck_rank": ("rank", "rank = bottleneck rank (centered)"),
    "closed_form": ("closed", "closed = L·Σ s_i(M)^(2/L) of the trained M"),
    "closed_form_target": ("target", "target = the same for the target A"),
    "distinct_neurons": ("neurons", "neurons = distinct active neurons"),
    "converged": ("conv", "conv = converged (runs with the verdict yes)"),
}


METRICS = ["loss", "test_loss", "bottleneck_rank", "converged", "norm_per_L", *EXTRA_COLUMNS]


def short_names(names: list[str], drop: tuple[str, ...] = ()) -> list[str]:
    """Run names without the parts (split at ``,`` and ``/``) that every name shares or
    that set a key of ``drop`` (``key=value``, shown in columns of their own); a name
    left empty keeps its last part."""
    parts = [re.split(r"(?<=[,/])", n) for n in names]
    common = set.intersection(*(set(p.rstrip(",/") for p in ps) for ps in parts)) \
        if len(parts) > 1 else set()
    out = []
    for name, ps in zip(names, parts):
        kept = [p for p in ps if p.rstrip(",/") not in common
                and p.rstrip(",/").split("/")[-1].split("=")[0] not in drop]
        out.append("".join(kept).rstrip(",/") or name.rstrip(",/").split("/")[-1])
    return out


def _frame(result: ReportResult) -> tuple[pd.DataFrame, str]:
    """The table to print (text cells, columns in priority order) and its kind."""
    s = result.summary
    keys = [k for k in result.swept if k != "seed"]
    if 0 < len(result.by_setting) < len(s):
        df = result.by_setting
        out = pd.DataFrame({k: df[k].map(lambda v: fmt(v, 3)) for k in keys if k in df})
        out["runs"] = [f"{f}/{r}" for f, r in zip(df["finished"], df["runs"])]
        if "converged" in s:
            fin = s[s["status"] == "finished"]
            conv = (fin["converged"] > 0).groupby(_setting(fin, keys)).sum()
            out["converged"] = [f"{int(conv.get(c, 0))}/{f}"
                                for c, f in zip(_setting(df, keys), df["finished"])]
        for m in METRICS:
            if f"{m}_mean" in df and m != "converged":  # counted above, not averaged
                out[m] = df[f"{m}_mean"].map(lambda v: fmt(v, 4))
        out = out[[c for c in [*keys, "runs", *METRICS] if c in out]]
        return out, "settings (mean over finished seeds)"
    out = pd.DataFrame({"run": short_names(list(s["run"].astype(str)), tuple(keys))})
    for k in keys:
        out[k] = s[k].map(lambda v: fmt(v, 3))
    if s["status"].nunique() > 1:
        out["status"] = s["status"]
    if "converged" in s:
        out["converged"] = s["converged"].map({1.0: "yes", 0.0: "no"}).fillna("")
    for m in METRICS:
        if m in s and m != "converged":
            out[m] = s[m].map(lambda v: fmt(v, 4))
    out = out[[c for c in ["run", *keys, "status", *METRICS] if c in out]]
    return out, "runs"


def _setting(df: pd.DataFrame, keys: list[str]) -> pd.Series:
    return df[keys].astype(str).agg(",".join, axis=1) if keys else pd.Series("", df.index)


def _fit(df: pd.DataFrame, width: int) -> tuple[list[str], list[str]]:
    """The columns that fit ``width`` (each as wide as its widest cell; box lines and
    padding: 3 characters a column), in order, and the ones left out."""
    if not any(c.startswith("closed_form") for c in df):  # ||θ||² only beside the closed form
        df = df.drop(columns=[c for c in ("norm",) if c in df])
    used, shown, dropped = 1, [], []
    for c in df.columns:
        w = max([len(HEADERS.get(c, (c,))[0])] + [len(v) for v in df[c]]) + 3
        if used + w <= width or not shown:
            shown.append(c)
            used += w
        else:
            dropped.append(HEADERS.get(c, (c,))[0])
    return shown, dropped


def print_summary(result: ReportResult, console, max_rows: int = 15) -> None:
    """A short rich table (settings when seeds repeat, else runs) that fits the console,
    fits, problems, and where the report went."""
    from rich.table import Table
    from rich.text import Text

    s = result.summary
    counts = s["status"].value_counts().to_dict()
    df, kind = _frame(result)
    cols, dropped = _fit(df.head(max_rows), console.width)
    title = f"{len(s)} runs (" + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"); {kind}"
    table = Table(title=Text(title), title_justify="left", pad_edge=False, collapse_padding=True)
    for c in cols:
        left = c in ("run", "status")
        table.add_column(HEADERS.get(c, (c,))[0], justify="left" if left else "right",
                         no_wrap=c != "run", overflow="fold")
    for row in df[cols].head(max_rows).itertuples(index=False):
        table.add_row(*[Text(v) for v in row])
    console.print(table)
    notes = [HEADERS[c][1] for c in cols if c in HEADERS and HEADERS[c][1]]
    if notes:
        console.print("; ".join(notes), markup=False, highlight=False)
    if dropped:
        console.print(f"not shown at {console.width} columns: {', '.join(dropped)}",
                      markup=False, highlight=False)
    if len(df) > max_rows:
        _path_line(console, f"... {len(df) - max_rows} more rows in",
                   result.tables.get("summary.csv"))
    fits = result.depth_fit
    for r in fits.head(6).itertuples():
        depths = r.depths.split(",")
        console.print(f"depth fit ||θ||² = R0·L + R1, {r.setting or 'all runs'}: R0 (rank) ≈ "
                      f"{pm(r.R0_estimate, r.R0_err)}, R1 ≈ {pm(r.R1_estimate, r.R1_err)} "
                      f"(L = {depths[0]}..{depths[-1]}; "
                      f"{basis(r.n_depths, r.n_runs, r.n_seeds)})", markup=False,
                      highlight=False)
    if len(fits) > 6:
        _path_line(console, f"... {len(fits) - 6} more depth fits in",
                   result.tables.get("depth_fit.csv"))
    for note in result.notes:
        console.print(note, markup=False, highlight=False)
    if result.problems:
        console.print(f"[yellow]{len(result.problems)} problem(s):[/yellow]")
        for p in result.problems[:8]:
            console.print(f"  {p}", markup=False, highlight=False)
        if len(result.problems) > 8:
            console.print(f"  ... and {len(result.problems) - 8} more (see report.html)")
    _path_line(console, "report written to", result.html)


def _path_line(console, text: str, path) -> None:
    """``text`` and ``path`` on one line that rich never breaks (the terminal may wrap
    it, but the path stays one word to copy)."""
    console.print(f"{text} {path}", markup=False, highlight=False, soft_wrap=True)
