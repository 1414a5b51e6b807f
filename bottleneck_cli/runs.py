"""Creating run folders: deterministic names, config checks, and what to (re)train.

A run folder is created only after the config and the data were validated, so bad
input never leaves a folder behind. Re-running the same command finds the folder:
finished runs are skipped, interrupted ones resume, and a folder that holds a
*different* config is an error unless ``--force``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from . import rundir as rd
from .config import ConfigError
from .train import Member

_UNSAFE = re.compile(r"[^A-Za-z0-9=,._+\-]")
# Overrides that say where a run goes rather than what it is.
_PLACEMENT_KEYS = ("name", "out")


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


def config_text(cfg) -> str:
    """The resolved config as YAML, without placement keys (they may differ on re-runs)."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in _PLACEMENT_KEYS:
        data.pop(key, None)
    return OmegaConf.to_yaml(OmegaConf.create(data))


def check_data(cfg) -> None:
    """Build the dataset once so a bad file or task setting fails before any folder exists."""
    from .tasks import TaskError, make_dataset

    try:
        make_dataset(cfg.task, cfg.seed, cfg.dtype)
    except TaskError as exc:
        raise ConfigError(str(exc)) from None


def prepare(path: Path, cfg, overrides: list[str], force: bool = False) -> Member | None:
    """Create or reopen the run folder at ``path``; ``None`` when it is already done."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder")
    run = rd.RunDir(path)
    text = config_text(cfg)
    if force and path.exists():
        shutil.rmtree(path)
    if run.file(rd.CONFIG).exists():
        old = run.file(rd.CONFIG).read_text()
        if config_text(OmegaConf.create(old)) != text:
            raise ConfigError(
                f"{path} holds a run with a different config; use --force to replace it "
                f"or name=<other> for a new run")
        if run.is_done():
            return None
    else:
        created = not path.exists()
        try:
            path.mkdir(parents=True, exist_ok=True)
            rd.write_json(run.file(rd.OVERRIDES), {"overrides": list(overrides)})
            rd.write_text(run.file(rd.CONFIG), OmegaConf.to_yaml(cfg))
        except OSError as exc:
            if created and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            raise ConfigError(f"cannot write run folder {path}: {exc.strerror or exc}") from None
    return Member(run=run, cfg=cfg)
