"""Hydra's sweep grammar expanded into a grid: the one place bncli calls Hydra's internals
for sweeps.

Hydra 1.3 has no public API for expanding sweep overrides: the override parser is public
(``hydra.core.override_parser``), but the product over the parsed sweeps is
``BasicSweeper.split_arguments`` and the config loader that ``glob(...)`` needs to list a
group's options is ``ConfigLoaderImpl``, both in ``hydra._internal``. Calling them keeps
``a=1,2``, ``range(...)``, ``choice(...)``, ``glob(...)`` and ``tag(...)`` meaning exactly
what they mean in ``--multirun`` (tests/test_hydra_habits.py compares the two); a Hydra
upgrade that moves them breaks here only.
"""

from __future__ import annotations

from .config import CONFIG_DIR, ConfigError


def config_loader(config_dirs=()):
    """Hydra's config loader over the shipped configs and the user's config folders."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path

    from .config import register_schema, user_config_dirs

    register_schema()
    search = create_config_search_path(str(CONFIG_DIR))
    for d in user_config_dirs(config_dirs):
        search.append("user", f"file://{d}")
    return ConfigLoaderImpl(config_search_path=search)


def parse(overrides: list[str], config_dirs=()):
    """Parse overrides with Hydra's grammar; one-line ConfigError when malformed."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        return OverridesParser.create(config_loader=config_loader(config_dirs)) \
            .parse_overrides(list(overrides))
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise ConfigError(f"malformed override: {text[0] if text else exc}") from None


def expand(overrides: list[str], config_dirs=()) -> list[list[str]]:
    """The members of a grid, exactly as Hydra's basic sweeper enumerates them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parsed = parse(overrides, config_dirs)
    try:
        return BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]
    except Exception as exc:
        raise ConfigError(
            f"{exc}; bncli's grid supports comma lists, range(), choice(), glob() and tag()"
        ) from None
