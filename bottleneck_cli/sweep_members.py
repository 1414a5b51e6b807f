"""A sweep's member folders: checks before anything is written, ``--force``, and
training each member under its run lock.

Every member is trained only while this process holds ``<member>/.lock``, and its
status is read again under the lock, so concurrent sweeps into one folder train each
member once, and a sweep that waited for another one trains what that one left
unfinished (it was killed). A member that cannot be opened (a damaged ``config.yaml``)
fails alone; the others still train. Member folders are checked and cleared by the
same functions as ``bncli train``'s run folder (``runs``, ``runfiles``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import rundir as rd
from . import runfiles
from .config import ConfigError
from .runs import DamagedConfig, check_config, check_folder, lock_run, prepare


def _lock(path: Path):
    from filelock import FileLock

    return FileLock(str(path / rd.LOCK))


def _warn(text: str) -> None:
    print(f"bncli: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- before writing
def check_members(members, root: Path, force: bool = False) -> None:
    """Refuse, before anything is written, what ``bncli train`` refuses for each member
    folder (``runs.check_folder``; without ``force`` also ``runs.check_config``), except
    a damaged config.yaml: that member fails alone when its turn comes."""
    for m in members:
        path = root / m.name
        check_folder(path, force)
        if force or not path.is_dir():
            continue
        try:
            check_config(path, m.cfg)
        except DamagedConfig:
            pass


def clear_members(members, root: Path) -> None:
    """``--force``: delete bncli's files in every existing member folder, holding all
    their locks and checking each folder again under its lock; a member another
    process is training, or one that now holds other files, is a ConfigError and
    nothing is deleted."""
    paths = [root / m.name for m in members if (root / m.name).is_dir()]
    locks = []
    try:
        for path in paths:
            locks.append(lock_run(path, force=True))
        for path in paths:
            check_folder(path, force=True)
        for path in paths:
            runfiles.clear_run(path)
    finally:
        for lock in locks:
            lock.release()


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
                _warn(f"{m.name}: waiting for the process that holds {root / m.name / rd.LOCK}")
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
        member = prepare(run.path, m.cfg, m.overrides)
    except DamagedConfig as exc:  # this member fails, the others go on
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
