"""What every figure kind shares: the ``Fig`` a plan hands to the drawing workers, the
``Context`` (the report's tables) a plan decides from, the house-style decorator of the
drawing functions, and how settings are picked and ordered and figures named.

Nothing here imports matplotlib: drawing functions import it (``..style``) when they run,
so planning a report (and ``bncli --help``) never loads it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..fit import converged_mask


@dataclass
class Fig:
    """One planned figure: file stem, title and caption for the page, and what to draw:
    the registry entry ``kind`` (``FIGURES``) called with ``args``."""
    stem: str
    title: str
    caption: str
    kind: str
    args: tuple
    key: str = ""  # the unconverged-runs key (``Context.key``), added to legend and caption
    paths: list[Path] = field(default_factory=list)  # the files, once drawn


@dataclass
class Context:
    """The report's data that plans decide from. The per-run figures are planned before
    the aggregate tables exist: ``long``, ``fits``, ``fit_points`` are None until then."""
    runs: list  # Run records
    info: pd.DataFrame  # per run: status, finished, depth, seed, setting, others, order
    cfg: pd.DataFrame  # flattened configs
    finals: pd.DataFrame  # final metric values
    swept: list[str]
    per_run_max: int = 0
    long: pd.DataFrame | None = None  # the long table's global metrics (layer NA)
    fits: pd.DataFrame | None = None
    fit_points: pd.DataFrame | None = None
    grid: tuple[str, str] | None = None  # --grid
    metric: str | None = None  # --metric

    @functools.cached_property
    def depths(self) -> list:
        """The depths of finished runs, sorted."""
        return sorted(self.info.loc[self.info["finished"], "depth"].dropna().unique())

    @property
    def sweep_note(self) -> str:
        return f"finished runs at {len(self.depths)} depth(s)"

    @functools.cached_property
    def unconverged(self) -> pd.Series:
        """Per run (``info``'s index): True where its verdict says not converged."""
        return ~converged_mask(self.finals).reindex(self.info.index, fill_value=True)

    def flags(self, runs) -> np.ndarray:
        """Per run of ``runs`` (labels of ``info``): True where it is unconverged (a
        figure's ``unconv`` column; aggregated with ``any``, a point hollow)."""
        return self.unconverged.loc[runs].to_numpy(bool)

    def key(self, runs=None) -> str:
        """How a figure that draws ``runs`` (labels of ``info``; default the finished
        runs) tells its unconverged ones: "" when none of them is."""
        runs = self.info.index[self.info["finished"]] if runs is None else runs
        k, n = int(self.unconverged.loc[runs].sum()), len(runs)
        return f"dashed / hollow: not converged ({k} of {n} runs)" if k else ""

    def runs_of(self, names) -> pd.Index:
        """The labels of ``info`` for these run names."""
        return self.info.index[self.info["run"].isin(set(names))]


def styled(fn):
    """Run a drawing function under the house style (``style.STYLE``)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..style import STYLE, plt

        with plt.rc_context(STYLE):
            return fn(*args, **kwargs)
    return wrapper


def shown(k: int, n: int, what: str) -> str:
    """"showing k of n <what>" when something was left out, else "" (every figure says
    what it leaves out in these words)."""
    return f"showing {k} of {n} {what}" if k < n else ""


def sentence(text: str) -> str:
    """``text`` as a caption's closing sentence ("" stays "")."""
    return f" {text[0].upper()}{text[1:]}." if text else ""


def evenly(items: list, k: int) -> list:
    """At most ``k`` of ``items``, spread evenly (first and last kept)."""
    if len(items) <= k:
        return list(items)
    idx = np.unique(np.round(np.linspace(0, len(items) - 1, k)).astype(int))
    return [items[i] for i in idx]


def sortkey(v):
    """Numbers before text, numbers by value."""
    return (0, float(v), "") if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) \
        else (1, 0.0, str(v))


def safe(name: str) -> str:
    """``name`` as part of a file name."""
    s = re.sub(r"[^A-Za-z0-9=.,_+-]+", "_", name).strip("_")
    return s[:60] or "run"
