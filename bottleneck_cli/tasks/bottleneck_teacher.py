"""The bottleneck teacher of arXiv 2405.17573 (Appendix B): f* = g_m o ... o g_1, random
networks through low inner dimensions, so that the bottleneck rank k* is known.

``teacher_kind=fc``: random ReLU MLPs (Fig. 1: 30 -> 3 -> 30); ``resnet``: random ResNets
(Fig. 2: 30 -> 6 -> 3 -> 30), each a linear map in, ``teacher_depth`` residual blocks
h <- h + V relu(h) + c of width ``hidden`` and a linear map out. x ~ N(0, I); inputs and
outputs are demeaned and scaled to unit entry variance with the training set's statistics.
"""

from __future__ import annotations

import numpy as np

from .base import Dataset, finish, loss_of, streams, task_seed


def _fc(rng, d_a: int, d_b: int, hidden: int, depth: int):
    dims = [d_a] + [hidden] * (depth - 1) + [d_b]
    Ws = [rng.standard_normal((a, b)) * np.sqrt(2.0 / a) for a, b in zip(dims[:-1], dims[1:])]
    bs = [0.1 * rng.standard_normal(b) for b in dims[1:-1]]

    def g(x):
        for W, b in zip(Ws[:-1], bs):
            x = np.maximum(x @ W + b, 0.0)
        return x @ Ws[-1]
    return g


def _resnet(rng, d_a: int, d_b: int, hidden: int, depth: int):
    w_in = rng.standard_normal((d_a, hidden)) / np.sqrt(d_a)
    blocks = [(rng.standard_normal((hidden, hidden)) * np.sqrt(2.0 / hidden) / depth,
               0.1 * rng.standard_normal(hidden) / depth) for _ in range(depth)]
    w_out = rng.standard_normal((hidden, d_b)) / np.sqrt(hidden)

    def g(x):
        h = x @ w_in
        for V, c in blocks:
            h = h + np.maximum(h, 0.0) @ V + c
        return h @ w_out
    return g


def _standardise(a: np.ndarray, n: int) -> np.ndarray:
    a = a - a[:n].mean(axis=0)
    return a / (a[:n].std() + 1e-12)


def bottleneck_teacher(cfg, seed: int, dtype) -> Dataset:
    """x ~ N(0, I_{d_in}); y = g_m(...g_1(x)) through ``task.inner_dims``."""
    rw, rx = streams("bottleneck_teacher", task_seed(cfg, seed), 2)
    dims = [int(cfg.d_in), *[int(k) for k in cfg.inner_dims], int(cfg.d_out)]
    make = _fc if cfg.teacher_kind == "fc" else _resnet
    maps = [make(rw, a, b, int(cfg.hidden), int(cfg.teacher_depth))
            for a, b in zip(dims[:-1], dims[1:])]
    n = int(cfg.n_train)
    x = _standardise(rx.standard_normal((n + cfg.n_test, cfg.d_in)), n)
    y = x
    for g in maps:
        y = g(y)
    y = _standardise(y, n)
    info = {"true_rank": int(min(dims[1:-1])), "inner": dims[1:-1],
            "teacher_kind": str(cfg.teacher_kind)}
    return finish(x[:n], y[:n], x[n:], y[n:], loss_of(cfg, False), False, info, dtype)
