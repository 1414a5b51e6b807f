"""The house style of report figures and the helpers every figure uses: fixed panel
grids (no layout engine: on a slow CPU the layout pass costs as much as drawing),
sparse plain-text ticks, colours, legends, and ``save``. Importing it loads matplotlib
(Agg backend); the figure modules import it only when they draw (``figures.base.styled``
applies ``STYLE``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import ticker as mticker  # noqa: E402

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7.5,
    "legend.frameon": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "lines.markersize": 3.5,
    "image.cmap": "viridis",
    "savefig.dpi": 110,
    "pdf.compression": 6,
}
SEQ_CMAP = "viridis"  # colours ordered by a number (depth)
MAX_LEGEND = 10  # more lines than this get a colorbar instead of a legend
PANEL_W, PANEL_H = 3.7, 2.9  # inches per panel


def panels(nrows: int, ncols: int, w: float = PANEL_W, h: float = PANEL_H, right: float = 0.0):
    """A grid of panels with fixed margins (inches), axes as a 2-d array."""
    left, bottom, top, wsp, hsp = 0.85, 0.5, 0.72, 0.7, 0.6
    fw = left + ncols * w + (ncols - 1) * wsp + 0.2 + right
    fh = bottom + nrows * h + (nrows - 1) * hsp + top
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(fw, fh), squeeze=False)
    fig.subplots_adjust(left=left / fw, right=1 - (0.2 + right) / fw, bottom=bottom / fh,
                        top=1 - top / fh, wspace=wsp / w, hspace=hsp / h)
    return fig, axes


def g(value, _pos=None) -> str:
    return f"{value:.4g}"


def plain_log(*axes, locate: bool = True) -> None:
    """Plain-text labels at 1-2-5 steps on log axes (the default mathtext labels cost a
    parse each); ``locate=False`` keeps the axis' own tick positions (symlog)."""
    for axis in axes:
        if locate:
            axis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0), numticks=6))
        axis.set_major_formatter(mticker.FuncFormatter(g))
        axis.set_minor_locator(mticker.NullLocator())


def sparse(ax, n: int = 4) -> None:
    """Few ticks on linear axes: on a slow CPU each tick costs milliseconds to draw."""
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "linear":
            axis.set_major_locator(mticker.MaxNLocator(nbins=n, steps=[1, 2, 2.5, 5, 10]))


def log_colorbar(cb) -> None:
    """Few plain-text ticks on a log colorbar (linearly spaced when it spans < 30x)."""
    cb.ax.minorticks_off()
    norm = cb.mappable.norm
    narrow = norm.vmax / norm.vmin < 30
    cb.locator = mticker.MaxNLocator(4) if narrow else mticker.LogLocator(numticks=5)
    cb.formatter = mticker.FuncFormatter(lambda v, _pos=None: f"{v:.3g}")
    cb.ax.yaxis.set_minor_formatter(mticker.NullFormatter())


def seq_colors(values: Sequence[float]) -> dict:
    """Colours for ordered numeric values (e.g. depths), viridis from dark to light."""
    vals = sorted(set(values))
    cmap = plt.get_cmap(SEQ_CMAP)
    if len(vals) == 1:
        return {vals[0]: cmap(0.35)}
    return {v: cmap(0.9 * i / (len(vals) - 1)) for i, v in enumerate(vals)}


def cat_colors(labels: Sequence) -> dict:
    cmap = plt.get_cmap("tab10")
    return {lab: cmap(i % 10) for i, lab in enumerate(dict.fromkeys(labels))}


def depth_legend(fig, ax, colors: dict, title: str = "depth L") -> None:
    """A legend for few lines, a colorbar for many."""
    if len(colors) <= MAX_LEGEND:
        ax.legend(title=title, loc="best", ncol=1 if len(colors) <= 5 else 2)
        return
    vals = sorted(colors)
    norm = mcolors.Normalize(min(vals), max(vals))
    sm = plt.cm.ScalarMappable(norm=norm, cmap=plt.get_cmap(SEQ_CMAP))
    fig.colorbar(sm, ax=ax, label=title, fraction=0.05, pad=0.02)


def band(ax, x, mean, lo, hi, color, label, marker="o"):
    ax.plot(x, mean, marker=marker, color=color, label=label)
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if np.any(np.isfinite(lo) & (hi > lo)):
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)


def hide_unused(axes, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")



def save(fig, out_dir: Path, stem: str, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<fmt>`` for each format, close it, return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        with plt.rc_context(STYLE):
            for fmt in formats:
                path = out_dir / f"{stem}.{fmt}"
                extra = {"pil_kwargs": {"compress_level": 3}} if fmt == "png" else {}
                fig.savefig(path, format=fmt, metadata=_metadata(fmt), **extra)
                paths.append(path)
    finally:
        plt.close(fig)
    return paths


def _metadata(fmt: str) -> dict:
    # Reproducible files: no creation dates or software versions stamped in.
    if fmt == "png":
        return {"Software": None}
    if fmt == "pdf":
        return {"Creator": None, "Producer": None, "CreationDate": None}
    if fmt == "svg":
        return {"Date": None}
    return {}
