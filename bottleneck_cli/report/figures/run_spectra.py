"""Figure 1, per run: weight and representation singular values per layer (heatmaps) and
ranks against layer, at the last recorded step, for a bounded, representative set of
runs. The spectra are read inside the drawing job (``figure``), so only paths travel to
the drawing workers."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from ... import rundir as rd
from ..load import Run
from .base import Context, Fig, evenly, safe, styled


def per_run_choice(runs: list[Run], info: pd.DataFrame, k: int) -> list[int]:
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
    chosen = evenly(sorted(firsts, key=lambda i: info.at[i, "order"]), k)
    if len(chosen) < k:
        taken = set(chosen)
        chosen += [i for i in ok.index if i not in taken][: k - len(chosen)]
    return chosen


def plan(ctx: Context) -> Iterator[Fig | str]:
    """Figure 1 for the runs of ``per_run_choice``, and a note on the runs left out."""
    runs, per_run_max = ctx.runs, ctx.per_run_max
    chosen = per_run_choice(runs, ctx.info, per_run_max)
    for k, i in enumerate(chosen):
        r = runs[i]
        light = Run(name=r.name, path=r.path, status=r.status, config=r.config, final=r.final)
        yield Fig(f"run_{k:03d}_{safe(r.name)}", f"Run {r.name}",
                  "Weight and representation singular values per layer (log colour; "
                  "grey: none) and ranks against layer, at the last recorded step.",
                  "run_spectra", (light,), key=ctx.key([i]))
    n_read = sum(1 for r in runs if r.status != "unreadable")
    if n_read > len(chosen):
        png_only = ", as PNG only" if len(runs) > per_run_max else ""
        yield (f"per-run spectra figures drawn for {len(chosen)} of {n_read} readable "
               f"runs (--per-run-max {per_run_max}){png_only}; the rest are in the "
               f"tables (report one run folder for all its figure formats)")


def _num_rank(s: np.ndarray, atol: float, rtol: float) -> int:
    if not len(s):
        return 0
    return int(np.sum(s > max(atol, rtol * float(np.max(s)))))


def _final_layers(final: dict, prefix: str):
    """(layers, values) of the per-layer final metric ``prefix``; None if not recorded."""
    cols = sorted(((p[1], v) for k, v in final.items()
                   if (p := rd.split_layer_key(k)) and p[0] == prefix
                   and isinstance(v, (int, float))), key=lambda t: t[0])
    if not cols:
        return None
    return np.array([c[0] for c in cols]), np.array([c[1] for c in cols], float)


def figure(run: Run):
    """Figure 1 for one run from its last spectra; None when it recorded no spectra."""
    try:
        spec = rd.RunDir(run.path).read_spectra()
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - reported as a failed figure
        raise ValueError(f"spectra unreadable ({type(exc).__name__}: {exc})") from None
    groups: dict[str, list[tuple[int, np.ndarray]]] = {"W": [], "Z": [], "Zc": []}
    for key, arr in spec.items():
        p = rd.split_layer_key(key)  # spectra/<step>.npz keys W01.., Z01.., Zc01..
        if p and p[0] in groups:
            groups[p[0]].append((p[1], np.asarray(arr, float).ravel()))
    for g in groups.values():
        g.sort(key=lambda t: t[0])
    z_key, z_label = ("Zc", "centered") if groups["Zc"] else ("Z", "uncentered")
    mcfg = run.config.get("metrics") or {}
    atol, rtol = float(mcfg.get("atol", 0.1)), float(mcfg.get("rtol", 0.1))
    ranks = {}
    for name, prefix, fallback in [("rank W_l", "rank/W", groups["W"]),
                                   ("near-one W_l", "near_one/W", None),
                                   ("rank Z_l (centered)", "rank_c/Z", groups["Zc"]),
                                   ("rank Z_l (uncentered)", "rank/Z", groups["Z"])]:
        v = _final_layers(run.final, prefix)
        if v is None and fallback:  # ranks recomputed from the spectra
            v = (np.array([layer for layer, _ in fallback]),
                 np.array([_num_rank(s, atol, rtol) for _, s in fallback], float))
        if v is not None:
            ranks[name] = v
    unconverged = run.final.get("converged") == 0
    title = run.name + (f"  [{run.status}]" if run.status != "finished" else "") + \
        ("  [not converged]" if unconverged else "")
    return draw(title, [s for _, s in groups["W"]], [s for _, s in groups[z_key]], z_label,
                ranks, unconverged)


# ---- drawing ---------------------------------------------------------------------
def _pad(svals: Sequence[np.ndarray]) -> np.ndarray:
    """Stack singular-value vectors of different lengths into (index, layer), NaN padded."""
    n = max((len(s) for s in svals), default=0)
    out = np.full((n, len(svals)), np.nan)
    for j, s in enumerate(svals):
        out[: len(s), j] = s
    return out


def _log_norm(mat: np.ndarray, floor: float = 1e-6):
    """A log colour scale over the positive values, at most 1/``floor`` wide."""
    from matplotlib import colors as mcolors

    pos = mat[np.isfinite(mat) & (mat > 0)]
    if pos.size == 0:
        return mcolors.LogNorm(1e-3, 1)
    vmax = float(pos.max())
    vmin = max(float(pos.min()), vmax * floor)
    if vmin >= vmax:
        vmin = vmax / 10
    return mcolors.LogNorm(vmin, vmax)


def _sv_heatmap(fig, ax, svals: Sequence[np.ndarray], title: str, first_layer: int = 1) -> None:
    from matplotlib import ticker as mticker

    from .. import style as ps

    mat = _pad([np.asarray(s, float) for s in svals])
    if mat.size == 0:
        ps.empty(ax)
        ax.set_title(title)
        return
    norm = _log_norm(mat)
    masked = np.ma.masked_where(~np.isfinite(mat) | (mat <= 0), mat)  # grey: none or zero
    cmap = ps.plt.get_cmap("magma").with_extremes(bad="0.93")
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


@styled
def draw(name: str, w_svals: Sequence[np.ndarray], z_svals: Sequence[np.ndarray],
         z_label: str, ranks: dict[str, tuple[np.ndarray, np.ndarray]],
         unconverged: bool = False):
    """One run: weight and representation singular values (layer x index heatmaps, log
    colour) and ranks against layer (dashed, hollow when ``unconverged``). ``ranks`` maps
    a label to (layers, values)."""
    from matplotlib import ticker as mticker

    from .. import style as ps

    fig, axes = ps.fixed_panels(1, 3, w=3.4, h=2.9, gap=1.1)
    _sv_heatmap(fig, axes[0, 0], w_svals, "weights W_l")
    _sv_heatmap(fig, axes[0, 1], z_svals, f"representations Z_l ({z_label})")
    ax = axes[0, 2]
    markers = "osD^v"
    for k, (label, (x, y)) in enumerate(ranks.items()):
        ax.plot(x, y, **ps.marked(unconverged, marker=markers[k % len(markers)], label=label))
    if ranks:
        ps.legend(ax, *ax.get_legend_handles_labels())
        ax.set_ylim(bottom=0)
    else:
        ps.empty(ax)
    ax.set_xlabel("layer l")
    ax.set_ylabel("rank")
    ax.set_title("ranks per layer")
    ax.xaxis.set_major_locator(mticker.MaxNLocator(nbins=5, integer=True))
    ax.yaxis.set_major_locator(mticker.MaxNLocator(nbins=4, integer=True))
    ps.suptitle(fig, name, size=9)
    return fig


def warm_up(formats: Sequence[str] = ("png", "pdf")) -> None:
    """Draw a throwaway figure so fonts, glyph caches and backends are loaded (processes
    forked afterwards inherit them instead of each paying for it)."""
    import io

    from .. import style as ps

    fig = draw("warm-up θ² ≈ ·", [np.array([2.0, 1.0, 0.1])] * 2,
               [np.array([3.0, 0.5, 1e-3])] * 2, "centered",
               {"rank": (np.array([1, 2]), np.array([2.0, 2.0]))})
    ax = fig.axes[2]
    ax.set_yscale("log")
    ps.plain_log(ax.yaxis)
    with ps.plt.rc_context(ps.STYLE):
        for kind in formats:
            fig.savefig(io.BytesIO(), format=kind)
    ps.plt.close(fig)
