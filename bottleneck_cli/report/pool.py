"""The report's worker processes: how many, forked safely, and never left behind.

Workers are forked (they inherit the loaded runs and a warmed-up matplotlib). They ignore
Ctrl-C and die with the report's process; SIGTERM to the report becomes a
KeyboardInterrupt there, so the pool is shut down on the way out.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
from contextlib import contextmanager


def worker_count(workers: int | None) -> int:
    """``workers``, by default one per available CPU (at most 8); 1 where forking is unsafe."""
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = min(8, cpus or 1)
    return workers if workers >= 2 and fork_ok() else 1


def forked_pool(workers: int):
    """Forked workers that leave SIGINT to this process and die with it."""
    return mp.get_context("fork").Pool(workers, initializer=_worker_init,
                                       initargs=(os.getpid(),))


def _worker_init(parent: int) -> None:
    """In a pool worker: ignore Ctrl-C (the parent stops the pool), end at once on SIGTERM
    (how the pool stops its workers) and, on Linux, get SIGTERM when the parent dies, even
    by SIGKILL."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl
        os._exit(1)


@contextmanager
def sigterm_interrupts():
    """SIGTERM raises KeyboardInterrupt in this process (main thread only), so that the
    pools are shut down on the way out rather than orphaned."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def fork_ok() -> bool:
    """Forking is safe unless a JAX backend is live in this process (DESIGN.md)."""
    if os.name != "posix" or "fork" not in mp.get_all_start_methods():
        return False
    if "jax" in sys.modules:
        try:
            from jax._src import xla_bridge

            return not getattr(xla_bridge, "_backends", True)
        except Exception:  # noqa: BLE001
            return False
    return True
