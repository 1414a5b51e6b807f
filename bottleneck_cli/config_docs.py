"""Every config key with its type, default and one-line meaning, read from the typed
config itself (``config.py``, ``families.py``).

A field's meaning is the comment on its line in the dataclass (``depth: int = 12  # L,
the number of weight matrices``), or the nearest base class's comment for an inherited
or redefaulted field: the dataclasses stay the one place keys are documented.
``bncli list`` prints these and shell completion offers the keys.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import tokenize
from dataclasses import dataclass
from functools import lru_cache
from typing import Any


@dataclass
class KeyDoc:
    key: str  # dotted, e.g. "optim.momentum"
    type: str
    default: Any
    meaning: str


@lru_cache(maxsize=None)
def _line_comments(cls) -> dict[str, str]:
    """Field name -> the comment on its line in ``cls``'s own source ({} without source)."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    found: dict[str, str] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for tok in tokenize.generate_tokens(io.StringIO("".join(lines)).readline):
        if tok.type != tokenize.COMMENT:
            continue
        code = tok.line[:tok.start[1]].strip()
        name = code.split(":", 1)[0].strip()
        if code and name in names and name not in found:
            found[name] = tok.string.lstrip("#").strip()
    return found


def meaning(cls, name: str) -> str:
    """The one-line meaning of field ``name`` of dataclass ``cls`` ("" when undocumented)."""
    for klass in cls.__mro__:
        if dataclasses.is_dataclass(klass) and name in _line_comments(klass):
            return _line_comments(klass)[name]
    return ""


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _type_name(tp) -> str:
    text = tp if isinstance(tp, str) else getattr(tp, "__name__", str(tp))
    return text.replace("typing.", "").replace("Optional[", "").rstrip("]") \
        if text.startswith("Optional[") else text


def key_docs(cls, prefix: str = "") -> list[KeyDoc]:
    """Every key of dataclass ``cls`` (nested dataclasses flattened to dotted keys)."""
    out = []
    for f in dataclasses.fields(cls):
        value = _default(f)
        if dataclasses.is_dataclass(value):
            out.extend(key_docs(type(value), f"{prefix}{f.name}."))
        else:
            out.append(KeyDoc(prefix + f.name, _type_name(f.type), value, meaning(cls, f.name)))
    return out


def _every_doc():
    """(KeyDoc, family) of every key: the config's own ('' family), then ``model.*`` and
    ``task.*`` of every model and task family (``model=cnn``)."""
    from .config import MODEL_FAMILIES, TASK_FAMILIES, Config

    for d in key_docs(Config):
        if d.key not in ("model", "task"):
            yield d, ""
    for group, families in (("model", MODEL_FAMILIES), ("task", TASK_FAMILIES)):
        for option, cls in families.items():
            for d in key_docs(cls, f"{group}."):
                yield d, f"{group}={option}"


def all_keys() -> dict[str, list[str]]:
    """Every dotted key of the config -> the families that have it ([] for keys of every
    config)."""
    keys: dict[str, list[str]] = {}
    for d, family in _every_doc():
        keys.setdefault(d.key, []).extend([family] if family else [])
    return keys


def bool_keys() -> set[str]:
    return {d.key for d, _ in _every_doc() if d.type == "bool"}


def family_class(group: str, name: str):
    """The dataclass of ``group``'s family ``name`` (the composed node's ``name``), or None."""
    from .config import MODEL_FAMILIES, TASK_FAMILIES

    return {"model": MODEL_FAMILIES, "task": TASK_FAMILIES}.get(group, {}).get(name)
