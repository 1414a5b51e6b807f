"""bncli: the Typer front end. Turns argv into library calls; no logic of its own.

Everything in Hydra override syntax (``key=value``, ``+key=value``, ``~key``,
``group=option``, ``range(...)``) is passed to Hydra unchanged. JAX is imported only
when a command trains, so ``bncli --help`` answers fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import cli_tools as tools
from .cli_errors import (EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_FAILED,  # noqa: F401 (re-exported)
                         EXIT_INTERRUPTED, errors, say, state)
from .cli_options import CfgOption, ConfigDirOption, InfoOption, OverridesArg, print_version
from .config_groups import help_text

HYDRA_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}

GROUPS_HELP = help_text()
app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Train, sweep and report L2-regularized deep networks and their bottleneck spectra.\n\n"
    "Examples:\n\n"
    "  bncli train depth=12 lam=1e-3\n\n"
    "  bncli sweep depth=4,8,16 lam=1e-4,1e-3 seed=0,1\n\n"
    "  bncli report runs/\n\n"
    "  bncli list               (config groups, presets, every key)",
    epilog=GROUPS_HELP,
)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
          _v: bool = typer.Option(False, "--version", callback=print_version, is_eager=True,
                                  help="Print the version and exit.")):
    state["debug"] = debug


def _show(command: str, overrides: list[str], dirs: list[str], cfg, info) -> None:
    """``--cfg`` / ``--info``: print and exit 0, or a one-line error."""
    with errors():
        from .discovery import show

        say(show(command, overrides, dirs, cfg, info))


@app.command(context_settings=HYDRA_ARGS, epilog=GROUPS_HELP)
def train(
    ctx: typer.Context,
    overrides: Optional[List[str]] = OverridesArg,
    cfg_part: Optional[str] = CfgOption,
    info: bool = InfoOption,
    force: bool = typer.Option(
        False, "--force", help="Delete the run's own files and retrain (refused for a folder "
        "holding other files, or a run another process is training)."),
    config_dir: Optional[List[Path]] = ConfigDirOption,
):
    """Train one network and write its run folder (runs/<name>/).

    Overrides use Hydra syntax: bncli train depth=16 width=100 lam=1e-3 lr=0.05 seed=1
    steps=5000 model=linear task=low_rank optim=adam +experiment=tiny name=myrun out=runs.
    Re-running the same command resumes an interrupted run and skips a finished one.
    A comma list (depth=2,4) is a sweep: bncli sweep depth=2,4.
    Exit status: 0 finished, 3 diverged, 130 interrupted, 2 bad input, 1 failure.
    """
    overrides = [*(overrides or []), *ctx.args]
    if cfg_part is not None or info:
        return _show("train", overrides, [str(d) for d in config_dir or []], cfg_part, info)
    with errors():
        from .config import load
        from .progress import make_progress
        from .runs import check_data, check_name, open_run, run_name
        from .train import Interrupted, train_members

        dirs = [str(d) for d in config_dir or []]
        cfg = load(overrides, dirs)
        cfg.name = check_name(cfg.name or run_name(overrides))
        check_data(cfg)
        path = Path(cfg.out) / cfg.name
        with open_run(path, cfg, overrides, force) as member:
            if member is None:
                say(f"{path}: already {member_status(path)}; nothing to do (use --force to retrain)")
                return
            progress = make_progress(cfg.log_every_s)
            try:
                status = train_members([member], progress)[0]
            except Interrupted as exc:
                progress.close()
                say(f"{path}: interrupted ({exc}); run the same command to resume")
                raise typer.Exit(EXIT_INTERRUPTED)
            except Exception as exc:
                member.run.set_status("failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
                raise
            finally:
                progress.close()
        say(_result_line(path))
        if status == "diverged":
            raise typer.Exit(EXIT_DIVERGED)


def member_status(path: Path) -> str:
    from .rundir import effective_status

    return effective_status(path)


def _result_line(path: Path) -> str:
    """``runs/x: finished`` (with the diverged step), and the final values on a line
    of their own."""
    from .rundir import RunDir
    from .status_table import result_lines

    return result_lines(path, RunDir(path).status().get("diverged_step"))


@app.command(context_settings=HYDRA_ARGS, epilog=GROUPS_HELP)
def sweep(
    ctx: typer.Context,
    overrides: Optional[List[str]] = OverridesArg,
    cfg_part: Optional[str] = CfgOption,
    info: bool = InfoOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (members, jobs, done) and exit."),
    name: Optional[str] = typer.Option(None, "--name", help="Sweep folder name (default: from the overrides)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Retrain members whose status is failed."),
    force: bool = typer.Option(False, "--force", help="Retrain every member, finished or not, "
                               "replacing the files bncli wrote in its run folder."),
    config_dir: Optional[List[Path]] = ConfigDirOption,
):
    """Train a grid of networks: bncli sweep depth=4,8,16 lam=1e-4,1e-3 'seed=range(3)'.

    Hydra grammar: comma lists, 'range(a,b[,step])', 'choice(...)', 'glob(...)' over config
    groups ('model=glob(*)'), 'tag(...)'; other overrides apply to every member. Members
    that differ only in seed, lam, lr, init scale or noise train together in one
    compiled program. Output: runs/<sweep>/<member>/ plus runs/<sweep>/sweep.json.
    Re-running skips finished members and resumes interrupted ones. Add
    hydra/launcher=joblib (local processes) or hydra/launcher=submitit_slurm (SLURM).
    Folders: out=DIR --name NAME (Hydra's hydra.sweep.dir is refused).
    """
    overrides = [*(overrides or []), *ctx.args]
    if cfg_part is not None or info:
        return _show("sweep", overrides, [str(d) for d in config_dir or []], cfg_part, info)
    with errors():
        from . import sweep as sw
        from .progress import make_progress
        from .sweep_members import clear_members
        from .train import Interrupted

        dirs = [str(d) for d in config_dir or []]
        if dry_run and name is not None:
            from .status_view import show_named_sweep

            if show_named_sweep(name, overrides, dirs):
                return
        plan = sw.plan(overrides, name, dirs, force=force)
        say(sw.describe(plan) if dry_run else "\n".join(sw.describe(plan).splitlines()[:2]))
        if dry_run:
            return
        if force:
            clear_members(plan.members, plan.root)
        sw.write_index(plan, sw.main_argv())
        try:
            if plan.launcher:
                sw.run_with_launcher(plan, retry_failed)
            else:
                progress = make_progress(plan.members[0].cfg.log_every_s)
                try:
                    sw.run_in_process(plan, progress, retry_failed)
                finally:
                    progress.close()
        except Interrupted as exc:
            sw.write_index(plan, sw.main_argv())
            say(f"sweep interrupted ({exc}); run the same command to resume")
            raise typer.Exit(EXIT_INTERRUPTED)
        sw.write_index(plan, sw.main_argv())
        _print_sweep_summary(plan)


def _print_sweep_summary(plan) -> None:
    """The members' table and counts; exit 1 naming the members left unfinished."""
    from rich.console import Console

    from . import sweep as sw
    from .status import read_row
    from .status_table import print_members, shown_path

    rows = [read_row(plan.root / m.name, m.name) for m in plan.members]
    print_members(Console(highlight=False), rows, f"sweep {plan.name}")
    path = shown_path(plan.root)  # whole, on a line of its own when long: pastes as is
    say("report:\n  bncli report " + (path if len(path) <= 65 else f"\\\n    {path}"))
    left = sw.unfinished(plan)
    if left:
        more = f" and {len(left) - 5} more" if len(left) > 5 else ""
        print(f"bncli: {len(left)} of {len(plan.members)} members unfinished: "
              f"{', '.join(left[:5])}{more}; re-run the same command to resume them "
              "(--retry-failed retrains failed ones)", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED)


@app.command()
def report(
    paths: List[Path] = typer.Argument(..., help="Run folders, sweep folders or trees of them."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Report folder: new, empty, or an earlier report's (default: "
        "<first PATH>/report, or ./report-<name> where that is not writable)."),
    grid: Optional[str] = typer.Option(None, "--grid", help="Two swept keys for a phase diagram, e.g. lam,lr."),
    metric: Optional[str] = typer.Option(
        None, "--metric", help="Final metric shown in the phase diagram (default: loss/test, "
        "else loss/train)."),
    per_run_max: int = typer.Option(12, "--per-run-max", help="At most this many runs get per-run figures (0: none)."),
    include_unconverged: bool = typer.Option(
        False, "--include-unconverged", help="Let runs whose convergence verdict is 'no' "
        "into the depth fit (left out by default)."),
):
    """Tables, bottleneck figures and one self-contained report.html from run folders."""
    with errors():
        from rich.console import Console

        from .report import build_report, print_summary

        grid_keys = None
        if grid:
            grid_keys = tuple(k.strip() for k in grid.split(","))
            if len(grid_keys) != 2 or not all(grid_keys):
                from .config import ConfigError

                raise ConfigError(f"--grid needs two comma-separated keys, got {grid!r}")
        result = build_report(list(paths), out=out, grid=grid_keys, metric=metric,
                              per_run_max=per_run_max, include_unconverged=include_unconverged)
        print_summary(result, Console())


for _command, _settings in ((tools.status, {}), (tools.list_, HYDRA_ARGS),
                            (tools.completion, {}), (tools.export, {})):
    app.command(_command.__name__.rstrip("_"), context_settings=_settings)(_command)


def main() -> None:
    # Multi-threaded OpenBLAS (behind JAX's CPU SVD) stalls up to 300x when cores are
    # shared; one thread is faster for the small matrices bncli decomposes.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    app()


if __name__ == "__main__":
    main()
