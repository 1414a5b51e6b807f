"""``bench/run.py --only NAMES`` into an existing BENCHMARKS.md: only those sections (and
their Summary rows) are replaced or added; the others, measured in an earlier run, stay,
and a line under the title says which sections came from which later run."""

from __future__ import annotations

import re

_SECTION = re.compile(r"^## `([^`]+)`:", re.M)


def _split(text: str) -> tuple[str, dict[str, str]]:
    """(everything before the first benchmark section, {name: its section text})."""
    marks = list(_SECTION.finditer(text))
    if not marks:
        return text, {}
    head = text[:marks[0].start()]
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return head, {m.group(1): text[m.start():end].rstrip() + "\n" for m, end in zip(marks, ends)}


def _summary_rows(head: str) -> list[str]:
    part = head.split("## Summary", 1)[1] if "## Summary" in head else ""
    return [ln for ln in part.splitlines() if ln.startswith("| ") and not ln.startswith(
        "| benchmark |")]


def merge(old: str, new: str, names: list[str], note: str) -> str:
    """``old`` with the sections and Summary rows of ``names`` taken from ``new`` (a full
    document rendered for just those benchmarks), and ``note`` under the title."""
    old_head, old_secs = _split(old)
    new_head, new_secs = _split(new)
    name_of = lambda row: row.split("|")[1].strip()  # noqa: E731
    rows = [r for r in _summary_rows(old_head) if name_of(r) not in names]
    kept = {n: [r for r in rows if name_of(r) == n] for n in dict.fromkeys(map(name_of, rows))}
    for r in _summary_rows(new_head):
        kept.setdefault(name_of(r), []).append(r)
    order = list(old_secs) + [n for n in new_secs if n not in old_secs]
    order += [n for n in kept if n not in order]
    table = ["| benchmark | target | measured | result |", "|---|---|---|---|"]
    table += [r for n in order for r in kept.get(n, [])]
    before, _, rest = old_head.partition("## Summary")
    after = rest.split("\n## ", 1)
    lines = before.splitlines()
    lines.insert(3 if len(lines) > 3 else len(lines), note)
    head = "\n".join(lines).rstrip() + "\n\n## Summary\n\n" + "\n".join(table) + "\n\n"
    if len(after) > 1:
        head += "## " + after[1]
    secs = [new_secs.get(n) or old_secs[n] for n in order if n in new_secs or n in old_secs]
    return head + "\n".join(secs)
