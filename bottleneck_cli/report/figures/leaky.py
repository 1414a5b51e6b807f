"""Leaky ResNet figures (arXiv 2405.17573): the Hamiltonian rank estimate and the minimal
cost of identity against the effective depth Lt (Fig. 1a, with the teacher's inner
dimension), COI / kinetic energy / Hamiltonian against the layer position p (Fig. 1c),
the singular values of the residual weights W_l against p with the layer positions marked
(Fig. 1b / 2b) and the test error against L per layer-step scheme (Fig. 2a)."""

from __future__ import annotations

from typing import Iterator

import numpy as np
import pandas as pd

from ... import rundir as rd
from ..tables import layer_cols
from .base import Context, Fig, evenly, sentence, shown, styled

RANK, MIN_COI = "bottleneck/hamiltonian_rank", "bottleneck/min_coi"
ENERGIES = [("coi/Z", "COI ||A_p||²"), ("kinetic/Z", "kinetic energy"),
            ("hamiltonian/Z", "Hamiltonian H")]


def _finished(ctx: Context, *columns: str) -> pd.Index:
    ok = ctx.info["finished"].to_numpy(bool)
    for c in columns:
        table = ctx.cfg if c in ctx.cfg else ctx.finals if c in ctx.finals else None
        ok = ok & (table[c].notna().to_numpy(bool) if table is not None else False)
    return ctx.info.index[ok]


def _k_star(ctx: Context, idx) -> float | None:
    if "task.inner_dims" not in ctx.cfg:
        return None
    import json

    vals = [json.loads(v) if isinstance(v, str) else v for v in ctx.cfg.loc[idx, "task.inner_dims"]]
    dims = [min(v) for v in vals if isinstance(v, (list, tuple)) and v]
    return float(min(dims)) if dims else None


def rank_data(ctx: Context) -> pd.DataFrame:
    """Final rank estimate and min COI per (depth, Lt): mean over seeds; ``unconv``: some
    of those seeds is unconverged."""
    idx = _finished(ctx, "model.leak")
    d = pd.DataFrame({"depth": ctx.info.loc[idx, "depth"], "leak": ctx.cfg.loc[idx, "model.leak"],
                      "rank": pd.to_numeric(ctx.finals.loc[idx, RANK], errors="coerce"),
                      "coi": pd.to_numeric(ctx.finals.loc[idx, MIN_COI], errors="coerce"),
                      "unconv": ctx.flags(idx)})
    return d.groupby(["depth", "leak"]).agg(
        rank=("rank", "mean"), coi=("coi", "mean"), unconv=("unconv", "any")
    ).reset_index().sort_values(["depth", "leak"])


def energy_data(ctx: Context, k: int = 4) -> pd.DataFrame:
    """Per-layer COI, kinetic energy and Hamiltonian against p for up to ``k`` runs
    (evenly over the finished ones, sorted by Lt): columns run, p, metric, value, unconv;
    ``attrs``: "rows" (the runs' rows of ``info``) and "of" (how many there were)."""
    every = [i for i in _finished(ctx, "model.leak") if "p/Z01" in ctx.finals.columns]
    idx = evenly(sorted(every, key=lambda i: (ctx.cfg.loc[i, "model.leak"], i)), k)
    rows = []
    for i in idx:
        label = f"Lt={ctx.cfg.loc[i, 'model.leak']:g}, L={ctx.info.loc[i, 'depth']:g}"
        for prefix, _ in ENERGIES:
            for col, layer in layer_cols(ctx.finals, prefix):
                p = ctx.finals.loc[i, f"p/Z{layer:02d}"]
                rows.append((label, float(p), prefix, float(ctx.finals.loc[i, col]),
                             bool(ctx.unconverged.loc[i])))
    out = pd.DataFrame(rows, columns=["run", "p", "metric", "value", "unconv"])
    out.attrs.update(rows=idx, of=len(every))
    return out


def weight_spectra_data(spec: dict, p, top: int = 12) -> pd.DataFrame:
    """The ``top`` largest singular values of each residual weight W_l from a spectra
    record (keys W01.., sorted descending) against its position p_l (``p[l - 1]``):
    columns p, layer, index (1 = largest), value."""
    rows = []
    for key, arr in spec.items():
        parts = rd.split_layer_key(key)
        if not parts or parts[0] != "W" or not 1 <= parts[1] <= len(p):
            continue
        s = np.sort(np.asarray(arr, float).ravel())[::-1][:top]
        rows += [(float(p[parts[1] - 1]), parts[1], i, float(v)) for i, v in enumerate(s, 1)]
    return pd.DataFrame(rows, columns=["p", "layer", "index", "value"]).sort_values(
        ["index", "p"], ignore_index=True)


