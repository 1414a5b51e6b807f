"""The digits task: scikit-learn's 8x8 handwritten digits (shipped with the package), as
(N, 8, 8, 1) images (fully connected models flatten them to 64 inputs)."""

from __future__ import annotations

from .base import Dataset, TaskError, finish, loss_of, one_hot, streams


def digits(cfg, seed: int, dtype) -> Dataset:
    """Classes < n_classes, pixels / 16 in [0, 1], seeded shuffle, first n_train then n_test.

    ``task.digit`` set: the autoencoder of that one class (arXiv 2402.08010's digit-0
    MNIST autoencoder, at 8x8): targets are the images themselves, flattened (64,).
    """
    from sklearn.datasets import load_digits

    x, labels = load_digits(return_X_y=True)
    digit = cfg.get("digit")
    keep = labels == digit if digit is not None else labels < cfg.n_classes
    x, labels = x[keep] / 16.0, labels[keep]
    what = f"class {digit}" if digit is not None else f"classes 0..{cfg.n_classes - 1}"
    if cfg.n_train > len(x):
        raise TaskError(f"task.n_train={cfg.n_train} exceeds the {len(x)} digit images of {what}")
    (rng,) = streams("digits", seed, 1)
    order = rng.permutation(len(x))
    n, m = cfg.n_train, min(cfg.n_test, len(x) - cfg.n_train)
    tr, te = order[:n], order[n : n + m]
    images = x.reshape(-1, 8, 8, 1)
    info = {"n_available": len(x)}
    if digit is not None:
        info["digit"] = int(digit)
        return finish(images[tr], x[tr], images[te], x[te], loss_of(cfg, False), False,
                      info, dtype)
    y = one_hot(labels, cfg.n_classes)
    info["n_classes"] = int(cfg.n_classes)
    return finish(images[tr], y[tr], images[te], y[te], loss_of(cfg, True), True, info, dtype)
