"""What ``bncli report`` prints: a short table (settings when seeds repeat, else runs),
the depth fits, the problems, and where the report went."""

from __future__ import annotations

from .build import ReportResult
from .fit import basis
from .format import fmt, pm

# Terminal-table columns shown where the runs have them (tables adds them only then).
EXTRA_COLUMNS = ["norm", "closed_form", "closed_form_target", "distinct_neurons"]


def print_summary(result: ReportResult, console, max_rows: int = 15) -> None:
    """A short rich table (settings when seeds repeat, else runs), fits, problems, and
    where the report went."""
    from rich.table import Table
    from rich.text import Text

    s = result.summary
    counts = s["status"].value_counts().to_dict()
    title = f"{len(s)} runs (" + ", ".join(f"{v} {k}" for k, v in counts.items()) + ")"
    if 0 < len(result.by_setting) < len(s):
        df = result.by_setting
        cols = [k for k in result.swept if k != "seed"] + [
            "runs", "finished", "loss_mean", "test_loss_mean", "norm_per_L_mean",
            "bottleneck_rank_mean"] + [f"{c}_mean" for c in EXTRA_COLUMNS]
    else:
        df = s
        cols = ["run", "status"] + [k for k in result.swept if k != "seed" and k in s][:4] + \
            ["loss", "test_loss", "norm_per_L", "bottleneck_rank"] + EXTRA_COLUMNS
    cols = [c for c in cols if c in df.columns]
    if not any(c.startswith("closed_form") for c in cols):  # norm only beside the closed form
        cols = [c for c in cols if c not in ("norm", "norm_mean")]
    table = Table(title=Text(title), title_justify="left")
    for c in cols:
        left = c in ("run", "status")
        table.add_column(c.replace("_mean", ""), justify="left" if left else "right",
                         overflow="fold", max_width=40 if c == "run" else None)
    for row in df[cols].head(max_rows).itertuples(index=False):
        table.add_row(*[Text(fmt(v)) for v in row])
    if len(df) > max_rows:
        table.caption = f"... {len(df) - max_rows} more rows in {result.tables.get('summary.csv')}"
    console.print(table)
    fits = result.depth_fit
    for r in fits.head(6).itertuples():
        depths = r.depths.split(",")
        console.print(f"depth fit {r.setting or '(all runs)'}: R0 (rank) ≈ "
                      f"{pm(r.R0_estimate, r.R0_err)}, R1 ≈ {pm(r.R1_estimate, r.R1_err)} "
                      f"(L = {depths[0]}..{depths[-1]}; "
                      f"{basis(r.n_depths, r.n_runs, r.n_seeds)})", markup=False)
    if len(fits) > 6:
        console.print(f"... {len(fits) - 6} more depth fits in "
                      f"{result.tables.get('depth_fit.csv')}", markup=False)
    for note in result.notes:
        console.print(note, markup=False)
    if result.problems:
        console.print(f"[yellow]{len(result.problems)} problem(s):[/yellow]")
        for p in result.problems[:8]:
            console.print(f"  {p}", markup=False)
        if len(result.problems) > 8:
            console.print(f"  ... and {len(result.problems) - 8} more (see report.html)")
    console.print(f"report written to {result.html}", markup=False)
