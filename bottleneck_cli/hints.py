"""What to type instead: "did you mean" for unknown keys, group options and presets
(``difflib``), ``bncli sweep`` for a comma list given to ``train``, and ``out=``/``--name``
for Hydra's own ``hydra.*`` settings, which bncli refuses rather than fold into a name.
"""

from __future__ import annotations

import difflib
import re

from .config_groups import PRESET_GROUP
from .validation import ConfigError

LAUNCHER_PREFIXES = ("hydra/launcher", "hydra.launcher")
_OUTPUT_KEYS = ("hydra.run", "hydra.sweep", "hydra.output_subdir", "hydra.job.chdir")


def _close(word: str, choices, n: int = 3) -> list[str]:
    return difflib.get_close_matches(word, list(choices), n=n, cutoff=0.6)


def did_you_mean(word: str, choices) -> str:
    """`` (did you mean 'a' or 'b'?)`` for the choices close to ``word``; "" when none is."""
    close = _close(word, choices)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def check_hydra_overrides(overrides: list[str]) -> None:
    """Refuse ``hydra.*`` overrides in a run's config with a one-line ConfigError saying what
    bncli uses instead: they are not part of a run, so they must never land in its name."""
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if not (key == "hydra" or key.startswith(("hydra.", "hydra/"))):
            continue
        if key.startswith(_OUTPUT_KEYS):
            raise ConfigError(f"{key}: bncli does not use Hydra's output folders; give "
                              "out=DIR name=NAME (a run in DIR/NAME) or out=DIR --name NAME "
                              "(a sweep)")
        if key.startswith(LAUNCHER_PREFIXES):
            raise ConfigError(f"{key}: launchers run sweeps (bncli sweep ... {o}); bncli "
                              "train runs in this process")
        raise ConfigError(f"{key}: bncli takes no hydra.* settings besides hydra/launcher "
                          "(sweeps); extra config folders: --config-dir")


def explain(exc: BaseException, line: str) -> str:
    """``line`` (a Hydra error made one line), with what to type instead where we know it."""
    text = "\n".join(str(e) for e in _chain(exc))
    ambiguous = re.search(r"Ambiguous value for argument '([^']*)'", text)
    if ambiguous:
        arg = ambiguous.group(1)
        return (f"{arg}: a comma list is a sweep: bncli sweep {arg} (a list value: "
                "'key=[a,b]'; a string: \"key='a,b'\")")
    missing = re.search(r"Could not find '([^'/]*)/([^']*)'", text)
    if missing:
        group, option = missing.groups()
        known = re.findall(r"^\t(\S+)$", text.split("Config search path:")[0], flags=re.M)
        if group == PRESET_GROUP:
            return (f"unknown preset '{option}'{did_you_mean(option, known)}; "
                    "bncli list experiment lists the presets")
        return (f"unknown {group} option '{option}'{did_you_mean(option, known)}; choose "
                f"from {', '.join(known)}")
    key = re.search(r"Could not (?:override|delete from config)\.? '([^']*)'", text)
    if key:
        return _unknown_key(key.group(1).lstrip("+~"), line)
    return line


def _unknown_key(key: str, line: str) -> str:
    from .config_docs import all_keys

    keys = all_keys()
    if key in keys and not keys[key]:  # a key every config has: the problem is inside it
        return line
    if key in keys:  # a key of another model or task family
        return (f"unknown key '{key}' for this {key.split('.')[0]}: it is a key of "
                f"{', '.join(keys[key])}")
    return f"unknown key '{key}'{did_you_mean(key, keys)}; bncli list shows every key"


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__
