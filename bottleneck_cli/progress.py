"""Progress display: a rich bar in a terminal, plain periodic log lines otherwise.

The trainer calls ``start_batch``, ``update`` (with each member's latest metrics
record) and ``end_batch``; a sweep also sets the member total with ``set_totals`` and
the members' names with ``set_names`` (labels drop the parts every member shares).
Batches training side by side in threads (CPU lanes) each keep their own step, rate
and bar; calls are serialized by a lock. Every line names its member and shows the
objective (``loss/train``), the test fit (``loss/test``) and the bottleneck rank
(``bottleneck/rank_c``) when recorded. The rate and ETA count only the steps after
the first update, so compilation does not inflate the ETA. Lines fit the terminal:
the least needed parts are dropped first, a member's name never.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from types import SimpleNamespace

from .naming import abbreviate

# (key, label, digits), in the order dropped last to first when a line is too long.
VALUES = (("loss/train", "objective", 4), ("loss/test", "test fit", 4),
          ("bottleneck/rank_c", "rank", 3))


def is_terminal() -> bool:
    return sys.stdout.isatty()


def width() -> int:
    return shutil.get_terminal_size((80, 24)).columns


def fit(parts: list[tuple[int, str]], limit: int, sep: str = ", ") -> str:
    """The texts of ``(rank, text)`` parts joined by ``sep`` in their order, leaving out
    the highest-ranked first (rank 0: never) until the line is at most ``limit`` long."""
    parts = [p for p in parts if p[1]]
    while len(sep.join(t for _, t in parts)) > limit and any(r for r, _ in parts):
        parts.remove(max(parts, key=lambda p: p[0]))
    return sep.join(t for _, t in parts)


def _value(records: list, key: str, digits: int) -> str:
    vals = [r[key] for r in records if r and isinstance(r.get(key), (int, float))]
    if not vals:
        return ""
    lo, hi = min(vals), max(vals)
    return f"{lo:.{digits}g}" if lo == hi else f"{lo:.{digits}g}..{hi:.{digits}g}"


def value_parts(records: list, first: int = 1) -> list[tuple[int, str]]:
    """``[(1, "objective 0.0123"), (3, "test fit 0.0456"), (4, "rank 2")]`` for the
    members' latest records (a range over a batch of several); ranks for ``fit``, from
    ``first`` on (the ETA ranks 2)."""
    ranks = (first, first + 2, first + 3)
    return [(r, f"{label} {v}") for r, (key, label, d) in zip(ranks, VALUES)
            if (v := _value(records or [], key, d))]


def _eta(seconds: float | None) -> str:
    from .status_table import duration

    return f"ETA {duration(seconds)}" if seconds is not None else ""


class LogProgress:
    """Plain lines at most every ``every_s`` seconds (and at batch ends)."""

    def __init__(self, every_s: float = 10.0, out=None):
        self.every_s = every_s
        self.out = out or sys.stdout
        self.members_total = 0
        self.members_done = {"finished": 0, "diverged": 0}
        self.labels: dict[str, str] = {}
        self._last = 0.0
        self._lock = threading.RLock()
        self._batches: dict[int, SimpleNamespace] = {}  # per thread: the batch it trains

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def _batch(self) -> SimpleNamespace:
        return self._batches[threading.get_ident()]

    def set_totals(self, members: int) -> None:
        self.members_total = members

    def set_names(self, names: list[str]) -> None:
        """All members' names: labels show only what tells them apart."""
        self.labels = dict(zip(names, abbreviate(list(names))[0]))

    def label(self, names: list[str]) -> str:
        first = self.labels.get(names[0], names[0])
        return first if len(names) == 1 else f"{len(names)} members ({first}, ...)"

    def start_batch(self, names: list[str], start: int, steps: int) -> None:
        with self._lock:
            self._batches[threading.get_ident()] = SimpleNamespace(
                names=names, label=self.label(names), start=start, steps=steps,
                ref=None, task=None)
            how = f"resuming at step {start}" if start else "starting"
            self._print(f"[bncli] {self._batch().label}: {how}, {steps} steps")

    def _rate_eta(self, step: int) -> tuple[float | None, float | None]:
        """Steps per second and seconds left, from the first update on (None before)."""
        b, now = self._batch(), time.perf_counter()
        if step >= b.steps and b.ref is None:
            return None, None
        if b.ref is None or step <= b.ref[0]:
            if b.ref is None:
                b.ref = (step, now)
            return None, None
        rate = (step - b.ref[0]) / max(now - b.ref[1], 1e-9)
        return rate, (b.steps - step) / rate

    def update(self, step: int, statuses: list[str], records: list | None = None) -> None:
        with self._lock:
            b = self._batch()
            rate, eta = self._rate_eta(step)
            now = time.monotonic()
            if now - self._last < self.every_s and step < b.steps:
                return
            self._last = now
            div = statuses.count("diverged")
            who = f"{b.label}: " if self.labels or len(self._batches) > 1 else ""  # sweeps
            parts = [(0, f"[bncli] {who}step {step}/{b.steps}"), (0, f"{div} diverged"
                     if div else ""), *value_parts(records), (2, _eta(eta)),
                     (5, f"{rate:.0f} it/s" if rate else "")]
            self._print(fit(parts, width()))

    def _count_done(self, statuses: list[str]) -> None:
        for s in statuses:
            if s in self.members_done:
                self.members_done[s] += 1
        self._batches.pop(threading.get_ident(), None)

    def end_batch(self, statuses: list[str]) -> None:
        with self._lock:
            label = self._batch().label
            self._count_done(statuses)
            counts = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
            done = sum(self.members_done.values())
            total = f" ({done}/{self.members_total} members done)" if self.members_total else ""
            self._print(f"[bncli] {label}: {counts}{total}")

    def close(self) -> None:
        pass


