"""The members table (``bncli status`` and the end of ``bncli sweep``), drawn to fit the
terminal: narrow columns, member names without the parts every member shares (the
value that tells two members apart is folded onto a second line, never cut), and
paths printed whole on their own line.

Columns: ``objective`` is the training objective (fit + ridge, ``loss/train``),
``test fit`` the fit on the test set (``loss/test``), ``rank`` the bottleneck rank
estimate (``bottleneck/rank_c``, when recorded), ``ETA`` a running member's time left.
"""

from __future__ import annotations

import os
from pathlib import Path

from .naming import abbreviate, name_parts
from .status import Group, Row, read_row

_SHOWN_ROWS = 40  # a longer sweep gets its counts, and members that need a look, only
_CALM = ("finished", "pending")
_DROPPED = ("converged", "rank", "step", "test fit", "")  # in this order, when too narrow


def _num(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def duration(seconds: float | None) -> str:
    """``42s``, ``7m05s``, ``3h12m``; empty when unknown."""
    if seconds is None:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _step(row: Row) -> str:
    if row.step is None:
        return ""
    return f"{row.step}/{row.steps}" if row.steps else str(row.step)


def shown_path(path: Path) -> str:
    """``path`` relative to the working folder when inside it, else absolute."""
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else str(path)


def result_lines(path: Path, diverged_step=None) -> str:
    """What ``bncli train`` prints at the end: the run's status, then its final values."""
    row = read_row(path)
    head = f"{path}: {row.status}" + (f" at step {diverged_step}" if diverged_step is not None
                                      else "")
    values = [f"objective {_num(row.objective)}" if row.objective is not None else "",
              f"test fit {_num(row.test_fit)}" if row.test_fit is not None else "",
              f"rank {_num(row.rank, 3)}" if row.rank is not None else "",
              f"converged {row.converged}" if row.converged else ""]
    values = [v for v in values if v]
    return head + ("\n  " + ", ".join(values) if values else "")


def wrap_name(name: str, width: int) -> str:
    """``name`` broken into lines of at most ``width`` after its commas (a part longer
    than that stays whole: the table folds it)."""
    lines: list[str] = []
    for part in name_parts(name):
        if lines and len(lines[-1]) + len(part) + 2 <= width:  # room for the next comma
            lines[-1] += "," + part
        else:
            if lines:
                lines[-1] += ","
            lines.append(part)
    return "\n".join(lines)


def members_table(rows: list[Row], width: int = 80):
    """A rich Table of ``rows`` at most ``width`` wide; columns nobody has a value for
    are left out, member names lose the parts all share and wrap after a comma."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    names, _ = abbreviate([r.name for r in rows])
    cols = [("status", lambda r: r.status), ("step", _step),
            ("objective", lambda r: _num(r.objective)), ("test fit", lambda r: _num(r.test_fit)),
            ("rank", lambda r: _num(r.rank, 3)), ("converged", lambda r: r.converged),
            ("ETA", lambda r: duration(r.eta_s))]
    cells = {h: [f(r) for r in rows] for h, f in cols}
    cells = {h: v for h, v in cells.items() if any(v)}
    need = min(25, 1 + max(len(p) for n in names for p in name_parts(n)))  # part + comma
    for head in _DROPPED:  # a narrow terminal: these go before a name is folded
        room = width - sum(max(len(h), *map(len, v)) + 3 for h, v in cells.items())
        if room >= need:
            break
        cells.pop(head, None)
    room = max(8, width - sum(max(len(h), *map(len, v)) + 3 for h, v in cells.items()))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("member", overflow="fold", ratio=1, min_width=min(8, room))
    for head in cells:
        table.add_column(head, no_wrap=True, justify="left" if head == "status" else "right")
    for i, name in enumerate(names):
        table.add_row(Text(wrap_name(name, room)), *[Text(v[i]) for v in cells.values()])
    return table


def counts_line(rows: list[Row]) -> str:
    """``3 finished, 1 running of 4`` (and the longest ETA of the running ones)."""
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f" of {len(rows)}"
    etas = [r.eta_s for r in rows if r.eta_s is not None]
    return text + (f"; last one done in about {duration(max(etas))}" if etas else "")


def print_members(console, rows: list[Row], title: str) -> None:
    """The table (the members that need a look only, past ``_SHOWN_ROWS``), the shared
    name parts, the counts and what ``stale`` means."""
    shown, note = rows, ""
    if len(rows) > _SHOWN_ROWS:
        shown = [r for r in rows if r.status not in _CALM][:_SHOWN_ROWS]
        note = f"showing {len(shown)} of {len(rows)} members: those not finished or pending"
    _, common = abbreviate([r.name for r in rows])
    console.print(title, markup=False, soft_wrap=True)  # a path, never broken
    if note:
        console.print(note, markup=False)
    if shown:
        console.print(members_table(shown, console.width))
    if common:
        console.print(f"every member: {', '.join(common)}", markup=False)
    console.print(counts_line(rows))
    if any(r.status == "stale" for r in rows):
        console.print("stale: stopped while running (killed, or copied from another machine); "
                      "re-run the sweep command to resume")
    for r in [r for r in rows if r.error][:3]:
        console.print(f"{r.name}: {r.error}", markup=False)


def print_overview(console, groups: list[Group], root: Path) -> None:
    """A runs folder: one line per sweep (its members' counts) and per lone run."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    if not groups:
        console.print(f"no runs or sweeps in {shown_path(root)}", markup=False)
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("sweep or run", overflow="fold", ratio=1, min_width=12)
    table.add_column("members", overflow="fold", ratio=1)
    table.add_column("ETA", no_wrap=True, justify="right")
    for g in groups:
        etas = [r.eta_s for r in g.rows if r.eta_s is not None]
        state = counts_line(g.rows).split(";")[0] if g.sweep else g.rows[0].status
        table.add_row(Text(g.name), Text(state), duration(max(etas)) if etas else "")
    console.print(table)
    console.print(f"one sweep's members: bncli status {shown_path(root)}/<sweep>", markup=False)
