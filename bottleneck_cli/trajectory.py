"""Host-side summaries of a run's trajectory (arXiv 2305.16038 rank jumps, 2106.15933
saddle-to-saddle staircases), from its metrics records; pure functions of sequences that
the trainer and the report both use (no JAX).

* ``rank_jumps``: the changes of a rank sequence that persist, as (step, before, after).
  A new value counts once it holds for ``persistence`` consecutive records (the final
  records of a run count if they all hold it); a flicker shorter than that is no jump.
* ``plateaus``: maximal step intervals where the loss hardly moves: the decay rate
  |d log(loss) / d step| stays below ``tol`` times its largest value over the run, for at
  least ``min_frac`` of the run's steps.
* ``rise_steps``: per singular value, the first step at which it reaches half its final
  value (the staircase: later for each successive k). The run summary keeps the learned
  ones, k <= the final rank (a value that ends near 0 has no rise).
"""

from __future__ import annotations

import numpy as np


def rank_jumps(steps, ranks, persistence: int = 3) -> list[tuple[int, int, int]]:
    """[(step, rank before, rank after)] of the persistent changes of ``ranks``."""
    steps, ranks = list(steps), [int(round(r)) for r in ranks]
    if not ranks:
        return []
    p = max(1, int(persistence))
    current, out = ranks[0], []
    for i in range(1, len(ranks)):
        r = ranks[i]
        if r == current:
            continue
        window = ranks[i:i + p]
        if all(v == r for v in window) and (len(window) == p or i + len(window) == len(ranks)):
            out.append((int(steps[i]), current, r))
            current = r
    return out


def plateaus(steps, loss, tol: float = 0.05, min_frac: float = 0.02) -> list[tuple[int, int]]:
    """[(start step, end step)] of the loss plateaus (module docstring)."""
    s = np.asarray(steps, dtype=np.float64)
    y = np.log(np.maximum(np.asarray(loss, dtype=np.float64), 1e-300))
    if s.size < 3:
        return []
    rate = np.abs(np.diff(y)) / np.maximum(np.diff(s), 1)
    top = float(np.max(rate)) if np.all(np.isfinite(rate)) else np.nan
    if not top > 0:
        return [(int(s[0]), int(s[-1]))]
    flat = rate < tol * top
    out, start = [], None
    for i, f in enumerate(flat):
        if f and start is None:
            start = i
        if start is not None and (not f or i == len(flat) - 1):
            end = i + 1 if f else i
            if s[end] - s[start] >= min_frac * (s[-1] - s[0]):
                out.append((int(s[start]), int(s[end])))
            start = None
    return out


def rise_steps(steps, svals) -> list[int | None]:
    """Per column k of ``svals`` (T, K): the first step with s_k >= s_k(final) / 2 (None
    when the final value is 0 or not finite)."""
    steps = np.asarray(steps)
    S = np.asarray(svals, dtype=np.float64).reshape(len(steps), -1)
    out = []
    for k in range(S.shape[1]):
        final = S[-1, k]
        hit = np.flatnonzero(S[:, k] >= final / 2) if np.isfinite(final) and final > 0 else []
        out.append(int(steps[hit[0]]) if len(hit) else None)
    return out


def run_summary(records: list[dict], persistence: int = 3, plateau_tol: float = 0.05,
                key: str = "rank/A") -> dict:
    """The trajectory summary of a run's records (summary.json ``trajectory``): the rank
    changes of ``key`` and their counts, the final rank, the plateaus of ``loss/train``, and
    their lengths, and the rise step of each learned singular value ``sval/A/k`` (k <= the
    final rank). Empty without ``key``."""
    recs = [r for r in records if key in r and np.isfinite(r.get("loss/train", np.nan))]
    if not recs:
        return {}
    steps = [int(r["step"]) for r in recs]
    jumps = rank_jumps(steps, [r[key] for r in recs], persistence)
    ks = sorted({int(k.rsplit("/", 1)[1]) for r in recs for k in r if k.startswith("sval/A/")})
    svals = [[r.get(f"sval/A/{k}", np.nan) for k in ks] for r in recs]
    rises = rise_steps(steps, svals) if ks else []
    final_rank = int(round(recs[-1][key]))
    flat = plateaus(steps, [r["loss/train"] for r in recs], plateau_tol)
    return {
        "key": key,
        "changes": [list(j) for j in jumps],
        "jumps_down": sum(1 for _, a, b in jumps if b < a),
        "jumps_up": sum(1 for _, a, b in jumps if b > a),
        "final_rank": final_rank,
        "plateaus": [list(p) for p in flat],
        "plateau_lengths": [b - a for a, b in flat],
        "rise_steps": {str(k): v for k, v in zip(ks, rises) if k <= final_rank},
    }


def flat_keys(summary: dict) -> dict[str, float]:
    """The scalar keys of a trajectory summary, slash-named (``traj/...``) for tables."""
    if not summary:
        return {}
    out = {f"traj/{k}": float(summary[k]) for k in ("jumps_down", "jumps_up", "final_rank")}
    out["traj/plateaus"] = float(len(summary["plateaus"]))
    for k, v in summary["rise_steps"].items():
        out[f"traj/rise/{k}"] = float("nan") if v is None else float(v)
    return out
