"""Creating run folders: deterministic names, config checks, and what to (re)train.

A run folder is created only after the config and the data were validated, so bad
input never leaves a folder behind. Re-running the same command finds the folder:
finished runs are skipped, interrupted ones resume, and a folder that holds a
*different* config is an error unless ``--force`` (``same_config``: a run folder of an
earlier bncli, whose config had other keys, still counts as the same run). ``open_run``
changes a run only while holding its lock; ``--force`` clears only a folder of the
run's own files, and names (``check_name``) are single folder names, so a run never
lands outside ``out``. ``bncli sweep`` checks and clears its members with these too.
"""

from __future__ import annotations

import hashlib
import os
import re
from contextlib import contextmanager
from pathlib import Path

from omegaconf import OmegaConf

from . import rundir as rd
from . import runfiles
from .config import ConfigError
from .train import Member

_UNSAFE = re.compile(r"[^A-Za-z0-9=,._+\-]")
# Overrides that say where a run goes rather than what it is.
_PLACEMENT_KEYS = ("name", "out")
_NAME_MAX_BYTES = 255  # the longest file name most file systems take


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def run_name(overrides: list[str], default: str = "default") -> str:
    """A readable folder name from overrides, e.g. ``depth=8,lam=0.001,seed=1``."""
    kept = [o.lstrip("+") for o in overrides if _key(o) not in _PLACEMENT_KEYS]
    kept = [o.split("/")[-1] if _key(o).startswith("experiment") else o for o in kept]
    name = ",".join(kept) or default
    name = _UNSAFE.sub("_", name)
    if len(name) > 120:
        name = name[:100] + "-" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name


def check_name(name: str, what: str = "name") -> str:
    """``name`` if it is one plain folder name (so the folder lands directly inside
    ``out``); otherwise a one-line ConfigError. ``what`` names the setting in the error."""
    seps = [s for s in (os.sep, os.altsep, "/") if s]
    if not name.strip():
        problem = "is empty"
    elif any(s in name for s in seps) or "\0" in name:
        problem = "must be a single folder name, without '/'"
    elif name.startswith("."):
        problem = "must not start with '.' ('.', '..' and hidden folders are not run names)"
    elif len(name.encode("utf-8", "surrogateescape")) > _NAME_MAX_BYTES:
        problem = f"is longer than {_NAME_MAX_BYTES} bytes"
    else:
        return name
    shown = name if len(name) <= 60 else name[:57] + "..."
    raise ConfigError(f"{what}={shown!r} {problem}")


def check_data(cfg) -> None:
    """Check the data (``tasks.check_task``) and build the model for them once, so that a
    bad file, task setting or model/data mismatch fails before any folder exists."""
    from .tasks import TaskError, check_task

    try:
        in_shape, d_out = check_task(cfg.task, cfg.seed, cfg.dtype)
    except TaskError as exc:
        raise ConfigError(str(exc)) from None
    if not cfg.model.get("_target_"):  # the model takes these inputs (a cnn needs images)
        from .models import build

        try:
            build(cfg, in_shape, d_out)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


class DamagedConfig(ConfigError):
    """A run's config.yaml cannot be read as a config; the message names the file."""


def saved_config(path: Path) -> dict | None:
    """The resolved config.yaml of the run folder at ``path``, None when it has none;
    a damaged (or empty) file is a one-line ``DamagedConfig``."""
    from omegaconf import DictConfig

    file = Path(path) / rd.CONFIG
    if not (file.exists() or file.is_symlink()):
        return None
    try:
        saved = OmegaConf.create(file.read_text())
        if not isinstance(saved, DictConfig) or not saved:
            raise ValueError("empty" if isinstance(saved, DictConfig) else "not a mapping")
        return OmegaConf.to_container(saved, resolve=True)
    except Exception as exc:  # noqa: BLE001 - YAML, OmegaConf, decoding and OS errors alike
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DamagedConfig(f"{file} is damaged ({line}); fix it, or use --force to "
                            "replace the run") from None


def _is_empty(value) -> bool:
    return value is None or value == [] or value == {}


def _same(saved, new) -> bool:
    """``same_config``'s rule, applied key by key through nested sections and lists."""
    if isinstance(saved, dict) and isinstance(new, dict):
        return all(_same(saved[k], v) if k in saved else _is_empty(v) for k, v in new.items())
    if isinstance(saved, list) and isinstance(new, list):
        return len(saved) == len(new) and all(map(_same, saved, new))
    return saved == new


def same_config(saved: dict, cfg) -> bool:
    """Whether a run folder's saved config (``saved_config``) is a run of ``cfg``, also
    when an earlier bncli wrote it: keys only in ``saved`` no longer apply and are
    ignored; keys only in ``cfg`` must hold an empty value (None, [], {}); common keys
    must be equal. Placement keys (name, out, where a task caches its data, the devices a
    sweep uses) never count."""
    return _same(_unplaced(saved), _unplaced(OmegaConf.to_container(cfg, resolve=True)))


def _unplaced(config: dict) -> dict:
    """``config`` without the keys that say where things go rather than what is trained."""
    out = {k: v for k, v in config.items() if k not in _PLACEMENT_KEYS}
    for section, key in (("task", "cache"), ("sweep", "devices")):  # where, not what
        if isinstance(out.get(section), dict) and key in out[section]:
            out[section] = {k: v for k, v in out[section].items() if k != key}
    return out


