"""The house style of report figures and the helpers every figure uses: panel grids
under matplotlib's constrained layout (titles, colorbars and legends never overlap), or
at fixed margins for figures whose shape never varies (no layout pass), legends outside
the data, wrapped titles, sparse plain-text ticks, colours that stay apart for many
settings, and the look of unconverged runs (``figure_files`` saves them). Importing it
loads matplotlib (Agg backend); the figure modules import it only when they draw
(``figures.base.styled`` applies ``STYLE``)."""

from __future__ import annotations

import math
import textwrap
from typing import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import colors as mcolors  # noqa: E402
from matplotlib import ticker as mticker  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

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
SEQ_CMAP = "viridis"  # colours ordered by a number (depth), or many settings in order
MAX_LEGEND = 10  # more depths than this get a colorbar instead of a legend
MAX_CAT = 10  # more settings than this are coloured along SEQ_CMAP, in their order
PANEL_W, PANEL_H = 3.7, 2.9  # inches per panel
CHAR_W = 0.075  # inches per character of a 9-10 pt title (for wrapping)
LEGEND_RIGHT = 12  # figure legends of more lines go below the panels, in columns
UNCONVERGED = {"ls": "--", "mfc": "white"}  # how a run whose verdict is "no" is drawn
MARGINS = {"left": 0.6, "right": 0.2, "bottom": 0.5, "top": 0.55}  # inches, fixed_panels


def panels(nrows: int, ncols: int, w: float = PANEL_W, h: float = PANEL_H, right: float = 0.0):
    """A grid of ``w`` x ``h``-inch panels under constrained layout (room for titles,
    labels, colorbars and outside legends is made by matplotlib), axes as a 2-d array;
    ``right``: extra inches for what sits right of the panels."""
    fw = 0.8 + ncols * w + (ncols - 1) * 0.35 + right
    fh = 0.75 + nrows * h + (nrows - 1) * 0.3
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(fw, fh), squeeze=False,
                                 layout="constrained")
    fig.get_layout_engine().set(w_pad=0.04, h_pad=0.04, wspace=0.04, hspace=0.04)
    return fig, axes


def fixed_panels(nrows: int, ncols: int, w: float = PANEL_W, h: float = PANEL_H,
                 gap: float = 0.9):
    """Like ``panels``, at fixed margins instead of a layout pass (which costs about as
    much as drawing): for figures whose shape never varies (one run's spectra). Colorbars
    go inside their panel's slot, ``gap`` inches between slots; ``figure_files.freeze``
    places the panels once the figure is complete (room for the title and for legends
    added)."""
    fw = MARGINS["left"] + ncols * w + (ncols - 1) * gap + MARGINS["right"]
    fh = MARGINS["bottom"] + nrows * h + (nrows - 1) * gap + MARGINS["top"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrows, ncols, figsize=(fw, fh), squeeze=False)
    fig.bncli_fixed = (gap, nrows, ncols)
    return fig, axes


def _place(fig) -> None:
    """Set the fixed margins of a ``fixed_panels`` figure (inches, for its final size)."""
    fw, fh = fig.get_size_inches()
    grown_right, grown_bottom = getattr(fig, "bncli_grow", (0.0, 0.0))
    title = fig.get_suptitle()
    top = MARGINS["top"] + 0.17 * title.count("\n") if title else 0.2
    gap, nrows, ncols = fig.bncli_fixed
    left, right = MARGINS["left"], MARGINS["right"] + grown_right
    bottom = MARGINS["bottom"] + grown_bottom
    cell_w = (fw - left - right - (ncols - 1) * gap) / ncols
    cell_h = (fh - top - bottom - (nrows - 1) * gap) / nrows
    fig.subplots_adjust(left=left / fw, right=1 - right / fw, bottom=bottom / fh,
                        top=1 - top / fh, wspace=gap / cell_w, hspace=gap / cell_h)


def grow(fig, right: float = 0.0, bottom: float = 0.0) -> None:
    """Make the figure ``right`` inches wider and ``bottom`` inches taller for what sits
    beside or below the panels (a legend), keeping the panels' size."""
    fig.set_size_inches(fig.get_figwidth() + right, fig.get_figheight() + bottom)
    r, b = getattr(fig, "bncli_grow", (0.0, 0.0))
    fig.bncli_grow = (r + right, b + bottom)


def wrap(text: str, inches: float, size: float = 9.5) -> str:
    """``text`` broken into lines that fit ``inches`` at about ``size`` points."""
    width = max(12, int(inches / (CHAR_W * size / 9.5)))
    return "\n".join(textwrap.fill(line, width) for line in text.split("\n"))


def suptitle(fig, text: str, size: float = 10) -> None:
    """The figure's title, wrapped to and centred over the panels (clear of a legend on
    the right)."""
    fig.bncli_title = (text, size)  # redone by ``unconverged_key`` when the legend grows
    width = fig.get_figwidth() - getattr(fig, "bncli_right", 0.0)
    fig.suptitle(wrap(text, width - 0.3, size), fontsize=size,
                 x=0.5 * width / fig.get_figwidth())


def title(ax, text: str, size: float = 9.5) -> None:
    """A panel title, wrapped to the panel's width."""
    w = ax.get_position().width * ax.figure.get_figwidth()
    ax.set_title(wrap(text, max(w, 1.5), size), fontsize=size)


