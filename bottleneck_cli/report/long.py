"""The tidy long table: run, step, metric, layer (NA if global), value; one row per
recorded finite value.

``write_long`` writes it to long.parquet a chunk of runs at a time, so a report of many
runs never holds the whole table (at 10,000 runs it has tens of millions of rows), and
keeps in memory only its global metrics (the rows the figures read: losses, norms,
convergence, the end-to-end matrix). Built vectorized: key names are parsed once per
distinct set of keys.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import rundir as rd
from .load import Run

LONG = "long.parquet"
CHUNK_VALUES = 2_000_000  # recorded values per chunk written (about 50 MB in memory)


def long_table(runs: list[Run]) -> pd.DataFrame:
    """The whole long table of ``runs``, in memory."""
    return _frame(runs, 0, len(runs), _Keys(runs))


def write_long(path: Path, runs: list[Run], chunk: int = CHUNK_VALUES) -> pd.DataFrame:
    """Write the long table of ``runs`` to the Parquet file ``path``, about ``chunk``
    recorded values at a time; return its rows of global metrics (layer NA)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = _Keys(runs)
    writer, kept = None, []
    try:
        for lo, hi in _chunks(runs, chunk):
            df = _frame(runs, lo, hi, keys)
            table = pa.Table.from_pandas(df, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            kept.append(df[df["layer"].isna().to_numpy()])
    finally:
        if writer is not None:
            writer.close()
    return pd.concat(kept, ignore_index=True)


class _Keys:
    """Every distinct metric key of the runs: its metric (a category) and layer (0: global)."""

    def __init__(self, runs: list[Run]):
        ids: dict[str, int] = {}
        self.layouts: dict[tuple, np.ndarray] = {}  # a run's keys -> their ids
        for run in runs:
            if run.values.size and "step" in run.keys and run.keys not in self.layouts:
                self.layouts[run.keys] = np.array([ids.setdefault(k, len(ids)) for k in run.keys],
                                                  np.int32)
        self.step = ids.get("step", -1)
        self.metric = np.zeros(len(ids), np.int32)
        self.layer = np.zeros(len(ids), np.int16)
        seen: dict[str, int] = {}
        for k, j in ids.items():
            name, layer = rd.split_layer_key(k) or (k, 0)
            self.metric[j] = seen.setdefault(name, len(seen))
            self.layer[j] = layer
        self.metrics = list(seen)
        self.runs = [r.name for r in runs]


def _chunks(runs: list[Run], chunk: int):
    """(lo, hi) ranges of runs holding about ``chunk`` values each (at least one range)."""
    lo, size = 0, 0
    for i, run in enumerate(runs):
        size += run.values.size
        if size >= chunk:
            yield lo, i + 1
            lo, size = i + 1, 0
    if lo < len(runs) or not runs:
        yield lo, len(runs)


def _frame(runs: list[Run], lo: int, hi: int, keys: _Keys) -> pd.DataFrame:
    """The long table of ``runs[lo:hi]`` (categories: every run, every metric)."""
    run_codes, steps, codes, values = [], [], [], []
    for i in range(lo, hi):
        run = runs[i]
        layout = keys.layouts.get(run.keys) if run.values.size else None
        if layout is None:
            continue
        vals = run.values
        r, c = np.nonzero(np.isfinite(vals) & (layout != keys.step))  # record-major
        run_codes.append(np.full(len(r), i, np.int32))
        steps.append(vals[r, run.keys.index("step")])
        codes.append(layout[c])
        values.append(vals[r, c])

    def cat(parts, dtype):
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    codes = cat(codes, np.int32)
    layer = keys.layer[codes]
    return pd.DataFrame({
        "run": pd.Categorical.from_codes(cat(run_codes, np.int32), categories=keys.runs),
        "step": cat(steps, float).astype(np.int64),
        "metric": pd.Categorical.from_codes(keys.metric[codes], categories=keys.metrics),
        "layer": pd.arrays.IntegerArray(layer, layer == 0),
        "value": cat(values, float),
    })
