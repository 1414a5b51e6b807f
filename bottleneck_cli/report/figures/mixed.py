"""The mixed lazy/active figures (arXiv 2405.17580, models/mixed.py): the four phase
diagrams over (gamma_sigma, gamma_w) with the theory's lines, and Fig. 1, the singular
values of A under GD beside those of the self-consistent dynamics.

Lines (as the official diagrams draw them): active vs lazy gamma_sigma + gamma_w = 1,
infinite noise gamma_sigma = -gamma_w / 2, underparameterised gamma_w = log_d K.
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from ... import rundir as rd
from .base import Context, Fig, styled
from .phase import phase

GRID = ("model.gamma_sigma", "model.gamma_w")
PANELS = (("phase/min_test", "minimal test error", True),
          ("phase/stable_rank", "stable rank at the minimum", False),
          ("phase/argmin", "iterations to the minimal test error", False),
          ("phase/dist_sc", "max distance GD vs self-consistent", True))


def plan(ctx: Context) -> Iterator[Fig | str]:
    """The four diagrams when the runs are a (gamma_sigma, gamma_w) grid of the mixed
    family; else why not."""
    finals, cfg = ctx.finals, ctx.cfg
    if "phase/min_test" not in finals or any(k not in cfg for k in GRID):
        return
    if any(cfg[k].dropna().nunique() < 2 for k in GRID):
        yield "mixed phase diagrams: need model.gamma_sigma and model.gamma_w swept"
        return
    tables = {key: phase(ctx.info, cfg, finals, GRID, key)[0]
              for key, _, _ in PANELS if key in finals}
    d = cfg["task.d"].dropna().iloc[0] if "task.d" in cfg else None
    k = cfg["task.rank"].dropna().iloc[0] if "task.rank" in cfg else None
    yield Fig("mixed_phase", "Phase diagrams over (γσ, γw)",
              "Minimal test error, stable rank (||A||_F/||A||_op)² at the minimum, iterations "
              "to the minimum and the maximal distance ||A − B||²_F/d² between GD and the "
              "self-consistent dynamics. Lines: γσ + γw = 1 (active vs lazy, black), "
              "γσ = −γw/2 (infinite noise, red), γw = log_d K (underparameterised, orange)."
              + no_verdict(ctx), "mixed_phase", (tables, d, k))


def no_verdict(ctx: Context) -> str:
    """The caption's note that these runs carry no convergence verdict to mark: the mixed
    family trains by its own GD recursion (models/mixed_train.py), which records none."""
    verdicts = ctx.finals["converged"].notna().any() if "converged" in ctx.finals else False
    return "" if verdicts else (" These runs carry no convergence verdict (the mixed "
                                "family's GD recursion records none): nothing is marked.")


@styled
def draw(tables: dict, d, k):
    from .. import style as ps

    keys = [p for p in PANELS if p[0] in tables]
    fig, axes = ps.panels(1, len(keys), w=3.8, h=3.0)
    for ax, (key, title, log) in zip(axes[0], keys):
        t = tables[key]
        x, y = np.asarray(t.columns, float), np.asarray(t.index, float)
        v = t.to_numpy(float)
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.log10(v)
            title = f"log10 {title}"
        mesh = ax.pcolormesh(x, y, np.ma.masked_invalid(v), shading="nearest", cmap="viridis")
        fig.colorbar(mesh, ax=ax, fraction=0.08, pad=0.03)
        _lines(ax, x, y, d, k)
        ax.set_xlim(x.min(), x.max())
        ax.set_ylim(y.min(), y.max())
        ax.set_xlabel("γσ (σ² = d^γσ)")
        ax.set_ylabel("γw (w = d^γw)")
        ps.title(ax, title, size=9)
        ax.grid(False)
    return fig


def _lines(ax, x, y, d, k) -> None:
    gs = np.linspace(x.min() - 1, x.max() + 1, 50)
    ax.plot(gs, 1 - gs, color="black", lw=1.2)
    ax.plot(gs, -2 * gs, color="#d62728", lw=1.2)
    if d and k and d > 1:
        ax.axhline(math.log(k) / math.log(d), color="#ff8c00", lw=1.2)


# ---------------------------------------------------------------- Fig. 1
def plan_dynamics(ctx: Context) -> Iterator[Fig | str]:
    """Fig. 1 for the mixed run nearest (γσ, γw) = (-1.85, 2.25) that ran the
    self-consistent dynamics."""
    finals, cfg = ctx.finals, ctx.cfg
    if "phase/dist_sc" not in finals or any(k not in cfg for k in GRID):
        return
    ok = finals["phase/dist_sc"].notna() & ctx.info["finished"]
    if not ok.any():
        yield "mixed dynamics: no finished run with the self-consistent dynamics"
        return
    dist = (cfg[GRID[0]] + 1.85) ** 2 + (cfg[GRID[1]] - 2.25) ** 2
    i = dist[ok].idxmin()
    run = ctx.runs[i]
    thr = float(finals.at[i, "phase/sigma2"] * finals.at[i, "phase/w"])
    gs, gw = float(cfg.at[i, GRID[0]]), float(cfg.at[i, GRID[1]])
    yield Fig("mixed_dynamics", f"Singular values over time (γσ={gs:.3g}, γw={gw:.3g})",
              f"Singular values of A under GD (solid) and of the self-consistent dynamics B "
              f"(dashed) for run {run.name}; dotted: the threshold σ²w = {thr:.3g}."
              + no_verdict(ctx),
              "mixed_dynamics", (str(run.path), thr))


@styled
def draw_dynamics(path: str, threshold: float, top: int = 10):
    from .. import style as ps

    run = rd.RunDir(path)
    steps, sa, sb = [], [], []
    for step in run.spectra_steps():
        arrays = run.read_spectra(step)
        if "B" in arrays:
            steps.append(step)
            sa.append(arrays["A"][:top])
            sb.append(arrays["B"][:top])
    if not steps:
        return None
    fig, axes = ps.panels(1, 1, w=4.2, h=3.0)
    ax = axes[0, 0]
    sa, sb = np.array(sa), np.array(sb)
    for j in range(sa.shape[1]):
        c = ps.plt.cm.viridis(j / max(1, sa.shape[1] - 1))
        ax.plot(steps, sa[:, j], color=c, lw=1.4)
        ax.plot(steps, sb[:, j], color=c, lw=1.0, ls="--")
    ax.axhline(threshold, color="0.3", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("singular values of A (GD)\nand B (self-consistent)")
    return fig
