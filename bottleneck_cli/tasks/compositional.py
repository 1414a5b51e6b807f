"""The compositional task: f* = h o P_k o g0^{-1}, bottleneck rank k (SCIENCE.md 5.1)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .base import Dataset, TaskError, finish, loss_of, streams, task_seed


def _compositional(cfg, seed: int):
    """Return (g, h, z, noise_rng): g: z -> x and h: z -> y, both standardized on train."""
    k, dl, d_in, d_out, m = cfg.rank, cfg.d_latent, cfg.d_in, cfg.d_out, cfg.hidden
    if k > dl:
        raise TaskError(f"task.rank={k} must be <= task.d_latent={dl}")
    if d_in < dl:
        raise TaskError(
            f"task.d_in={d_in} must be >= task.d_latent={dl} so that x = g(z) determines z"
        )
    rg, rh, rz, rn = streams("compositional", seed, 4)
    # g0(z) = z B [+ tanh(z W1 + b1) V1]: the linear part (full column rank) keeps g0 injective-ish.
    B = rg.standard_normal((dl, d_in)) / np.sqrt(dl)
    if cfg.inner == "smooth":
        W1, b1 = rg.standard_normal((dl, m)) / np.sqrt(dl), 0.5 * rg.standard_normal(m)
        V1 = rg.standard_normal((m, d_in)) / np.sqrt(m)
        g_raw = lambda z: z @ B + np.tanh(z @ W1 + b1) @ V1  # noqa: E731
    elif cfg.inner == "linear":
        g_raw = lambda z: z @ B  # noqa: E731
    else:
        raise TaskError(f"task.inner={cfg.inner!r} is not valid; choose from ['linear', 'smooth']")
    # h(z_1..z_k) = tanh(z_{:k} W2 + b2) V2.
    W2, b2 = rh.standard_normal((k, m)) / np.sqrt(k), 0.5 * rh.standard_normal(m)
    V2 = rh.standard_normal((m, d_out)) / np.sqrt(m)
    h_raw = lambda z: np.tanh(z[:, :k] @ W2 + b2) @ V2  # noqa: E731
    z = rz.standard_normal((cfg.n_train + cfg.n_test, dl))
    # Standardize with training statistics: x per feature, y by its overall std.
    x0, y0 = g_raw(z[: cfg.n_train]), h_raw(z[: cfg.n_train])
    mx, sx = x0.mean(0), x0.std(0)
    sx = np.where(sx > 0, sx, 1.0)
    my = y0.mean(0)
    sy = float((y0 - my).std()) or 1.0
    g = lambda z: (g_raw(z) - mx) / sx  # noqa: E731
    h = lambda z: (h_raw(z) - my) / sy  # noqa: E731
    return g, h, z, rn


def compositional_maps(task_cfg, seed: int) -> tuple[Callable, Callable]:
    """The maps (g, h) of the compositional task: x = g(z), clean y = h(z) (uses z_1..z_rank)."""
    g, h, _, _ = _compositional(task_cfg, task_seed(task_cfg, seed))
    return g, h


def compositional(cfg, seed: int, dtype) -> Dataset:
    """z ~ N(0, I_{d_latent}), x = g0(z), y = h(z_1..z_rank) (+ noise on training targets)."""
    g, h, z, rn = _compositional(cfg, seed)
    x, y = g(z), h(z)
    n = cfg.n_train
    ytr = y[:n] + cfg.noise * rn.standard_normal(y[:n].shape) if cfg.noise > 0 else y[:n]
    info = {"true_rank": int(cfg.rank), "d_latent": int(cfg.d_latent), "inner": str(cfg.inner)}
    return finish(x[:n], ytr, x[n:], y[n:], loss_of(cfg, False), False, info, dtype)
