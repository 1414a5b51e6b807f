"""When a run's first training step completed, for the start-up benchmark.

With ``BNCLI_FIRST_STEP_FILE`` set, the trainer writes the wall-clock time (``time.time()``)
at which the first chunk of the process finished into that file, once per process; unset
(every ordinary run), nothing happens.
"""

from __future__ import annotations

import os
import threading
import time

_DONE = threading.Event()


def first_step_done() -> None:
    """Record the first completed step's time once, if ``BNCLI_FIRST_STEP_FILE`` asks."""
    path = os.environ.get("BNCLI_FIRST_STEP_FILE")
    if not path or _DONE.is_set():
        return
    _DONE.set()
    with open(path, "w") as f:
        f.write(f"{time.time():.6f}\n")
