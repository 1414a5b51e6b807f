"""The run-folder contract: what a run writes, in which order, and how to read it back.

A run folder ``runs/<name>/`` holds::

    config.yaml        resolved config, written before step 0
    config.json        the same config as JSON (what readers such as the report parse)
    overrides.json     the overrides that made this run ({"overrides": [...]})
    metrics.jsonl      one JSON object per recorded step (append-only, flat slash-named keys)
    spectra/<step>.npz raw singular values at that step (8-digit zero-padded step)
    checkpoint.npz     latest train state (written atomically)
    params.npz         final parameters W01..WLL, b01..bLL
    summary.json       final record + status, written at the end
    status.json        {"status", "step", "steps", "diverged_step", "error", "updated"}; written last

With ``metrics.tensorboard=true``, or after ``bncli export tensorboard``, it also holds
``tb/``: TensorBoard event files (``tbevents``).

Status values: ``running``, ``finished``, ``diverged``, ``interrupted``, ``failed``.
``effective_status`` reads ``running`` as ``stale`` when no process holds ``.lock``
(the trainer was killed). ``runfiles`` tells these files from anything else.
Every whole-file write goes through a temporary file and ``os.replace`` so a kill
never leaves a half-written file; ``metrics.jsonl`` is append-only and a torn last
line is ignored by the reader (and cut off by ``truncate_metrics`` on resume).
Per-record writes (a metrics line, a spectra file) are made durable by a background
thread (``background_io``), flushed before every other whole-file write and every read.

This module imports neither JAX nor training code: ``report`` relies on that.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import orjson

from . import background_io
from .layer_keys import (layer_index, layer_name, sorted_layers,  # noqa: F401 (re-exported)
                         split_layer_key)

CONFIG = "config.yaml"
CONFIG_JSON = "config.json"
OVERRIDES = "overrides.json"
METRICS = "metrics.jsonl"
SPECTRA = "spectra"
CHECKPOINT = "checkpoint.npz"
PARAMS = "params.npz"
SUMMARY = "summary.json"
STATUS = "status.json"
TB = "tb"
LOCK = ".lock"
OWN = (CONFIG, CONFIG_JSON, OVERRIDES, METRICS, SPECTRA, TB, CHECKPOINT, PARAMS, SUMMARY,
       STATUS)

DONE = ("finished", "diverged")  # statuses that need no more training
STATUSES = ("running", "finished", "diverged", "interrupted", "failed")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()


def _atomic_write_bytes(path: Path, data: bytes, flush: bool = True) -> None:
    """Write ``data`` to ``path`` through a synced temporary file; ``flush``: first wait
    for the queued record writes (state files come after the records before them)."""
    if flush:
        background_io.flush()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _FILE_MODE)  # mkstemp creates 0600; run folders are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(value: Any) -> Any:
    """Numbers as plain floats; non-finite floats become null (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    return value


def write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(Path(path), json.dumps(_jsonable(obj), indent=1).encode())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    _atomic_write_bytes(Path(path), buf.getvalue())


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(Path(path), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_text(path: Path, text: str) -> None:
    _atomic_write_bytes(Path(path), text.encode())


class RunDir:
    """One run folder: paths plus the small read/write operations training needs."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    # ---- status -------------------------------------------------------------
    def status(self) -> dict:
        """The status record, or ``{"status": "missing"}`` when there is none."""
        try:
            return read_json(self.file(STATUS))
        except FileNotFoundError:
            return {"status": "missing"}
        except (OSError, ValueError):
            return {"status": "corrupt"}

    def set_status(self, status: str, **fields: Any) -> None:
        assert status in STATUSES, status
        record = {"status": status, "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        record.update(fields)
        write_json(self.file(STATUS), record)

    def is_done(self) -> bool:
        return self.status().get("status") in DONE

    # ---- metrics ------------------------------------------------------------
    def append_metrics(self, records: Iterable[dict]) -> None:
        lines = "".join(json.dumps(_jsonable(r)) + "\n" for r in records)
        if not lines:
            return
        path = self.file(METRICS)
        with open(path, "a") as fh:  # visible at once; durable in the background
            fh.write(lines)
        background_io.submit(lambda: _fsync(path), key=("fsync", str(path)))

    def read_metrics(self) -> list[dict]:
        background_io.flush()
        return read_metrics(self.file(METRICS))

    def truncate_metrics(self, last_step: int) -> None:
        """Keep only whole records with step <= last_step (resume from a checkpoint)."""
        kept = [r for r in self.read_metrics() if r.get("step", math.inf) <= last_step]
        write_text(self.file(METRICS), "".join(json.dumps(r) + "\n" for r in kept))
        spectra = self.file(SPECTRA)
        if spectra.is_dir():
            for f in spectra.glob("*.npz"):
                if f.stem.isdigit() and int(f.stem) > last_step:
                    f.unlink()

    # ---- spectra ------------------------------------------------------------
    def write_spectra(self, step: int, arrays: dict[str, np.ndarray]) -> None:
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
        path, data = self.file(SPECTRA) / f"{step:08d}.npz", buf.getvalue()
        background_io.submit(lambda: _atomic_write_bytes(path, data, flush=False))

    def spectra_steps(self) -> list[int]:
        background_io.flush()
        d = self.file(SPECTRA)
        if not d.is_dir():
            return []
        return sorted(int(f.stem) for f in d.glob("*.npz") if f.stem.isdigit())

    def read_spectra(self, step: int | None = None) -> dict[str, np.ndarray]:
        """Spectra at ``step`` (default: the last recorded step)."""
        steps = self.spectra_steps()
        if not steps:
            raise FileNotFoundError(f"{self.path}: no spectra recorded")
        step = steps[-1] if step is None else step
        return read_npz(self.file(SPECTRA) / f"{step:08d}.npz")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _loads(line: str):
    """One JSON value: orjson (about 5x faster on metrics lines), or the json module where
    orjson refuses the line (NaN and Infinity, which json writes for diverged values)."""
    try:
        return orjson.loads(line)
    except ValueError:
        return json.loads(line)


def read_metrics(path: Path) -> list[dict]:
    """Parse a metrics.jsonl, skipping a torn (partially written) last line.

    A malformed line anywhere but at the end means the file was damaged: raise.
    """
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    lines = text.split("\n")
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = _loads(line)
            if not isinstance(record, dict) or "step" not in record:
                raise ValueError("record without a step")
        except ValueError as exc:
            if i >= len(lines) - 2 and not text.endswith("\n"):
                break  # torn final line from an interrupted write
            raise ValueError(f"{path}: line {i + 1} is not a metrics record ({exc})") from None
        records.append(record)
    return records


def lock_is_held(path: Path) -> bool:
    """Whether some process (this one included) holds the run's ``.lock`` now."""
    lock = Path(path) / LOCK
    try:
        import fcntl
    except ImportError:  # no flock here: assume a recorded "running" is true
        return True
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: do not call a live run stale
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing the descriptor also drops our probe lock
    return False


def effective_status(path: Path) -> str:
    """The recorded status, with ``running`` shown as ``stale`` when no process holds
    the run's lock (its trainer was killed; re-running the command resumes it)."""
    status = str(RunDir(path).status().get("status", "missing"))
    if status == "running" and not lock_is_held(path):
        return "stale"
    return status


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file() or (Path(path) / STATUS).is_file()


def find_run_dirs(root: Path) -> list[Path]:
    """Every run folder at or below ``root`` (sorted), not descending into run folders."""
    root = Path(root)
    if is_run_dir(root):
        return [root]
    found = []
    for dirpath, dirnames, _ in os.walk(root):
        dirnames.sort()
        if is_run_dir(Path(dirpath)):
            found.append(Path(dirpath))
            dirnames[:] = []
        else:
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
    return found
