"""Matrix completion (arXiv 2305.16038; SCIENCE.md 5.6): a rank-r target M* (d_out x d_in)
observed on a fraction of its entries.

The network reads the matrix row by row: inputs are the identity X = I_{d_in}, so a deep
linear net outputs P = W_1 ... W_L = A^T (our W are (fan_in, fan_out)) and the targets are
Y = M*^T with the observation mask on the same (d_in, d_out) grid. The fit is the mean over
observed entries of (A_ij - M*_ij)^2 (``objective.fit_term`` with the mask). The test set is
the clean M*^T with the unobserved entries as its mask (all entries when all are observed).
"""

from __future__ import annotations

import numpy as np

from .base import TaskError, finish, streams
from .low_rank import _orthonormal, target_singular_values


def _singular_values(cfg) -> np.ndarray:
    """The target's singular values: ``task.singular_values``, default all 1."""
    return target_singular_values(cfg, default=np.ones)


def n_observed(cfg) -> int:
    """The number of observed entries: round(observed * d_in * d_out), at least 1."""
    if not 0 < cfg.observed <= 1:
        raise TaskError(f"task.observed={cfg.observed} must be in (0, 1]")
    return max(1, int(round(cfg.observed * cfg.d_in * cfg.d_out)))


def observation_mask(cfg, rng: np.random.Generator) -> np.ndarray:
    """(d_in, d_out) 0/1 mask with exactly ``n_observed`` ones, uniform among such masks
    (``sampling=uniform``) or holding one entry of every row and column first
    (``sampling=cover``: a random matching of rows and columns, then uniform). A row or
    column with no observed entry is refused (its values cannot be recovered)."""
    d_in, d_out, n = cfg.d_in, cfg.d_out, n_observed(cfg)
    mask = np.zeros(d_in * d_out)
    if cfg.sampling == "cover":
        k = max(d_in, d_out)
        if n < k:
            raise TaskError(f"task.observed={cfg.observed} gives {n} entries, fewer than the "
                            f"{k} needed to cover every row and column")
        rows = rng.permutation(np.arange(k) % d_in)
        cols = rng.permutation(np.arange(k) % d_out)
        mask[rows * d_out + cols] = 1
    rest = np.flatnonzero(mask == 0)
    mask[rng.choice(rest, n - int(mask.sum()), replace=False)] = 1
    mask = mask.reshape(d_in, d_out)
    empty_in, empty_out = np.flatnonzero(mask.sum(1) == 0), np.flatnonzero(mask.sum(0) == 0)
    if empty_in.size or empty_out.size:
        what = (f"column {int(empty_in[0])} of M*" if empty_in.size
                else f"row {int(empty_out[0])} of M*")
        raise TaskError(f"task.observed={cfg.observed} leaves {what} entirely unobserved "
                        "(raise task.observed, or task.sampling=cover)")
    return mask


def completion_target(cfg, seed: int) -> np.ndarray:
    """M* = U diag(s) V^T, (d_out, d_in), random orthonormal U, V (deterministic in seed)."""
    s = _singular_values(cfg)
    rm = streams("completion", seed, 3)[0]
    return (_orthonormal(rm, cfg.d_out, cfg.rank) * s) @ _orthonormal(rm, cfg.d_in, cfg.rank).T


def completion(cfg, seed: int, dtype):
    """Dataset: x = I, y = M*^T (+ noise on training targets), mask = observed entries."""
    M = completion_target(cfg, seed)
    _, rmask, rnoise = streams("completion", seed, 3)
    mask = observation_mask(cfg, rmask)
    x = np.eye(cfg.d_in)
    y = M.T.copy()
    ytr = y + cfg.noise * rnoise.standard_normal(y.shape) if cfg.noise > 0 else y
    ytr = ytr * mask  # unobserved entries carry no information (they are never read)
    mask_test = 1.0 - mask if mask.min() == 0 else np.ones_like(mask)
    info = {"true_rank": int(cfg.rank), "singular_values": [float(v) for v in _singular_values(cfg)],
            "observed": int(mask.sum()), "inputs": "identity"}
    loss = "mse"
    if cfg.loss != "mse":
        raise TaskError("task=completion trains on squared errors (task.loss=mse)")
    data = finish(x, ytr, x, y, loss, False, info, dtype)
    return data.with_mask(mask, mask_test)
