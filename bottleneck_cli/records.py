"""Metrics records of a training cohort, written in step order, possibly a little late.

While the metrics program still compiles in the background, a record is not waited for:
the parameters are copied to the host (a snapshot) and training goes on; the queued
records are evaluated, in order, once the program is ready, and always before a
checkpoint, a member's end, or the end of the run (so a checkpoint never has records
missing before its step). Records are deferred only where nothing depends on them during
training: one stage and ``train.until=steps`` (a convergence verdict stops members).
"""

from __future__ import annotations

import numpy as np

from . import tbevents


class Records:
    """``add`` a record at a step, ``flush`` the deferred ones (in order)."""

    def __init__(self, batch, latest: list, defer: bool):
        self.batch, self.latest, self.defer = batch, latest, defer
        self.pending: list[tuple] = []

    def add(self, step: int, statuses: list[str], skip=(), initial: bool = False) -> None:
        """Record ``step`` for the members running now (not ``skip``): at once, or, while
        the metrics program compiles, later from a snapshot of the parameters."""
        if self.pending and not self.batch.metrics_compiling():
            self.flush()
        if self.defer and self.batch.metrics_compiling():
            at = None if initial else self.batch.snapshot()
            self.pending.append((step, list(statuses), tuple(skip), initial, at,
                                 np.array(self.batch.elapsed)))
            return
        write_record(self.batch, step, statuses, skip, initial, self.latest)

    def flush(self) -> None:
        for step, statuses, skip, initial, at, elapsed in self.pending:
            write_record(self.batch, step, statuses, skip, initial, self.latest, at, elapsed)
        self.pending.clear()


def write_record(batch, step: int, statuses: list[str], skip=(), initial=False,
                 latest=None, at=None, elapsed=None) -> None:
    """Evaluate and append one metrics record (and spectra) per running member, with its
    convergence diagnostics (convergence.py); ``initial``: step 0's, of the initial
    parameters, at time 0; ``at``/``elapsed``: of a snapshot taken at ``step`` (a record
    deferred by ``Records``); each record also goes into ``latest[i]``."""
    elapsed = batch.elapsed if elapsed is None else elapsed
    for i, (record, arrays) in enumerate(batch.evaluate(initial, at)):
        if statuses[i] != "running" or i in skip:
            continue
        if not np.isfinite(record["loss/train"]):
            continue  # diverging: the trainer marks it at its next look at the state
        record.update(batch.trackers[i].update(step, record))
        run = batch.members[i].run
        run.write_spectra(step, arrays)
        t = 0.0 if initial else round(float(elapsed[i]), 4)
        entry = {"step": step, "time": t, **record}
        run.append_metrics([entry])
        tbevents.record(batch.members[i], entry, arrays)
        if latest is not None:
            latest[i] = record
