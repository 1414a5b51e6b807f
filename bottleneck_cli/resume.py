"""Resuming a run: its checkpoint is checked against the config before it is trusted.

A checkpoint that cannot be read, or that does not fit the run's config (other keys
or shapes, a step outside ``1..steps``), is discarded with a warning line and the run
restarts from step 0. Metric records after the checkpoint's step are cut off; records
missing before it (a ``metrics.jsonl`` cut short) are named in a warning line.
"""

from __future__ import annotations

import sys
import zipfile

import numpy as np

from . import rundir as rd
from . import runfiles
from .config import ConfigError

_SCALARS = {"alive": "b", "div_step": "iu", "step": "iu", "elapsed": "f"}  # key -> dtype kinds


def warn(text: str) -> None:
    print(f"bncli: warning: {text}", file=sys.stderr, flush=True)


def checkpoint_shapes(cfg, step: int = 0) -> dict[str, tuple]:
    """Key -> shape of every array in one member's checkpoint at ``step`` under ``cfg``
    (the optimizer state is that of the stage ``step`` belongs to)."""
    import jax

    from . import models, tasks
    from .optim import direction, stage_at, stages

    dtype = np.float64 if cfg.dtype == "float64" else np.float32
    data = tasks.make_dataset(cfg.task, cfg.seed, dtype)
    model = models.build(cfg, data.x_train.shape[1:], data.d_out)
    shapes = model.shapes() if hasattr(model, "shapes") else {
        k: v.shape for k, v in model.init(cfg.seed, dtype).items()}
    params = {k: jax.ShapeDtypeStruct(s, dtype) for k, s in shapes.items()}
    tx = direction(cfg.optim, stage_at(stages(cfg), step).name)
    opt = jax.tree_util.tree_leaves(jax.eval_shape(tx.init, params))
    out = {f"params/{k}": tuple(s) for k, s in shapes.items()}
    out.update({f"opt/{i:03d}": tuple(leaf.shape) for i, leaf in enumerate(opt)})
    out.update({k: () for k in _SCALARS})
    return out


def checkpoint_problem(start: dict, cfg) -> str | None:
    """Why the checkpoint arrays ``start`` cannot resume a run of ``cfg`` (None: they can)."""
    want = checkpoint_shapes(cfg, int(start["step"]))
    missing, extra = sorted(set(want) - set(start)), sorted(set(start) - set(want))
    if missing or extra:
        return f"its arrays do not fit the config (missing {missing[:3]}, unexpected {extra[:3]})"
    for key, shape in want.items():
        if start[key].shape != shape:
            return f"{key} has shape {start[key].shape}, the config needs {shape}"
    for key, kinds in _SCALARS.items():
        if start[key].dtype.kind not in kinds:
            return f"{key} has dtype {start[key].dtype}"
    step = int(start["step"])
    if not 0 < step <= cfg.steps:  # bncli never checkpoints step 0
        return f"its step {step} is outside 1..{cfg.steps}"
    if not np.isfinite(start["elapsed"]):
        return "its elapsed time is not finite"
    return None


def _read_checkpoint(run: rd.RunDir, cfg) -> tuple[dict, str | None]:
    """The checkpoint's arrays, or ``({}, why)`` when it cannot be used."""
    try:
        start = rd.read_npz(run.file(rd.CHECKPOINT))
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        return {}, f"it is damaged ({type(exc).__name__})"
    if "step" not in start or np.shape(start["step"]) != ():
        return {}, "it records no step"
    if cfg is None:
        return start, None
    why = checkpoint_problem(start, cfg)
    return ({}, why) if why else (start, None)


def _ranges(steps: list[int], marks: list[int]) -> str:
    """``steps`` (a subset of ``marks``) as runs of consecutive marks: ``12..40, 60``."""
    parts, run = [], []
    for s in marks:
        if s in steps:
            run.append(s)
        elif run:
            parts.append(run)
            run = []
    parts += [run] if run else []
    return ", ".join(f"{r[0]}..{r[-1]}" if len(r) > 1 else str(r[0]) for r in parts)


def _check_gap(run: rd.RunDir, cfg, step: int) -> None:
    """Warn when records the run made before ``step`` are missing from metrics.jsonl."""
    from .train import metric_steps

    marks = [s for s in metric_steps(cfg) if s <= step]
    have = {r.get("step") for r in run.read_metrics()}
    missing = [s for s in marks if s not in have]
    if missing:
        warn(f"{run.file(rd.METRICS)} lacks the records of steps {_ranges(missing, marks)} "
             f"({len(missing)} of {len(marks)}); resuming keeps the gap: use --force to "
             "retrain from step 0")


def _truncate(run: rd.RunDir, step: int) -> None:
    """Cut metrics after ``step``; a damaged metrics.jsonl is a one-line ConfigError."""
    try:
        run.truncate_metrics(step)
    except ValueError as exc:  # a damaged record: the message names the file and line
        raise ConfigError(f"{exc}; fix it, or use --force to retrain") from None
    except OSError as exc:
        raise ConfigError(f"cannot rewrite {run.file(rd.METRICS)}: {exc.strerror or exc}; "
                          "use --force to retrain") from None


def load_start(run: rd.RunDir, cfg=None) -> dict:
    """Checkpoint arrays to resume from (empty when starting fresh); trims later
    metrics. Call while holding the run's lock (also removes stale temporary files).
    With ``cfg`` the checkpoint must fit it, and missing earlier records are reported."""
    runfiles.remove_stale_tmp(run.path)
    path = run.file(rd.CHECKPOINT)
    if not path.exists():
        if run.file(rd.METRICS).exists():
            _truncate(run, -1)
        return {}
    start, why = _read_checkpoint(run, cfg)
    if why:
        warn(f"{path}: {why}; discarded, the run restarts from step 0")
        path.unlink()  # a damaged or foreign checkpoint is discarded, never trusted
        _truncate(run, -1)
        return {}
    step = int(start["step"])
    _truncate(run, step)
    if cfg is not None:
        _check_gap(run, cfg, step)
    return start
