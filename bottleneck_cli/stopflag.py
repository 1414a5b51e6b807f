"""Graceful stop: SIGINT/SIGTERM set a flag that the training loop checks between chunks."""

from __future__ import annotations

import signal
import threading


class StopFlag:
    """Set by SIGINT/SIGTERM; the training loop checks it between chunks."""

    def __init__(self):
        self.signal = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signal = signum

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)

    def __bool__(self):
        return self.signal is not None
