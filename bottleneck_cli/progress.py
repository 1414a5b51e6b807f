"""Progress display: a rich bar in a terminal, plain periodic log lines otherwise.

The trainer calls ``start_batch``, ``update`` and ``end_batch``; a sweep also calls
``member_done`` style counters through ``set_totals``/``add_done``.
"""

from __future__ import annotations

import sys
import time


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

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def set_totals(self, members: int) -> None:
        self.members_total = members

    def start_batch(self, names: list[str], start: int, steps: int) -> None:
        self.names, self.start, self.steps = names, start, steps
        self.t0 = time.perf_counter()
        label = names[0] if len(names) == 1 else f"{len(names)} members ({names[0]}, ...)"
        how = f"resuming at step {start}" if start else "starting"
        self._print(f"[bncli] {label}: {how}, {steps} steps")

    def _rate_eta(self, step: int) -> tuple[float, float]:
        dt = max(time.perf_counter() - self.t0, 1e-9)
        rate = (step - self.start) / dt
        eta = (self.steps - step) / rate if rate > 0 else float("nan")
        return rate, eta

    def update(self, step: int, statuses: list[str]) -> None:
        now = time.perf_counter()
        if now - self._last < self.every_s and step < self.steps:
            return
        self._last = now
        rate, eta = self._rate_eta(step)
        div = statuses.count("diverged")
        extra = f", {div} diverged" if div else ""
        self._print(f"[bncli] step {step}/{self.steps} ({rate:.0f} it/s, ETA {eta:.0f}s{extra})")

    def end_batch(self, statuses: list[str]) -> None:
        for s in statuses:
            if s in self.members_done:
                self.members_done[s] += 1
        counts = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
        done = sum(self.members_done.values())
        total = f" ({done}/{self.members_total} members done)" if self.members_total else ""
        self._print(f"[bncli] batch done: {counts}{total}")

    def close(self) -> None:
        pass


class RichProgress(LogProgress):
    """A live bar: steps of the current batch, it/s, ETA; members done over the sweep."""

    def __init__(self):
        super().__init__()
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                            TimeRemainingColumn(), transient=False)
        self.bar.start()
        self.sweep_task = None
        self.task = None

    def set_totals(self, members: int) -> None:
        super().set_totals(members)
        self.sweep_task = self.bar.add_task("members", total=members, rate="")

    def start_batch(self, names, start, steps) -> None:
        self.names, self.start, self.steps = names, start, steps
        self.t0 = time.perf_counter()
        label = names[0] if len(names) == 1 else f"{len(names)} members"
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(label[:40], total=steps, completed=start, rate="")

    def update(self, step, statuses) -> None:
        rate, _ = self._rate_eta(step)
        div = statuses.count("diverged")
        text = f"{rate:.0f} it/s" + (f" {div} diverged" if div else "")
        self.bar.update(self.task, completed=step, rate=text)

    def end_batch(self, statuses) -> None:
        for s in statuses:
            if s in self.members_done:
                self.members_done[s] += 1
        if self.sweep_task is not None:
            self.bar.update(self.sweep_task, completed=sum(self.members_done.values()),
                            rate=f"{self.members_done['diverged']} diverged")

    def close(self) -> None:
        self.bar.stop()


def make_progress(every_s: float = 10.0):
    return RichProgress() if is_terminal() else LogProgress(every_s)
