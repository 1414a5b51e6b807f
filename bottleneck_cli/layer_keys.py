"""Layer keys: ``W03``, ``Z12``, ``rank_c/Z03``, ``W100`` (1-based, two digits at least),
named and parsed in one place (``rundir`` re-exports them)."""

from __future__ import annotations

import re
from typing import Iterable

_LAYER_KEY = re.compile(r"^(.*[A-Za-z])(\d+)$")  # "rank_c/Z03" -> ("rank_c/Z", "03")


def layer_name(prefix: str, index: int) -> str:
    """``W03``, ``Z12``, ``W100``: 1-based layer index, two digits at least."""
    return f"{prefix}{index:02d}"


def split_layer_key(key: str) -> tuple[str, int] | None:
    """``("rank_c/Z", 3)`` for ``"rank_c/Z03"``, ``("W", 100)`` for ``"W100"``; None for a
    key that names no layer. The one parser of layer keys: compare layers by this number,
    never by the key's text (``W100`` sorts before ``W11`` as text)."""
    m = _LAYER_KEY.match(key)
    return (m.group(1), int(m.group(2))) if m else None


def layer_index(key: str) -> int:
    """The 1-based layer number of a layer key: ``W100`` -> 100, ``rank_c/Z03`` -> 3."""
    parts = split_layer_key(key)
    if parts is None:
        raise ValueError(f"{key!r} is not a layer key")
    return parts[1]


def sorted_layers(keys: Iterable[str]) -> list[str]:
    """Layer keys in layer order (by prefix, then layer number): W01, W02, ..., W99, W100."""
    return sorted(keys, key=lambda k: (split_layer_key(k) or (k, -1)))
