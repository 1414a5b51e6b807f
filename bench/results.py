"""What a benchmark returns (a ``Section`` with ``Target``s) and how BENCHMARKS.md is written."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import sys
from dataclasses import dataclass, field
from importlib import metadata

UNEXPLAINED = "not measured apart in this benchmark; the table above has what was measured"


@dataclass
class Target:
    """One pass/fail criterion: ``value`` compared with ``threshold`` by ``op``."""

    name: str
    value: float | None  # None: not measured (e.g. the size was left out with --quick)
    op: str  # ">=", "<=", "<"
    threshold: float
    unit: str = "×"
    why_miss: str = UNEXPLAINED  # one honest line, shown only on a MISS

    @property
    def status(self) -> str:
        if self.value is None:
            return "n/a"
        ok = {">=": self.value >= self.threshold, "<=": self.value <= self.threshold,
              "<": self.value < self.threshold}[self.op]
        return "PASS" if ok else "MISS"

    def fmt(self, v: float | None) -> str:
        if v is None:
            return "n/a"
        return f"{v:.3g}{self.unit}" if self.unit != " s" else f"{v:.3g} s"


@dataclass
class Section:
    name: str
    title: str
    what: str
    header: list[str] = field(default_factory=list)
    rows: list[list] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    extra: str = ""  # more markdown (e.g. a second table), shown after the main table
    error: str | None = None  # the benchmark itself failed: one line
    seconds: float = 0.0


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


# ---- machine and versions ---------------------------------------------------
def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cores() -> str:
    avail = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{avail} usable ({os.cpu_count()} online)"


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("jax", "jaxlib", "flax", "optax", "torch", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# ---- the document -------------------------------------------------------------
def render(sections: list[Section], argv: list[str], quick: bool, load_start: str,
           env_note: str, total_s: float) -> str:
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    out = ["# Benchmarks", "",
           f"Generated {now} by `{' '.join(argv)}` in {total_s:.0f} s"
           + (" — **`--quick` smoke run: tiny sizes, numbers are not meaningful**." if quick
              else "."),
           "Regenerate with `make bench` (= `.venv/bin/python bench/run.py --out BENCHMARKS.md`); "
           "see `bench/README.md`. Targets are ratios measured side by side in this one run; "
           "each figure is the median of several interleaved repeats. In commands, `$TMP` "
           "is the benchmark's temporary folder (deleted at the end).", "",
           "## Machine", "",
           f"- CPU: {cpu_model()}, {cores()} cores",
           f"- OS: {platform.platform()}",
           f"- load average (1/5/15 min) at start: {load_start}; at end: {load_average()} "
           "(the machine is shared; other jobs run beside the benchmark)",
           f"- environment: {env_note}", "",
           "## Versions", "",
           md_table(["package", "version"], [[k, v] for k, v in versions().items()]), "",
           "## Summary", ""]
    rows = []
    for s in sections:
        if s.error:
            rows.append([s.name, "(benchmark failed)", "", "ERROR"])
        for t in s.targets:
            rows.append([s.name, f"{t.name} {t.op} {t.fmt(t.threshold)}", t.fmt(t.value),
                         t.status])
    out += [md_table(["benchmark", "target", "measured", "result"], rows), ""]
    for s in sections:
        out += [f"## `{s.name}`: {s.title}", "", s.what, ""]
        if s.commands:
            out += ["Commands:", "", "```"] + s.commands + ["```", ""]
        if s.error:
            out += [f"**Benchmark failed:** `{s.error}`", ""]
        if s.header and s.rows:
            out += [md_table(s.header, s.rows), ""]
        if s.extra:
            out += [s.extra, ""]
        for t in s.targets:
            line = f"- **{t.status}** {t.name}: {t.fmt(t.value)} (target {t.op} {t.fmt(t.threshold)})"
            if t.status == "MISS":
                line += f"  \n  Why: {t.why_miss}"
            out.append(line)
        if s.targets:
            out.append("")
        out += [f"- {n}" for n in s.notes]
        out += ["", f"_({s.seconds:.0f} s)_", ""]
    return "\n".join(out).rstrip() + "\n"


def python_cmd() -> str:
    return os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd()) else sys.executable
