"""``bncli export tensorboard PATHS``: TensorBoard event files for existing runs.

Each run's event file is made from its ``metrics.jsonl`` and ``spectra/`` (``tbevents``),
the same events ``metrics.tensorboard=true`` writes live. By default it goes into the
run's own ``tb/``, written only while holding the run's lock (a run that is training is
skipped: with ``metrics.tensorboard=true`` it writes its own); with ``out`` into
``<out>/<run name>/`` and the run folders are only read. Re-running replaces the files
an earlier export wrote (only those), so exporting twice gives the same events.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from . import rundir as rd
from . import tbevents
from .report.load import ReportError, discover, run_names

FORMATS = ("tensorboard",)


@dataclass
class Exported:
    name: str
    folder: Path | None  # where the event file went; None when skipped
    records: int = 0
    why: str = ""  # why it was skipped


def export(what: str, paths: Sequence[Path], out: Path | None = None,
           say: Callable[[str], None] = print) -> list[Exported]:
    """Export the runs at or below ``paths`` as ``what`` (``FORMATS``), telling ``say``
    what was written and skipped; ReportError for bad input."""
    if what not in FORMATS:
        raise ReportError(f"unknown export format {what!r}; choose from {', '.join(FORMATS)}")
    if out is not None:
        from .report.out import writable

        if Path(out).exists() and not Path(out).is_dir():
            raise ReportError(f"--out {out} exists and is not a folder")
        if writable(out):
            raise ReportError(f"cannot write to --out {out}: {writable(out)}")
    dirs = discover([Path(p) for p in paths])
    done = [_tensorboard(d, name, out) for d, name in zip(dirs, run_names(dirs))]
    written = [e for e in done if e.folder is not None]
    for e in done:
        if e.folder is None:
            say(f"{e.name}: skipped ({e.why})")
    where = out if out is not None else ", ".join(map(str, paths))
    say(f"wrote TensorBoard event files of {len(written)} of {len(done)} runs; view them "
        f"with: tensorboard --logdir {where}")
    return done


def _tensorboard(path: Path, name: str, out: Path | None) -> Exported:
    if out is not None:
        return _write(path, name, Path(out) / name)
    from filelock import FileLock, Timeout

    lock = FileLock(str(path / rd.LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return Exported(name, None, why="a process is training it")
    except OSError as exc:
        return Exported(name, None, why=f"cannot lock it: {exc.strerror or exc}")
    try:
        return _write(path, name, path / rd.TB)
    finally:
        lock.release()


def _write(path: Path, name: str, folder: Path) -> Exported:
    try:
        records = rd.read_metrics(path / rd.METRICS)
    except (OSError, ValueError) as exc:
        return Exported(name, None, why=f"metrics.jsonl cannot be read: {exc}")
    if not records:
        return Exported(name, None, why="no metrics recorded")
    try:
        tbevents.write_run(path, folder, records).close()
    except OSError as exc:
        return Exported(name, None, why=f"cannot write {folder}: {exc.strerror or exc}")
    return Exported(name, folder, len(records))
