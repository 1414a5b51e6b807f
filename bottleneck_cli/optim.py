"""Optimizers and schedules, with the learning rate and ridge as traced arrays.

The optax transform computes a direction (momentum trace or Adam's scaling, then a
sign flip); the trainer multiplies it by ``lr * lr_factor(step)``. For SGD, momentum
and Adam this equals passing the learning rate to optax, but it lets every sweep
member carry its own lr inside one compiled program.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import optax


def direction(optim_cfg) -> optax.GradientTransformation:
    """The update direction for a unit learning rate."""
    if optim_cfg.name == "adam":
        core = optax.scale_by_adam(b1=optim_cfg.b1, b2=optim_cfg.b2, eps=optim_cfg.eps)
    elif optim_cfg.momentum > 0:
        core = optax.trace(decay=optim_cfg.momentum, nesterov=False)
    else:
        core = optax.identity()
    return optax.chain(core, optax.scale(-1.0))


def lr_factor(optim_cfg, steps: int, step):
    """Multiplier of the base learning rate at ``step`` (warmup, then the schedule)."""
    step = jnp.asarray(step, jnp.float32)
    if optim_cfg.schedule == "cosine":
        factor = 0.5 * (1.0 + jnp.cos(math.pi * jnp.minimum(step / steps, 1.0)))
    elif optim_cfg.schedule == "step":
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
