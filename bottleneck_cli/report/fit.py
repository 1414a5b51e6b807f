"""The depth fit ||θ||² = R0·L + R1 (SCIENCE.md §4): slope R0 estimates the rank,
intercept R1 the regularity."""

from __future__ import annotations

import numpy as np
import pandas as pd

FIT_COLUMNS = ["n_runs", "n_seeds", "n_depths", "depths", "R0_estimate", "R0_err",
               "R1_estimate", "R1_err", "method", "caveat", "unconverged_left_out"]
MIN_DEPTHS = 3  # a line through fewer depths fits exactly or nearly: no check of the law


def caveat(n_depths: int) -> str:
    """Why a fit through ``n_depths`` depths is not to be trusted ("" when it is)."""
    return f"unreliable: only {n_depths} depths" if n_depths < MIN_DEPTHS else ""


def basis(n_depths: int, n_runs: int, n_seeds: int) -> str:
    """What a fit rests on, for figures and the terminal: "3 depths, 6 runs, 2 seeds"."""
    text = f"{n_depths} depths, {n_runs} runs, {n_seeds} seed{'s' if n_seeds != 1 else ''}"
    return text + (" — unreliable (< 3 depths)" if n_depths < MIN_DEPTHS else "")


def ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float]:
    """Least squares y = a·x + b: (a, err a, b, err b); the errors are NaN with two points."""
    X = np.stack([x, np.ones_like(x)], axis=1)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    n = len(x)
    if n > 2:
        s2 = float(np.sum((y - X @ coef) ** 2)) / (n - 2)
        err = np.sqrt(np.diag(s2 * np.linalg.inv(X.T @ X)))
    else:
        err = np.array([np.nan, np.nan])
    return float(coef[0]), float(err[0]), float(coef[1]), float(err[1])


def converged_mask(finals: pd.DataFrame) -> pd.Series:
    """False for runs whose verdict says not converged; True for converged runs and for
    runs that recorded no verdict (earlier bncli versions)."""
    if "converged" not in finals:
        return pd.Series(True, index=finals.index)
    return pd.to_numeric(finals["converged"], errors="coerce").fillna(1.0) > 0


def depth_fit_table(info: pd.DataFrame, finals: pd.DataFrame, cfg: pd.DataFrame,
                    swept: list[str], include_unconverged: bool = False
                    ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit ||θ||² = R0·L + R1 per setting (swept minus depth and seed).

    ``info``: ``run_info`` plus ``order`` (the run's row in the summary table). Per seed
    a least-squares line, then mean ± std over seeds; with one seed a single
    fit with its standard errors. Finished runs only, at least two distinct depths.
    ``n_runs``, ``n_seeds``, ``n_depths`` count what the fit used; ``caveat`` flags a fit
    through fewer than three depths. Returns (fits, points) where points hold mean/std of
    ||θ||² per (setting, depth)."""
    df = info[["others", "depth", "seed", "finished"]].copy()
    df["norm"] = pd.to_numeric(finals["norm/total"], errors="coerce") if "norm/total" in finals \
        else np.nan
    df = df[df["finished"] & np.isfinite(df["norm"]) & np.isfinite(df["depth"])]
    # the theory is about minimisers: runs whose verdict says "not converged" are left
    # out unless asked for (--include-unconverged), and counted per setting
    unconverged = ~converged_mask(finals.loc[df.index]) if len(df) else pd.Series(dtype=bool)
    left_out = df[unconverged].groupby("others").size() if not include_unconverged \
        else pd.Series(dtype=int)
    if not include_unconverged and len(df):
        df = df[~unconverged]
    df = df.loc[info.loc[df.index, "order"].sort_values(kind="stable").index]  # table order
    others = [k for k in swept if k not in ("depth", "seed")]
    rows, points = [], []
    for setting, g in df.groupby("others", sort=False):
        if g["depth"].nunique() < 2:
            continue
        seeds = [s for _, s in g.groupby("seed") if s["depth"].nunique() >= 2]
        per_seed = [ols(s["depth"].to_numpy(float), s["norm"].to_numpy(float)) for s in seeds]
        if len(per_seed) >= 2:
            g = g[g["seed"].isin([s["seed"].iloc[0] for s in seeds])]  # the points used
            a = np.array(per_seed)
            slope, intercept = a[:, 0].mean(), a[:, 2].mean()
            slope_err, intercept_err = a[:, 0].std(ddof=1), a[:, 2].std(ddof=1)
            method = f"mean ± std over {len(per_seed)} seeds"
        else:
            slope, slope_err, intercept, intercept_err = ols(g["depth"].to_numpy(float),
                                                             g["norm"].to_numpy(float))
            method = "one least-squares fit ± standard error"
        row = {"setting": setting, **{k: cfg.loc[g.index[0], k] for k in others}}
        depths = sorted(g["depth"].unique())
        row.update(zip(FIT_COLUMNS, [
            len(g), g["seed"].nunique(), len(depths), ",".join(f"{d:g}" for d in depths),
            slope, slope_err, intercept, intercept_err, method, caveat(len(depths)),
            int(left_out.get(setting, 0))]))
        rows.append(row)
        pts = g.groupby("depth")["norm"].agg(["mean", "std", "size"]).reset_index()
        pts["setting"] = setting
        points.append(pts.rename(columns={"size": "n"}))
    fits = pd.DataFrame(rows, columns=["setting", *others, *FIT_COLUMNS])
    pts = pd.concat(points, ignore_index=True) if points else \
        pd.DataFrame(columns=["depth", "mean", "std", "n", "setting"])
    return fits, pts
