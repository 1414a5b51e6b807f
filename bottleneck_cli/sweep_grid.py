"""The sweep grid: Hydra's override grammar expanded into members, and each member's config.

Expansion is Hydra's own (``hydra_grid``), so ``a=1,2``, ``range(...)``, ``choice(...)``,
``glob(...)`` and ``tag`` mean what they mean in ``--multirun``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

from .config import PROGRAM_FREE, ConfigError, load
from .hydra_grid import expand, parse  # noqa: F401 (expand re-exported for sweep.py)
from .runs import _key

# Keys that keep the compiled program: members differing only here train together.
BATCHABLE = PROGRAM_FREE


@dataclass
class PlannedMember:
    name: str
    overrides: list[str]
    cfg: object = None
    group: int = 0
    status: str = "missing"


def swept_keys(overrides: list[str], config_dirs=()) -> set[str]:
    """Keys the grid sweeps over, as ``_key`` spells them (``+model.gate`` -> ``model.gate``)."""
    return {o.get_key_element().lstrip("+~") for o in parse(overrides, config_dirs)
            if o.is_sweep_override()}


def member_config(overrides: list[str], name: str, root: Path, config_dirs=(), cache=None):
    """A member's validated config, placed at ``root/name``.

    Composing with Hydra costs ~0.3 s, so with a ``cache`` dict, members that differ only
    in plain scalar overrides of ``BATCHABLE`` keys share one composition and get those
    values assigned (OmegaConf still type-checks them; ``validate`` checks ranges)."""
    from omegaconf import OmegaConf

    from .config import validate

    if cache is None:
        cfg = load(overrides, config_dirs)
    else:
        scalar = [o for o in overrides if "=" in o and o[0] not in "+~" and _key(o) in BATCHABLE]
        rest = tuple(o for o in overrides if o not in scalar)
        if rest not in cache:
            cache[rest] = load(list(rest), config_dirs)
        cfg = copy.deepcopy(cache[rest])  # keeps the typed schema of the composed config
        for o in scalar:
            key, text = o.split("=", 1)
            try:
                OmegaConf.update(cfg, key, _parse_value(o), merge=False)
            except Exception as exc:
                raise ConfigError(f"{key}={text}: {exc}".splitlines()[0]) from None
        validate(cfg)
    cfg.name, cfg.out = name, str(root).replace("${", "\\${")  # a path, not interpolation
    return cfg


def _parse_value(override: str):
    """The typed value of ``key=value`` as Hydra's grammar reads it (1e-3 -> 0.001)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).value()
