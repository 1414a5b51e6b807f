"""What ``bncli status`` shows: each member's state, read from its run folder alone.

Reads ``sweep.json`` (the members, pending ones included), each member's
``status.json``, ``summary.json`` and the tail of its ``metrics.jsonl``; writes
nothing and takes no lock (``rundir.effective_status`` only probes whether a process
holds a running member's ``.lock``, to tell ``running`` from ``stale``). So it works
while a sweep trains, and on a copy of a sweep folder from another machine (where a
member left ``running`` reads ``stale``). Imports neither JAX nor training code.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import rundir as rd

OBJECTIVE, TEST_FIT, RANK = "loss/train", "loss/test", "bottleneck/rank_c"
_TAIL_BYTES = 1 << 18  # enough for the last few metrics records of a deep net


@dataclass
class Row:
    """One member (or run) as the status table shows it."""

    name: str
    status: str  # finished, running, stale, interrupted, diverged, failed, pending, corrupt
    step: int | None = None
    steps: int | None = None
    objective: float | None = None
    test_fit: float | None = None
    rank: float | None = None
    converged: str = ""  # yes / no / "" (not recorded)
    eta_s: float | None = None  # running members: seconds left at the recent rate
    error: str = ""


def tail_records(path: Path, limit: int = 8) -> list[dict]:
    """The last whole records of a metrics.jsonl (at most ``limit``), reading only its
    end; a torn or damaged line is skipped."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _TAIL_BYTES))
            data = fh.read()
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > _TAIL_BYTES:
        lines = lines[1:]  # the first line is cut
    records = []
    for line in lines[::-1]:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("step"), int):
            records.append(record)
            if len(records) == limit:
                break
    return records[::-1]


def _seconds_per_step(records: list[dict]) -> float | None:
    """From the records' ``time`` (training seconds) after step 0's compilation."""
    timed = [r for r in records if r["step"] > 0 and isinstance(r.get("time"), (int, float))]
    if len(timed) < 2 or timed[-1]["step"] <= timed[0]["step"]:
        return None
    dt = timed[-1]["time"] - timed[0]["time"]
    return dt / (timed[-1]["step"] - timed[0]["step"]) if dt >= 0 else None


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def read_row(path: Path, name: str | None = None) -> Row:
    """The row of the run folder at ``path`` (``pending`` when it does not exist yet)."""
    path = Path(path)
    row = Row(name or path.name, "pending")
    if not path.is_dir():
        return row
    run = rd.RunDir(path)
    recorded = run.status()
    row.status = rd.effective_status(path)
    if row.status == "missing":
        row.status = "pending"
    row.error = str(recorded.get("error") or "").strip().split("\n")[0]
    row.steps = recorded.get("steps")
    try:
        summary = rd.read_json(run.file(rd.SUMMARY))
    except (OSError, ValueError):
        summary = {}
    records = tail_records(run.file(rd.METRICS))
    last = dict(records[-1]) if records else {}
    if isinstance(summary, dict) and isinstance(summary.get("final"), dict):
        last.update(summary["final"])
        row.steps = row.steps or summary.get("steps")
    steps_seen = [s for s in (recorded.get("step"), last.get("step")) if isinstance(s, int)]
    row.step = max(steps_seen) if steps_seen else None
    row.objective, row.test_fit = _number(last.get(OBJECTIVE)), _number(last.get(TEST_FIT))
    row.rank = _number(last.get(RANK))
    row.converged = {1.0: "yes", 0.0: "no"}.get(_number(last.get("converged")), "")
    if row.status == "running" and row.steps and row.step is not None:
        rate = _seconds_per_step(records)
        row.eta_s = None if rate is None else max(0.0, (row.steps - row.step) * rate)
    return row


def is_sweep(path: Path) -> bool:
    return (Path(path) / "sweep.json").is_file()


def sweep_rows(root: Path) -> list[Row]:
    """One row per member of the sweep at ``root``, in ``sweep.json``'s order (members
    not trained yet are ``pending``); without a readable sweep.json, its run folders."""
    root = Path(root)
    try:
        names = [m["name"] for m in rd.read_json(root / "sweep.json")["members"]]
        if not all(isinstance(n, str) and n and "/" not in n for n in names):
            raise ValueError("bad member name")
    except (OSError, ValueError, KeyError, TypeError):
        names = [str(p.relative_to(root)) for p in rd.find_run_dirs(root) if p != root]
    return [read_row(root / n, n) for n in names]


@dataclass
class Group:
    """A sweep folder, or a lone run, in a runs folder's overview."""

    name: str
    rows: list[Row]
    sweep: bool


def overview(root: Path) -> list[Group]:
    """The sweeps and the lone runs below ``root``, sorted by path."""
    root = Path(root)
    groups = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if is_sweep(here):
            groups.append(Group(str(here.relative_to(root)), sweep_rows(here), True))
            dirnames[:] = []
        elif rd.is_run_dir(here):
            rel = str(here.relative_to(root))
            groups.append(Group(rel, [read_row(here, rel)], False))
            dirnames[:] = []
    return groups
