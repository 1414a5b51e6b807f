"""The target of the mixed lazy/active experiment (arXiv 2405.17580, main.ipynb):
A* = U V^T with U, V of shape d x K, entries K^(-1/4) N(0, 1), and noise E with
N(0, noise^2) entries (official: noise 1). Train error ||A - (A* + E)||_F^2 / d^2, test
error ||A - A*||_F^2 / d^2: as a dataset, identity inputs X = I_d with targets
(A* + E)^T (train) and A*^T (test), so that the mean squared error over entries of
x A^T - y is exactly these errors.
"""

from __future__ import annotations

import numpy as np

from .base import TaskError, finish, streams


def mixed_target_matrices(cfg, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(A*, E) in float64, deterministic in the seed."""
    d, k = int(cfg.d), int(cfg.rank)
    if k > d:
        raise TaskError(f"task.rank={k} must be <= task.d={d}")
    ru, re = streams("mixed_target", seed, 2)
    uv = k ** (-0.25) * ru.standard_normal((2, d, k))
    return uv[0] @ uv[1].T, float(cfg.noise) * re.standard_normal((d, d))


def mixed_target(cfg, seed: int, dtype):
    a_star, e = mixed_target_matrices(cfg, seed)
    eye = np.eye(int(cfg.d))
    info = {"true_rank": int(cfg.rank), "op_norm": float(np.linalg.norm(a_star, 2))}
    return finish(eye, (a_star + e).T, eye, a_star.T, "mse", False, info, dtype)
