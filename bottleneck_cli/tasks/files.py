"""The npz task: the user's own arrays from an .npz file (read and checked by npzfile.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .base import Dataset, TaskError, finish, loss_of, one_hot


def _is_one_hot(y: np.ndarray) -> bool:
    return y.ndim == 2 and bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(1) == 1))


def npz(cfg, seed: int, dtype) -> Dataset:
    """Load x_train, y_train[, x_test, y_test] from ``task.path``.

    ``x_train`` is (N, d_in) or images (N, H, W, C) (``x_test`` alike). 1-D integer labels
    become one-hot rows; classification is True for those and for 2-D
    targets whose rows are already exactly one-hot.
    """
    if not cfg.path:
        raise TaskError("task.path is required for task=npz (task=npz task.path=FILE.npz)")
    path = Path(str(cfg.path)).expanduser()
    if not path.is_file():
        raise TaskError(f"npz file {str(path)!r} does not exist")
    from .npzfile import check_dtype_range, check_targets, read_arrays

    arrays = read_arrays(path)
    for k in ("x_train", "x_test"):
        if k in arrays and arrays[k].ndim not in (2, 4):
            raise TaskError(f"{k} must be 2-D (N, d_in) or 4-D images (N, H, W, C), got "
                            f"shape {arrays[k].shape}")
    xtr, ytr = arrays["x_train"], check_targets("y_train", arrays["y_train"], len(arrays["x_train"]))
    if "x_test" in arrays:
        xte, yte = arrays["x_test"], check_targets("y_test", arrays["y_test"], len(arrays["x_test"]))
        if xte.ndim != xtr.ndim:
            raise TaskError(f"x_test has shape {xte.shape} but x_train {xtr.shape}: both "
                            "2-D or both 4-D")
        if xtr.ndim == 2 and xte.shape[1] != xtr.shape[1]:
            raise TaskError(f"x_test has {xte.shape[1]} features but x_train has {xtr.shape[1]}")
        if xtr.ndim == 4 and xte.shape[3] != xtr.shape[3]:
            raise TaskError(f"x_test has {xte.shape[3]} channels but x_train has {xtr.shape[3]}")
        if xte.shape[1:] != xtr.shape[1:]:
            raise TaskError(f"x_test samples have shape {xte.shape[1:]} but x_train "
                            f"samples {xtr.shape[1:]}")
        if yte.ndim != ytr.ndim or (ytr.ndim == 2 and yte.shape[1] != ytr.shape[1]):
            raise TaskError(f"y_test shape {yte.shape} does not match y_train shape {ytr.shape}")
    else:
        xte = np.zeros((0,) + xtr.shape[1:])
        yte = np.zeros((0,), ytr.dtype) if ytr.ndim == 1 else np.zeros((0, ytr.shape[1]))
    info: dict = {"path": str(path)}
    classification = ytr.ndim == 1 or (_is_one_hot(ytr) and (yte.size == 0 or _is_one_hot(yte)))
    if ytr.ndim == 1:
        k = int(max(ytr.max(), yte.max() if yte.size else 0)) + 1
        ytr, yte, info["n_classes"] = one_hot(ytr, k), one_hot(yte, k), k
    data = finish(xtr, ytr, xte, yte, loss_of(cfg, classification), classification, info, dtype)
    arrays = {k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")}
    check_dtype_range(arrays, dtype, repr(str(path)))
    return data
