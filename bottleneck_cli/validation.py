"""Checks of a composed config that types alone cannot express.

``validate(cfg)`` raises ``ConfigError`` naming the key for: a non-finite float, an unknown
choice, a value out of its range (``RANGES``: lower bounds, and upper bounds on every count
so that a typo such as ``metrics.num_log=1000000000`` is refused instead of allocating
gigabytes), a float that the run dtype cannot hold (``lam=1e39`` overflows float32,
``lr=1e-50`` underflows it to 0), and sizes derived from several keys (parameters, data,
metric records) above ``MAX_ELEMENTS`` / ``MAX_RECORDS``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


class ConfigError(ValueError):
    """A user-facing configuration problem (printed as one line)."""


MAX_STEPS = 10**9  # steps and step counts (the step counter is int32 on the device)
MAX_DEPTH = 10_000
MAX_DIM = 2**16  # widths and dimensions
MAX_SAMPLES = 10**7  # sample counts
MAX_NUM_LOG = 100_000  # log-spaced metric steps
MAX_RECORDS = 10**6  # metric records (each writes a spectra file) and checkpoints
MAX_ELEMENTS = 2**30  # parameters, data and representation entries (4 GiB in float32 each)

CHOICES = {
    "model.name": ("mlp", "linear", "leaky_resnet", "mixed", "shallow", "accnet",
                   "cnn"),
    "model.head": ("pool", "map"),
    "model.steps": ("equidistant", "irregular", "adaptive"),
    "model.activation": ("relu", "tanh", "identity"),
    "model.init": ("he", "lecun"),
    "task.name": ("compositional", "low_rank", "npz", "digits", "teacher", "completion",
                  "bottleneck_teacher", "mixed_target", "matern", "texture"),
    "task.sampling": ("cover", "uniform"),
    "task.teacher_kind": ("fc", "resnet"),
    "task.inner": ("linear", "smooth"),
    "task.inputs": ("gaussian", "identity"),
    "task.loss": ("mse", "cross_entropy", "l2norm"),
    "task.sampler": ("exact", "features"),
    "optim.name": ("gd", "sgd", "adam", "lbfgs"),
    "optim.schedule": ("constant", "cosine", "step", "cyclic"),
    "optim.lam_schedule": ("constant", "anneal"),
    "dtype": ("float32", "float64"),
    "train.until": ("steps", "converged"),
}


def _between(lo, hi):
    """(predicate, message) for an integer in [lo, hi]; the message names the bound missed."""
    return (lambda v: lo <= v <= hi), (lambda v: f"must be >= {lo}" if v < lo else
                                       f"must be <= {hi}")


# (key, predicate, message) range checks that types cannot express.
RANGES = [
    ("depth", *_between(1, MAX_DEPTH)),
    ("width", *_between(1, MAX_DIM)),
    ("lam", lambda v: v >= 0, "must be >= 0"),
    ("lr", lambda v: v > 0, "must be > 0"),
    ("steps", *_between(1, MAX_STEPS)),
    ("seed", lambda v: 0 <= v < 2**32, "must be in [0, 2**32)"),
    ("log_every_s", lambda v: v >= 0, "must be >= 0"),
    ("model.init_scale", lambda v: v > 0, "must be > 0"),
    ("model.init_gamma", lambda v: v is None or -10 <= v <= 10, "must be in [-10, 10], or null"),
    ("task.observed", lambda v: 0 < v <= 1, "must be in (0, 1]"),
    ("model.leak", lambda v: v > 0, "must be > 0 (the effective depth; the ridge is lam/(2 leak))"),
    ("model.irregular_a", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("model.adapt_every", *_between(1, MAX_STEPS)),
    ("metrics.coi_gamma", lambda v: v > 0, "must be > 0"),
    ("model.kernel", *_between(1, MAX_DIM)),
    ("task.n_train", *_between(1, MAX_SAMPLES)),
    ("task.n_test", *_between(0, MAX_SAMPLES)),
    ("task.d_in", *_between(1, MAX_DIM)),
    ("task.d_out", *_between(1, MAX_DIM)),
    ("task.d_latent", *_between(1, MAX_DIM)),
    ("task.rank", *_between(1, MAX_DIM)),
    ("task.hidden", *_between(1, MAX_DIM)),
    ("task.teacher_depth", *_between(1, MAX_DEPTH)),
    ("task.noise", lambda v: v >= 0, "must be >= 0"),
    ("task.n_pool", *_between(1, MAX_SAMPLES)),
    ("task.d_mid", *_between(1, MAX_DIM)),
    ("task.nu_g", lambda v: v > 0, "must be > 0 (the Matérn smoothness)"),
    ("task.nu_h", lambda v: v > 0, "must be > 0 (the Matérn smoothness)"),
    ("task.jitter", lambda v: v >= 0, "must be >= 0"),
    ("task.features", *_between(1, 2**20)),
    ("task.exact_max", *_between(1, 10**6)),
    ("model.hidden", *_between(1, MAX_DIM)),
    ("model.blocks", *_between(1, MAX_DEPTH)),
    ("model.d_full", *_between(1, MAX_DIM)),
    ("model.d_mid", *_between(1, MAX_DIM)),
    ("task.n_classes", lambda v: 2 <= v <= 10, "must be between 2 and 10"),
    ("task.digit", lambda v: v is None or 0 <= v <= 9, "must be 0..9, or null"),
    ("task.size", *_between(2, 1024)),
    ("task.shape_freq", *_between(0, 512)),
    ("task.pattern_freq", *_between(0, 512)),
    ("optim.momentum", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("optim.batch_size", lambda v: v is None or 1 <= v <= MAX_SAMPLES,
     f"must be >= 1 and <= {MAX_SAMPLES}, or null"),
    ("optim.decay_every", *_between(1, MAX_STEPS)),
    ("optim.cycle_steps", *_between(1, MAX_STEPS)),
    ("optim.cycle_amp", lambda v: 0 <= v < 1, "must be in [0, 1)"),
    ("optim.decay_factor", lambda v: v > 0, "must be > 0"),
    ("optim.warmup_steps", *_between(0, MAX_STEPS)),
    ("optim.lam_warm_steps", *_between(0, MAX_STEPS)),
    ("optim.lam_factor", lambda v: v >= 0, "must be >= 0"),
    ("metrics.num_log", *_between(0, MAX_NUM_LOG)),
    ("metrics.every", *_between(0, MAX_STEPS)),
    ("metrics.atol", lambda v: v >= 0, "must be >= 0"),
    ("metrics.rtol", lambda v: v >= 0, "must be >= 0"),
    ("metrics.jump_persistence", *_between(1, MAX_RECORDS)),
    ("metrics.plateau_tol", lambda v: 0 < v < 1, "must be in (0, 1)"),
    ("metrics.near_one_delta", lambda v: v > 0, "must be > 0"),
    ("metrics.max_samples", *_between(1, MAX_SAMPLES)),
    ("metrics.jacobian_samples", *_between(0, MAX_SAMPLES)),
    ("metrics.ntk_samples", *_between(1, MAX_SAMPLES)),
    ("metrics.neuron_cos", lambda v: -1 <= v <= 1, "must be in [-1, 1]"),
    ("metrics.neuron_active", lambda v: v >= 0, "must be >= 0"),
    ("task.d", *_between(1, MAX_DIM)),
    ("model.eta_factor", lambda v: v > 0, "must be > 0"),
    ("model.stop_train", lambda v: v >= 0, "must be >= 0"),
    ("model.stop_increasing", *_between(2, MAX_STEPS)),
    ("model.plateau_delta", lambda v: v >= 0, "must be >= 0"),
    ("model.sv_every", *_between(1, MAX_STEPS)),
    ("checkpoint.every", *_between(1, MAX_STEPS)),
    ("sweep.max_members", *_between(1, 10_000)),
    ("sweep.cpu_threads", *_between(0, 1024)),
    ("sweep.devices", lambda v: v == "all" or (v.isdigit() and 1 <= int(v) <= 4096),
     "must be 'all' or a number of devices from 1 to 4096"),
    ("convergence.grad_tol", lambda v: v > 0, "must be > 0"),
    ("convergence.change_tol", lambda v: v > 0, "must be > 0"),
    ("convergence.balance_tol", lambda v: v > 0, "must be > 0"),
    ("convergence.window", *_between(1, MAX_STEPS)),
    ("convergence.patience", *_between(1, MAX_RECORDS)),
]


def _get(cfg, dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _has(cfg, dotted: str) -> bool:
    """Whether the config has this key (task and model families have different keys)."""
    node = cfg
    for part in dotted.split("."):
        if part not in node:
            return False
        node = node[part]
    return True


def _floats(node, key: str = ""):
    """(dotted key, value) of every float in ``node``, in nested nodes and lists too."""
    if hasattr(node, "items"):
        for k, v in node.items():
            yield from _floats(v, f"{key}.{k}" if key else str(k))
    elif isinstance(node, Sequence) and not isinstance(node, str):
        for i, v in enumerate(node):
            yield from _floats(v, f"{key}[{i}]")
    elif isinstance(node, float):
        yield key, node


def _check_finite(cfg) -> None:
    for key, value in _floats(cfg):
        if not math.isfinite(value):
            raise ConfigError(f"{key}={value} must be a finite number")


def _check_dtype_range(cfg) -> None:
    """Every float representable in the run dtype: no overflow to inf, and no nonzero
    value below the dtype's smallest normal number (it would act as 0)."""
    info = np.finfo(np.dtype(cfg.dtype))
    largest, tiny = float(info.max), float(info.tiny)
    for key, value in _floats(cfg):
        if abs(value) > largest:
            raise ConfigError(f"{key}={value:g} overflows {cfg.dtype} (largest {largest:.3g})")
        if 0 < abs(value) < tiny:
            raise ConfigError(f"{key}={value:g} underflows {cfg.dtype} "
                              f"(smallest normal {tiny:.3g}; use 0 or a larger value)")


