"""A sweep of several shapes compiles the next shape while the current one trains.

A depth sweep is one job per depth, trained one after another; each job's first step
waits for its programs (the training chunk and the metrics program) to be traced and
compiled. ``start(job)`` builds, in a background thread, a cohort of the next job's
first members exactly as ``train.train_members`` will (same member count, same program
key: ``cohort._program_key``), writing nothing, and hands both of its programs to the
ahead-of-time compile thread (``programs.Program.ahead``). When the job's turn comes its
cohort finds the programs in the cache (``programs.cached``) and its first call waits for
the compile that is already under way, or finished. Anything that goes wrong here is left
for the real job to meet and report. ``sweep.compile_ahead=false`` turns it off.
"""

from __future__ import annotations

import threading
from pathlib import Path

from . import rundir as rd


def members_per_program(planned: list) -> int:
    """How many members the job's cohorts hold: one per CPU lane, else up to
    ``sweep.max_members`` (``train.train_members``; a fresh job starts all at step 0)."""
    from .train import cpu_lanes

    cfg = planned[0].cfg
    if cpu_lanes(cfg, len(planned)) > 1:
        return 1
    return min(len(planned), cfg.sweep.max_members)


def wanted(current: list, upcoming: list) -> bool:
    """Whether to compile ``upcoming`` ahead: on, the same dtype as ``current`` (the
    float64 switch is process-wide), and a family trained by bncli's cohort."""
    from .models import own_trainer

    if not (current and upcoming):
        return False
    cfg = upcoming[0].cfg
    return (bool(cfg.sweep.compile_ahead) and cfg.dtype == current[0].cfg.dtype
            and own_trainer(cfg) is None)


def unfinished(planned: list, root: Path) -> list:
    """The members of a job whose run is not done (read without the lock: a hint)."""
    return [m for m in planned if not rd.RunDir(root / m.name).is_done()]


def start(upcoming: list) -> threading.Thread:
    """Compile ``upcoming``'s programs in the background; returns the (daemon) thread
    that builds its cohort (the compiles then run on their own thread, beside the
    current job's)."""
    from .programs import compile_thread

    thread = threading.Thread(target=_compile, args=(upcoming, compile_thread("bncli-next-shape")),
                              daemon=True, name="bncli-compile-ahead")
    thread.start()
    return thread


def _compile(planned: list, pool) -> None:
    from .cohort import Cohort
    from .train import Member

    try:
        n = members_per_program(planned)
        probe = Cohort([Member(run=None, cfg=m.cfg) for m in planned[:n]])
        probe.chunk_ahead(pool)
        probe.evaluate_ahead(pool)
    except Exception:  # noqa: BLE001 - the job itself meets and reports the problem
        pass
