"""The ``gpu`` section of BENCHMARKS.md, read from the JSON that ``bench/gpu.py`` writes.

A file from the earlier ``gpu_batching.py`` (a ``cases`` list) is shown as its table.
"""

from __future__ import annotations

import json
from pathlib import Path

from results import Section, Target, md_table

BUDGET_S = 240  # gpu.py's promise: at most 4 minutes on one GPU


def _num(v):
    if not isinstance(v, float):
        return "" if v is None else v
    return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def _table(rows: list[dict]) -> tuple[list[str], list[list]]:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return keys, [[_num(row.get(k)) for k in keys] for row in rows]


def gpu_section(path: Path, shown: str) -> Section:
    """The section for the JSON at ``path`` (``shown``: its path as the text names it)."""
    sec = Section("gpu", "GPU figures",
                  f"Read from `{shown}`, written by `python bench/gpu.py` (at most 4 minutes on "
                  "one GPU; `bench/README.md`) on a machine with JAX on CUDA; not measured by "
                  "this run.")
    if not path.exists():
        sec.notes.append("not measured on a GPU in this run")
        return sec
    try:
        data = json.loads(path.read_text())
        if "cases" in data:
            _earlier(sec, data)
        else:
            _current(sec, data)
    except (OSError, ValueError, AttributeError, TypeError, KeyError) as exc:
        sec.error = f"cannot read {path.name}: {type(exc).__name__}: {exc}"[:300]
    return sec


def _current(sec: Section, data: dict) -> None:
    if data.get("command"):
        sec.commands = [str(data["command"])]
    extra = []
    if data.get("step"):
        sec.header, sec.rows = _table(data["step"])
        sec.header = [h.replace("vs eager", "vs torch eager (×)") for h in sec.header]
    b = data.get("batching")
    if b and b.get("rows"):
        extra += [f"Batching: members of (depth, width, N) = ({b['depth']}, {b['width']}, "
                  f"{b['N']}) in one vmapped program; one after another: "
                  f"{_num(b['one after another member-steps/s'])} member-steps/s. Throughput "
                  + (f"stops growing (< 10% more) after **{b['saturates at']} members**."
                     if b.get("saturates at") else "still grows at the largest count."), "",
                  md_table(*_table(b["rows"])), ""]
    f = data.get("first_step")
    if f:
        extra += [f"Time to first step (`{f.get('command', 'bncli train steps=1')}`, wall "
                  "time of the process, empty vs warm compilation cache):", "",
                  md_table(["figure", "value"], [[k, _num(v)] for k, v in f.items()
                                                 if k != "command"]), ""]
    if data.get("versions"):
        extra += [md_table(["package", "version"], [[k, v] for k, v in data["versions"].items()])]
    sec.extra = "\n".join(extra).strip()
    sec.notes.append(f"device: {data.get('device')} ×{data.get('devices', 1)} "
                     f"({data.get('backend')}), measured {data.get('date')}"
                     + (" — **--cpu-smoke run: not GPU figures**" if data.get("smoke") else ""))
    sec.notes += [str(n) for n in data.get("notes", [])]
    sec.notes += [f"skipped: {s}" for s in data.get("skipped", [])]
    if "seconds" in data:
        sec.targets.append(Target("gpu.py wall time", float(data["seconds"]), "<=", BUDGET_S,
                                  unit=" s", why_miss="the time budget (--budget-s) was raised"))


def _earlier(sec: Section, data: dict) -> None:
    sec.header, sec.rows = _table(data["cases"])
    scalars = {k: v for k, v in data.items() if not isinstance(v, (list, dict))}
    sec.notes.append("GPU figure present (from the earlier bench/gpu_batching.py): "
                     + ", ".join(f"{k} = {v}" for k, v in scalars.items()))