def _sizes(cfg) -> dict[str, tuple[int, str]]:
    """Derived sizes: name -> (size, the keys that set it)."""
    w, depth = cfg.width, cfg.depth
    t = {k: cfg.task.get(k) or 0 for k in ("d_in", "d_out", "d_latent", "hidden", "n_train",
                                           "n_test", "teacher_depth", "n_pool", "d_mid")}
    # tasks without these keys (npz, digits) are sized by their data; bound them by 1
    d_in, d_out, n_train = max(t["d_in"], 1), max(t["d_out"], 1), max(t["n_train"], 1)
    params = d_in * d_out if depth == 1 else w * (d_in + d_out) + (depth - 2) * w * w
    samples = min(n_train, cfg.metrics.max_samples)
    teacher = t["hidden"] ** 2 * t["teacher_depth"] if cfg.task.name == "teacher" else 0
    return {
        "parameters": (params, "depth, width, task.d_in, task.d_out"),
        "data entries": ((max(t["n_train"], t["n_pool"]) + t["n_test"])
                         * (d_in + d_out + t["d_latent"] + t["hidden"] + t["d_mid"]),
                         "task.n_train, task.n_test and the task dimensions"),
        "teacher parameters": (teacher, "task.hidden, task.teacher_depth"),
        "Jacobian entries": (min(cfg.metrics.jacobian_samples, n_train) * d_in * d_out,
                             "metrics.jacobian_samples, task.d_in, task.d_out"),
        "representation entries": ((depth - 1) * samples * w,
                                   "depth, width, metrics.max_samples"),
    }


