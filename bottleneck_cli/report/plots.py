"""Figures of a report: one function per figure, data in, matplotlib Figure out.

Nothing here reads run folders: the other report modules load and aggregate the data
and pass DataFrames/arrays. Seeds arrive already aggregated (a ``mean`` column and a
spread: ``std`` or ``lo``/``hi``), so lines are settings, not seeds. Style, layout
helpers and ``save`` live in ``style``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib import ticker as mticker

from . import style as ps
from .fit import basis
from .format import fmt, pm
from .style import plt  # pyplot, imported after the Agg backend is chosen
from .style import save  # noqa: F401 - part of this module's API


def warm_up(formats: Sequence[str] = ("png", "pdf")) -> None:
    """Draw a throwaway figure so fonts, glyph caches and backends are loaded (processes
    forked afterwards inherit them instead of each paying for it)."""
    import io

    fig = run_spectra("warm-up θ² ≈ ·", [np.array([2.0, 1.0, 0.1])] * 2,
                      [np.array([3.0, 0.5, 1e-3])] * 2, "centered",
                      {"rank": (np.array([1, 2]), np.array([2.0, 2.0]))})
    ax = fig.axes[2]
    ax.set_yscale("log")
    ps.plain_log(ax.yaxis)
    with plt.rc_context(ps.STYLE):
        for kind in formats:
            fig.savefig(io.BytesIO(), format=kind)
    plt.close(fig)


# ---- 1. per run ---------------------------------------------------------------
def _pad(svals: Sequence[np.ndarray]) -> np.ndarray:
    """Stack singular-value vectors of different lengths into (index, layer), NaN padded."""
    n = max((len(s) for s in svals), default=0)
    out = np.full((n, len(svals)), np.nan)
    for j, s in enumerate(svals):
        out[: len(s), j] = s
    return out


def _log_norm(mat: np.ndarray, floor: float = 1e-6) -> mcolors.LogNorm:
    pos = mat[np.isfinite(mat) & (mat > 0)]
    if pos.size == 0:
        return mcolors.LogNorm(1e-3, 1)
    vmax = float(pos.max())
    vmin = max(float(pos.min()), vmax * floor)
    if vmin >= vmax:
        vmin = vmax / 10
    return mcolors.LogNorm(vmin, vmax)


def _sv_heatmap(fig, ax, svals: Sequence[np.ndarray], title: str, first_layer: int = 1) -> None:
    mat = _pad([np.asarray(s, float) for s in svals])
    if mat.size == 0:
        ps.empty(ax)
        ax.set_title(title)
        return
    norm = _log_norm(mat)
    masked = np.ma.masked_where(~np.isfinite(mat) | (mat <= 0), mat)  # grey: none or zero
    cmap = plt.get_cmap("magma").with_extremes(bad="0.93")
    n_idx, n_layers = mat.shape
    im = ax.imshow(masked, aspect="auto", origin="upper", cmap=cmap, norm=norm,
                   interpolation="nearest",
                   extent=(first_layer - 0.5, first_layer + n_layers - 0.5, n_idx + 0.5, 0.5))
    ax.grid(False)
    ax.set_xlabel("layer l")
    ax.set_ylabel("singular value index i")
    ax.set_title(title)
    cb = fig.colorbar(im, ax=ax, pad=0.02, fraction=0.06)
    cb.set_label("singular value (log)")
    ps.log_colorbar(cb)
    ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=5, integer=True))
    ax.yaxis.set_major_locator(mticker.MaxNLocator(nbins=5, integer=True))


@ps.styled
def run_spectra(name: str, w_svals: Sequence[np.ndarray], z_svals: Sequence[np.ndarray],
                z_label: str, ranks: dict[str, tuple[np.ndarray, np.ndarray]]):
    """One run: weight and representation singular values (layer x index heatmaps, log
    colour) and ranks against layer. ``ranks`` maps a label to (layers, values)."""
    fig, axes = ps.panels(1, 3, w=3.4, h=2.9, right=0.0)
    fig.subplots_adjust(wspace=0.62)
    _sv_heatmap(fig, axes[0, 0], w_svals, "weights W_l")
    _sv_heatmap(fig, axes[0, 1], z_svals, f"representations Z_l ({z_label})")
    ax = axes[0, 2]
    markers = "osD^v"
    for k, (label, (x, y)) in enumerate(ranks.items()):
        ax.plot(x, y, marker=markers[k % len(markers)], label=label)
    if ranks:
        ax.legend(loc="best")
        ax.set_ylim(bottom=0)
    else:
        ps.empty(ax)
    ax.set_xlabel("layer l")
    ax.set_ylabel("rank")
    ax.set_title("ranks per layer")
    ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=5, integer=True))
    ax.yaxis.set_major_locator(mticker.MaxNLocator(nbins=4, integer=True))
    fig.suptitle(name, fontsize=9)
    return fig


# ---- 2. and 4a: profiles against relative depth --------------------------------
@ps.styled
def layer_profiles(df: pd.DataFrame, ylabel: str, title: str, max_panels: int = 3):
    """Lines of a per-layer quantity against relative depth l/L, one line per depth.

    ``df`` columns: panel (setting label), depth, rel, mean, lo, hi. One panel per
    setting (at most ``max_panels``, spread over the settings); depth colours are shared
    and explained once."""
    allp = list(dict.fromkeys(df["panel"])) or [""]
    picks = np.unique(np.linspace(0, len(allp) - 1, max_panels).round().astype(int))
    panels = [allp[i] for i in picks]
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = ps.panels(nrows, ncols)
    colors = ps.seq_colors(df["depth"]) if len(df) else {}
    few = len(colors) <= 6
    for ax, panel in zip(axes.flat, panels):
        sub = df[df["panel"] == panel]
        for depth, g in sub.groupby("depth", sort=True):
            g = g.sort_values("rel")
            ps.band(ax, g["rel"], g["mean"], g["lo"], g["hi"], colors[depth], f"L={depth:g}",
                  marker="o" if few and len(g) <= 16 else None)
        ax.set_xlabel("relative depth l/L")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=min(0, float(sub["lo"].min())) if len(sub) else 0)
        ax.set_title(panel or title)
        ps.sparse(ax)
        if not len(sub):
            ps.empty(ax)
    if colors:
        ps.depth_legend(fig, axes.flat[0], colors)
    ps.hide_unused(axes, len(panels))
    more = f" ({len(panels)} of {len(allp)} settings)" if len(allp) > len(panels) else ""
    fig.suptitle(title + more + ": mean over seeds, band min-max", fontsize=10)
    return fig


# ---- 3. parameter norm against depth ---------------------------------------------
@ps.styled
def depth_fit(points: pd.DataFrame, fits: pd.DataFrame):
    """||theta||^2 and ||theta||^2/L against depth L with the least-squares line.

    ``points``: setting, depth, mean, std, n (of norm/total over seeds).
    ``fits``: setting, slope, slope_err, intercept, intercept_err (slope = R0, intercept = R1),
    n_depths, n_runs, n_seeds (what each fit rests on, shown in its legend entry)."""
    fig, axes = ps.panels(1, 2, w=4.0, h=3.1)
    colors = ps.cat_colors(points["setting"])
    fit_by = {r.setting: r for r in fits.itertuples()}
    for setting, g in points.groupby("setting", sort=False):
        g = g.sort_values("depth")
        c = colors[setting]
        L = g["depth"].to_numpy(float)
        fit = fit_by.get(setting)
        label = setting or "all runs"
        if fit is not None:
            label += (f"\nR0 = {pm(fit.slope, fit.slope_err)}, "
                      f"R1 = {pm(fit.intercept, fit.intercept_err)}"
                      f"\n({basis(fit.n_depths, fit.n_runs, fit.n_seeds)})")
        axes[0, 0].errorbar(L, g["mean"], yerr=g["std"].fillna(0), fmt="o", color=c, capsize=2,
                            label=label)
        axes[0, 1].errorbar(L, g["mean"] / L, yerr=g["std"].fillna(0) / L, fmt="o", color=c,
                            capsize=2)
        if fit is not None:
            xs = np.linspace(L.min(), L.max(), 100)
            axes[0, 0].plot(xs, fit.slope * xs + fit.intercept, color=c, lw=1)
            axes[0, 1].plot(xs, fit.slope + fit.intercept / xs, color=c, lw=1)
            axes[0, 1].axhline(fit.slope, color=c, lw=0.8, ls=":")
    axes[0, 0].set_xlabel("depth L")
    axes[0, 0].set_ylabel("||θ||²")
    axes[0, 0].set_title("||θ||² ≈ R0·L + R1")
    axes[0, 0].legend(loc="upper left")
    axes[0, 1].set_xlabel("depth L")
    axes[0, 1].set_ylabel("||θ||² / L")
    axes[0, 1].set_title("||θ||²/L ≈ R0 + R1/L  (dotted: R0)")
    ps.sparse(axes[0, 0])
    ps.sparse(axes[0, 1])
    fig.suptitle("parameter norm against depth (mean ± std over seeds, finished runs)",
                 fontsize=10)
    return fig


# ---- 4b. size of the singular values away from one --------------------------------
@ps.styled
def remaining_size(df: pd.DataFrame, delta: float):
    """Size of the weight singular values not near 1 against depth, log-log, with an
    L^(-1/2) reference. ``df``: setting, depth, mean, std (per-layer root-sum-square of
    the singular values with |s-1| > delta, middle layers, mean over seeds)."""
    fig, axes = ps.panels(1, 1, w=4.2, h=3.1)
    ax = axes[0, 0]
    colors = ps.cat_colors(df["setting"])
    for setting, g in df.groupby("setting", sort=False):
        g = g.sort_values("depth")
        ax.errorbar(g["depth"], g["mean"], yerr=g["std"].fillna(0), fmt="o-",
                    color=colors[setting], capsize=2, label=setting or "all runs")
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
    ax.legend(loc="best")
    return fig


# ---- 5. training curves ---------------------------------------------------------
@ps.styled
def training_curves(df: pd.DataFrame, rows: Sequence[tuple[str, bool, Sequence[tuple[str, str]]]],
                    panel_title: str, left_out: str = "", max_panels: int = 3):
    """Curves against step: one column per swept value, one row per quantity; ``left_out``
    says which panels or lines the data left out (shown in the title).

    ``df`` columns: panel, line, metric, step, mean, lo, hi (colour = line, i.e. the other
    swept parameters). ``rows``: (y label, log y, [(metric, linestyle), ...]); several
    metrics share a row, told apart by line style. The step axis is symmetric-log so
    step 0 shows."""
    panels = list(dict.fromkeys(df["panel"]))[:max_panels] or [""]
    present = set(df["metric"])
    rows = [r for r in rows if any(k in present for k, _ in r[2])] or list(rows[:1])
    fig, axes = ps.panels(len(rows), len(panels), w=3.3, h=2.5)
    colors = ps.cat_colors(df["line"])
    for j, panel in enumerate(panels):
        for i, (label, logy, keys) in enumerate(rows):
            ax = axes[i, j]
            sub = df[(df["panel"] == panel) & df["metric"].isin([k for k, _ in keys])]
            for key, style in keys:
                for line, g in sub[sub["metric"] == key].groupby("line", sort=False):
                    g = g.sort_values("step")
                    ax.plot(g["step"], g["mean"], ls=style, color=colors[line],
                            label=(line or None) if style == "-" else None)
                    if style == "-" and (g["hi"] > g["lo"]).any():
                        ax.fill_between(g["step"], g["lo"], g["hi"], color=colors[line],
                                        alpha=0.2, linewidth=0)
            ax.set_xscale("symlog", linthresh=1)
            ps.plain_log(ax.xaxis, locate=False)
            if logy and len(sub) and (sub["mean"] > 0).all():
                ax.set_yscale("log")
                ps.plain_log(ax.yaxis)
            if not len(sub):
                ps.empty(ax)
            ps.sparse(ax)
            if j == 0:
                ax.set_ylabel(label)
            if i == 0:
                ax.set_title(panel or panel_title)
            if i == len(rows) - 1:
                ax.set_xlabel("step")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if labels:
        axes[0, 0].legend(handles[:10], labels[:10], loc="best")
    fig.suptitle("training curves: mean over seeds, band min-max" +
                 (f"  ·  {panel_title}" if panel_title else "") +
                 (f"\n({left_out})" if left_out else ""), fontsize=10)
    return fig


# ---- 6. phase diagram ----------------------------------------------------------
@ps.styled
def phase_diagram(table: pd.DataFrame, xlabel: str, ylabel: str, metric: str, note: str = ""):
    """Heatmap of a final metric over two swept parameters (rows: y values, columns: x
    values); NaN cells (all runs diverged or missing) are grey with a cross."""
    vals = table.to_numpy(float)
    ny, nx = vals.shape
    fig, axes = ps.panels(1, 1, w=max(3.2, 0.55 * nx + 1.2), h=max(2.6, 0.4 * ny + 1.0), right=0.9)
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
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
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
    cb = fig.colorbar(im, ax=ax, pad=0.03, fraction=0.08)
    cb.set_label(metric + scale)
    if scale:
        ps.log_colorbar(cb)
    else:
        cb.ax.minorticks_off()
    ax.set_title(f"final {metric}" + (f"\n{note}" if note else ""))
    return fig


# ---- extras: any final metric against depth -------------------------------------
@ps.styled
def vs_depth(df: pd.DataFrame, metrics: Sequence[tuple[str, str]], title: str):
    """Final metrics against depth, one panel per metric, one line per setting.

    ``df`` columns: setting, metric, depth, mean, std."""
    fig, axes = ps.panels(1, len(metrics), w=3.6, h=2.9)
    colors = ps.cat_colors(df["setting"])
    for ax, (key, label) in zip(axes.flat, metrics):
        sub = df[df["metric"] == key]
        for setting, g in sub.groupby("setting", sort=False):
            g = g.sort_values("depth")
            ax.errorbar(g["depth"], g["mean"], yerr=g["std"].fillna(0), fmt="o-",
                        color=colors[setting], capsize=2, label=setting or None)
        ax.set_xlabel("depth L")
        ax.set_ylabel(label)
        ps.sparse(ax)
        if not len(sub):
            ps.empty(ax)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if labels:
        axes[0, 0].legend(loc="best")
    fig.suptitle(title + " (mean ± std over seeds)", fontsize=10)
    return fig


# ---- closed form beside the measured norm (linear nets) --------------------------
@ps.styled
def closed_form(points: pd.DataFrame, keys: str):
    """Measured ||θ||² against the Schatten-2/L closed form L·Σ s_i^(2/L) (SCIENCE.md §4).

    ``points``: one row per finished linear run: setting (swept values as text), norm,
    closed (of the trained end-to-end matrix M), target (of the target A, may be NaN).
    Left: one point per run with the line y = x (no net computing M lies below it; on it:
    a balanced minimum). Right: per setting (mean over seeds), the three as bars."""
    settings = list(dict.fromkeys(points["setting"]))
    right = 0.3 + 0.062 * max([len(s) for s in settings] + [len(keys) // 2, 8])  # tick labels
    fig, axes = ps.panels(1, 2, w=3.9, h=max(2.9, 0.32 * len(settings) + 1.0), right=right)
    ax = axes[0, 0]
    colors = ps.cat_colors(settings)
    for setting, g in points.groupby("setting", sort=False):
        ax.plot(g["closed"], g["norm"], "o", color=colors[setting], label=setting or "all runs")
    vals = np.r_[points["closed"], points["norm"]]
    lo, hi = float(np.nanmin(vals)), float(np.nanmax(vals))
    log = lo > 0 and hi / lo > 20
    pad = 0.06 * (hi - lo) or 0.5
    ends = np.array([lo / 1.2, hi * 1.2]) if log else np.array([lo - pad, hi + pad])
    ax.plot(ends, ends, "k--", lw=1, label="y = x (balanced minimum)", zorder=0)
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ps.plain_log(ax.xaxis, ax.yaxis)
        if hi / lo > 200:  # decades only, or the 1-2-5 labels collide
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(mticker.LogLocator(numticks=6))
    else:
        ps.sparse(ax)
    ax.set_xlabel("closed form L·Σ s_i(M)^(2/L) of the trained M")
    ax.set_ylabel("measured ||θ||²")
    ax.set_title("measured norm against its lower bound")
    # points lie on or above y = x: the lower right stays empty for the legend
    ax.legend(loc="lower right", title=keys or None, ncol=1 if len(settings) <= 6 else 2)

    ax = axes[0, 1]
    mean = points.groupby("setting", sort=False)[["norm", "closed", "target"]].mean()
    y = np.arange(len(mean))
    bars = [("norm", "measured ||θ||²", "0.35"), ("closed", "closed form, trained M", "C0"),
            ("target", "closed form, target A", "C1")]
    bars = [b for b in bars if mean[b[0]].notna().any()]
    h = 0.8 / len(bars)
    for k, (col, lab, c) in enumerate(bars):
        ax.barh(y + (k - (len(bars) - 1) / 2) * h, mean[col], height=h, color=c, label=lab)
    ax.set_yticks(y, [s or "all runs" for s in mean.index])
    ax.yaxis.tick_right()  # setting labels in the right margin, clear of the left panel
    ax.yaxis.set_label_position("right")
    ax.invert_yaxis()
    ax.set_ylabel(keys or "setting")
    ax.set_xlabel("||θ||²")
    ax.set_title("per setting (mean over seeds)")
    ax.legend(loc="best")
    ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=4))
    fig.suptitle("parameter norm and the Schatten-2/L closed form (SCIENCE.md §4), "
                 "finished linear runs", fontsize=10)
    return fig


# ---- distinct active neuron directions against width ------------------------------
@ps.styled
def neurons_vs_width(df: pd.DataFrame, teacher: float | None = None, max_panels: int = 2):
    """The sparsity figure (arXiv 2205.15809): final loss against width, and per setting the
    distinct active neuron directions of each hidden layer (solid; dotted: active neurons)
    against width, with y = width (every neuron distinct) and the teacher's width.

    ``df`` columns: setting, width, metric (neurons, active, loss/fit, loss/test), layer,
    mean, std (over seeds)."""
    settings = list(dict.fromkeys(df["setting"]))
    panels_ = settings[:max_panels]
    fig, axes = ps.panels(1, 1 + len(panels_), w=3.4, h=2.9)
    widths = np.sort(df["width"].unique())
    colors = ps.cat_colors(settings)
    ax = axes[0, 0]
    for setting in panels_:
        for metric, style in (("loss/fit", "-"), ("loss/test", "--")):
            g = df[(df["setting"] == setting) & (df["metric"] == metric)].sort_values("width")
            if len(g):
                ax.errorbar(g["width"], g["mean"], yerr=g["std"].fillna(0), fmt="o" + style,
                            color=colors[setting], capsize=2,
                            label=f"{setting + ': ' if setting else ''}{metric}")
    ax.set_ylabel("final loss (solid: fit, dashed: test)")
    ax.set_title("loss against width")
    if (df.loc[df["metric"].str.startswith("loss"), "mean"] > 0).all():
        ax.set_yscale("log")
        ps.plain_log(ax.yaxis)
    ax.legend(loc="best")
    for j, setting in enumerate(panels_, 1):
        ax = axes[0, j]
        sub = df[df["setting"] == setting]
        layers = sorted(sub.loc[sub["metric"] == "neurons", "layer"].unique())
        lcol = {l: c for l, c in zip(layers, ps.seq_colors(layers).values())}
        ax.plot(widths, widths, ":", color="0.6", lw=1, label="width (all distinct)")
        if teacher:
            ax.axhline(teacher, color="k", ls="--", lw=1, label=f"teacher width {teacher:g}")
        for l in layers:
            for metric, style, lab in (("neurons", "o-", f"distinct, layer {l}"),
                                       ("active", "s:", f"active, layer {l}")):
                g = sub[(sub["metric"] == metric) & (sub["layer"] == l)].sort_values("width")
                ax.errorbar(g["width"], g["mean"], yerr=g["std"].fillna(0), fmt=style,
                            color=lcol[l], capsize=2, ms=5 if metric == "active" else 3,
                            mfc="none" if metric == "active" else lcol[l], label=lab)
        ax.set_ylabel("neurons")
        ax.set_title("distinct active neuron directions" + (f"\n{setting}" if setting else ""))
        ax.set_ylim(bottom=0)
        ax.legend(loc="best", ncol=1 if len(layers) <= 2 else 2)
    for ax in axes.flat:
        ax.set_xscale("log", base=2)
        ax.set_xticks(widths if len(widths) <= 10 else widths[:: math.ceil(len(widths) / 8)])
        ax.xaxis.set_major_formatter(mticker.FuncFormatter(ps.g))
        ax.xaxis.set_minor_locator(mticker.NullLocator())
        ax.set_xlabel("width")
    more = f" ({len(panels_)} of {len(settings)} settings)" if len(settings) > len(panels_) else ""
    fig.suptitle("sparsity against width: mean ± std over seeds, finished runs" + more,
                 fontsize=10)
    return fig
