"""``bncli status PATH`` and ``bncli sweep --name X --dry-run`` of an existing sweep:
read-only views of run folders (``status`` reads them, ``status_table`` draws them)."""

from __future__ import annotations

import shlex
from pathlib import Path

from . import rundir as rd
from .status import is_sweep, overview, read_row, sweep_rows
from .status_table import print_members, print_overview, shown_path


def _console():
    from rich.console import Console

    return Console(highlight=False)


def show(path: Path) -> None:
    """A sweep folder: its members; a run folder: that run; any other folder: one line
    per sweep and lone run below it. A missing path is a FileNotFoundError."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder of runs or sweeps"
                                if path.exists() else f"no such folder: {path}")
    console = _console()
    if is_sweep(path):
        print_members(console, sweep_rows(path), f"sweep {shown_path(path)}")
    elif rd.is_run_dir(path):
        print_members(console, [read_row(path)], f"run {shown_path(path)}")
    else:
        print_overview(console, overview(path), path)


def recorded_command(root: Path) -> str:
    """The command line ``sweep.json`` recorded, quoted to paste into a shell."""
    try:
        argv = rd.read_json(Path(root) / "sweep.json").get("command") or []
    except (OSError, ValueError, AttributeError):
        return ""
    return " ".join(shlex.quote(str(a)) for a in argv)


def show_named_sweep(name: str, overrides: list[str], config_dirs=()) -> bool:
    """``sweep --dry-run --name X`` with no overrides but ``out=``: X's members' state and
    the command that made it (True); no sweep X there is a ConfigError. With other
    overrides, False: they are a plan to show."""
    from .config import ConfigError, load
    from .runs import _key, check_name

    if any(_key(o) != "out" for o in overrides):
        return False
    out = load(overrides, config_dirs).out
    root = Path(out) / check_name(name, "--name")
    if not is_sweep(root):
        raise ConfigError(f"no sweep {shown_path(root)} to show (`bncli status {out}` lists "
                          "the sweeps there); give overrides to plan a new one")
    console = _console()
    rows = sweep_rows(root)
    print_members(console, rows, f"sweep {shown_path(root)}")
    command = recorded_command(root)
    if command:
        console.print("made by (re-run it to resume):", markup=False)
        console.print(f"  {command}", markup=False, soft_wrap=True)
    return True
