"""``bncli list``: config groups with their options, and every key with its default and
meaning, generated from the typed config (``config_docs``), in 80 columns.

Words narrow what is shown: a group (``model``, ``experiment``), a key or section
(``depth``, ``metrics``); ``group=option`` and other overrides compose the config whose
keys and defaults are shown (``bncli list task=matern``).
"""

from __future__ import annotations

import textwrap

from .config import ConfigError
from .config_groups import GROUPS, PRESET_GROUP, default_options, describe, options

WIDTH = 80
KEY_W, DEFAULT_W = 24, 10


def _wrap(first: str, text: str, indent: int) -> list[str]:
    """``first`` then ``text`` wrapped to WIDTH, continuation lines indented."""
    return textwrap.wrap(text, WIDTH, initial_indent=first, subsequent_indent=" " * indent,
                         break_long_words=False, break_on_hyphens=False) or [first.rstrip()]


def _options_lines(group: str, config_dirs, chosen: str | None) -> list[str]:
    how = "+experiment=NAME" if group == PRESET_GROUP else f"{group}=NAME"
    lines = [f"{group} ({how}):"]
    names = options(group, config_dirs)
    width = min(max(map(len, names), default=0), 24) + 4
    for name in names:
        mark = "*" if name == chosen else " "
        text = textwrap.shorten(describe(group, name, config_dirs), WIDTH - width,
                                placeholder=" ...")
        lines.append(f" {mark}{name:<{width - 2}}{text}".rstrip())
    return lines


def _value(v) -> str:
    from omegaconf import OmegaConf

    if OmegaConf.is_config(v):
        v = OmegaConf.to_container(v)
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    return repr(v) if v == "" else str(v)


def _key_rows(cfg) -> list[tuple[str, str, str]]:
    """(key, default, meaning) of every key of the composed ``cfg``."""
    from .config import Config
    from .config_docs import family_class, key_docs

    docs = {d.key: d for d in key_docs(Config)}
    for group in ("model", "task"):
        cls = family_class(group, cfg[group].get("name"))
        if cls is not None:
            docs.update({d.key: d for d in key_docs(cls, f"{group}.")})
    rows = []

    def walk(node, prefix=""):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if hasattr(v, "items") and (key in ("model", "task") or key not in docs):
                walk(v, key + ".")
            else:
                rows.append((key, _value(v), docs[key].meaning if key in docs else ""))
    walk(cfg)
    return rows


def _keys_lines(rows) -> list[str]:
    lines = [f"{'key':<{KEY_W}} {'default':<{DEFAULT_W}} meaning"]
    for key, default, meaning in rows:
        first = f"{key:<{KEY_W}} {default:<{DEFAULT_W}} "
        if len(first) > KEY_W + DEFAULT_W + 2:  # a long key or value: meaning below it
            lines.append(first.rstrip())
            first = " " * (KEY_W + DEFAULT_W + 2)
        lines += _wrap(first, meaning, KEY_W + DEFAULT_W + 2)
    return lines


def render(words: list[str], config_dirs=()) -> str:
    """The text of ``bncli list WORDS``."""
    from .config import load

    overrides = [w for w in words if "=" in w or w.startswith(("~", "+"))]
    topics = [w for w in words if w not in overrides]
    chosen = {o.split("=", 1)[0].lstrip("+"): o.split("=", 1)[1] for o in overrides
              if o.split("=", 1)[0].lstrip("+") in GROUPS}
    if not topics:
        topics = [g for g in chosen if g != PRESET_GROUP]
    cfg = load(overrides, config_dirs)
    rows = _key_rows(cfg)
    known = set(GROUPS) | {r[0] for r in rows} | {r[0].split('.')[0] for r in rows}
    for t in topics:
        if t not in known and not any(r[0].startswith(t + ".") for r in rows):
            from .hints import did_you_mean

            raise ConfigError(f"bncli list: no group or key '{t}'"
                              f"{did_you_mean(t, sorted(known))}")
    picks = {**default_options(), **chosen}
    out: list[str] = []
    groups = [g for g in GROUPS if not topics or g in topics]
    if not topics:
        out.append("Config groups (* marks the default; bncli list GROUP narrows):")
    for g in groups:
        out += _options_lines(g, config_dirs, picks.get(g)) + [""]
    if topics:
        rows = [r for r in rows if any(r[0] == t or r[0].startswith(t + ".") for t in topics)]
    if rows:
        shown = f" with {' '.join(overrides)}" if overrides else ""
        out.append(f"Keys{shown} (override: key=value):")
        out += _keys_lines(rows)
    return "\n".join(out).rstrip("\n")
