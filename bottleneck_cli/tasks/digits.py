"""The digits task: scikit-learn's 8x8 handwritten digits (shipped with the package)."""

from __future__ import annotations

from .base import Dataset, TaskError, finish, loss_of, one_hot, streams


def digits(cfg, seed: int, dtype) -> Dataset:
    """Classes < n_classes, pixels / 16 in [0, 1], seeded shuffle, first n_train then n_test."""
    from sklearn.datasets import load_digits

    x, labels = load_digits(return_X_y=True)
    keep = labels < cfg.n_classes
    x, labels = x[keep] / 16.0, labels[keep]
    if cfg.n_train > len(x):
        raise TaskError(
            f"task.n_train={cfg.n_train} exceeds the {len(x)} digit images of classes "
            f"0..{cfg.n_classes - 1}"
        )
    (rng,) = streams("digits", seed, 1)
    order = rng.permutation(len(x))
    n, m = cfg.n_train, min(cfg.n_test, len(x) - cfg.n_train)
    tr, te = order[:n], order[n : n + m]
    y = one_hot(labels, cfg.n_classes)
    info = {"n_classes": int(cfg.n_classes), "n_available": len(x)}
    return finish(x[tr], y[tr], x[te], y[te], loss_of(cfg, True), True, info, dtype)
