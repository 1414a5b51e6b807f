"""Run folders -> ``Run`` records, through the ``rundir`` contract only.

Every failure to read a run becomes a *problem* on its record (status
``unreadable``), never an exception: one bad run must not stop a report.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from .. import rundir as rd
from .closed import closed_forms

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml where installed


class ReportError(Exception):
    """A user-facing problem with the report's input (printed as one line)."""


@dataclass
class Run:
    """What the report knows about one run folder."""

    name: str
    path: Path
    status: str = "missing"
    step: int | None = None
    steps: int | None = None
    config: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)
    keys: tuple = ()  # metric names of metrics.jsonl (union over records, first-seen order)
    # (records, keys) float matrix of metrics.jsonl; NaN where a record lacks the key
    values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    problems: list = field(default_factory=list)
    closed: dict = field(default_factory=dict)  # Schatten-2/L closed forms (closed)


def discover(paths: Sequence[Path]) -> list[Path]:
    """Run folders under ``paths`` (deduplicated, in order); ReportError when none."""
    found: dict[str, Path] = {}
    for p in map(Path, paths):
        if not p.exists():
            raise ReportError(f"{p} does not exist")
        if p.is_file():
            raise ReportError(f"{p} is a file, not a run folder or a folder of runs")
        for d in rd.find_run_dirs(p):
            found.setdefault(os.path.abspath(d), d)
    if not found:
        raise ReportError(f"no run folders (with config.yaml or status.json) under "
                          f"{', '.join(map(str, paths))}")
    return list(found.values())


def run_names(dirs: list[Path]) -> list[str]:
    """Display names: paths relative to the folders' common parent."""
    absd = [os.path.abspath(d) for d in dirs]
    if len(absd) == 1:
        return [os.path.basename(absd[0])]
    common = os.path.commonpath(absd)
    return [os.path.relpath(d, common) for d in absd]


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Every run under ``paths``, read in this process."""
    dirs = discover(paths)
    return load_chunk(list(zip(dirs, run_names(dirs))))


def load_chunk(items: list[tuple[Path, str]]) -> list[Run]:
    """``load_run`` over (path, name) pairs (one task of a loading pool)."""
    return [load_run(p, n) for p, n in items]


def load_run(path: Path, name: str) -> Run:
    """Read one run folder; every failure becomes a problem on the record."""
    run = Run(name=name, path=Path(path))
    try:
        _fill_run(run)
    except Exception as exc:  # noqa: BLE001 - one bad run must not stop the report
        run.status = "unreadable"
        run.problems.append(f"unreadable ({type(exc).__name__}: {exc})")
    run.problems = [_in_run(p, run.path) for p in run.problems]
    return run


def _in_run(problem: str, path: Path) -> str:
    """``problem`` with the run folder's path left out of the file names it quotes (a
    problem is shown after the run's name, and on other machines than this one)."""
    for prefix in dict.fromkeys((os.path.abspath(path), str(path))):
        if os.sep in prefix:  # never a bare name, which may be any word of the text
            problem = problem.replace(prefix + os.sep, "")
    return problem