def _check_sizes(cfg) -> None:
    """Refuse configs whose arrays or record counts no machine of ours could hold."""
    for name, (size, keys) in _sizes(cfg).items():
        if size > MAX_ELEMENTS:
            raise ConfigError(f"{size:.3g} {name} (from {keys}) exceed the limit of "
                              f"{MAX_ELEMENTS:.3g}")
    for key in ("metrics.every", "checkpoint.every"):
        every = _get(cfg, key)
        if every > 0 and cfg.steps // every > MAX_RECORDS:
            raise ConfigError(f"{key}={every} with steps={cfg.steps} gives "
                              f"{cfg.steps // every} records; at most {MAX_RECORDS}")


def _check_rebalance(cfg, where: str, index: int) -> None:
    """A rebalancing stage follows another one, on a net with the norm-balance identity."""
    m = cfg.model
    if index == 0:
        raise ConfigError(f"{where}.rebalance: only a stage that follows another one can "
                          "rebalance (the first stage starts from the initialisation)")
    if (m.get("_target_") or m.get("name") not in ("mlp", "linear", "shallow")
            or m.get("activation", "relu") not in ("relu", "identity")
            or m.get("ridge_on_bias", False)):
        raise ConfigError(f"{where}.rebalance needs a ReLU or linear mlp whose biases are not "
                          "in the ridge (model=mlp|linear|shallow, model.ridge_on_bias=false)")


