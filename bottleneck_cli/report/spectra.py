"""Figures drawn from ``spectra/<step>.npz``: the per-run spectra figure and the size of
the weight singular values away from one. The arrays are read inside the figure job,
where the figure is drawn, so only paths travel to the drawing workers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .. import rundir as rd
from .figdata import evenly
from .load import Run

MAX_SPECTRA = 64  # runs whose spectra are read for the near-one figure


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


def run_figure(run: Run):
    """Figure 1 for one run from its last spectra; None when it recorded no spectra."""
    from . import plots

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
    title = run.name + (f"  [{run.status}]" if run.status != "finished" else "")
    return plots.run_spectra(title, [s for _, s in groups["W"]], [s for _, s in groups[z_key]],
                             z_label, ranks)


def remaining_items(runs: list[Run], info: pd.DataFrame) -> list[tuple]:
    """(path, setting, depth, delta) of the finished runs that feed the near-one figure:
    at most MAX_SPECTRA, round robin over the (setting, depth) groups."""
    fin = info[info["finished"] & np.isfinite(info["depth"])]
    groups = [list(g.index) for _, g in fin.groupby(["others", "depth"], sort=False)]
    chosen: list[int] = []
    for r in range(max((len(g) for g in groups), default=0)):
        chosen.extend(g[r] for g in groups if r < len(g))
        if len(chosen) >= MAX_SPECTRA:
            break
    return [(runs[i].path, info.at[i, "others"], info.at[i, "depth"],
             float((runs[i].config.get("metrics") or {}).get("near_one_delta", 0.5)))
            for i in chosen[:MAX_SPECTRA]]


def _last_weight_spectra(path: Path) -> list[tuple[int, np.ndarray]]:
    """(layer, singular values of W_l) at the last spectra step; reads only the W arrays."""
    run = rd.RunDir(path)
    steps = run.spectra_steps()
    if not steps:
        return []
    with np.load(run.file(rd.SPECTRA) / f"{steps[-1]:08d}.npz", allow_pickle=False) as data:
        return sorted(((p[1], data[k]) for k in data.files
                       if (p := rd.split_layer_key(k)) and p[0] == "W"), key=lambda t: t[0])


def remaining(items: list[tuple]) -> pd.DataFrame:
    """Per run, the root-sum-square of the weight singular values with |s - 1| > delta,
    averaged (in square) over the middle layers l/L in [0.25, 0.75]; mean/std over seeds
    per (setting, depth). Runs without spectra drop out."""
    rows = []
    for path, setting, depth, delta in items:
        try:
            ws = _last_weight_spectra(path)
        except Exception:  # noqa: BLE001 - a run without spectra just drops out
            continue
        if not ws:
            continue
        L = len(ws)
        mid = [s for layer, s in ws if 0.25 <= layer / L <= 0.75] or [s for _, s in ws]
        sq = [float(np.sum(np.where(np.abs(s - 1) > delta, s, 0.0) ** 2)) for s in mid]
        rows.append({"setting": setting, "depth": depth, "value": math.sqrt(float(np.mean(sq))),
                     "delta": delta})
    if not rows:
        return pd.DataFrame(columns=["setting", "depth", "mean", "std", "delta"])
    return pd.DataFrame(rows).groupby(["setting", "depth"], sort=False).agg(
        mean=("value", "mean"), std=("value", "std"), delta=("delta", "first")).reset_index()


def remaining_figure(items: list[tuple]):
    """Figure 4b; None with fewer than two depths."""
    from . import plots

    rest = remaining(items)
    if rest["depth"].nunique() < 2:
        return None
    return plots.remaining_size(rest, float(rest["delta"].iloc[0]))
