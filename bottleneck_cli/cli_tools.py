"""The commands that show or export without training: ``status``, ``list``,
``completion``, ``export`` (registered on the app by cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .cli_errors import errors, say
from .cli_options import ConfigDirOption
from .completion import complete_override


def status(
    path: Path = typer.Argument(
        Path("runs"), help="A sweep folder, a run folder, or a folder of them (default: runs)."),
):
    """Show a sweep's members: status, step, objective, test fit, rank, ETA.

    Reads only the run folders (writes nothing, takes no lock), so it works while the
    sweep trains and on a copy from another machine. On a folder of sweeps: one line
    per sweep. Example: bncli status runs/demo
    """
    with errors():
        from .status_view import show

        show(path)


def list_(
    words: Optional[List[str]] = typer.Argument(
        None, metavar="[GROUP|KEY|OVERRIDE]...", show_default=False,
        autocompletion=complete_override, help="Narrow to groups (model, experiment), keys "
        "or sections (depth, metrics); overrides (task=matern) pick the config shown."),
    config_dir: Optional[List[Path]] = ConfigDirOption,
):
    """Config groups and their options (presets included), and every key with its default
    and meaning: bncli list, bncli list model, bncli list task=matern. Writes nothing."""
    with errors():
        from .listing import render

        say(render(list(words or []), [str(d) for d in config_dir or []]))


def completion(shell: str = typer.Argument(..., metavar="bash|zsh|fish")):
    """Print the shell completion script (commands, groups, presets, keys), e.g. in
    ~/.bashrc: eval "$(bncli completion bash)". --install-completion installs it."""
    with errors():
        from .completion import script

        say(script(shell))


def export(
    what: str = typer.Argument(..., help="What to write: tensorboard (event files per run)."),
    paths: List[Path] = typer.Argument(..., help="Run folders, sweep folders or trees of them."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Write into OUT/<run name>/ instead of each run's tb/ "
        "folder (the run folders are then only read)."),
):
    """Event files for existing runs from their records: 'bncli export tensorboard runs/'."""
    with errors():
        from .export import export as run_export

        run_export(what, list(paths), out, say)
