"""Graceful stop: SIGINT/SIGTERM set a flag that the training loop checks between chunks.

Under submitit (``hydra/launcher=submitit_slurm`` or ``submitit_local``) the preemption
signal (SIGUSR2, or ``SIG$SUBMITIT_PREEMPT_SIGNAL``) is caught too, but only while
submitit's Python handler is installed for it: the loop checkpoints and stops as for
SIGTERM, and on leaving the context the signal is re-delivered so that submitit's
handler runs and requeues the job, which then resumes from the checkpoints.

Only the main thread can catch signals: a flag entered in another thread (a sweep's
device threads, ``devices``) follows the main thread's innermost flag.

After a stop, a further Ctrl-C is ignored while the interpreter exits: JAX's exit hooks
would otherwise print a traceback; the runs are already saved.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading


def preempt_signal() -> signal.Signals | None:
    """The signal submitit treats as preemption/timeout (as submitit reads it), or None."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2").upper()
    return getattr(signal, name if name.startswith("SIG") else "SIG" + name, None)


def _python_handler(handler) -> bool:
    """A handler installed from Python (submitit's), not a default or ignore."""
    return callable(handler) and handler is not signal.default_int_handler


_quiet_exit_registered = False


def _ignore_sigint() -> None:
    """Exit hook: ignore Ctrl-C from here on (the runs are saved; exiting is all that is left)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def quiet_exit_after_stop() -> None:
    """Register ``_ignore_sigint`` once. Exit hooks run last-registered first, so it runs
    before those that JAX registered when it was imported."""
    global _quiet_exit_registered
    if not _quiet_exit_registered:
        _quiet_exit_registered = True
        atexit.register(_ignore_sigint)


_MAIN_FLAGS: list = []  # the main thread's entered flags, innermost last


class StopFlag:
    """Set by SIGINT/SIGTERM (and a chained preemption signal); the training loop checks
    it between chunks. Leaving the context restores the previous handlers."""

    def __init__(self):
        self._signal = None
        self._outer = None  # in another thread: the main thread's flag it follows
        self.preempted = False  # the chained preemption signal arrived
        self._old = {}
        self._chained = None

    @property
    def signal(self):
        """The signal that stopped training (this flag's, or the main thread's), or None."""
        return self._signal if self._outer is None else self._outer.signal

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            self._outer = _MAIN_FLAGS[-1] if _MAIN_FLAGS else None
        else:
            _MAIN_FLAGS.append(self)
            pre = preempt_signal()
            for sig in (signal.SIGINT, signal.SIGTERM, pre):
                if sig is None or sig in self._old:
                    continue
                if sig == pre and not _python_handler(signal.getsignal(sig)):
                    continue  # no submitit: leave the preemption signal alone
                self._old[sig] = signal.signal(sig, self._handle)
            if pre in self._old and _python_handler(self._old[pre]):
                self._chained = pre
        return self

    def _handle(self, signum, frame):
        self._signal = signum
        quiet_exit_after_stop()
        if signum == self._chained:
            self.preempted = True

    def __exit__(self, *exc):
        """Restore the handlers; re-deliver a caught preemption signal to its handler
        (submitit's handler checkpoints the delayed job, requeues it and exits). If the
        handler declines with an error (e.g. timed out more than ``max_num_timeout``),
        the stop goes on as for SIGTERM, so members stay interrupted, never failed."""
        if self in _MAIN_FLAGS:
            _MAIN_FLAGS.remove(self)
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        self._old = {}
        if self.preempted:
            self.preempted = False
            try:
                signal.raise_signal(self._chained)
            except Exception as err:
                print(f"[bncli] not requeued: {err}", file=sys.stderr, flush=True)

    def __bool__(self):
        return self.signal is not None
