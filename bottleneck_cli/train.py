"""The host loop: train cohorts of same-shape members, record, checkpoint and resume.

``train_batch`` drives one cohort (``cohort.Cohort``: the arrays and compiled programs)
from its start step to the end, stopping at the steps where the host looks at the
state: metric records, checkpoints, progress ticks and stage boundaries. A member whose
loss turns non-finite is frozen and marked diverged while its cohort-mates train on.
``train_members`` resumes each member from its checkpoint and runs cohorts one after
another, or side by side in CPU lanes.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import rundir as rd
from .cohort import Batch, Cohort  # noqa: F401  (re-exported)
from .programs import forget_programs  # noqa: F401  (re-exported)
from .convergence import Tracker, balance_identity, verdict
from . import trajectory
from .optim import final_objective_from, stages
from .records import Records
from .resume import load_start
from .startup import first_step_done
from .stopflag import StopFlag


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after checkpointing."""


@dataclass
class Member:
    """One run of a batch: its folder and resolved config."""

    run: rd.RunDir
    cfg: object  # DictConfig
    start: dict = field(default_factory=dict)  # checkpoint arrays when resuming


# ---------------------------------------------------------------- schedules on the host
def metric_steps(cfg) -> list[int]:
    """Step 0, ``num_log`` log-spaced steps, every ``every`` steps, each stage's first
    step, and the final step."""
    steps = cfg.steps
    marks = {0, steps, *(s.start for s in stages(cfg))}
    if cfg.metrics.num_log > 0:
        marks.update(int(round(s)) for s in np.geomspace(1, steps, cfg.metrics.num_log))
    if cfg.metrics.every > 0:
        marks.update(range(0, steps + 1, cfg.metrics.every))
    return sorted(m for m in marks if 0 <= m <= steps)


