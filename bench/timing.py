"""Timing helpers shared by the benchmarks: warmup + median, subprocess wall time."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv's bin/ (bncli lives next to python)


def median_time(fn, repeats: int = 5, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` untimed calls.

    ``fn`` must block until its work is done (e.g. ``block_until_ready``)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def median(xs) -> float:
    return statistics.median(list(xs))


def bench_env(**extra: str) -> dict[str, str]:
    """The environment of every subprocess: single-threaded OpenBLAS plus ``extra``."""
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def run_timed(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
              check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    """Wall time of one subprocess (start to exit), and its completed process."""
    t = time.perf_counter()
    proc = subprocess.run(args, env=env or bench_env(), cwd=cwd or ROOT,
                          capture_output=True, text=True)
    dt = time.perf_counter() - t
    if check and proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{' '.join(map(str, args[:4]))} ... exited {proc.returncode}: "
                           + " | ".join(tail))
    return dt, proc


def bncli(*args: str) -> list[str]:
    return [str(BIN / "bncli"), *args]


def python(*args: str) -> list[str]:
    return [sys.executable, *args]


def interleaved(fns: dict, repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Wall times of several blocking callables measured round-robin (the starting one
    rotates each round), so load changes on a shared machine hit all of them alike."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t)
    return times
