"""One background thread for the durable part of per-record writes (``rundir``).

A metrics record costs the trainer the time to write it, not the time to make it durable:
an ``fsync`` takes milliseconds on a shared disk, as long as 100 SGD steps of a 20 x 20
net. So ``submit`` queues the fsync (and a spectra file's write, fsync and rename) for a
single writer thread (FIFO, so files appear in the order they were written), and
``flush`` waits for everything queued and raises the first error. ``rundir`` flushes
before every whole-file write of state (checkpoint, params, summary, status) and before
its reads: a checkpoint is only written once the records before it are on disk, as
before; only records after the last checkpoint, which resume discards, may be lost to a
kill -9.
"""

from __future__ import annotations

import atexit
import queue
import threading
from typing import Callable

_QUEUE: queue.Queue = queue.Queue()
_LOCK = threading.Lock()
_THREAD: list[threading.Thread] = []
_ERRORS: list[BaseException] = []
_PENDING: set = set()  # keys of queued jobs not yet run (coalescing repeated fsyncs)


def _work() -> None:
    while True:
        key, fn = _QUEUE.get()
        try:
            with _LOCK:
                _PENDING.discard(key)
            fn()
        except BaseException as exc:  # noqa: BLE001 - surfaced by the next flush
            _ERRORS.append(exc)
        finally:
            _QUEUE.task_done()


def submit(fn: Callable[[], None], key=None) -> None:
    """Run ``fn`` in the writer thread; a ``key`` already queued and not yet run is not
    queued again (one fsync of a file covers every append before it)."""
    with _LOCK:
        if key is not None:
            if key in _PENDING:
                return
            _PENDING.add(key)
        if not _THREAD:
            t = threading.Thread(target=_work, name="bncli-writer", daemon=True)
            t.start()
            _THREAD.append(t)
    _QUEUE.put((key, fn))


def flush() -> None:
    """Wait for every queued write; raise the first error one of them met."""
    if _THREAD:
        _QUEUE.join()
    if _ERRORS:
        exc = _ERRORS.pop(0)
        _ERRORS.clear()
        raise exc


atexit.register(lambda: _QUEUE.join() if _THREAD else None)
