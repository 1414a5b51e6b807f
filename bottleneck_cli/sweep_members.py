"""A sweep's member folders: checks before anything is written, ``--force``, and
training each member under its run lock.

Every member is trained only while this process holds ``<member>/.lock``, and its
status is read again under the lock, so concurrent sweeps into one folder train each
member once, and a sweep that waited for another one trains what that one left
unfinished (it was killed). A member that cannot be opened (a damaged ``config.yaml``)
fails alone; the others still train.
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import rundir as rd
from .config import ConfigError
from .runs import config_text, prepare

LOCK = ".lock"
# What bncli writes into a run folder: all --force deletes. Anything else is the user's.
RUN_FILES = (rd.CONFIG, rd.OVERRIDES, rd.METRICS, rd.SPECTRA, rd.CHECKPOINT, rd.PARAMS,
             rd.SUMMARY, rd.STATUS)


def _is_temp(name: str) -> bool:
    """A temporary file of an atomic write (``.<file>.<random>.tmp``), left by a kill."""
    return name.startswith(".") and name.endswith(".tmp")


def _lock(path: Path):
    from filelock import FileLock

    return FileLock(str(path / LOCK))


def _warn(text: str) -> None:
    print(f"bncli: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- before writing
def saved_config(path: Path) -> str | None:
    """``config_text`` of the member's config.yaml (None when it has none); a damaged
    file is a ValueError that names it."""
    from omegaconf import DictConfig, OmegaConf

    file = Path(path) / rd.CONFIG
    if not (file.exists() or file.is_symlink()):
        return None
    try:
        saved = OmegaConf.create(file.read_text())
        if not isinstance(saved, DictConfig) or not saved:
            raise ValueError("empty" if isinstance(saved, DictConfig) else "not a mapping")
        return config_text(saved)
    except Exception as exc:  # noqa: BLE001 - YAML, OmegaConf, decoding and OS errors alike
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"{file} is damaged ({line})") from None


def check_folders(members, root: Path, force: bool = False) -> None:
    """Refuse, before anything is written, a member path that is not a folder, a member
    that holds a run of another config (without ``force``), or, with ``force``, a member
    folder that is a link or holds files bncli did not write."""
    for m in members:
        path = root / m.name
        if (path.exists() or path.is_symlink()) and not path.is_dir():
            raise ConfigError(f"{path} exists and is not a folder")
        if not path.is_dir():
            continue
        if force:
            foreign = [p.name for p in path.iterdir()
                       if p.name not in RUN_FILES + (LOCK,) and not _is_temp(p.name)]
            if path.is_symlink() or foreign:
                what = "is a link" if path.is_symlink() else f"holds {', '.join(foreign[:3])}"
                raise ConfigError(f"{path} {what}; --force replaces only bncli run folders")
            continue
        try:
            old = saved_config(path)
        except ValueError:
            continue  # a damaged member fails alone when its turn comes
        if old is not None and old != config_text(m.cfg):
            raise ConfigError(f"{path} holds a run with a different config; use --force to "
                              "retrain the sweep's members or --name <other> for a new sweep")


def clear_members(members, root: Path) -> None:
    """``--force``: delete bncli's files in every existing member folder, holding all
    their locks; a member another process is training is a ConfigError (nothing deleted)."""
    from filelock import Timeout

    paths = [root / m.name for m in members if (root / m.name).is_dir()]
    locks = []
    try:
        for path in paths:
            lock = _lock(path)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                raise ConfigError(f"{path} is being trained by another process; --force "
                                  "cannot replace a run while it trains") from None
            locks.append(lock)
        for path in paths:
            _clear_run(path)
    finally:
        for lock in locks:
            lock.release()


def _clear_run(path: Path) -> None:
    """Delete the files bncli wrote in one run folder (its lock stays)."""
    for entry in path.iterdir():
        if entry.name == rd.SPECTRA and entry.is_dir():
            for f in entry.iterdir():
                if f.suffix == ".npz" or _is_temp(f.name):
                    f.unlink()
            entry.rmdir()
        elif entry.name in RUN_FILES or _is_temp(entry.name):
            entry.unlink()


# ---------------------------------------------------------------- training
def run_members(members, root: Path, progress=None,
                retry_failed: bool = False) -> dict[str, str]:
    """Train one job's unfinished members. Those another process holds are waited for,
    one at a time, and trained if that process left them unfinished."""
    result: dict[str, str] = {}
    pending, wait = list(members), False
    while pending:
        pending = _run_lockable(pending, root, result, progress, retry_failed, wait)
        wait = True
    return result


def _run_lockable(members, root, result, progress, retry_failed, wait) -> list:
    """Lock the members no other process holds (waiting for the first one when
    ``wait``) and train the unfinished ones; return the members still held elsewhere."""
    from filelock import Timeout

    locks, todo, busy = [], [], []
    try:
        for i, m in enumerate(members):
            (root / m.name).mkdir(parents=True, exist_ok=True)
            lock = _lock(root / m.name)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                if not (wait and i == 0):
                    busy.append(m)
                    continue
                _warn(f"{m.name}: waiting for the process that holds {root / m.name / LOCK}")
                lock.acquire()
            locks.append(lock)
            member = _open(m, root, result, retry_failed)
            if member is not None:
                todo.append((m, member))
        _train(todo, result, progress)
    finally:
        for lock in locks:
            lock.release()
    return busy


def _open(m, root: Path, result: dict, retry_failed: bool):
    """Under the member's lock: the ``Member`` to train, or None with its status put in
    ``result`` (done, failed, or not openable: a damaged config.yaml fails it)."""
    run = rd.RunDir(root / m.name)
    try:
        saved_config(run.path)
        member = prepare(run.path, m.cfg, m.overrides)
    except ValueError as exc:  # damaged config.yaml: this member fails, the others go on
        run.set_status("failed", error=str(exc))
        _warn(f"{m.name}: failed: {exc}")
        result[m.name] = "failed"
        return None
    except ConfigError as exc:  # e.g. another sweep put a different run here meanwhile
        _warn(f"{m.name}: not trained: {exc}")
        result[m.name] = "failed"
        return None
    status = run.status()["status"]
    if member is None or status in rd.DONE or (status == "failed" and not retry_failed):
        result[m.name] = status
        return None
    return member


def _train(todo: list, result: dict, progress) -> None:
    """Train the opened members together; a failing job fails its unfinished members."""
    from .train import Interrupted, train_members

    if not todo:
        return
    try:
        statuses = train_members([mem for _, mem in todo], progress)
    except Interrupted:
        raise
    except Exception as exc:  # one failing job must not take the sweep down
        msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
        statuses = []
        for _, mem in todo:  # members that finished beside the failure stay so
            status = mem.run.status()["status"]
            if status not in rd.DONE:
                status = "failed"
                mem.run.set_status(status, error=msg)
            statuses.append(status)
    for (m, _), s in zip(todo, statuses):
        result[m.name] = s
