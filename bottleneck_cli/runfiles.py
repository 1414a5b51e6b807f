"""Which files of a folder are a bncli run's own (the contract in ``rundir``).

``--force`` deletes only these, and only in a folder that holds nothing else;
``remove_stale_tmp`` deletes the temporary files a killed writer left behind.
Call the deleting functions only while holding the run's lock.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from . import background_io
from .rundir import CONFIG, LOCK, OVERRIDES, OWN, SPECTRA, STATUS, TB

_TMP = re.compile(r"\.(.+)\.[^.]+\.tmp")  # mkstemp names of rundir's atomic writes
# The run's own subfolders, and the names of the files bncli writes in each.
_SUBFOLDERS = {SPECTRA: re.compile(r"\d{8}\.npz"),
               TB: re.compile(r"events\.out\.tfevents\.[^/]+\.bncli")}  # tbevents.SUFFIX


def _plain_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _is_tmp(name: str, owned) -> bool:
    """``name`` is a temporary file of an atomic write of a file ``owned`` accepts."""
    m = _TMP.fullmatch(name)
    return bool(m) and bool(owned(m[1]))


def _own_in(folder: str, name: str) -> bool:
    """``name`` is a file bncli writes in the run's subfolder ``folder``, or its temporary."""
    pattern = _SUBFOLDERS[folder]
    return bool(pattern.fullmatch(name)) or _is_tmp(name, pattern.fullmatch)


def _subfolders(path: Path):
    """The run's own subfolders that exist as real folders: (name, path)."""
    for name in _SUBFOLDERS:
        sub = Path(path) / name
        if sub.is_dir() and not sub.is_symlink():
            yield name, sub


def _tmp_files(path: Path) -> list[Path]:
    """bncli's own temporary files in a run folder and its subfolders."""
    path = Path(path)
    found = [f for f in path.glob(".*.tmp") if _plain_file(f) and _is_tmp(f.name, OWN.__contains__)]
    for name, sub in _subfolders(path):
        found += [f for f in sub.glob(".*.tmp")
                  if _plain_file(f) and _is_tmp(f.name, _SUBFOLDERS[name].fullmatch)]
    return found


def remove_stale_tmp(path: Path) -> None:
    """Delete the temporary files a killed bncli left in the run folder (after this
    process's own queued writes have finished: theirs are not stale)."""
    background_io.flush()
    for f in _tmp_files(path):
        f.unlink(missing_ok=True)


def foreign_entries(path: Path) -> list[str]:
    """What a folder holds that the run contract does not name, sorted."""
    foreign = []
    for entry in sorted(Path(path).iterdir()):
        name = entry.name
        if name in _SUBFOLDERS and entry.is_dir() and not entry.is_symlink():
            foreign += [f"{name}/{f.name}" for f in sorted(entry.iterdir())
                        if not (_plain_file(f) and _own_in(name, f.name))]
        elif name == LOCK or _is_tmp(name, OWN.__contains__):
            continue
        elif name not in OWN or name in _SUBFOLDERS or not _plain_file(entry):
            foreign.append(name)
    return foreign


def has_run_files(path: Path) -> bool:
    """The folder holds a file that a bncli run writes first (overrides, config, status)."""
    return any(_plain_file(Path(path) / n) for n in (OVERRIDES, CONFIG, STATUS))


def is_replaceable(path: Path) -> bool:
    """``--force`` may clear the folder: a real folder holding only a run's own files,
    recognised by one that only bncli names so (a config.yaml alone is not enough)."""
    path = Path(path)
    if path.is_symlink() or foreign_entries(path):
        return False
    owned = [n for n in OWN if (path / n).exists()]
    return not owned or any(_plain_file(path / n) for n in (OVERRIDES, STATUS))


def clear_run(path: Path) -> None:
    """Delete a run's own files, keeping the folder and its ``.lock`` (held by the caller)."""
    path = Path(path)
    remove_stale_tmp(path)
    for name in sorted(OWN, key=lambda n: n != STATUS):  # never a "finished" run half-cleared
        f = path / name
        if name in _SUBFOLDERS and f.is_dir() and not f.is_symlink():
            shutil.rmtree(f)
        elif _plain_file(f):
            f.unlink()
