"""The Python API: run folders as pandas tables, read by the loader ``bncli report`` uses.

    from bottleneck_cli import load_records, load_runs

    runs = load_runs("runs/")        # one row per run: config, final metrics, status
    records = load_records("runs/")  # one row per metrics record, column "run" names it

Reads run folders only (``rundir`` is the contract): no JAX, no training code, no
writes. A run that cannot be read is a row with status ``unreadable`` and its
``problems``, never an exception.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable, Union

import pandas as pd

from .report import load
from .report.tables import config_frame, finals_frame

PathLike = Union[str, os.PathLike]


def _paths(paths: tuple) -> list[Path]:
    """``load_runs("a", "b")`` and ``load_runs(["a", "b"])`` alike."""
    flat: list = []
    for p in paths:
        flat.extend([p] if isinstance(p, (str, os.PathLike)) else list(p))
    if not flat:
        raise TypeError("give at least one run folder, sweep folder or tree of them")
    return [Path(p) for p in flat]


def read(*paths: PathLike | Iterable[PathLike]) -> list[load.Run]:
    """The report's ``Run`` records of every run folder at or below ``paths``."""
    return load.load_runs(_paths(paths))


def load_runs(*paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """One row per run folder at or below ``paths`` (run folders, sweep folders, trees).

    Columns: ``run`` (name relative to the runs' common folder), ``path``, ``status``
    (finished, diverged, running, interrupted, failed, missing, unreadable), ``step`` and
    ``steps``, ``converged`` (the convergence verdict of the last record: True, False or
    NA), ``problems`` (why a run is not a clean finished one; empty when it is); then
    every config key, flattened with dots (``depth``, ``model.name``, ``optim.name``;
    lists as JSON text); then the final record's metrics under their ``metrics.jsonl``
    names (``loss/test``, ``norm/total``, ``bottleneck/rank_c``: docs/metrics.md; a name
    that is also a config key, such as ``lam``, as ``final/lam``), and for linear nets
    the closed forms ``closed_form`` and ``closed_form_target``.

    Raises ``ReportError`` when a path does not exist or holds no run folder.
    """
    return runs_frame(read(*paths))


def runs_frame(runs: list[load.Run]) -> pd.DataFrame:
    """``load_runs``'s table of already loaded ``Run`` records."""
    head = pd.DataFrame({
        "run": [r.name for r in runs],
        "path": [str(r.path) for r in runs],
        "status": [r.status for r in runs],
        "step": pd.array([r.step for r in runs], dtype="Int64"),
        "steps": pd.array([r.steps for r in runs], dtype="Int64"),
    })
    cfg = config_frame(runs)
    finals = finals_frame(runs).drop(columns=["step"], errors="ignore")
    verdict = finals.pop("converged") if "converged" in finals else pd.Series(float("nan"), index=head.index)
    head["converged"] = pd.array([None if v != v else bool(v) for v in verdict], dtype="boolean")
    head["problems"] = ["; ".join(r.problems) for r in runs]
    finals = finals.rename(columns={c: f"final/{c}" for c in finals.columns
                                    if c in cfg.columns or c in head.columns})
    closed = pd.DataFrame.from_records([r.closed for r in runs], index=head.index)
    return pd.concat([head, cfg, finals, closed], axis=1)


def load_records(*paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """Every metrics record (``metrics.jsonl``) of the run folders at or below ``paths``,
    one row per run and recorded step: column ``run`` (as in ``load_runs``), ``step``,
    then the metrics (docs/metrics.md; NaN where a record lacks one). A run whose
    metrics cannot be read adds no rows and a warning."""
    frames = []
    for r in read(*paths):
        if r.status == "unreadable" and not len(r.values):
            warnings.warn(f"{r.name}: {'; '.join(r.problems)}", stacklevel=2)
            continue
        df = pd.DataFrame(r.values, columns=list(r.keys))
        df.insert(0, "run", r.name)
        frames.append(df)
    if not frames:
        return pd.DataFrame({"run": pd.Series(dtype=str), "step": pd.Series(dtype="Int64")})
    out = pd.concat(frames, ignore_index=True)
    out["step"] = out["step"].astype("Int64")
    return out
