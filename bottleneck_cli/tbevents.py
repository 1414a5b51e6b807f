"""TensorBoard event files of a run, written with tensorboardX (no TensorFlow needed).

Every metrics record becomes one event at its step: each numeric value a scalar under
its ``metrics.jsonl`` name (docs/metrics.md: ``loss/train`` the objective, ``loss/fit``,
``loss/test``, ``norm/total``, ``bottleneck/rank_c``, ``rank/W03``, ``grad/norm``, ...),
and each array of the step's ``spectra/<step>.npz`` a histogram of its singular values
(``spectra/W03``, ``spectra/Zc05``). Wall times are the run's start (its config file's
modification time) plus the record's ``time``, so a live file and an export agree.

A run's folder holds one event file, ``tb/events.out.tfevents.<time>.<host>.<id>.bncli``
(TensorBoard reads every ``*tfevents*`` file; the ``.bncli`` ending marks bncli's own,
the only ones it deletes). It is always made from the run's records: live training
(``metrics.tensorboard=true``, ``record``) starts a new file at a member's first record
in this process, replaying what ``metrics.jsonl`` already holds (a resumed run's records,
cut back to its checkpoint) before deleting the older file, then appends each record and
flushes it. A resumed run therefore never shows a step twice.
"""

from __future__ import annotations

import math
import threading
import uuid
import weakref
from pathlib import Path

import numpy as np

from . import rundir as rd

SUFFIX = ".bncli"
_LIVE: "weakref.WeakKeyDictionary[rd.RunDir, EventLog]" = weakref.WeakKeyDictionary()
_LIVE_LOCK = threading.Lock()


def own_files(folder: Path) -> list[Path]:
    """The event files bncli wrote in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(f for f in folder.glob(f"events.out.tfevents.*{SUFFIX}")
                  if f.is_file() and not f.is_symlink())


def start_time(path: Path) -> float:
    """When the run at ``path`` started: its config file's modification time."""
    for name in (rd.CONFIG_JSON, rd.CONFIG):
        try:
            return (Path(path) / name).stat().st_mtime
        except OSError:
            continue
    return 0.0


class EventLog:
    """A new event file in ``folder``; ``replace_old`` deletes the older ones."""

    def __init__(self, folder: Path, t0: float):
        from tensorboardX.event_file_writer import EventsWriter  # synchronous, no thread

        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.t0 = t0
        self.old = own_files(self.folder)
        token = f".{uuid.uuid4().hex[:8]}{SUFFIX}"
        self.writer = EventsWriter(str(self.folder / "events"), token)
        self.path = next(self.folder.glob(f"events.out.tfevents.*{token}"))

    def add(self, record: dict, spectra: dict | None = None) -> None:
        """One event: the record's numeric values and the spectra's histograms."""
        from tensorboardX import summary
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary

        values = [summary.scalar(k, float(v)).value[0] for k, v in record.items()
                  if k not in ("step", "time") and _finite_number(v)]
        for key, arr in sorted((spectra or {}).items()):
            s = np.asarray(arr, dtype=float).ravel()
            s = s[np.isfinite(s)]
            if s.size:
                values.append(summary.histogram(f"spectra/{key}", s, "auto").value[0])
        wall = self.t0 + float(record.get("time") or 0.0)
        self.writer.write_event(Event(wall_time=wall, step=int(record["step"]),
                                      summary=Summary(value=values)))

    def flush(self) -> None:
        self.writer.flush()

    def replace_old(self) -> None:
        """Flush this file, then delete the older event files bncli wrote here."""
        self.flush()
        for f in self.old:
            if f != self.path:
                f.unlink(missing_ok=True)
        self.old = []

    def close(self) -> None:
        self.writer.close()


def _finite_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _spectra(run: rd.RunDir, step: int, steps: set) -> dict | None:
    if step not in steps:
        return None
    try:
        return run.read_spectra(step)
    except (OSError, ValueError):
        return None  # a damaged spectra file: the scalars still go in


def write_run(run_path: Path, folder: Path, records: list[dict]) -> EventLog:
    """A new event file of ``records`` (with their spectra) in ``folder``, replacing the
    older ones; returned open, to append to."""
    run = rd.RunDir(run_path)
    steps = set(run.spectra_steps())
    log = EventLog(folder, start_time(run_path))
    for rec in records:
        log.add(rec, _spectra(run, int(rec["step"]), steps))
    log.replace_old()
    return log


def record(member, entry: dict, spectra: dict) -> None:
    """Training's hook, after each metrics record of a member: with
    ``metrics.tensorboard`` on, append ``entry`` and its spectra to the run's event file
    (started on the member's first record here: see the module docstring) and flush."""
    if not member.cfg.metrics.get("tensorboard"):
        return
    run = member.run
    with _LIVE_LOCK:
        log = _LIVE.get(run)
        if log is None:
            earlier = [r for r in run.read_metrics() if r["step"] < entry["step"]]
            log = _LIVE[run] = write_run(run.path, run.file(rd.TB), earlier)
    log.add(entry, spectra)
    log.flush()
