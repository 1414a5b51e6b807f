"""Metrics records of a training cohort, written in step order, possibly a little late.

A record is not waited for where nothing depends on it during training (one stage and
``train.until=steps``; a convergence verdict stops members). Its metrics program is
dispatched and training goes on: the host part (singular values, summaries, writing) is
done by ``catch_up`` once the next chunk is dispatched, so that it overlaps the training.
While the metrics program still compiles in the background, the parameters are copied
to the host (a snapshot) instead, and evaluated once the program is ready. Queued records
are always written, in order, before a checkpoint, a member's end, or the end of the run
(so a checkpoint never has records missing before its step).
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
        """Record ``step`` for the members running now (not ``skip``): at once, or queued
        (its program dispatched, or, while that compiles, a snapshot of the parameters)."""
        self.catch_up()
        if not self.defer:
            write_record(self.batch, step, statuses, skip, initial, self.latest)
            return
        at = packed = None
        if self.batch.metrics_compiling():
            at = None if initial else self.batch.snapshot()
        else:
            packed = self.batch.dispatch_evaluation(initial)
        self.pending.append((step, list(statuses), tuple(skip), initial, at, packed,
                             np.array(self.batch.elapsed)))

    def catch_up(self) -> None:
        """Write the queued records if the metrics program is ready."""
        if self.pending and not self.batch.metrics_compiling():
            self.flush()

    def flush(self) -> None:
        for step, statuses, skip, initial, at, packed, elapsed in self.pending:
            write_record(self.batch, step, statuses, skip, initial, self.latest, at, elapsed,
                         packed=packed)
        self.pending.clear()


def write_record(batch, step: int, statuses: list[str], skip=(), initial=False,
                 latest=None, at=None, elapsed=None, packed=None) -> None:
    """Evaluate and append one metrics record (and spectra) per running member, with its
    convergence diagnostics (convergence.py); ``initial``: step 0's, of the initial
    parameters, at time 0; ``at``/``elapsed``: of a snapshot taken at ``step``, ``packed``:
    of a metrics program dispatched at ``step`` (records queued by ``Records``); each
    record also goes into ``latest[i]``."""
    elapsed = batch.elapsed if elapsed is None else elapsed
    results = batch.finish_evaluation(packed) if packed is not None else \
        batch.evaluate(initial, at)
    for i, (record, arrays) in enumerate(results):
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
