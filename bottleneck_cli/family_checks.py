"""Cross-key checks of single model and task families (leaky ResNets, the mixed
lazy/active family, Matérn targets): one-line ConfigErrors, called by ``validation``."""

from __future__ import annotations

import numpy as np

from .validation import MAX_DIM, MAX_ELEMENTS, ConfigError


def check_families(cfg) -> None:
    """Every family check that applies to ``cfg``."""
    if cfg.task.name == "matern":
        _check_matern(cfg.task)
    _check_leaky(cfg)
    _check_mixed(cfg)


def _check_matern(task) -> None:
    """The matern task's cross-key checks (tasks/matern.py ``check``), as ConfigErrors."""
    from .tasks.base import TaskError
    from .tasks.matern import check

    try:
        check(task)
    except TaskError as exc:
        raise ConfigError(str(exc)) from None


def _check_leaky(cfg) -> None:
    """Fixed layer steps with rho_l * Lt > 1 make a skip weight 1 - rho_l Lt negative
    (rho_l Lt = 1 is the fully connected limit); adaptive steps record it instead."""
    dims = cfg.task.get("inner_dims")
    if dims is not None and (len(dims) == 0 or any(not 1 <= int(k) <= MAX_DIM for k in dims)):
        raise ConfigError(f"task.inner_dims={list(dims)} must be a non-empty list of "
                          f"dimensions in [1, {MAX_DIM}]")
    if cfg.model.get("name") != "leaky_resnet" or cfg.model.get("_target_"):
        return
    if cfg.model.steps == "adaptive":
        return
    from .models.leaky_resnet import fixed_steps

    rho = float(fixed_steps(cfg.depth, cfg.model.steps, cfg.model.irregular_a).max())
    if rho * cfg.model.leak > 1 + 1e-9:
        raise ConfigError(f"model.leak={cfg.model.leak:g} with depth={cfg.depth} "
                          f"(model.steps={cfg.model.steps}) gives a layer step rho={rho:.4g} "
                          f"with rho * leak = {rho * cfg.model.leak:.4g} > 1 (a negative skip "
                          "weight); use depth >= leak, a smaller leak, or model.steps=adaptive")


MAX_MIXED_WIDTH = 10**15  # w = int(d^gamma_w): the reduced run draws chi^2 with w dof


def _check_mixed(cfg) -> None:
    """The mixed lazy/active family (models/mixed.py): its model and task go together;
    d >= K; a width of at least 1 (and one that fits when simulated in full); a
    variance d^gamma_sigma the dtype holds."""
    model, task = cfg.model.get("name"), cfg.task.name
    if (model == "mixed") != (task == "mixed_target") and not cfg.model.get("_target_"):
        raise ConfigError(f"model=mixed and task=mixed_target go together (got model={model}, "
                          f"task={task}); use +experiment=mixed2024_small or set both")
    if task == "mixed_target" and cfg.task.rank > cfg.task.d:
        raise ConfigError(f"task.rank={cfg.task.rank} must be <= task.d={cfg.task.d} (K <= d)")
    if model != "mixed":
        return
    d, gs, gw = cfg.task.d, cfg.model.gamma_sigma, cfg.model.gamma_w
    w = float(d) ** gw
    if not 1 <= w <= MAX_MIXED_WIDTH:
        raise ConfigError(f"model.gamma_w={gw} gives width int({d}^{gw}) = {int(w) if w < 1 else w:.3g}"
                          f"; it must be in [1, {MAX_MIXED_WIDTH:.0e}]")
    w = int(w)
    info = np.finfo(np.dtype(cfg.dtype))
    sigma2 = float(d) ** gs
    if not float(info.tiny) <= sigma2 <= float(info.max):
        raise ConfigError(f"model.gamma_sigma={gs} gives sigma^2 = {d}^{gs} = {sigma2:.3g}, "
                          f"outside {cfg.dtype}")
    exact = cfg.model.exact_width
    if exact and w < 2 * d:
        raise ConfigError(f"model.exact_width=true needs width >= 2d = {2 * d} (got int({d}^{gw}) "
                          f"= {w}); leave it null to simulate small widths in full")
    if not (w > 2 * d if exact is None else exact) and w * d > MAX_ELEMENTS:
        raise ConfigError(f"model.exact_width=false with width {w}: {w * d:.3g} entries per "
                          f"weight exceed {MAX_ELEMENTS:.3g}; leave it null (exact reduction)")
