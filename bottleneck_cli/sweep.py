"""Sweeps: expand a Hydra grid, group same-shape members into batched jobs, run them.

* The grid is Hydra's (``sweep_grid``). Axes may also come from a preset's
  ``sweep.grid``; the command line wins for the same key.
* Members whose configs differ only in ``config.PROGRAM_FREE`` keys share a job: one compiled,
  vmapped program (split at ``sweep.max_members``).
* Layout: ``runs/<sweep>/sweep.json`` (the plan and member statuses) and one run
  folder per member, named from its swept values. Everything is checked before
  ``sweep.json`` is written; each member trains under its file lock
  (``sweep_members``), so concurrent sweeps into one folder train it exactly once.
* With no launcher, jobs run in this process, on every device of the machine
  (``devices``: one job per device at a time). With ``hydra/launcher=...`` the jobs
  become a Hydra multirun over job indices (``run_job``), so joblib, submitit (SLURM)
  and other launchers work unchanged.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from . import rundir as rd
from .config import ConfigError, load, program_key
from .runs import _key, check_data, check_name, run_name
from .naming import default_sweep_name
from .sweep_grid import PlannedMember, expand, member_config, swept_keys
from .sweep_members import check_members, run_members  # noqa: F401  (re-exported)

INDEX = "sweep.json"
LAUNCHER_PREFIXES = ("hydra/launcher", "hydra.launcher", "+hydra/launcher")


@dataclass
class Plan:
    name: str
    root: Path
    common: list[str]
    members: list[PlannedMember]
    jobs: list[list[int]] = field(default_factory=list)
    launcher: list[str] = field(default_factory=list)
    config_dirs: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- planning
def _check_root(root: Path) -> None:
    """The sweep folder, or the nearest of its parents that exists, must be a folder."""
    existing = next(p for p in (root, *root.parents) if p.exists() or p.is_symlink())
    if not existing.is_dir():
        raise ConfigError(f"cannot create the sweep folder {root}: {existing} is not a folder")


def plan(overrides: list[str], name: str | None = None, config_dirs=(),
         out: str | None = None, force: bool = False) -> Plan:
    """Expand, compose and validate every member, the launcher and the member folders
    already there (``force``: they will be replaced); group members into jobs. Writes
    nothing."""
    from .launch import check_launcher

    launcher = [o for o in overrides if o.startswith(LAUNCHER_PREFIXES)]
    args = [o for o in overrides if not o.startswith(LAUNCHER_PREFIXES)]
    sweep_axes = swept_keys(args, config_dirs)
    # Axes from a preset's sweep.grid, unless given on the command line.
    fixed = [o for o in args if _key(o) not in sweep_axes]
    base = load(fixed, config_dirs)
    given = {_key(o) for o in args}
    preset_axes = [f"{k}={v}" for k, v in base.sweep.grid.items() if k not in given]
    grid = args + preset_axes
    axes = sweep_axes | {_key(o) for o in preset_axes}
    common = [o for o in grid if _key(o) not in axes]
    # Absolute, so launcher jobs (other processes, other nodes) find it from any folder.
    if name is not None:
        folder = check_name(name, "--name")
    else:
        parent = Path(out or base.out)
        folder = check_name(base.name or default_sweep_name(parent, args, axes), "name")
    root = (Path(out or base.out) / folder).resolve()
    _check_root(root)

    members, cache = [], {}
    for member_overrides in expand(grid, config_dirs):
        own = [o for o in member_overrides if _key(o) in axes]
        mname = run_name(own)
        cfg = member_config(member_overrides, mname, root, config_dirs, cache)
        members.append(PlannedMember(mname, member_overrides, cfg))
    if not members:
        raise ConfigError("the sweep grid has no members (an empty glob or choice?)")
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ConfigError("two sweep members would share a folder name; give distinct values")
    checked = set()
    for m in members:
        key = (OmegaConf.to_yaml(m.cfg.task, resolve=True), m.cfg.seed)
        if key not in checked:
            check_data(m.cfg)
            checked.add(key)
    groups: dict[str, list[int]] = {}
    for i, m in enumerate(members):
        groups.setdefault(program_key(m.cfg), []).append(i)
    jobs = []
    for idx in groups.values():
        cap = members[idx[0]].cfg.sweep.max_members
        jobs.extend(idx[j:j + cap] for j in range(0, len(idx), cap))
    for g, job in enumerate(jobs):
        for i in job:
            members[i].group = g
            members[i].status = rd.effective_status(root / members[i].name)
    check_members(members, root, force)
    if launcher:
        check_launcher(launcher, root / INDEX)
    return Plan(root.name, root, common, members, jobs, launcher,
                [str(Path(d).resolve()) for d in config_dirs])


def describe(p: Plan) -> str:
    """The dry-run text: members, jobs (with their shapes) and what is already done."""
    from .naming import abbreviate
    from .status_table import shown_path

    done = sum(m.status in rd.DONE for m in p.members)
    counts = f"{len(p.members)} members in {len(p.jobs)} jobs ({done} already done)"
    head = f"sweep {p.name}: {counts}"
    lines = [head if len(head) <= 80 else f"sweep: {counts}", f"  -> {shown_path(p.root)}"]
    names, common = abbreviate([m.name for m in p.members])
    if common:
        lines.append(f"  every member: {','.join(common)}")
    pad = min(40, max(map(len, names)))
    for g, job in enumerate(p.jobs):
        c = p.members[job[0]].cfg
        lines.append(f"  job {g}: depth={c.depth} width={c.width} model={c.model.name} "
                     f"task={c.task.name}, {len(job)} members")
        for i in job:
            lines.append(f"    {names[i]:<{pad}} {p.members[i].status}")
    if p.launcher:
        lines.append(f"  launcher: {' '.join(p.launcher)}")
    return "\n".join(lines)


def write_index(p: Plan, argv: list[str]) -> None:
    """sweep.json: what was asked, the members, their jobs and statuses."""
    p.root.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    with FileLock(str(p.root / ".sweep.lock")):
        rd.write_json(p.root / INDEX, {
            "name": p.name,
            "command": argv,
            "common": p.common,
            "config_dirs": p.config_dirs,
            "jobs": p.jobs,
            "members": [{"name": m.name, "overrides": m.overrides, "job": m.group,
                         "status": rd.RunDir(p.root / m.name).status()["status"]}
                        for m in p.members],
        })


# ---------------------------------------------------------------- running
def run_in_process(p: Plan, progress=None, retry_failed: bool = False) -> dict[str, str]:
    from .devices import run_jobs

    if progress is not None:
        progress.set_totals(len(p.members))
        progress.set_names([m.name for m in p.members])
    return run_jobs([[p.members[i] for i in job] for job in p.jobs], p.root, progress,
                    retry_failed)


def run_job(index_path: str, job: int, retry_failed: bool = False) -> dict[str, str]:
    """Entry point of one launcher job: rebuild its members from sweep.json and train them
    (on every device of its node, ``devices``)."""
    from .devices import run_jobs
    from .progress import LogProgress

    root = Path(index_path).parent
    index = rd.read_json(index_path)
    members = []
    for entry in index["members"]:
        if entry["job"] == job:
            cfg = member_config(entry["overrides"], entry["name"], root, index["config_dirs"])
            members.append(PlannedMember(entry["name"], entry["overrides"], cfg, job))
    progress = LogProgress()
    progress.set_names([entry["name"] for entry in index["members"]])
    return run_jobs([members], root, progress, retry_failed)


def run_with_launcher(p: Plan, retry_failed: bool = False) -> None:
    """Hand the jobs to a Hydra launcher as a multirun over job indices."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    from . import launch

    launch.multirun(launch.job_overrides(p.root / INDEX, len(p.jobs), p.launcher, retry_failed))


def statuses(p: Plan) -> dict[str, str]:
    """Each member's status as shown: ``running`` reads ``stale`` once no process
    holds the member's lock (``rundir.effective_status``)."""
    return {m.name: rd.effective_status(p.root / m.name) for m in p.members}


def unfinished(p: Plan) -> list[str]:
    """The members neither finished nor diverged, as ``name (status: error)``."""
    left = []
    for m, status in zip(p.members, statuses(p).values()):
        if status not in rd.DONE:
            error = str(rd.RunDir(p.root / m.name).status().get("error") or "")
            error = error.strip().splitlines()
            left.append(f"{m.name} ({status}{': ' + error[0] if error else ''})")
    return left


def main_argv() -> list[str]:
    return ["bncli"] + sys.argv[1:]