class RichProgress(LogProgress):
    """Live bars: each batch's steps, objective, test fit and ETA; members done over a
    sweep. The bar takes the width the texts leave."""

    def __init__(self):
        super().__init__()
        from rich.progress import BarColumn, Progress, TextColumn
        from rich.table import Column

        self.bar = Progress(TextColumn("{task.description}", table_column=Column(no_wrap=True)),
                            BarColumn(bar_width=None, table_column=Column(ratio=1)),
                            TextColumn("{task.fields[info]}", table_column=Column(no_wrap=True)),
                            transient=False, expand=True)
        self.bar.start()
        self.sweep_task = None

    def _fits(self, head: str, parts: list[tuple[int, str]]) -> str:
        """The info text: as many of ``parts`` as leave the bar 10 columns."""
        return fit(parts, max(0, width() - len(head) - 13), "  ")

    def set_totals(self, members: int) -> None:
        super().set_totals(members)
        self.sweep_task = self.bar.add_task("members", total=members, info=f"0/{members}")

    def start_batch(self, names, start, steps) -> None:
        with self._lock:
            label = self.label(names)
            cap = max(20, width() - 50)  # a wide terminal shows long names whole
            label = label if len(label) <= cap else label[:cap - 1] + "…"
            task = self.bar.add_task(label, total=steps, completed=start,
                                     info=f"{start}/{steps}")
            self._batches[threading.get_ident()] = SimpleNamespace(
                names=names, label=label, start=start, steps=steps, ref=None, task=task)

    def update(self, step, statuses, records=None) -> None:
        with self._lock:
            b = self._batch()
            _, eta = self._rate_eta(step)
            div = statuses.count("diverged")
            parts = [(0, f"{step}/{b.steps}"), (0, f"{div} diverged" if div else ""),
                     (2, _eta(eta)), *value_parts(records)]
            self.bar.update(b.task, completed=step, info=self._fits(b.label, parts))

    def end_batch(self, statuses) -> None:
        with self._lock:
            if self.sweep_task is not None:  # a sweep: its members bar shows what is done
                self.bar.remove_task(self._batch().task)
            self._count_done(statuses)
            if self.sweep_task is not None:
                done = sum(self.members_done.values())
                div = self.members_done["diverged"]
                self.bar.update(self.sweep_task, completed=done, info=f"{done}/"
                                f"{self.members_total}" + (f"  {div} diverged" if div else ""))

    def close(self) -> None:
        self.bar.stop()


def make_progress(every_s: float = 10.0):
    return RichProgress() if is_terminal() else LogProgress(every_s)
