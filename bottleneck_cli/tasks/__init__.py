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
from .compositional import compositional, compositional_maps
from .digits import digits
from .files import npz
from .low_rank import low_rank, low_rank_matrix
from .teacher import teacher
from .texture import texture

TASKS: dict[str, Callable] = {
    "compositional": compositional,
    "low_rank": low_rank,
    "npz": npz,
    "digits": digits,
    "teacher": teacher,
    "texture": texture,
}


def make_dataset(task_cfg, seed: int, dtype=np.float32) -> Dataset:
    """Build the dataset of ``task_cfg.name`` (seed: ``task_cfg.data_seed`` or ``seed``)."""
    name = task_cfg.name
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name](task_cfg, task_seed(task_cfg, seed), np.dtype(dtype))


__all__ = ["TASKS", "Dataset", "TaskError", "compositional_maps", "low_rank_matrix",
           "make_dataset"]
