"""Sweeps: expand a Hydra grid, group same-shape members into batched jobs, run them.

* Expansion is Hydra's own (``BasicSweeper.split_arguments`` over the parsed
  overrides), so ``a=1,2``, ``range(...)``, ``choice(...)``, ``glob(...)`` and ``tag``
  mean what they mean in ``--multirun``. Axes may also come from a preset's
  ``sweep.grid``; the command line wins for the same key.
* Members whose configs differ only in ``BATCHABLE`` keys share a job: one compiled,
  vmapped program (split at ``sweep.max_members``).
* Layout: ``runs/<sweep>/sweep.json`` (the plan and member statuses) and one run
  folder per member, named from its swept values. Each member is guarded by a file
  lock, so concurrent sweeps into one folder train every member exactly once.
* With no launcher, jobs run in this process. With ``hydra/launcher=...`` the jobs
  become a Hydra multirun over job indices (``run_job``), so joblib, submitit (SLURM)
  and other launchers work unchanged.
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from . import rundir as rd
from .config import CONFIG_DIR, PROGRAM_FREE, ConfigError, load, program_key
from .runs import _key, check_data, config_text, prepare, run_name

# Keys that keep the compiled program: members differing only here train together.
BATCHABLE = PROGRAM_FREE
INDEX = "sweep.json"
LAUNCHER_PREFIXES = ("hydra/launcher", "hydra.launcher", "+hydra/launcher")


@dataclass
class PlannedMember:
    name: str
    overrides: list[str]
    cfg: object = None
    group: int = 0
    status: str = "missing"


@dataclass
class Plan:
    name: str
    root: Path
    common: list[str]
    members: list[PlannedMember]
    jobs: list[list[int]] = field(default_factory=list)
    launcher: list[str] = field(default_factory=list)
    config_dirs: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- expansion
def _config_loader(config_dirs):
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
        return OverridesParser.create(config_loader=_config_loader(config_dirs)) \
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


def swept_keys(overrides: list[str], config_dirs=()) -> set[str]:
    """Keys the grid sweeps over, as ``_key`` spells them (``+model.gate`` -> ``model.gate``)."""
    return {o.get_key_element().lstrip("+~") for o in parse(overrides, config_dirs)
            if o.is_sweep_override()}


def sweep_name(overrides: list[str]) -> str:
    """Default sweep folder name, e.g. ``depth=2+4+8_lam=0.001+0.01``; a preset
    (``+experiment=rank2022``) is named by itself."""
    parts = [o.split("=", 1)[1] if _key(o) == "experiment" else o.lstrip("+").replace(",", "+")
             for o in overrides]
    return run_name(["_".join(parts)] if parts else [], default="sweep")


# ---------------------------------------------------------------- planning
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
    cfg.name, cfg.out = name, str(root)
    return cfg


def _parse_value(override: str):
    """The typed value of ``key=value`` as Hydra's grammar reads it (1e-3 -> 0.001)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(override).value()


def plan(overrides: list[str], name: str | None = None, config_dirs=(),
         out: str | None = None) -> Plan:
    """Expand, compose and validate every member; group them into jobs. Writes nothing."""
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
    root = (Path(out or base.out) / (name or base.name or sweep_name(args))).resolve()

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
        key = (config_text(m.cfg.task), m.cfg.seed)
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
            members[i].status = rd.RunDir(root / members[i].name).status()["status"]
    return Plan(root.name, root, common, members, jobs, launcher,
                [str(Path(d).resolve()) for d in config_dirs])


def describe(p: Plan) -> str:
    """The dry-run text: members, jobs (with their shapes) and what is already done."""
    done = sum(m.status in rd.DONE for m in p.members)
    lines = [f"sweep {p.name}: {len(p.members)} members in {len(p.jobs)} jobs "
             f"({done} already done) -> {p.root}"]
    for g, job in enumerate(p.jobs):
        c = p.members[job[0]].cfg
        lines.append(f"  job {g}: depth={c.depth} width={c.width} model={c.model.name} "
                     f"task={c.task.name}, {len(job)} members")
        for i in job:
            m = p.members[i]
            lines.append(f"    {m.name:<40} {m.status}")
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
def run_members(members: list[PlannedMember], root: Path, progress=None,
                retry_failed: bool = False) -> dict[str, str]:
    """Train one job's members that this process can lock; wait for the others."""
    from filelock import FileLock, Timeout

    from .train import Interrupted, train_members

    locks, todo, waiting = [], [], []
    result = {}
    try:
        for m in members:
            member = prepare(root / m.name, m.cfg, m.overrides)
            if member is None:
                result[m.name] = rd.RunDir(root / m.name).status()["status"]
                continue
            lock = FileLock(str(root / m.name / ".lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                waiting.append((m, lock))
                continue
            locks.append(lock)
            status = member.run.status()["status"]
            if status in rd.DONE or (status == "failed" and not retry_failed):
                result[m.name] = status
                continue
            todo.append((m, member))
        if todo:
            try:
                statuses = train_members([mem for _, mem in todo], progress)
            except Interrupted:
                raise
            except Exception as exc:  # one failing job must not take the sweep down
                msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
                statuses = []
                for _, mem in todo:  # members that finished beside the failure stay so
                    status = mem.run.status()["status"]
                    if status not in rd.DONE:
                        status = "failed"
                        mem.run.set_status(status, error=msg)
                    statuses.append(status)
            for (m, _), s in zip(todo, statuses):
                result[m.name] = s
    finally:
        for lock in locks:
            lock.release()
    for m, lock in waiting:  # another process is training these: wait for it
        with lock:
            result[m.name] = rd.RunDir(root / m.name).status()["status"]
    return result


def run_in_process(p: Plan, progress=None, retry_failed: bool = False) -> dict[str, str]:
    results = {}
    if progress is not None:
        progress.set_totals(len(p.members))
    for job in p.jobs:
        results.update(run_members([p.members[i] for i in job], p.root, progress, retry_failed))
    return results


def run_job(index_path: str, job: int, retry_failed: bool = False) -> dict[str, str]:
    """Entry point of one launcher job: rebuild its members from sweep.json and train them."""
    from .progress import LogProgress

    root = Path(index_path).parent
    index = rd.read_json(index_path)
    members = []
    for entry in index["members"]:
        if entry["job"] == job:
            cfg = member_config(entry["overrides"], entry["name"], root, index["config_dirs"])
            members.append(PlannedMember(entry["name"], entry["overrides"], cfg, job))
    return run_members(members, root, LogProgress(), retry_failed)


def run_with_launcher(p: Plan, retry_failed: bool = False) -> None:
    """Hand the jobs to a Hydra launcher as a multirun over job indices."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    from . import launch

    argv = ["-m", f"index={p.root / INDEX}", f"job={','.join(map(str, range(len(p.jobs))))}",
            f"retry_failed={retry_failed}", f"hydra.sweep.dir={p.root / '.launcher'}",
            *p.launcher]
    launch.multirun(argv)


def statuses(p: Plan) -> dict[str, str]:
    return {m.name: rd.RunDir(p.root / m.name).status()["status"] for m in p.members}


def main_argv() -> list[str]:
    return ["bncli"] + sys.argv[1:]
