"""The low-rank task: Y = A X with rank(A) = rank (SCIENCE.md section 4); identity inputs give the denoising problem."""

from __future__ import annotations

import numpy as np

from .base import Dataset, TaskError, finish, loss_of, streams, task_seed


def target_singular_values(cfg, default=None) -> np.ndarray:
    """``task.singular_values`` checked against ``task.rank`` (and the shape), or
    ``default(rank)`` when unset (low_rank: rank..1 evenly spaced)."""
    r = cfg.rank
    if r > min(cfg.d_in, cfg.d_out):
        limit = min(cfg.d_in, cfg.d_out)
        raise TaskError(f"task.rank={r} must be <= min(task.d_in, task.d_out)={limit}")
    if cfg.singular_values is None:
        return (default or (lambda k: np.linspace(k, 1, k)))(r)
    s = np.asarray(list(cfg.singular_values), dtype=np.float64)
    if s.shape != (r,):
        raise TaskError(f"task.singular_values has {s.size} entries but task.rank={r}")
    if np.any(s <= 0) or not np.all(np.isfinite(s)):
        raise TaskError("task.singular_values must all be finite and > 0")
    return s


def _orthonormal(rng: np.random.Generator, n: int, r: int) -> np.ndarray:
    q, rr = np.linalg.qr(rng.standard_normal((n, r)))
    return q * np.sign(np.diag(rr))  # sign fix: Haar-distributed columns


def low_rank_matrix(task_cfg, seed: int) -> np.ndarray:
    """A = U diag(s) V^T, (d_out, d_in), U and V random orthonormal (QR of a Gaussian)."""
    s = target_singular_values(task_cfg)
    ra = streams("low_rank", task_seed(task_cfg, seed), 3)[0]
    U = _orthonormal(ra, task_cfg.d_out, task_cfg.rank)
    V = _orthonormal(ra, task_cfg.d_in, task_cfg.rank)
    return (U * s) @ V.T


def low_rank(cfg, seed: int, dtype) -> Dataset:
    """y = A x. inputs=identity: X = I_{d_in} (denoising, N = d_in) and the test set is (I, A^T)."""
    A = low_rank_matrix(cfg, seed)
    _, rx, rn = streams("low_rank", seed, 3)
    if cfg.inputs == "identity":
        xtr = xte = np.eye(cfg.d_in)
    elif cfg.inputs == "gaussian":
        x = rx.standard_normal((cfg.n_train + cfg.n_test, cfg.d_in))
        xtr, xte = x[: cfg.n_train], x[cfg.n_train :]
    else:
        raise TaskError(
            f"task.inputs={cfg.inputs!r} is not valid; choose from ['gaussian', 'identity']"
        )
    ytr, yte = xtr @ A.T, xte @ A.T
    if cfg.noise > 0:
        ytr = ytr + cfg.noise * rn.standard_normal(ytr.shape)
    sv = [float(v) for v in target_singular_values(cfg)]
    info = {"true_rank": int(cfg.rank), "singular_values": sv, "inputs": str(cfg.inputs)}
    return finish(xtr, ytr, xte, yte, loss_of(cfg, False), False, info, dtype)