def legend(where, handles, labels, title: str | None = None, **kw):
    """A legend outside the data: for an Axes to its right; for a Figure to the right of
    the panels when it has few entries, else below them in as many columns as fit. The
    figure grows by the legend's room, so the panels keep their size."""
    handles, labels = list(handles), [str(lab) for lab in labels]
    if not labels:
        return None
    longest = max(len(part) for lab in labels + [title or ""] for part in lab.split("\n"))
    col_w = 0.45 + 0.058 * longest  # inches per legend column
    if isinstance(where, Axes):
        ncol = 1 if len(labels) <= LEGEND_RIGHT else 2
        grow(where.figure, right=ncol * col_w)
        return where.legend(handles, labels, title=title, loc="upper left",
                            bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, ncol=ncol, **kw)
    fig = where
    if sum(lab.count("\n") + 1 for lab in labels) <= LEGEND_RIGHT:
        room, loc, ncol = (col_w, 0.0), "outside right upper", 1
    else:
        ncol = max(1, min(len(labels), int((fig.get_figwidth() - 0.3) / col_w)))
        lines = max(lab.count("\n") + 1 for lab in labels)
        room = (0.0, 0.16 * math.ceil(len(labels) / ncol) * lines + 0.3)
        loc = "outside lower center"
    grow(fig, *room)
    fig.bncli_right = room[0]
    leg = fig.legend(handles, labels, title=title, loc=_loc(fig, loc), ncol=ncol, **kw)
    leg.bncli_grow = room  # what ``unconverged_key`` gives back when it redoes the legend
    return leg


def unconverged_key(fig, text: str) -> None:
    """Add "``text``" (dashed / hollow: not converged ...) to the figure's legend, or make
    it the figure's legend when it has none: the one explanation of ``UNCONVERGED``."""
    key = Line2D([], [], color="0.35", marker="o", **UNCONVERGED)
    if fig.legends:
        old = fig.legends[0]
        handles, labels = list(old.legend_handles), [t.get_text() for t in old.texts]
        head = old.get_title().get_text() or None
        dw, dh = getattr(old, "bncli_grow", (0.0, 0.0))
        old.remove()
        grow(fig, -dw, -dh)
        legend(fig, handles + [key], labels + [text], title=head)
    else:
        fig.legend([key], [text], loc=_loc(fig, "outside lower center"))
        grow(fig, bottom=0.25)
    if hasattr(fig, "bncli_title"):
        suptitle(fig, *fig.bncli_title)


def _loc(fig, loc: str) -> str:
    """A figure legend's ``loc``: "outside ..." is constrained layout's; at fixed margins
    the legend sits in the room made for it at the figure's edge."""
    if not hasattr(fig, "bncli_fixed"):
        return loc
    return {"outside right upper": "upper right"}.get(loc, loc.replace("outside ", ""))


def marked(unconverged, line: bool = True, **kw) -> dict:
    """Plot keywords ``kw`` in the ``UNCONVERGED`` look when ``unconverged`` (dashed and
    hollow; markers only, hollow, when not ``line``)."""
    if not bool(unconverged):
        return kw
    return {**kw, **(UNCONVERGED if line else {"mfc": "white"})}


def hollow(ax, x, y, mask, color, marker: str = "o") -> None:
    """Draw the points (``x``, ``y``) where ``mask`` hollow, over what is drawn there:
    means that include unconverged runs."""
    mask = np.asarray(mask, bool)
    if mask.any():
        ax.plot(np.asarray(x)[mask], np.asarray(y)[mask], ls="none", zorder=3,
                **marked(True, line=False, marker=marker, ms=5, color=color))


def dashed_cells(ax, mask, vals, cmap, norm) -> None:
    """A dashed border on the heatmap cells (row, column) where ``mask``: cells whose
    value includes unconverged runs (white on dark cells, black on light ones)."""
    from matplotlib.patches import Rectangle

    for (r, c), bad in np.ndenumerate(np.asarray(mask, bool)):
        if bad:
            dark = np.isfinite(vals[r, c]) and sum(cmap(norm(vals[r, c]))[:3]) < 1.5
            ax.add_patch(Rectangle((c - 0.45, r - 0.45), 0.9, 0.9, fill=False, lw=1.2,
                                   ls="--", ec="white" if dark else "black"))


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
    return _along(sorted(set(values)))


def _along(keys: list) -> dict:
    cmap = plt.get_cmap(SEQ_CMAP)
    if len(keys) == 1:
        return {keys[0]: cmap(0.35)}
    return {v: cmap(0.9 * i / (len(keys) - 1)) for i, v in enumerate(keys)}


def cat_colors(labels: Sequence) -> dict:
    """Colours for settings in the order given: tab10 for a few, and along ``SEQ_CMAP``
    (neighbours in the order are neighbours in colour) for more than ``MAX_CAT``."""
    keys = list(dict.fromkeys(labels))
    if len(keys) > MAX_CAT:
        return _along(keys)
    cmap = plt.get_cmap("tab10")
    return {lab: cmap(i) for i, lab in enumerate(keys)}


def depth_legend(fig, colors: dict, title: str = "depth L") -> None:
    """A figure legend for few depths, a colorbar beside the panels for many."""
    if len(colors) <= MAX_LEGEND:
        handles = [Line2D([], [], color=c) for c in colors.values()]
        legend(fig, handles, [f"L={d:g}" for d in colors], title=title)
        return
    vals = sorted(colors)
    norm = mcolors.Normalize(min(vals), max(vals))
    sm = plt.cm.ScalarMappable(norm=norm, cmap=plt.get_cmap(SEQ_CMAP))
    fig.colorbar(sm, ax=fig.axes, label=title, fraction=0.05, pad=0.02)


def band(ax, x, mean, lo, hi, color, label, marker="o", unconverged=False):
    """A mean line with its min-max band (``UNCONVERGED`` look when ``unconverged``)."""
    ax.plot(x, mean, **marked(unconverged, marker=marker, color=color, label=label))
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if np.any(np.isfinite(lo) & (hi > lo)):
        ax.fill_between(x, lo, hi, color=color, alpha=0.2, linewidth=0)


def hide_unused(axes, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


def empty(ax, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
