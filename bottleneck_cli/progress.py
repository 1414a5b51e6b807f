"""Progress display: a rich bar in a terminal, plain periodic log lines otherwise.

The trainer calls ``start_batch``, ``update`` and ``end_batch``; a sweep also sets the
member total with ``set_totals``. Batches training side by side in threads (CPU lanes)
each keep their own step, rate and bar; calls are serialized by a lock.
"""

from __future__ import annotations

import sys
import threading
import time
from types import SimpleNamespace


def is_terminal() -> bool:
    return sys.stdout.isatty()


class LogProgress:
    """Plain lines at most every ``every_s`` seconds (and at batch ends)."""

    def __init__(self, every_s: float = 10.0, out=None):
        self.every_s = every_s
        self.out = out or sys.stdout
        self.members_total = 0
        self.members_done = {"finished": 0, "diverged": 0}
        self._last = 0.0
        self._lock = threading.RLock()
        self._batches: dict[int, SimpleNamespace] = {}  # per thread: the batch it trains

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _batch(self) -> SimpleNamespace:
        return self._batches[threading.get_ident()]

    def set_totals(self, members: int) -> None:
        self.members_total = members

    def start_batch(self, names: list[str], start: int, steps: int) -> None:
        with self._lock:
            self._batches[threading.get_ident()] = SimpleNamespace(
                names=names, start=start, steps=steps, t0=time.perf_counter(), task=None)
            label = names[0] if len(names) == 1 else f"{len(names)} members ({names[0]}, ...)"
            how = f"resuming at step {start}" if start else "starting"
            self._print(f"[bncli] {label}: {how}, {steps} steps")

    def _rate_eta(self, step: int) -> tuple[float, float]:
        b = self._batch()
        dt = max(time.perf_counter() - b.t0, 1e-9)
        rate = (step - b.start) / dt
        eta = (b.steps - step) / rate if rate > 0 else float("nan")
        return rate, eta

    def update(self, step: int, statuses: list[str]) -> None:
        with self._lock:
            b, now = self._batch(), time.perf_counter()
            if now - self._last < self.every_s and step < b.steps:
                return
            self._last = now
            rate, eta = self._rate_eta(step)
            div = statuses.count("diverged")
            extra = f", {div} diverged" if div else ""
            who = f"{b.names[0]}: " if len(self._batches) > 1 else ""
            self._print(f"[bncli] {who}step {step}/{b.steps} ({rate:.0f} it/s, ETA {eta:.0f}s{extra})")

    def _count_done(self, statuses: list[str]) -> None:
        for s in statuses:
            if s in self.members_done:
                self.members_done[s] += 1
        self._batches.pop(threading.get_ident(), None)

    def end_batch(self, statuses: list[str]) -> None:
        with self._lock:
            self._count_done(statuses)
            counts = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
            done = sum(self.members_done.values())
            total = f" ({done}/{self.members_total} members done)" if self.members_total else ""
            self._print(f"[bncli] batch done: {counts}{total}")

    def close(self) -> None:
        pass


class RichProgress(LogProgress):
    """Live bars: steps of each batch in training, it/s, ETA; members done over the sweep."""

    def __init__(self):
        super().__init__()
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                            TimeRemainingColumn(), transient=False)
        self.bar.start()
        self.sweep_task = None

    def set_totals(self, members: int) -> None:
        super().set_totals(members)
        self.sweep_task = self.bar.add_task("members", total=members, rate="")

    def start_batch(self, names, start, steps) -> None:
        with self._lock:
            label = names[0] if len(names) == 1 else f"{len(names)} members"
            task = self.bar.add_task(label[:40], total=steps, completed=start, rate="")
            self._batches[threading.get_ident()] = SimpleNamespace(
                names=names, start=start, steps=steps, t0=time.perf_counter(), task=task)

    def update(self, step, statuses) -> None:
        with self._lock:
            rate, _ = self._rate_eta(step)
            div = statuses.count("diverged")
            text = f"{rate:.0f} it/s" + (f" {div} diverged" if div else "")
            self.bar.update(self._batch().task, completed=step, rate=text)

    def end_batch(self, statuses) -> None:
        with self._lock:
            if self.sweep_task is not None:  # a sweep: its members bar shows what is done
                self.bar.remove_task(self._batch().task)
            self._count_done(statuses)
            if self.sweep_task is not None:
                self.bar.update(self.sweep_task, completed=sum(self.members_done.values()),
                                rate=f"{self.members_done['diverged']} diverged")

    def close(self) -> None:
        self.bar.stop()


def make_progress(every_s: float = 10.0):
    return RichProgress() if is_terminal() else LogProgress(every_s)
