"""Tasks: deterministic datasets from ``(task config, seed)``, built on the host with NumPy.

``make_dataset(task_cfg, seed)`` dispatches on ``task_cfg.name`` through ``TASKS``; one
file per task family, its builder registered below. The
seed is ``task_cfg.data_seed`` when set, else the run seed; every task draws from
``np.random.SeedSequence([salt, seed])`` (one fixed salt per task) split into independent
streams, so the same (config, seed) always gives bit-identical arrays and train and test
come from one draw. Rows are samples: ``x`` is (N, d_in), ``y`` is (N, d_out).
Classification targets are one-hot rows (``classification=True``).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .base import Dataset, TaskError, task_seed
from .bottleneck_teacher import bottleneck_teacher
from .completion import completion, completion_target
from .compositional import compositional, compositional_maps
from .digits import digits
from .files import npz
from .low_rank import low_rank, low_rank_matrix
from .mixed_target import mixed_target, mixed_target_matrices
from .matern import check as check_matern
from .matern import matern
from .teacher import teacher
from .texture import texture

TASKS: dict[str, Callable] = {
    "compositional": compositional,
    "low_rank": low_rank,
    "npz": npz,
    "digits": digits,
    "teacher": teacher,
    "completion": completion,
    "bottleneck_teacher": bottleneck_teacher,
    "mixed_target": mixed_target,
    "matern": matern,
    "texture": texture,
}
# Tasks whose data are costly to draw check their settings without drawing:
# ``check(task_cfg) -> (one sample's input shape, d_out)``, raising TaskError.
TASK_CHECKS: dict[str, Callable] = {"matern": check_matern}


def check_task(task_cfg, seed: int, dtype=np.float32) -> tuple[tuple[int, ...], int]:
    """Raise TaskError for a bad task setting or file, before any run folder exists; else
    the shapes of one sample's input and output. Draws the data unless the task can check
    its settings without (``TASK_CHECKS``)."""
    if task_cfg.name in TASK_CHECKS:
        return TASK_CHECKS[task_cfg.name](task_cfg)
    data = make_dataset(task_cfg, seed, dtype)
    return tuple(data.x_train.shape[1:]), data.d_out


def make_dataset(task_cfg, seed: int, dtype=np.float32) -> Dataset:
    """Build the dataset of ``task_cfg.name`` (seed: ``task_cfg.data_seed`` or ``seed``)."""
    name = task_cfg.name
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name](task_cfg, task_seed(task_cfg, seed), np.dtype(dtype))


__all__ = ["TASKS", "Dataset", "TaskError", "compositional_maps", "completion_target",
           "low_rank_matrix", "make_dataset", "check_task", "mixed_target_matrices"]
