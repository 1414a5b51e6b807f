"""Names people read: a sweep's default folder name, and member names abbreviated for
tables and progress lines.

A sweep's default name lists what it sweeps (``depth=2+4+8_lam=0.001+0.01``) and the
other overrides while the name stays short. Keys that only place or record a run
(``config.BOOKKEEPING_KEYS``: ``out``, ``metrics.*``, ``hydra.*``, ...) are never shown;
when something is left out (one of those keys, or text past ``NAME_MAX`` characters)
an 8-digit hash of every override that shapes the sweep ends the name, so two
different sweeps never share a folder. Sweeps named by an earlier bncli
(``legacy_sweep_name``) are found again by ``sweep.plan``.

Member names (``k=v,k=v``, from ``runs.run_name``) are abbreviated by dropping the
``k=v`` parts every member shares (``abbreviate``); the value that tells two members
apart is never cut.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from .config import BOOKKEEPING_KEYS

NAME_MAX = 56  # a default sweep name, so that "  bncli report runs/<sweep>" fits 80 columns
_VALUES_MAX = 24  # swept values longer than this are named by their key alone
_PLACEMENT = ("out", "name", "hydra")  # say where a sweep goes, never what it is
# "," before the next "key=" (a value may hold commas, e.g. a list).
_PART = re.compile(r",(?=[A-Za-z_][\w.]*=)")


def _under(key: str, prefixes) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def _shown(override: str) -> str:
    """``depth=2,4`` -> ``depth=2+4``; a preset by its own name."""
    from .runs import _key

    if _key(override) == "experiment":
        return override.split("=", 1)[1].split("/")[-1]
    return override.lstrip("+").replace(",", "+")


def _hash(overrides: list[str]) -> str:
    from .runs import _key

    text = "\n".join(sorted(o for o in overrides if not _under(_key(o), _PLACEMENT)))
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def sweep_name(overrides: list[str], axes=()) -> str:
    """The default sweep folder name for ``overrides`` (``axes``: the swept keys, shown
    first), at most ``NAME_MAX`` characters."""
    from .runs import _key, run_name  # imports the trainer: only where a sweep is planned

    named = [o for o in overrides if not _under(_key(o), BOOKKEEPING_KEYS)]
    swept = [o for o in named if _key(o) in axes]
    rest = [o for o in named if _key(o) not in axes]
    full = run_name(["_".join(_shown(o) for o in named)] if named else [], default="sweep")
    hidden = len(named) < len([o for o in overrides if not _under(_key(o), _PLACEMENT)])
    if not hidden and len(full) <= NAME_MAX:
        return full
    parts = [_shown(o) if len(_shown(o)) <= len(_key(o)) + 1 + _VALUES_MAX else _key(o)
             for o in swept] + [_shown(o) for o in rest]
    tag = _hash(overrides)
    kept: list[str] = []
    for part in parts:
        if len(run_name(["_".join(kept + [part])])) + 1 + len(tag) > NAME_MAX:
            break
        kept.append(part)
    return run_name(["_".join(kept + [tag])])


def legacy_sweep_name(overrides: list[str]) -> str:
    """The default name bncli gave a sweep before ``sweep_name`` (every override,
    ``out=`` included; cut at 100 characters plus a hash)."""
    from .runs import _key, run_name

    parts = [o.split("=", 1)[1] if _key(o) == "experiment" else o.lstrip("+").replace(",", "+")
             for o in overrides]
    return run_name(["_".join(parts)] if parts else [], default="sweep")


def default_sweep_name(parent: Path, overrides: list[str], axes=()) -> str:
    """``sweep_name``, or the name an earlier bncli gave the same command where that
    sweep folder is in ``parent`` (and none of the new name), so re-running resumes it."""
    new, old = sweep_name(overrides, axes), legacy_sweep_name(overrides)
    if old != new and not (parent / new).exists() and (parent / old / "sweep.json").is_file():
        return old
    return new


def name_parts(name: str) -> list[str]:
    """``depth=8,lam=0.001`` -> ``["depth=8", "lam=0.001"]`` (a value's own commas stay)."""
    return _PART.split(name)


def abbreviate(names: list[str]) -> tuple[list[str], list[str]]:
    """Each name without the ``k=v`` parts all names share, and those shared parts.
    A name left with nothing keeps its full text."""
    split = [name_parts(n) for n in names]
    if len(split) < 2:
        return list(names), []
    common = [p for p in split[0] if all(p in s for s in split[1:])]
    short = [",".join(p for p in s if p not in common) or n for s, n in zip(split, names)]
    return short, common
