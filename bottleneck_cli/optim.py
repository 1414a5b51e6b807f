"""Optimizers, schedules and training stages, with the learning rate and ridge as traced arrays.

The optax transform computes a direction (momentum trace or Adam's scaling, then a
sign flip); the trainer multiplies it by ``lr * lr_factor(step)``. For SGD, momentum
and Adam this equals passing the learning rate to optax, but it lets every sweep
member carry its own lr inside one compiled program. L-BFGS finds its own step by a
zoom line search (optax's ``lbfgs``): its direction already holds the step.

A run is a list of stages (``optim.stages``), each with its own optimizer, schedule,
learning-rate and ridge scales and length; without stages it is one stage of
``steps`` steps with the settings of ``optim``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import optax


@dataclass(frozen=True)
class Stage:
    """One resolved training stage: steps [start, end) (the last one includes ``end``)."""

    index: int
    start: int
    end: int
    name: str  # gd | sgd | adam | lbfgs
    schedule: str  # constant | cosine | step
    lr_scale: float
    lam_scale: float
    lam_start_scale: float | None = None  # ridge continuation (geometric), see stage_lam
    rebalance: bool = False  # equalise the layer norms as the stage begins (not stage 0)

    @property
    def steps(self) -> int:
        return self.end - self.start


def stages(cfg) -> list[Stage]:
    """The run's stages; ``optim.stages`` entries inherit unset fields from ``optim``.
    Config validation guarantees that their lengths add up to ``steps``."""
    o = cfg.optim
    specs = list(o.get("stages") or []) or [{}]
    out, start = [], 0
    for i, spec in enumerate(specs):
        length = spec.get("steps")
        end = cfg.steps if length is None else start + int(length)
        out.append(Stage(i, start, end, spec.get("name") or o.name,
                         spec.get("schedule") or o.schedule,
                         float(spec.get("lr_scale", 1.0)), float(spec.get("lam_scale", 1.0)),
                         spec.get("lam_start_scale"), bool(spec.get("rebalance", False))))
        start = end
    return out


def stage_at(all_stages: list[Stage], step: int) -> Stage:
    """The stage that step ``step`` belongs to (its first step starts it)."""
    for s in all_stages:
        if step < s.end:
            return s
    return all_stages[-1]


def final_objective_from(all_stages: list[Stage]) -> int:
    """The first step from which the run trains its final objective (the last stage's
    ridge, no continuation still moving): convergence counts only from there, so that a
    stage at another ridge, or a ridge still being lowered, never reads as converged."""
    target = all_stages[-1].lam_scale
    start = all_stages[-1].end
    for s in reversed(all_stages):
        if s.lam_start_scale is not None:
            return s.end if s.lam_scale == target else start
        if s.lam_scale != target:
            return start
        start = s.start
    return start


def direction(optim_cfg, name: str | None = None) -> optax.GradientTransformation:
    """The update direction for a unit learning rate (``name``: a stage's optimizer)."""
    name = name or optim_cfg.name
    if name == "lbfgs":
        return optax.lbfgs()
    if name == "adam":
        core = optax.scale_by_adam(b1=optim_cfg.b1, b2=optim_cfg.b2, eps=optim_cfg.eps)
    elif optim_cfg.momentum > 0:
        core = optax.trace(decay=optim_cfg.momentum, nesterov=False)
    else:
        core = optax.identity()
    return optax.chain(core, optax.scale(-1.0))


def lr_factor(optim_cfg, steps: int, step, schedule: str | None = None):
    """Multiplier of the base learning rate at ``step`` of a stage of ``steps`` steps
    (warmup, then the schedule)."""
    schedule = schedule or optim_cfg.schedule
    step = jnp.asarray(step, jnp.float32)
    if schedule == "cosine":
        factor = 0.5 * (1.0 + jnp.cos(math.pi * jnp.minimum(step / steps, 1.0)))
    elif schedule == "cyclic":  # periodic lr (arXiv 2305.16038): 1 + amp cos(2 pi t / period)
        phase = 2.0 * math.pi * jnp.mod(step, optim_cfg.cycle_steps) / optim_cfg.cycle_steps
        factor = 1.0 + optim_cfg.cycle_amp * jnp.cos(phase)
    elif schedule == "step":
        factor = optim_cfg.decay_factor ** jnp.floor(step / optim_cfg.decay_every)
    else:
        factor = jnp.ones_like(step)
    if optim_cfg.warmup_steps > 0:
        factor = factor * jnp.minimum(1.0, (step + 1.0) / optim_cfg.warmup_steps)
    return factor


def lam_factor(optim_cfg, step):
    """Multiplier of the ridge strength: 1, or ``lam_factor`` after ``lam_warm_steps``."""
    if optim_cfg.lam_schedule == "anneal":
        return jnp.where(step < optim_cfg.lam_warm_steps, 1.0, optim_cfg.lam_factor)
    return jnp.ones((), jnp.float32)


def stage_lr(optim_cfg, stage: Stage, base_lr, step):
    """The learning rate at ``step`` inside ``stage`` (L-BFGS: the line search's scale)."""
    if stage.name == "lbfgs":
        return jnp.asarray(stage.lr_scale, jnp.float32)
    return base_lr * stage.lr_scale * lr_factor(optim_cfg, stage.steps, step - stage.start,
                                                stage.schedule)


def stage_lam(optim_cfg, stage: Stage, base_lam, step):
    """The ridge strength at ``step`` inside ``stage``. With ridge continuation the scale
    is lam_start^(1-t) lam_end^t, t = (step - start) / (steps - 1): the minimiser path is
    followed from a larger ridge, and the last step of the stage is at the target."""
    scale = stage.lam_scale
    if stage.lam_start_scale is not None:
        t = jnp.clip((step - stage.start) / max(stage.steps - 1, 1), 0.0, 1.0)
        a = math.log(stage.lam_start_scale) if stage.lam_start_scale > 0 else -80.0
        b = math.log(stage.lam_scale) if stage.lam_scale > 0 else -80.0
        scale = jnp.exp((1.0 - t) * a + t * b)
    return base_lam * scale * lam_factor(optim_cfg, step)
