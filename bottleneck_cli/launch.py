"""The Hydra application behind launcher sweeps: one Hydra job = one batched job.

``bncli sweep ... hydra/launcher=joblib`` plans the sweep (``check_launcher`` composes
this app's config with the launcher overrides, so a bad launcher is refused before
anything is written), writes ``sweep.json`` and calls ``multirun`` with
``job=0,1,...``; each launcher process (a joblib worker, a submitit/SLURM task) runs
``task`` for its job index.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import hydra

from .config import CONFIG_DIR, ConfigError

APP = "launch"


@hydra.main(config_path=str(CONFIG_DIR), config_name=APP, version_base="1.3")
def task(cfg) -> None:
    from .sweep import run_job

    results = run_job(cfg.index, int(cfg.job), bool(cfg.retry_failed))
    return results


def _quoted(path: Path) -> str:
    """``path`` as a quoted Hydra override value: any character (``=``, spaces, quotes)
    and no interpolation."""
    from hydra.core.override_parser.types import Quote, QuotedString

    return QuotedString(text=str(path).replace("${", "\\${"), quote=Quote.single).with_quotes()


def job_overrides(index: Path, jobs: int, launcher: list[str],
                  retry_failed: bool = False) -> list[str]:
    """The multirun's overrides: one Hydra job per batched job of the sweep at ``index``."""
    return [f"index={_quoted(index)}", f"job={','.join(map(str, range(jobs)))}",
            f"retry_failed={retry_failed}",
            f"hydra.sweep.dir={_quoted(Path(index).parent / '.launcher')}", *launcher]


def check_launcher(launcher: list[str], index: Path) -> None:
    """Compose the launcher's config as ``multirun`` will; a one-line ConfigError names
    what is wrong (an unknown launcher names the available ones)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode

    if "${" in str(index):  # Hydra resolves its job folders' paths again: refuse it here
        raise ConfigError(f"launchers cannot run a sweep whose folder path holds '${{': "
                          f"{Path(index).parent}")
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONFIG_DIR)))
    try:
        cfg = loader.load_configuration(APP, job_overrides(index, 1, launcher),
                                        run_mode=RunMode.MULTIRUN)
        target = cfg.hydra.launcher._target_
    except Exception as exc:  # noqa: BLE001 - Hydra's grammar, composition and type errors
        raise ConfigError(f"{' '.join(launcher)}: {_one_line(exc)}") from None
    if not isinstance(target, str):
        raise ConfigError(f"{' '.join(launcher)}: not a launcher")


def _one_line(exc: BaseException) -> str:
    """Hydra's (multi-line) error as one line; a missing launcher lists the known ones."""
    text = str(exc)
    missing = re.search(r"Could not find '([^']*)'", text)
    options = re.search(r"Available options in '[^']*':\n((?:\t.*\n?)+)", text)
    if missing and options:
        known = ", ".join(line.strip() for line in options.group(1).splitlines())
        return f"no launcher '{missing.group(1).split('/')[-1]}' (available: {known})"
    lines = [line.strip().rstrip(".") for line in text.splitlines() if line.strip()]
    cause = exc.__cause__ or exc.__context__
    if cause is not None and str(cause).strip():
        lines.append(str(cause).strip().splitlines()[0])
    return "; ".join(lines[:2]) if lines else type(exc).__name__


def multirun(argv: list[str]) -> None:
    """Run ``task`` as a Hydra multirun with ``argv`` as its command line."""
    saved = sys.argv
    sys.argv = ["bncli-launch", "-m", *argv]
    try:
        task()
    except SystemExit as exc:  # Hydra's answer to a failed job: the sweep summary follows
        if exc.code:
            print("bncli: a launcher job failed (its error is above)", file=sys.stderr)
    finally:
        sys.argv = saved