def _fill_run(run: Run) -> None:
    d = rd.RunDir(run.path)
    st = d.status()
    if not isinstance(st, dict) or st.get("status") not in (*rd.STATUSES, "missing"):
        st = {"status": "corrupt"}  # not a record, or a status no run writes
    run.status = str(st.get("status", "missing"))
    unreadable = []
    if run.status == "corrupt":
        unreadable.append("status.json is damaged")
    try:
        run.config = read_config(d.path, run.problems)
    except FileNotFoundError:
        unreadable.append("no config.yaml")
    except (yaml.YAMLError, ValueError, OSError) as exc:
        unreadable.append(f"config.yaml is damaged ({str(exc).splitlines()[0]})")
    try:
        run.keys, run.values = _columnar(d.read_metrics())
    except (ValueError, OSError) as exc:
        unreadable.append(f"metrics.jsonl is damaged ({exc})")
    summary = _summary(d, run.problems)
    if isinstance(summary.get("final"), dict) and summary["final"]:
        run.final = summary["final"]
    elif len(run.values):
        run.final = {k: v for k, v in zip(run.keys, run.values[-1].tolist()) if v == v}
    run.step = _int(st.get("step"), summary.get("steps_done"), run.final.get("step"))
    run.steps = _int(st.get("steps"), summary.get("steps"), run.config.get("steps"))
    if unreadable:
        run.problems[:0] = unreadable
        run.status = "unreadable"
    elif run.status == "missing":
        run.problems.insert(0, "no status.json (never started, or stopped before writing it)")
    elif run.status == "diverged":
        at = st.get("diverged_step", summary.get("diverged_step"))
        run.problems.insert(0, f"diverged at step {at}")
    elif run.status != "finished":
        err = f": {st['error']}" if st.get("error") else ""
        run.problems.insert(0, f"unfinished (status {run.status}, step "
                               f"{run.step}/{run.steps}){err}")
    if run.status == "finished" and not len(run.values):
        run.problems.append("no metrics recorded")
    _fill_closed(run)


def read_config(path: Path, problems: list | None = None) -> dict:
    """The resolved config of the run folder at ``path``: its ``config.json``, or where
    there is none (a run of an earlier bncli) or it is damaged (noted in ``problems``)
    its ``config.yaml``. FileNotFoundError, ValueError or yaml.YAMLError when neither
    holds a mapping."""
    try:
        cfg = rd.read_json(Path(path) / rd.CONFIG_JSON)
        if isinstance(cfg, dict):
            return cfg
        raise ValueError("not a mapping")
    except FileNotFoundError:
        pass
    except (ValueError, OSError) as exc:
        if problems is not None:
            problems.append(f"config.json is damaged, config.yaml read instead ({exc})")
    cfg = yaml.load((Path(path) / rd.CONFIG).read_text(), Loader=_YAML_LOADER)
    if not isinstance(cfg, dict):
        raise ValueError("not a mapping")
    return cfg


def _fill_closed(run: Run) -> None:
    """The closed forms of a linear run; a damaged params.npz is a problem, not a failure."""
    if not run.config:
        return
    try:
        run.closed = closed_forms(run.path, run.config)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the report
        run.problems.append(f"params.npz is damaged, closed form skipped ({type(exc).__name__})")


def _summary(d: rd.RunDir, problems: list) -> dict:
    """summary.json as a dict; empty when absent, damaged or not a record (noted)."""
    try:
        summary = rd.read_json(d.file(rd.SUMMARY))
    except FileNotFoundError:
        return {}
    except (ValueError, OSError):
        problems.append("summary.json is damaged (ignored)")
        return {}
    if not isinstance(summary, dict):
        problems.append("summary.json is not a record (ignored)")
        return {}
    if "final" in summary and not isinstance(summary["final"], dict):
        problems.append("summary.json has no final record (final values from metrics.jsonl)")
    return summary


def _columnar(records: list[dict]) -> tuple[tuple, np.ndarray]:
    """Records as (keys, float matrix): compact to keep and cheap to pass between processes."""
    if not records:
        return (), np.zeros((0, 0))
    keys = tuple(records[0])
    if all(len(r) == len(keys) and tuple(r) == keys for r in records):
        rows = [list(r.values()) for r in records]
    else:
        keys = tuple(dict.fromkeys(k for r in records for k in r))
        rows = [[r.get(k) for k in keys] for r in records]
    try:
        return keys, np.array(rows, dtype=float)
    except (TypeError, ValueError):  # a non-numeric value somewhere: keep it as missing
        return keys, np.array([[v if isinstance(v, (int, float)) else None for v in row]
                               for row in rows], dtype=float)


def _int(*candidates) -> int | None:
    for c in candidates:
        if isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c):
            return int(c)
    return None
