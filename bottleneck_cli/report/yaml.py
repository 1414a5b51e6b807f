"""Fast reading of the ``config.yaml`` files that runs write.

Parsing a thousand configs with PyYAML alone takes seconds, so the block YAML that
OmegaConf writes is parsed here line by line; anything else goes to PyYAML.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import yaml

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_KEY_LINE = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_.\-]*):(?: (.*))?$")
_ITEM_LINE = re.compile(r"^( *)- (.*)$")


class _NotSimple(Exception):
    pass


def load_config_text(text: str) -> dict:
    """config.yaml as a dict: the fast path when it applies, PyYAML otherwise."""
    try:
        return _simple_yaml(text)
    except (_NotSimple, yaml.YAMLError):
        return yaml.load(text, Loader=_YAML_LOADER)


def _scalar(text: str) -> Any:
    """One YAML value, with YAML's own rules (cached: sweeps repeat the same values)."""
    value = _cached_scalar(text)
    return type(value)(value) if isinstance(value, (list, dict)) else value  # no shared lists


@functools.lru_cache(maxsize=8192)
def _cached_scalar(text: str) -> Any:
    if text[:1] in "&*!|>%@`" or ": " in text or text.endswith(":"):
        raise _NotSimple(text)
    value = yaml.load(text, Loader=_YAML_LOADER)
    if isinstance(value, dict) and value:
        raise _NotSimple(text)
    return value


def _simple_yaml(text: str) -> dict:
    """Nested ``key: value`` mappings, ``- x`` lists of scalars and flow ``[]``/``{}``;
    _NotSimple on anything else."""
    root: dict = {}
    stack: list[list] = [[0, root]]  # [indent of the mapping's keys (None: not yet known), dict]
    pending = None  # (indent, dict, key) of a "key:" whose value follows on the next lines
    items: list | None = None
    items_indent = -1
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" in line or line.startswith(("---", "...")):
            raise _NotSimple(line)
        m = _ITEM_LINE.match(line)
        if m:
            indent = len(m.group(1))
            if pending is not None and indent >= pending[0]:
                items, items_indent = [], indent
                pending[1][pending[2]] = items
                pending = None
            if items is None or indent != items_indent or m.group(2).startswith("- "):
                raise _NotSimple(line)
            items.append(_scalar(m.group(2)))
            continue
        m = _KEY_LINE.match(line)
        if not m:
            raise _NotSimple(line)
        indent, key, value = len(m.group(1)), m.group(2), m.group(3)
        items = None
        if pending is not None:
            if indent > pending[0]:
                child: dict = {}
                pending[1][pending[2]] = child
                stack.append([None, child])
            else:
                pending[1][pending[2]] = None
            pending = None
        while stack[-1][0] is not None and indent < stack[-1][0]:
            stack.pop()
        if stack[-1][0] is None:
            stack[-1][0] = indent
        if indent != stack[-1][0]:
            raise _NotSimple(line)
        target = stack[-1][1]
        if value is None or not value.strip():
            pending = (indent, target, key)
        else:
            target[key] = _scalar(value)
    if pending is not None:
        pending[1][pending[2]] = None
    return root
