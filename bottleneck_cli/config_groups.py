"""The config groups (``model``, ``task``, ``optim``, ``experiment``) and their options,
read from the config folders' file names without Hydra or NumPy, so that ``--help`` and
shell completion stay fast. Each option's one-line description is its YAML's first
comment line (or a preset's ``description:``).
"""

from __future__ import annotations

import os
from pathlib import Path

GROUPS = ("model", "task", "optim", "experiment")
PRESET_GROUP = "experiment"  # chosen with +experiment=NAME (a _global_ package)
USER_CONFIG_ENV = "BNCLI_CONFIG_DIR"


def shipped_config_dir() -> Path:
    """The shipped Hydra config folder: the repository's top-level ``configs/``, installed
    as the package ``bottleneck_cli.configs`` (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("bottleneck_cli.configs")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).resolve()
    return Path(__file__).resolve().parents[1] / "configs"  # a source tree on sys.path


def config_dirs(extra=()) -> list[Path]:
    """The shipped folder, then ``extra`` (``--config-dir``) and $BNCLI_CONFIG_DIR's that exist."""
    env = [d for d in os.environ.get(USER_CONFIG_ENV, "").split(os.pathsep) if d]
    return [shipped_config_dir(), *(Path(d) for d in [*extra, *env] if Path(d).is_dir())]


def options(group: str, extra=()) -> list[str]:
    """The sorted option names of ``group`` over every config folder."""
    found = {p.stem for d in config_dirs(extra) for p in (d / group).glob("*.yaml")}
    return sorted(found)


def option_file(group: str, option: str, extra=()) -> Path | None:
    """The YAML file of ``group/option`` (a user folder's wins, as in Hydra's search path)."""
    for d in reversed(config_dirs(extra)):
        if (d / group / f"{option}.yaml").is_file():
            return d / group / f"{option}.yaml"
    return None


def describe(group: str, option: str, extra=()) -> str:
    """One line about ``group/option``: a preset's ``description:``, else the YAML's first
    comment line."""
    path = option_file(group, option, extra)
    if path is None:
        return ""
    comment: list[str] = []
    ended = False  # the leading comment block ended
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        text = line.strip()
        if text.startswith("description:"):
            return text.split(":", 1)[1].strip().strip("'\"")
        if text.startswith("#") and not text.startswith("# @package"):
            if not ended:
                comment.append(text.lstrip("#").strip())
        elif comment:
            ended = True
    words = " ".join(comment)
    return words.split(". ")[0].rstrip(".")  # its first sentence


def default_options() -> dict[str, str]:
    """Group -> the option the primary config picks (``configs/config.yaml``'s defaults)."""
    chosen = {}
    text = (shipped_config_dir() / "config.yaml").read_text(encoding="utf-8")
    for line in text.splitlines():
        item = line.strip().lstrip("- ").split("#")[0]
        if ":" in item and item.split(":")[0].strip() in GROUPS:
            group, option = (s.strip() for s in item.split(":", 1))
            chosen[group] = option
    return chosen


def help_text() -> str:
    """The groups and presets paragraph of ``bncli train/sweep --help``."""
    defaults = default_options()
    lines = []
    for group in GROUPS:
        names = options(group)
        if group == PRESET_GROUP:
            lines.append(f"Presets (+experiment=NAME): {', '.join(names)}.")
        else:
            marked = [f"{n} (default)" if n == defaults.get(group) else n for n in names]
            lines.append(f"{group}=: {', '.join(marked)}.")
    return "\n\n".join(lines + ["Every key with its default and meaning: bncli list."])
