"""The teacher task: y = a random ReLU network of x (SCIENCE.md 5.3)."""

from __future__ import annotations

import numpy as np

from .base import Dataset, finish, loss_of, streams, task_seed


def teacher(cfg, seed: int, dtype) -> Dataset:
    """x ~ N(0, I_{d_in}); y = T(x), T a random ReLU MLP with ``teacher_depth`` weight
    matrices of width ``hidden`` (He init, zero biases), + noise on training targets."""
    rw, rx, rn = streams("teacher", task_seed(cfg, seed), 3)
    dims = [cfg.d_in] + [cfg.hidden] * (cfg.teacher_depth - 1) + [cfg.d_out]
    Ws = [rw.standard_normal((a, b)) * np.sqrt(2.0 / a) for a, b in zip(dims[:-1], dims[1:])]
    x = rx.standard_normal((cfg.n_train + cfg.n_test, cfg.d_in))
    a = x
    for W in Ws[:-1]:
        a = np.maximum(a @ W, 0.0)
    y = a @ Ws[-1]
    y = y / (y[: cfg.n_train].std() + 1e-12)
    n = cfg.n_train
    ytr = y[:n] + cfg.noise * rn.standard_normal(y[:n].shape) if cfg.noise > 0 else y[:n]
    info = {"teacher_depth": int(cfg.teacher_depth), "teacher_width": int(cfg.hidden)}
    return finish(x[:n], ytr, x[n:], y[n:], loss_of(cfg, False), False, info, dtype)