def weight_runs(ctx: Context, k: int = 3) -> tuple[list, int, list]:
    """Up to ``k`` finished runs with spectra and layer positions, evenly over (Lt, step
    scheme, L): [(label, run folder, [p_1..p_L], unconverged)], how many there were, and
    their rows of ``info``."""
    every = [i for i in _finished(ctx, "model.leak") if "p/Z01" in ctx.finals.columns
             and (ctx.runs[i].path / rd.SPECTRA).is_dir()]

    def order(i):
        steps = ctx.cfg.loc[i, "model.steps"] if "model.steps" in ctx.cfg else ""
        return (float(ctx.cfg.loc[i, "model.leak"]), str(steps), float(ctx.info.loc[i, "depth"]), i)
    out, chosen = [], evenly(sorted(every, key=order), k)
    for i in chosen:
        run = ctx.runs[i]
        layers = layer_cols(ctx.finals, "p/Z")
        p = [float(ctx.finals.loc[i, col]) for col, _ in layers]
        p = [v for v in p if np.isfinite(v)]
        steps = f", {ctx.cfg.loc[i, 'model.steps']}" if "model.steps" in ctx.cfg else ""
        label = f"Lt={ctx.cfg.loc[i, 'model.leak']:g}, L={ctx.info.loc[i, 'depth']:g}{steps}"
        out.append((label, str(run.path), p, bool(ctx.unconverged.loc[i])))
    return out, len(every), chosen


def steps_data(ctx: Context) -> pd.DataFrame:
    """Final test loss per (step scheme, depth): mean and std over seeds; ``unconv``: some
    of those seeds is unconverged."""
    idx = _finished(ctx, "model.steps", "loss/test")
    d = pd.DataFrame({"scheme": ctx.cfg.loc[idx, "model.steps"], "depth": ctx.info.loc[idx, "depth"],
                      "err": pd.to_numeric(ctx.finals.loc[idx, "loss/test"], errors="coerce"),
                      "unconv": ctx.flags(idx)})
    return d.groupby(["scheme", "depth"]).agg(
        mean=("err", "mean"), std=("err", "std"), unconv=("unconv", "any")).reset_index()


def plan_rank(ctx: Context) -> Iterator[Fig | str]:
    if RANK not in ctx.finals or "model.leak" not in ctx.cfg:
        return
    data = rank_data(ctx)
    if data["leak"].nunique() < 2:
        yield "leaky rank against Lt: needs finished runs at >= 2 values of model.leak"
        return
    yield Fig("leaky_rank", "Hamiltonian rank estimate and minimal COI against Lt",
              "−2H/Lt (median over layers) and min_p COI at the end of training against "
              "the effective depth Lt; dotted: the teacher's inner dimension k*. The paper "
              "(Fig. 1a): the first approaches k* from below, the second from above.",
              "leaky_rank", (data, _k_star(ctx, _finished(ctx, "model.leak"))),
              key=ctx.key(_finished(ctx, "model.leak")))


def plan_energies(ctx: Context) -> Iterator[Fig | str]:
    if RANK not in ctx.finals or "model.leak" not in ctx.cfg:
        return
    energies = energy_data(ctx)
    if len(energies):
        yield Fig("leaky_energies", "COI, kinetic energy and Hamiltonian against p",
                  "Per layer at the end of training, against the layer position p_l (Fig. 1c), "
                  "for up to 4 runs: COI and kinetic energy large near input and output, the "
                  "Hamiltonian flatter." + sentence(shown(
                      len(energies.attrs["rows"]), energies.attrs["of"], "finished runs")),
                  "leaky_energies", (energies,),
                  key=ctx.key(energies.attrs["rows"]))


def plan_steps(ctx: Context) -> Iterator[Fig | str]:
    if RANK not in ctx.finals or "model.steps" not in ctx.cfg:
        return
    steps = steps_data(ctx)
    if steps["scheme"].nunique() >= 2 and steps["depth"].nunique() >= 2:
        yield Fig("leaky_steps", "Test error against L per layer-step scheme",
                  "Final test MSE against the number of layers L, one line per model.steps "
                  "(Fig. 2a), mean ± std over seeds.", "leaky_steps", (steps,),
                  key=ctx.key(_finished(ctx, "model.steps", "loss/test")))


