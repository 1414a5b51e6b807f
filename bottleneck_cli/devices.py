"""Every device of a node for one sweep: one job per device.

A sweep's jobs share nothing (each is one compiled program over its own members), so
with several accelerators a thread per device, pinned to it with ``jax.default_device``,
takes whole jobs from one queue and trains them exactly as on a single device. Jobs are
first split (the largest in halves) until each device has one, so that a single-shape
sweep of many seeds spreads over the devices too, each device then training a vmapped
batch of a share of the seeds. ``sweep.devices`` (``all`` or at most N) says how many
devices; with one the jobs run one after another in this thread, each next job's
programs compiling while the current one trains (``compile_ahead``).
"""

from __future__ import annotations

import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path


def chosen(setting: str) -> list:
    """The devices ``sweep.devices`` asks for: all of the default backend's, or the first N
    (fewer when fewer are present, with a note on stderr)."""
    import jax

    found = jax.devices()
    if setting == "all":
        return found
    n = int(setting)
    if n > len(found):
        print(f"bncli: sweep.devices={n} but {len(found)} {jax.default_backend()} device(s) "
              f"are present: using {len(found)}", file=sys.stderr, flush=True)
    return found[:n]


def spread(jobs: list[list], n: int) -> list[list]:
    """``jobs`` with the largest split in halves until there are at least ``n`` of them or
    none has two members left; members keep their order."""
    parts = [list(job) for job in jobs if job]
    while len(parts) < n:
        big = max(range(len(parts)), key=lambda i: len(parts[i]), default=None)
        if big is None or len(parts[big]) < 2:
            break
        job = parts.pop(big)
        half = (len(job) + 1) // 2
        parts[big:big] = [job[:half], job[half:]]
    return parts


def run_jobs(jobs: list[list], root: Path, progress=None,
             retry_failed: bool = False) -> dict[str, str]:
    """Train a sweep's jobs (lists of ``PlannedMember``) on the devices ``sweep.devices``
    names; each member's status by name. ``Interrupted`` after every device stopped."""
    from . import compile_ahead
    from .sweep_members import run_members
    from .train import configure_jax

    devices = chosen(jobs[0][0].cfg.sweep.devices) if jobs and jobs[0] else []
    results: dict[str, str] = {}
    if len(devices) < 2:
        for i, job in enumerate(jobs):
            upcoming = compile_ahead.unfinished(jobs[i + 1], root) if i + 1 < len(jobs) else []
            if compile_ahead.wanted(job, upcoming):
                configure_jax(job[0].cfg.dtype == "float64")  # before any compile
                compile_ahead.start(upcoming)
            results.update(run_members(job, root, progress, retry_failed))
        return results
    parts = spread(jobs, len(devices))
    devices = devices[:len(parts)]
    print(f"bncli: {len(parts)} jobs on {len(devices)} devices "
          f"({', '.join(map(str, devices))}), one job per device at a time",
          file=sys.stderr, flush=True)
    return _on_devices(parts, devices, root, progress, retry_failed)


def _on_devices(parts: list[list], devices: list, root: Path, progress,
                retry_failed: bool) -> dict[str, str]:
    """One thread per device takes the next job from the queue until none is left or a
    stop signal arrived (the main thread's ``StopFlag``, which the trainer's flags in the
    device threads follow)."""
    import jax

    from .stopflag import StopFlag
    from .sweep_members import run_members
    from .train import Interrupted

    todo: queue.SimpleQueue = queue.SimpleQueue()
    for part in parts:
        todo.put(part)
    results: dict[str, str] = {}
    lock = threading.Lock()
    with StopFlag() as stop:
        def work(device) -> None:
            with jax.default_device(device):
                while not stop:
                    try:
                        part = todo.get_nowait()
                    except queue.Empty:
                        return
                    done = run_members(part, root, progress, retry_failed)
                    with lock:
                        results.update(done)

        with ThreadPoolExecutor(len(devices), thread_name_prefix="bncli-device") as pool:
            futures = [pool.submit(work, device) for device in devices]
            while wait(futures, timeout=0.5).not_done:
                pass  # the main thread wakes up to run a signal handler a device thread got
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:  # a stop wins: the other devices' members are saved and resume
            raise next((e for e in errors if isinstance(e, Interrupted)), errors[0])
        if stop:
            raise Interrupted(f"stopped by signal {stop.signal}")
    return results
