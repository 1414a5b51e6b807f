"""The Hydra application behind launcher sweeps: one Hydra job = one batched job.

``bncli sweep ... hydra/launcher=joblib`` plans the sweep, writes ``sweep.json`` and
calls ``multirun`` with ``job=0,1,...``; each launcher process (a joblib worker, a
submitit/SLURM task) runs ``task`` for its job index.
"""

from __future__ import annotations

import sys

import hydra

from .config import CONFIG_DIR


@hydra.main(config_path=str(CONFIG_DIR), config_name="launch", version_base="1.3")
def task(cfg) -> None:
    from .sweep import run_job

    results = run_job(cfg.index, int(cfg.job), bool(cfg.retry_failed))
    return results


def multirun(argv: list[str]) -> None:
    """Run ``task`` as a Hydra multirun with ``argv`` as its command line."""
    saved = sys.argv
    sys.argv = ["bncli-launch", *argv]
    try:
        task()
    finally:
        sys.argv = saved
