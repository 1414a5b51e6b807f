"""The options ``bncli train`` and ``bncli sweep`` share for Hydra habits: the overrides
argument (with shell completion), ``--cfg``, ``--info``; and ``--version``."""

from __future__ import annotations

import typer

from .completion import complete_override


def print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"bncli {version('bottleneck-cli')}")
        raise typer.Exit()


OverridesArg = typer.Argument(
    None, metavar="[OVERRIDES]...", show_default=False, autocompletion=complete_override,
    help="Hydra overrides: key=value, group=option, '+experiment=NAME' (bncli list).")
CfgOption = typer.Option(
    None, "--cfg", metavar="job|hydra|all", help="Print the composed config (job), Hydra's "
    "node (hydra) or both, and exit; writes nothing.")
InfoOption = typer.Option(
    False, "--info", help="Print the config search path, defaults list, groups and config "
    "(--info searchpath|defaults|config: one of them), and exit; writes nothing.")
ConfigDirOption = typer.Option(
    None, "--config-dir", "-c",
    help="Extra folder of config files (groups model/, task/, optim/, experiment/); "
    "repeatable. Also read from $BNCLI_CONFIG_DIR.")
