"""Shell completion of override words (Typer's ``autocompletion`` callback on the
overrides argument): ``model=<option>``, ``+experiment=<preset>``, ``depth=`` and every
other key, and the values of keys with a fixed set of choices (``dtype=float64``).

zsh and fish pass the whole word (``model=ml``); bash splits words at ``=``, so there the
callback sees ``ml`` after ``model`` and ``=`` and answers with bare values.
"""

from __future__ import annotations

import os

from .config_groups import GROUPS, PRESET_GROUP, options


def _group_words() -> list[str]:
    return [f"+{g}=" if g == PRESET_GROUP else f"{g}=" for g in GROUPS]


def values(key: str) -> list[str]:
    """The values completion offers after ``key=``: a group's options, a choice's values,
    true/false for booleans; [] where any value goes."""
    from .config_docs import bool_keys
    from .validation import CHOICES

    key = key.lstrip("+~")
    if key in GROUPS:
        return options(key)
    if key in CHOICES:
        return list(CHOICES[key])
    return ["true", "false"] if key in bool_keys() else []


def candidates(incomplete: str, before: list[str] | tuple = ()) -> list[str]:
    """Completions of the override word ``incomplete``; ``before`` are the words before it
    (bash's ``key``, ``=`` split)."""
    from .config_docs import all_keys

    before = list(before)
    if incomplete == "=" and before:  # bash: the cursor right after key=
        return values(before[-1])
    if len(before) >= 2 and before[-1] == "=":  # bash: key = partial
        return [v for v in values(before[-2]) if v.startswith(incomplete)]
    if "=" in incomplete:
        key, part = incomplete.split("=", 1)
        return [f"{key}={v}" for v in values(key) if v.startswith(part)]
    words = _group_words() + [f"{k}=" for k in all_keys()]
    return [w for w in words if w.startswith(incomplete)]


SHELLS = ("bash", "zsh", "fish")


def script(shell: str) -> str:
    """The completion script of ``bncli`` for ``shell`` (Typer's own script text)."""
    from typer._completion_shared import get_completion_script

    from .validation import ConfigError

    if shell not in SHELLS:
        raise ConfigError(f"no completion for shell {shell!r}; choose from {', '.join(SHELLS)}")
    return get_completion_script(prog_name="bncli", complete_var="_BNCLI_COMPLETE", shell=shell)


def complete_override(ctx, incomplete: str) -> list[str]:
    """Typer's autocompletion callback for the overrides argument."""
    words = os.environ.get("COMP_WORDS", "").split()  # bash only
    cword = int(os.environ.get("COMP_CWORD", "0") or 0)
    before = words[1:cword] if words and cword else []
    return candidates(incomplete, before)