def _check_stages(cfg) -> None:
    """Stage lengths add up to ``steps``; only the last may leave its length unset."""
    specs = list(cfg.optim.stages or [])
    if not specs:
        return
    total = 0
    for i, spec in enumerate(specs):
        where = f"optim.stages[{i}]"
        if spec.name is not None and spec.name not in CHOICES["optim.name"]:
            raise ConfigError(f"{where}.name={spec.name!r} is not valid; choose from "
                              f"{list(CHOICES['optim.name'])}")
        if spec.schedule is not None and spec.schedule not in CHOICES["optim.schedule"]:
            raise ConfigError(f"{where}.schedule={spec.schedule!r} is not valid; choose from "
                              f"{list(CHOICES['optim.schedule'])}")
        if spec.lr_scale <= 0 or spec.lam_scale < 0:
            raise ConfigError(f"{where}: lr_scale must be > 0 and lam_scale >= 0")
        if spec.get("lam_start_scale") is not None and not (
                spec.lam_start_scale > 0 and spec.lam_scale > 0):
            raise ConfigError(f"{where}: a ridge continuation needs lam_start_scale > 0 and "
                              "lam_scale > 0 (it moves geometrically between them)")
        if spec.get("rebalance"):
            _check_rebalance(cfg, where, i)
        if spec.steps is None:
            if i != len(specs) - 1:
                raise ConfigError(f"{where}.steps is required (only the last stage may omit it)")
            continue
        if spec.steps < 1:
            raise ConfigError(f"{where}.steps={spec.steps} must be >= 1")
        total += spec.steps
    if total > cfg.steps or (specs[-1].steps is not None and total != cfg.steps):
        raise ConfigError(f"the stages' steps add up to {total} but steps={cfg.steps}; make "
                          "them equal, or leave the last stage's steps unset")
    if any((s.name or cfg.optim.name) == "lbfgs" for s in specs) or cfg.optim.name == "lbfgs":
        _check_full_batch(cfg)


def _check_full_batch(cfg) -> None:
    if cfg.optim.batch_size is not None:
        raise ConfigError("lbfgs trains on full batches: leave optim.batch_size unset")


def validate(cfg) -> None:
    """Raise ConfigError (naming the key) for out-of-range or unknown-choice values."""
    _check_finite(cfg)
    # Keys a family does not have are not checked (a task family has its own keys; a
    # user's own model class checks its settings itself).
    for key, allowed in CHOICES.items():
        if not _has(cfg, key):
            continue
        value = _get(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is not valid; choose from {list(allowed)}")
    _check_dtype_range(cfg)
    for key, ok, message in RANGES:
        if not _has(cfg, key):
            continue
        value = _get(cfg, key)
        if not ok(value):
            raise ConfigError(f"{key}={value!r} {message(value) if callable(message) else message}")
    _check_sizes(cfg)
    if cfg.task.name == "npz" and not cfg.task.path:
        raise ConfigError("task.path is required for task=npz (task=npz task.path=FILE.npz)")
    if cfg.task.name in ("low_rank", "completion"):
        limit = min(cfg.task.d_in, cfg.task.d_out)
        if cfg.task.rank > limit:
            raise ConfigError(f"task.rank={cfg.task.rank} must be <= min(task.d_in, "
                              f"task.d_out)={limit}")
    if cfg.task.name == "compositional" and cfg.task.rank > cfg.task.d_latent:
        raise ConfigError(
            f"task.rank={cfg.task.rank} must be <= task.d_latent={cfg.task.d_latent}"
        )
    _check_stages(cfg)
    from .family_checks import check_families  # the families' cross-key checks

    check_families(cfg)
    if cfg.optim.name == "lbfgs":
        _check_full_batch(cfg)
    sv = cfg.task.get("singular_values")
    if sv is not None and any(s <= 0 for s in sv):
        raise ConfigError("task.singular_values must all be > 0")
