"""The report's worker pool: results in order, errors re-raised, and a worker killed in
the middle of sending never wedges the pool (multiprocessing.Pool.terminate could).

Each check runs in a fresh interpreter: the pool forks, which is unsafe once another test
has started JAX in this process (the report itself forks only without JAX, pool.fork_ok).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bottleneck_cli.report.pool import WorkerDied, WorkerPool


def square(x):
    return x * x


def fail_on_three(x):
    if x == 3:
        raise ValueError("three")
    return x


def die(x):
    os.kill(os.getpid(), signal.SIGKILL)


def big(x):
    return bytes(1 << 20)  # larger than a pipe's buffer: the worker blocks while sending


def check_results_come_back_in_order():
    with WorkerPool(2) as pool:
        first = pool.map_async(square, range(20))
        second = pool.map_async(square, [])
        assert first.get() == [i * i for i in range(20)]
        assert second.get() == []


def check_a_task_error_is_raised_by_get():
    with WorkerPool(2) as pool:
        pending = pool.map_async(fail_on_three, range(6))
        with pytest.raises(ValueError, match="three"):
            pending.get()
        assert pool.map_async(square, [4]).get() == [16]  # the workers serve on


def check_a_dead_worker_fails_its_task_and_the_pool_still_ends():
    with WorkerPool(2) as pool:
        with pytest.raises(WorkerDied):
            pool.map_async(die, range(4)).get()


def check_killed_while_workers_send_it_stops_at_once():
    """Leaving by an exception kills workers that are blocked mid-send; no join hangs."""
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with WorkerPool(2) as pool:
            pool.map_async(big, range(50))
            time.sleep(0.2)
            raise KeyboardInterrupt
    assert time.monotonic() - t0 < 20
    assert all(not p.is_alive() for p in pool.processes)


CHECKS = [check_results_come_back_in_order, check_a_task_error_is_raised_by_get,
          check_a_dead_worker_fails_its_task_and_the_pool_still_ends,
          check_killed_while_workers_send_it_stops_at_once]


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__[len("check_"):])
def test_pool(check):
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import test_report_pool as t; t.{check.__name__}()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