def boundaries(cfg, start: int) -> list[int]:
    """Steps after ``start`` at which the host looks at the state: metrics,
    checkpoints, stage boundaries and about 100 progress ticks."""
    steps = cfg.steps
    marks = set(metric_steps(cfg))
    marks.update(s.end for s in stages(cfg))
    marks.update(range(0, steps + 1, cfg.checkpoint.every))
    marks.update(range(0, steps + 1, max(1, steps // 100)))
    marks.add(steps)
    return sorted(m for m in marks if start < m <= steps)


def _checkpoint(batch: Batch, host_state, i: int) -> None:
    rd.write_npz(batch.members[i].run.file(rd.CHECKPOINT), batch.member_arrays(host_state, i))


def _finish(batch: Batch, host_state, i: int, status: str, steps_done: int) -> None:
    member = batch.members[i]
    run = member.run
    div_step = int(host_state["div_step"][i])
    params = {k: v[i] for k, v in host_state["params"].items()}
    if status == "finished":
        rd.write_npz(run.file(rd.PARAMS), params)
    records = run.read_metrics()
    m = member.cfg.metrics
    traj = trajectory.run_summary(records, m.get("jump_persistence", 3),
                                  m.get("plateau_tol", 0.05))
    final = {**(records[-1] if records else {}), **trajectory.flat_keys(traj)}
    summary = {
        "status": status,
        "steps": member.cfg.steps,
        "steps_done": steps_done,
        "diverged_step": div_step if div_step >= 0 else None,
        "wall_time": float(batch.elapsed[i]),
        "device": str(next(iter(batch.state["step"].devices()))),  # e.g. cuda:0
        "final": final,
        "convergence": verdict(member.cfg.convergence, final),
    }
    if traj:  # rank of the end-to-end matrix over the run (trajectory.py)
        summary["trajectory"] = traj
    rd.write_json(run.file(rd.SUMMARY), summary)
    if run.file(rd.CHECKPOINT).exists():
        run.file(rd.CHECKPOINT).unlink()
    run.set_status(status, step=steps_done, steps=member.cfg.steps,  # the last write
                   diverged_step=summary["diverged_step"])


def train_batch(members: list[Member], progress=None, stop: StopFlag | None = None) -> list[str]:
    """Train a batch of same-shape members to their final step; return their statuses.

    Raises ``Interrupted`` (after checkpointing every member) on SIGINT/SIGTERM, watched
    by ``stop`` when given (lanes in threads share the main thread's flag).
    """
    import jax

    batch = Batch(members)
    cfg = batch.cfg
    if stop:  # arrived while the data and the model were set up: nothing new to save
        for m in members:
            m.run.set_status("interrupted", step=int(batch.state["step"]), steps=cfg.steps)
        raise Interrupted(f"stopped by signal {stop.signal} during set-up")
    start = int(batch.state["step"])
    marks = set(metric_steps(cfg))
    n = len(members)
    statuses = ["running"] * n
    counts_from = final_objective_from(stages(cfg))
    batch.trackers = [Tracker(m.cfg.convergence, balance_identity(batch.model, m.cfg),
                              counts_from=counts_from) for m in members]
    for m, tracker in zip(members, batch.trackers):
        tracker.replay(m.run.read_metrics())
    for m in members:
        m.run.set_status("running", step=start, steps=cfg.steps)
    if progress is not None:
        progress.start_batch([m.run.path.name for m in members], start, cfg.steps)
    t0 = time.perf_counter() - batch.elapsed.max(initial=0.0)

    # The step-0 record evaluates the initial parameters (kept as params0) after the first
    # chunk: the first step waits neither for it nor for the metrics program, whose trace
    # and compile start in the background once the first chunk is dispatched (tracing it
    # beside the chunk's own trace would slow that down: both need the interpreter);
    # training goes on while it compiles (records.py).
    ahead = True
    initial = start == 0
    with (nullcontext(stop) if stop is not None else StopFlag()) as stop:
        latest = [None] * n  # each member's last metrics record, for the progress display
        records = Records(batch, latest, defer=len(batch.stages) == 1
                          and cfg.train.until == "steps")
        for b in boundaries(cfg, start):
            batch.run_to(b)
            records.catch_up()  # the last record's host part, while this chunk trains
            if ahead:
                batch.evaluate_ahead()
                ahead = False
            batch.advance_stage()
            alive = np.asarray(jax.device_get(batch.state["alive"]))
            batch.elapsed[:] = time.perf_counter() - t0
            first_step_done()
            if initial:
                records.add(0, statuses, initial=True)
                initial = False
            newly_dead = [i for i in range(n) if statuses[i] == "running" and not alive[i]]
            if b in marks:
                records.add(b, statuses, skip=newly_dead)
                _stop_converged(batch, b, statuses)
            if b >= cfg.steps:
                records.flush()  # the last progress line shows the final values
            if progress is not None:
                progress.update(b, statuses, latest)
            if newly_dead or b % cfg.checkpoint.every == 0 or stop:
                records.flush()  # every record up to b is written before a checkpoint
                host = jax.device_get(batch.state)
                for i in newly_dead:
                    statuses[i] = "diverged"
                    _finish(batch, host, i, "diverged", int(host["div_step"][i]))
                if b % cfg.checkpoint.every == 0 or stop:
                    for i in range(n):
                        if statuses[i] == "running":
                            _checkpoint(batch, host, i)
            if stop and b < cfg.steps:
                for i in range(n):
                    if statuses[i] == "running":
                        members[i].run.set_status("interrupted", step=b, steps=cfg.steps)
                raise Interrupted(f"stopped by signal {stop.signal} at step {b}")
            if "running" not in statuses:
                break
        if initial:  # no step to train (steps=0)
            records.add(0, statuses, initial=True)
        records.flush()
        host = jax.device_get(batch.state)
        for i in range(n):
            if statuses[i] == "running":
                # a loss that turned non-finite in the very last step shows only here
                finite = all(np.isfinite(v[i]).all() for v in host["params"].values())
                if not finite:
                    host["div_step"][i] = cfg.steps
                statuses[i] = "finished" if finite else "diverged"
                _finish(batch, host, i, statuses[i], cfg.steps)
    if progress is not None:
        progress.end_batch(statuses)
    return statuses


def _stop_converged(batch: Batch, step: int, statuses: list[str]) -> None:
    """Finish the members with ``train.until=converged`` whose verdict is in (at ``step``);
    their state is frozen in the cohort like a diverged member's, the others train on."""
    import jax

    done = [i for i, m in enumerate(batch.members) if statuses[i] == "running"
            and m.cfg.train.until == "converged" and batch.trackers[i].streak
            >= m.cfg.convergence.patience and step < m.cfg.steps]
    if not done:
        return
    host = jax.device_get(batch.state)
    alive = np.asarray(host["alive"]).copy()
    for i in done:
        statuses[i] = "finished"
        alive[i] = False
        _finish(batch, host, i, "finished", step)
    batch.state["alive"] = jax.numpy.asarray(alive)


def configure_jax(float64: bool) -> None:
    """float64 on request, and a persistent compilation cache shared by processes
    ($BNCLI_JAX_CACHE, default ~/.cache/bncli/jax; empty string disables it)."""
    import jax

    if float64:
        jax.config.update("jax_enable_x64", True)
    cache = os.environ.get("BNCLI_JAX_CACHE", str(Path.home() / ".cache" / "bncli" / "jax"))
    if cache and jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", cache)
        # every program, however small: the optimizer's init (~0.1 s to compile) is
        # otherwise compiled again by every process before its first step
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


def cpu_lanes(cfg, n_batches: int) -> int:
    """How many batches train side by side in threads: on the CPU one per usable core
    (``sweep.cpu_threads`` overrides), since a small net's step keeps one core busy and
    ``vmap`` over members gains little there; elsewhere 1 (the GPU gains from ``vmap``)."""
    import jax

    if n_batches < 2 or jax.default_backend() != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cfg.sweep.cpu_threads or cores or 1, n_batches))


def train_members(members: list[Member], progress=None) -> list[str]:
    """Train members of one shape, resuming each from its checkpoint.

    Batches are formed of members at the same start step, at most ``sweep.max_members``
    each, and run one after another as vmapped programs. On a multi-core CPU the
    members instead train one per batch in ``cpu_lanes`` threads; every batch of one
    shape reuses one compiled program either way; lanes train on the caller's default
    device. A model family with its own training rule (``models.TRAINERS``) trains its
    members itself."""
    import jax

    from .models import own_trainer

    trainer = own_trainer(members[0].cfg) if members else None
    if trainer is not None:
        return trainer(members, progress)
    configure_jax(any(m.cfg.dtype == "float64" for m in members))
    for m in members:
        m.start = load_start(m.run, m.cfg)
    by_start: dict[int, list[int]] = {}
    for i, m in enumerate(members):
        by_start.setdefault(int(m.start["step"]) if m.start else 0, []).append(i)
    cap = members[0].cfg.sweep.max_members if members else 1
    parts = [idx[j:j + cap] for idx in by_start.values() for j in range(0, len(idx), cap)]
    lanes = cpu_lanes(members[0].cfg, len(members)) if members else 1
    if lanes > 1:
        parts = [[i] for i in range(len(members))]
    statuses = [""] * len(members)
    device = jax.config.jax_default_device  # this thread's; lane threads start without it
    with StopFlag() as stop:
        def run(part):
            if stop:
                raise Interrupted(f"stopped by signal {stop.signal} before starting")
            with jax.default_device(device):
                done = train_batch([members[i] for i in part], progress, stop)
            for i, s in zip(part, done):
                statuses[i] = s

        if lanes == 1:
            for part in parts:
                run(part)
        else:
            with ThreadPoolExecutor(lanes, thread_name_prefix="bncli-lane") as pool:
                futures = [pool.submit(run, part) for part in parts]
            errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:  # a stop wins: failed members are then resumed, not lost
                raise next((e for e in errors if isinstance(e, Interrupted)), errors[0])
        if stop:  # arrived as the last batch ended: every member is saved; stop the caller
            raise Interrupted(f"stopped by signal {stop.signal} after training")
    return statuses
