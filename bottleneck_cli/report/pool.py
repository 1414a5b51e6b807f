"""The report's worker processes: how many, forked safely, and never left behind.

Workers are forked (they inherit the loaded runs and a warmed-up matplotlib). Each has its
own pipe to this process and no lock is shared between processes, so a worker can be
killed at any moment without wedging the rest (``multiprocessing.Pool.terminate`` can
hang for good when it kills a worker that holds the shared result queue's lock). Workers
ignore Ctrl-C and die with the report's process; SIGTERM to the report becomes a
KeyboardInterrupt there, so the workers are stopped on the way out.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
from collections import deque
from contextlib import contextmanager
from multiprocessing.connection import wait


def worker_count(workers: int | None) -> int:
    """``workers``, by default one per available CPU (at most 8); 1 where forking is unsafe."""
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = min(8, cpus or 1)
    return workers if workers >= 2 and fork_ok() else 1


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class WorkerDied(RuntimeError):
    """A report worker ended before returning its task's result."""


class Pending:
    """The results of one ``WorkerPool.map_async``, in the order of its items."""

    def __init__(self, n: int):
        self._results: list = [None] * n
        self._error: BaseException | None = None
        self._left = n
        self._done = threading.Event()
        if n == 0:
            self._done.set()

    def _set(self, i: int, ok: bool, value) -> None:
        if ok:
            self._results[i] = value
        elif self._error is None:
            self._error = value
        self._left -= 1
        if self._left == 0:
            self._done.set()

    def get(self) -> list:
        """Wait for every result; re-raise the first task's error."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._results


class WorkerPool:
    """``workers`` forked processes fed one task at a time by a dispatching thread.

    As a context manager: a normal exit lets the queued tasks finish and the workers end;
    an exit by exception (Ctrl-C, SIGTERM, an error) kills them at once."""

    def __init__(self, workers: int):
        ctx = mp.get_context("fork")
        self.processes, self._conns = [], []  # the workers (multiprocessing.Process)
        self._todo: deque = deque()
        self._lock = threading.Lock()
        self._closing = self._killed = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        # Stop signals wait while forking: a worker takes them only once it has set its
        # own handlers (_serve). One that came meanwhile is raised on unblocking, and the
        # workers started so far are killed (the daemon workers also end at exit).
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for _ in range(workers):
                ours, theirs = ctx.Pipe()
                proc = ctx.Process(target=_serve, args=(theirs, os.getpid()), daemon=True)
                proc.start()
                theirs.close()
                self.processes.append(proc)
                self._conns.append(ours)
            self._thread = threading.Thread(target=self._dispatch, daemon=True)
            self._thread.start()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        except BaseException:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            self.__exit__(*sys.exc_info())
            raise

    def map_async(self, fn, items) -> Pending:
        """Queue ``fn(item)`` for every item; the results come back through ``get()``."""
        items = list(items)
        pending = Pending(len(items))
        with self._lock:
            self._todo.extend((pending, i, fn, item) for i, item in enumerate(items))
        self._wake()
        return pending

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _dispatch(self) -> None:
        """Hand each idle worker the next task and collect what the busy ones send back.
        Only this thread touches the ``Pending`` results."""
        idle, busy = list(self._conns), {}
        while True:
            with self._lock:
                while idle and self._todo and not self._killed:
                    pending, i, fn, item = self._todo.popleft()
                    conn = idle.pop()
                    try:
                        conn.send((fn, item))
                        busy[conn] = (pending, i)
                    except (OSError, ValueError) as exc:  # a dead worker, an unpicklable task
                        pending._set(i, False, WorkerDied(f"task not sent: {exc}"))
                if self._killed or not (idle or busy):  # stopped, or every worker is gone
                    for pending, i, _, _ in self._todo:
                        pending._set(i, False, WorkerDied("the report's workers were stopped"))
                    self._todo.clear()
                if not busy and (self._closing or not idle):
                    break
            for ready in wait(list(busy) + [self._wake_r]):
                if ready == self._wake_r:
                    os.read(self._wake_r, 4096)
                    continue
                pending, i = busy.pop(ready)
                try:
                    ok, value = ready.recv()
                except (EOFError, OSError):
                    pending._set(i, False, WorkerDied("a report worker died"))
                    continue
                pending._set(i, ok, value)
                idle.append(ready)
        for conn in idle:
            try:
                conn.send(None)  # a normal end: the worker returns
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        with self._lock:
            self._closing = True
            self._killed = exc_type is not None
        if self._killed:
            for proc in self.processes:
                proc.kill()
        if self._thread is not None:
            self._wake()
            self._thread.join()
        for proc in self.processes:
            proc.join()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        for conn in self._conns:
            conn.close()
        return False


def _serve(conn, parent: int) -> None:
    """A worker's loop: run each task it is sent, send back ``(ok, result or error)``."""
    _worker_init(parent)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        fn, item = task
        try:
            out = (True, fn(item))
        except Exception as exc:  # noqa: BLE001 - re-raised in the report's process
            out = (False, exc)
        try:
            conn.send(out)
        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result or error
            conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


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
