"""Per run of a convolutional net (arXiv 2402.08010): the kept (frequency, channel)
directions of the middle layer's weights as a heatmap over (k_x, k_y), the kept count per
layer, and every per-frequency weight singular value against layer, at the last recorded
step. Drawn from the ``FWxx`` / ``FZcxx`` spectra (metrics/frequencies.py)."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from ... import rundir as rd
from ..load import Run
from .base import Context, Fig, safe, styled
from .run_spectra import per_run_choice


def plan(ctx: Context) -> Iterator[Fig | str]:
    """One figure per chosen run that recorded per-frequency spectra (a cnn)."""
    cnn = [i for i, r in enumerate(ctx.runs)
           if ((r.config or {}).get("model") or {}).get("name") == "cnn"]
    if not cnn:
        return
    chosen = [i for i in per_run_choice(ctx.runs, ctx.info, ctx.per_run_max) if i in cnn]
    for k, i in enumerate(chosen):
        r = ctx.runs[i]
        light = Run(name=r.name, path=r.path, status=r.status, config=r.config, final=r.final)
        yield Fig(f"freq_{k:03d}_{safe(r.name)}", f"Frequencies kept by {r.name}",
                  "Left: kept directions (per-frequency weight singular values within "
                  "near_one_delta of 1) over the frequency grid (k_x, k_y), in the middle "
                  "conv layer. Middle: kept directions per layer (weights) and per-frequency "
                  "rank of the centered hidden images. Right: every singular value of every "
                  "W_l(k) against layer, coloured by degree max(|k_x|, |k_y|).",
                  "frequencies", (light,))


def data(run: Run):
    """(per-layer FW spectra {l: (h, w, r)}, FZc {l: ...}, delta, atol, rtol), or None."""
    try:
        spec = rd.RunDir(run.path).read_spectra()
    except FileNotFoundError:
        return None
    fw, fz = {}, {}
    for key, arr in spec.items():
        p = rd.split_layer_key(key)
        if p and p[0] in ("FW", "FZc") and np.ndim(arr) == 3:
            (fw if p[0] == "FW" else fz)[p[1]] = np.asarray(arr, float)
    if not fw:
        return None
    m = run.config.get("metrics") or {}
    return fw, fz, float(m.get("near_one_delta", 0.5)), float(m.get("atol", 0.1)), \
        float(m.get("rtol", 0.1))


def figure(run: Run):
    got = data(run)
    if got is None:
        return None
    return draw(run.name, *got, depth=int(run.config.get("depth") or max(got[0])))


@styled
def draw(name, fw, fz, delta, atol, rtol, depth):
    from ...frequency_grid import degrees, kept_counts, rank_counts, signed
    from .. import style as ps

    fig, axes = ps.panels(1, 3, w=3.3, h=2.9)
    layers = sorted(fw)
    mid = min(layers, key=lambda l: (abs(l - depth / 2), l))
    counts = kept_counts(fw[mid], delta)
    h, w = counts.shape
    order_y, order_x = np.argsort(signed(h)), np.argsort(signed(w))
    ax = axes[0, 0]
    im = ax.imshow(counts[order_y][:, order_x], origin="lower", cmap="viridis",
                   extent=(signed(w).min() - 0.5, signed(w).max() + 0.5,
                           signed(h).min() - 0.5, signed(h).max() + 0.5))
    ax.grid(False)
    ax.set_xlabel("k_x")
    ax.set_ylabel("k_y")
    ax.set_title(f"kept directions, layer {mid}")
    fig.colorbar(im, ax=ax, pad=0.02, fraction=0.06).set_label("count")
    ax = axes[0, 1]
    ax.plot(layers, [kept_counts(fw[l], delta).sum() for l in layers], marker="o",
            label="weights (|s − 1| ≤ δ)")
    if fz:
        zl = sorted(fz)
        ax.plot(zl, [rank_counts(fz[l], atol, rtol).sum() for l in zl], marker="s",
                label="hidden images (centered rank)")
    ax.set_xlabel("layer l")
    ax.set_ylabel("(frequency, direction) pairs")
    ax.set_title("kept per layer")
    ps.legend(ax, *ax.get_legend_handles_labels())
    ax.set_ylim(bottom=0)
    ax = axes[0, 2]
    for l in layers:
        s = fw[l]
        deg = np.broadcast_to(degrees(*s.shape[:2])[..., None], s.shape)
        jitter = l + 0.3 * (deg / max(deg.max(), 1) - 0.5)
        sc = ax.scatter(jitter.ravel(), s.ravel(), c=deg.ravel(), s=4, cmap="plasma",
                        vmin=0, vmax=max(int(deg.max()), 1))
    ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("layer l")
    ax.set_ylabel("singular value of W_l(k)")
    ax.set_title("per-frequency weight spectra")
    fig.colorbar(sc, ax=ax, pad=0.02, fraction=0.06).set_label("degree")
    ps.suptitle(fig, name, size=9)
    return fig