def plan_weights(ctx: Context) -> Iterator[Fig | str]:
    if RANK not in ctx.finals or "model.leak" not in ctx.cfg:
        return
    runs, of, rows = weight_runs(ctx)
    if runs:
        yield Fig("leaky_weights", "Weight spectra against p",
                  "Singular values of the residual weights W_l at the last recorded step "
                  "against the layer position p_l (log scale; grey lines: the positions p_l), "
                  "one panel per run (Fig. 1b / 2b): in a bottleneck, k* large values in the "
                  "middle layers and the rest small." + sentence(shown(len(runs), of,
                                                                        "finished runs")),
                  "leaky_weights", (runs,), key=ctx.key(rows))
    else:
        yield "leaky weight spectra: no finished run with recorded spectra"


@styled
def draw_rank(df: pd.DataFrame, k_star: float | None):
    from .. import style as ps

    fig, axes = ps.panels(1, 1, w=4.2, h=3.0)
    ax = axes[0, 0]
    for depth, g in df.groupby("depth"):
        line, = ax.plot(g["leak"], g["rank"], "o-", label=f"−2H/Lt (L={depth:g})")
        ps.hollow(ax, g["leak"], g["rank"], g.get("unconv", False), line.get_color())
        line, = ax.plot(g["leak"], g["coi"], "s--", label=f"min COI (L={depth:g})")
        ps.hollow(ax, g["leak"], g["coi"], g.get("unconv", False), line.get_color(), "s")
    if k_star is not None:
        ax.axhline(k_star, color="0.4", ls=":", lw=1, label=f"k* = {k_star:g}")
    ax.set_xlabel("effective depth Lt")
    ax.set_ylabel("rank estimate")
    ps.legend(ax, *ax.get_legend_handles_labels())
    return fig


@styled
def draw_energies(df: pd.DataFrame):
    from .. import style as ps

    fig, axes = ps.panels(1, len(ENERGIES), w=3.4, h=2.9)
    colors = ps.cat_colors(df["run"])
    for ax, (prefix, label) in zip(axes.flat, ENERGIES):
        for run, g in df[df["metric"] == prefix].groupby("run", sort=False):
            g = g.sort_values("p")
            ax.plot(g["p"], g["value"], ms=3, **ps.marked(g["unconv"].any(), marker="o",
                                                          color=colors[run], label=run))
        ax.set_xlabel("layer position p")
        ax.set_ylabel(label)
        if prefix != "hamiltonian/Z":
            ax.set_yscale("symlog", linthresh=1.0)
    ps.legend(fig, *axes[0, 0].get_legend_handles_labels())
    return fig


@styled
def draw_steps(df: pd.DataFrame):
    from .. import style as ps

    fig, axes = ps.panels(1, 1, w=4.2, h=3.0)
    ax = axes[0, 0]
    for scheme, g in df.groupby("scheme"):
        g = g.sort_values("depth")
        bars = ax.errorbar(g["depth"], g["mean"], yerr=g["std"].fillna(0), fmt="o-", capsize=2,
                           label=str(scheme))
        ps.hollow(ax, g["depth"], g["mean"], g.get("unconv", False), bars.lines[0].get_color())
    ax.set_xlabel("layers L")
    ax.set_ylabel("test MSE")
    ax.set_yscale("log")
    ps.legend(ax, *ax.get_legend_handles_labels(), title="model.steps")
    return fig


@styled
def draw_weights(runs: list):
    """One panel per (label, run folder, positions, unconverged) of ``weight_runs``: the
    singular values of W_l from the run's last spectra record against p_l."""
    from .. import style as ps

    fig, axes = ps.panels(1, len(runs), w=3.4, h=2.9)
    for ax, (label, path, p, unconv) in zip(axes.flat, runs):
        df = weight_spectra_data(rd.RunDir(path).read_spectra(), p)
        for x in p:
            ax.axvline(x, color="0.85", lw=0.6, zorder=0)
        for i, g in df.groupby("index"):
            ax.plot(g["p"], g["value"], lw=1, ms=2.5, **ps.marked(unconv, marker="o"))
        ax.set_yscale("log")
        ax.set_xlim(0, 1)
        ax.set_xlabel("layer position p")
        ax.set_ylabel("singular values of W_l")
        ax.set_title(label + ("  [not converged]" if unconv else ""), fontsize=8)
    return fig