def check_config(path: Path, cfg) -> None:
    """Refuse the folder at ``path`` unless its config.yaml (if any) is a run of ``cfg``:
    a damaged file (``DamagedConfig``), another config, or a config.yaml in a folder
    that ``--force`` may not replace (not a run of bncli's) is a one-line ConfigError."""
    try:
        saved = saved_config(path)
    except DamagedConfig:
        if runfiles.is_replaceable(path):
            raise
        saved = {}  # unreadable, in a folder bncli did not make: someone else's file
    if saved is None or same_config(saved, cfg):
        return
    if not runfiles.is_replaceable(path):
        raise ConfigError(f"{path} holds a config.yaml of another run or program; "
                          "choose another name= or out=")
    raise ConfigError(f"{path} holds a run with a different config; use --force to replace "
                      "it or name=<other> for a new run")


def _shown(entries: list[str]) -> str:
    return ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")


def check_folder(path: Path, force: bool = False) -> None:
    """Refuse a ``path`` that is not a folder, or holds files that are not a run's
    (always with ``force``; without it, unless it is a run folder). Writes nothing."""
    path = Path(path)
    if (path.exists() or path.is_symlink()) and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder")
    if not path.is_dir():
        return
    foreign = runfiles.foreign_entries(path)
    if force and not runfiles.is_replaceable(path):
        held = f"holds files bncli did not write ({_shown(foreign)})" if foreign else (
            "is a symbolic link" if path.is_symlink() else "is not a bncli run folder")
        raise ConfigError(f"{path} {held}; --force replaces only a bncli run folder")
    if foreign and not runfiles.has_run_files(path):
        raise ConfigError(f"{path} is not a bncli run folder (it holds {_shown(foreign)}); "
                          "choose another name= or out=")


def _make_folder(path: Path) -> list[Path]:
    """``mkdir -p path``; returns the folders it created, outermost first. On failure
    removes them again and raises a one-line ConfigError."""
    missing, p = [], path
    while not os.path.lexists(p) and p != p.parent:
        missing.insert(0, p)
        p = p.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        remove_folders(missing)
        raise ConfigError(f"cannot write run folder {path}: {exc.strerror or exc}") from None
    return missing


def remove_folders(created: list[Path]) -> None:
    """Remove the folders ``_make_folder`` created, innermost first, while empty."""
    for d in reversed(created):
        try:
            if os.path.isdir(d):  # never made when mkdir failed on it
                d.rmdir()
        except OSError:
            return


def prepare(path: Path, cfg, overrides: list[str]) -> Member | None:
    """Create or reopen the run folder at ``path``; ``None`` when it is already done."""
    path = Path(path)
    check_folder(path)
    run = rd.RunDir(path)
    if run.file(rd.CONFIG).exists():
        check_config(path, cfg)
        if run.is_done():
            return None
        return Member(run=run, cfg=cfg)
    created = _make_folder(path)
    try:
        rd.write_json(run.file(rd.OVERRIDES), {"overrides": list(overrides)})
        # The JSON copy first: a config.yaml of this version always has one beside it.
        rd.write_json(run.file(rd.CONFIG_JSON), OmegaConf.to_container(cfg, resolve=True))
        rd.write_text(run.file(rd.CONFIG), OmegaConf.to_yaml(cfg))
    except OSError as exc:
        runfiles.clear_run(path)
        remove_folders(created)
        raise ConfigError(f"cannot write run folder {path}: {exc.strerror or exc}") from None
    return Member(run=run, cfg=cfg)


def lock_run(path: Path, force: bool = False):
    """The run's lock, taken without waiting; a busy run is a one-line ConfigError."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(path / rd.LOCK))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        why = "; --force cannot replace a run while it trains" if force else ""
        raise ConfigError(f"{path} is busy: another process is training it{why}") from None
    except OSError as exc:
        raise ConfigError(f"cannot lock run folder {path}: {exc.strerror or exc}") from None
    return lock


@contextmanager
def open_run(path: Path, cfg, overrides: list[str], force: bool = False):
    """Hold the lock of the run folder at ``path`` and yield its ``Member`` (``None``
    when it is done already). With ``force`` its own files are deleted first, once the
    lock is held; a folder that holds anything else is refused, touched in no way."""
    path = Path(path)
    check_folder(path, force)
    run = rd.RunDir(path)
    done = not force and run.is_done() and run.file(rd.CONFIG).exists()
    if done and prepare(path, cfg, overrides) is None:  # writes nothing: no lock needed
        yield None
        return
    had_lock = (path / rd.LOCK).exists()
    created = _make_folder(path)
    try:
        lock = lock_run(path, force)
    except ConfigError:
        remove_folders(created)
        raise
    try:
        check_folder(path, force)  # again: it may have changed before the lock was ours
        if force:
            runfiles.clear_run(path)
        member = prepare(path, cfg, overrides)
    except BaseException:
        lock.release()
        if not had_lock:
            (path / rd.LOCK).unlink(missing_ok=True)
        remove_folders(created)
        raise
    try:
        yield member
    finally:
        lock.release()
