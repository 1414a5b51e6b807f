"""Hydra's ``--cfg`` and ``--info`` for ``bncli train`` and ``bncli sweep``: print the
composed config, or where it came from, and write nothing.

``--cfg job`` prints the config a run would record (resolved and validated: bad input is
the usual one-line error); for a sweep, the config its members share, headed by the swept
axes (``--dry-run`` lists the members). ``--cfg hydra`` prints Hydra's own node: bncli
uses only its ``launcher`` (folders are ``out=``, ``name=``, ``--name``).
"""

from __future__ import annotations

from .config import ConfigError

CFG_PARTS = ("job", "hydra", "all")
INFO_TOPICS = ("all", "config", "defaults", "searchpath")


def split_info(info: bool, overrides: list[str]) -> tuple[str | None, list[str]]:
    """``--info``'s topic (a bare word among the overrides, as in ``--info searchpath``;
    default ``all``) and the remaining overrides."""
    if not info:
        return None, overrides
    topics = [o for o in overrides if o in INFO_TOPICS]
    return (topics[0] if topics else "all"), [o for o in overrides if o not in topics]


def _launcher_split(overrides: list[str]) -> tuple[list[str], list[str]]:
    from .hints import LAUNCHER_PREFIXES

    launcher = [o for o in overrides if o.lstrip("+").startswith(LAUNCHER_PREFIXES)]
    return launcher, [o for o in overrides if o not in launcher]


def _job_yaml(command: str, overrides: list[str], config_dirs) -> str:
    from omegaconf import OmegaConf

    from .config import load

    head = ""
    if command == "sweep":
        from .sweep_grid import swept_keys

        axes = swept_keys(overrides, config_dirs)
        swept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") in axes]
        overrides = [o for o in overrides if o not in swept]
        head = ("# the config every member shares; each member sets one value of: "
                f"{' '.join(swept) or '(no axes)'}\n# (plus sweep.grid's axes); bncli sweep "
                "... --dry-run lists the members\n")
    return head + OmegaConf.to_yaml(load(overrides, config_dirs))


def _hydra_yaml(launcher: list[str], config_dirs) -> str:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from .config import CONFIG_DIR, register_schema, search_path_overrides
    from .hints import explain

    register_schema()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("config", overrides=launcher + search_path_overrides(list(config_dirs)),
                          return_hydra_config=True)
    except Exception as exc:  # noqa: BLE001 - Hydra's composition errors are bad input
        raise ConfigError(explain(exc, str(exc).strip().splitlines()[0])) from None
    finally:
        GlobalHydra.instance().clear()
    return ("# Hydra's node: bncli uses hydra.launcher (sweeps) only; folders are out=, "
            "name= and --name\n" + OmegaConf.to_yaml({"hydra": cfg.hydra}))


def show_cfg(command: str, part: str, overrides: list[str], config_dirs=()) -> str:
    """The text of ``--cfg PART``: the job config, Hydra's node, or both."""
    if part not in CFG_PARTS:
        raise ConfigError(f"--cfg {part!r}: choose from {', '.join(CFG_PARTS)}")
    launcher, rest = _launcher_split(overrides)
    if launcher and command != "sweep":
        from .hints import check_hydra_overrides

        check_hydra_overrides(launcher)  # refused with the reason
    texts = []
    if part in ("job", "all"):
        texts.append(_job_yaml(command, rest, config_dirs))
    if part in ("hydra", "all"):
        if command == "sweep" and launcher:
            from pathlib import Path

            from .launch import check_launcher

            check_launcher(launcher, Path("sweep.json"))  # composes it; writes nothing
        texts.append(_hydra_yaml(launcher, config_dirs))
    return "".join(texts).rstrip("\n")


def show_info(command: str, topic: str, overrides: list[str], config_dirs=()) -> str:
    """The text of ``--info [TOPIC]``: search path, defaults list, groups and the config."""
    from hydra.types import RunMode

    from .config_groups import GROUPS, options
    from .hydra_grid import config_loader

    launcher, rest = _launcher_split(overrides)
    if command == "sweep":
        from .sweep_grid import swept_keys

        axes = swept_keys(rest, config_dirs)
        rest = [o for o in rest if o.split("=", 1)[0].lstrip("+~") not in axes]
    loader = config_loader(config_dirs)
    out = []
    if topic in ("all", "searchpath"):
        out.append("Config search path (later entries win):")
        out += [f"  {s.provider:<8} {s.full_path()}" for s in loader.get_sources()]
    if topic in ("all", "defaults"):
        try:
            found = loader.compute_defaults_list("config", rest + launcher, RunMode.RUN)
        except Exception as exc:  # noqa: BLE001 - an unknown option, as when composing
            from .hints import explain

            raise ConfigError(explain(exc, str(exc).strip().splitlines()[0])) from None
        out.append("Defaults list (composed in this order; package: where it lands):")
        out += [f"  {d.config_path or '(self)':<34} {d.package or '<root>'}"
                for d in found.defaults if not (d.config_path or "").startswith("hydra/")]
    if topic == "all":
        out.append("Config groups (bncli list GROUP shows options and keys):")
        import textwrap

        for group in GROUPS:
            out += textwrap.wrap(", ".join(options(group, config_dirs)), 80,
                                 initial_indent=f"  {group:<11} ", subsequent_indent=" " * 14)
    if topic in ("all", "config"):
        out.append("Config (--cfg job):")
        out.append(_job_yaml(command, rest, config_dirs).rstrip("\n"))
    return "\n".join(out)


def show(command: str, overrides: list[str], config_dirs, cfg: str | None,
         info: bool) -> str:
    """What ``bncli COMMAND --cfg PART`` / ``--info [TOPIC]`` print; nothing is written."""
    info, overrides = split_info(info, list(overrides))
    texts = []
    if cfg is not None:
        texts.append(show_cfg(command, cfg, overrides, config_dirs))
    if info is not None:
        texts.append(show_info(command, info, overrides, config_dirs))
    return "\n".join(texts)
