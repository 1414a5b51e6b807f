"""Figure 6: the phase diagram, a final metric (``--metric``, default the test loss) over
two swept parameters (``--grid``, default the first two swept besides seed), averaged
over seeds and any other swept parameter. ``check_grid`` vets the two options before
anything is drawn."""

from __future__ import annotations

import difflib
from typing import Iterator

import numpy as np
import pandas as pd

from ... import rundir as rd
from ..format import fmt
from ..load import ReportError
from ..tables import bookkeeping
from .base import Context, Fig, safe, sortkey, styled


def check_grid(grid, metric, cfg, finals, swept) -> None:
    """Fail early (before any drawing) on an unknown or bookkeeping --grid parameter, or an
    unknown --metric (None: the default, which need not be recorded)."""
    for k in grid or ():
        if k not in cfg.columns:
            raise ReportError(f"--grid: unknown parameter {k!r}{_close(k, cfg.columns)}; "
                              f"swept parameters: {', '.join(swept) or 'none'}")
        if bookkeeping(k):
            raise ReportError(f"--grid: {k!r} does not change what is trained; swept "
                              f"parameters: {', '.join(swept) or 'none'}")
    recorded = [c for c in finals.columns if c != "step"]
    if metric is not None and recorded and metric not in recorded:
        avail = sorted(c for c in recorded if rd.split_layer_key(c) is None)
        hint = _close(metric, recorded) or f"; recorded: {', '.join(avail[:30])}"
        raise ReportError(f"--metric: {metric!r} is not a recorded metric{hint}")


def _close(word: str, choices) -> str:
    """" (did you mean a, b?)" for the choices close to ``word`` ("" when none is)."""
    close = difflib.get_close_matches(word, [str(c) for c in choices], n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def plan(ctx: Context) -> Iterator[Fig | str]:
    """The phase diagram over ``ctx.grid`` (default: the first two swept parameters
    besides seed) of ``ctx.metric`` (default: test loss, else training loss); else why
    not."""
    cfg, finals, swept, grid, metric = ctx.cfg, ctx.finals, ctx.swept, ctx.grid, ctx.metric
    candidates = [k for k in swept if k != "seed" and cfg[k].dropna().nunique() >= 2]
    if grid is None:
        if len(candidates) < 2:
            yield ("phase diagram: needs two swept parameters besides seed "
                   "(choose with --grid A,B --metric M)")
            return
        grid = (candidates[0], candidates[1])
    if metric is None:
        metric = next((m for m in ("loss/test", "loss/train") if m in finals), None)
        if metric is None:
            yield "phase diagram: no loss metric recorded"
            return
    table, note = phase(ctx.info, cfg, finals, grid, metric)
    flags, _ = phase(ctx.info, cfg, ctx.unconverged.astype(float).to_frame("u"), grid, "u")
    others = [k for k in swept if k not in (*grid, "seed")]
    if others:
        note += f"; averaged over {', '.join(others)}"
    key = ctx.key()
    if key:
        note += "; dashed border: the cell includes unconverged runs"
    yield Fig(f"phase_{safe(grid[0])}_{safe(grid[1])}",
              f"Final {metric} over {grid[0]} × {grid[1]}",
              f"Phase diagram of the final {metric} ({note}).",
              "phase", (table, grid[0], grid[1], metric, note, flags > 0), key=key)


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


@styled
def draw(table: pd.DataFrame, xlabel: str, ylabel: str, metric: str, note: str = "",
         unconverged: pd.DataFrame | None = None):
    """Heatmap of a final metric over two swept parameters (rows: y values, columns: x
    values); NaN cells (all runs diverged or missing) are grey with a cross; cells where
    ``unconverged`` (same shape) is set get a dashed border."""
    from matplotlib import colors as mcolors

    from .. import style as ps

    vals = table.to_numpy(float)
    ny, nx = vals.shape
    fig, axes = ps.panels(1, 1, w=max(3.6, 0.55 * nx + 1.2), h=max(2.6, 0.4 * ny + 1.0),
                          right=0.9)
    ax = axes[0, 0]
    pos = vals[np.isfinite(vals) & (vals > 0)]
    finite = vals[np.isfinite(vals)]
    if finite.size and pos.size == finite.size and pos.max() / pos.min() > 20:
        norm = mcolors.LogNorm(pos.min(), pos.max())
        scale = " (log colour)"
    elif finite.size:
        norm = mcolors.Normalize(finite.min(), finite.max())
        scale = ""
    else:
        norm, scale = mcolors.Normalize(0, 1), ""
    cmap = ps.plt.get_cmap("viridis").with_extremes(bad="0.85")
    im = ax.imshow(np.ma.masked_invalid(vals), origin="lower", aspect="auto", cmap=cmap,
                   norm=norm, interpolation="nearest")
    ax.grid(False)
    ax.set_xticks(range(nx), [fmt(v, 3) for v in table.columns], rotation=45 if nx > 5 else 0)
    ax.set_yticks(range(ny), [fmt(v, 3) for v in table.index])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if nx * ny <= 80:
        for (r, c), v in np.ndenumerate(vals):
            if np.isfinite(v):
                rgb = cmap(norm(v))[:3]
                ax.text(c, r, fmt(v, 3), ha="center", va="center", fontsize=7,
                        color="white" if sum(rgb) < 1.5 else "black")
            else:
                ax.text(c, r, "×", ha="center", va="center", fontsize=9, color="0.35")
    if unconverged is not None:
        ps.dashed_cells(ax, unconverged.to_numpy(bool), vals, cmap, norm)
    cb = fig.colorbar(im, ax=ax, pad=0.03, fraction=0.08)
    cb.set_label(metric + scale)
    if scale:
        ps.log_colorbar(cb)
    else:
        cb.ax.minorticks_off()
    ps.title(ax, f"final {metric}" + (f"\n{note}" if note else ""), size=8.5)
    return fig
