"""Tasks: deterministic datasets from ``(task config, seed)``, built on the host with NumPy.

``make_dataset(task_cfg, seed)`` dispatches on ``task_cfg.name`` through ``TASKS``. The
seed is ``task_cfg.data_seed`` when set, else the run seed; every task draws from
``np.random.SeedSequence([salt, seed])`` (one fixed salt per task) split into independent
streams, so the same (config, seed) always gives bit-identical arrays and train and test
come from one draw. Rows are samples: ``x`` is (N, d_in), ``y`` is (N, d_out).
Classification targets are one-hot rows (``classification=True``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

SALTS = {"compositional": 0xC0115, "low_rank": 0x10A4, "digits": 0xD161, "teacher": 0x7EAC}


class TaskError(ValueError):
    """A user-facing data problem (printed as one line)."""


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray  # (N, d_in)
    y_train: np.ndarray  # (N, d_out); one-hot rows when classification
    x_test: np.ndarray  # (M, d_in), M may be 0
    y_test: np.ndarray  # (M, d_out)
    loss: str  # "mse" | "cross_entropy"
    classification: bool  # y rows are one-hot class targets: accuracy is meaningful
    info: dict = field(default_factory=dict)  # small JSON-able facts (true_rank, ...)

    @property
    def d_in(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def d_out(self) -> int:
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])


def _seed(task_cfg, seed: int) -> int:
    return int(seed if task_cfg.data_seed is None else task_cfg.data_seed)


def _streams(name: str, seed: int, n: int) -> list[np.random.Generator]:
    """n independent generators for task ``name``: adding a draw to one never shifts another."""
    children = np.random.SeedSequence([SALTS[name], seed]).spawn(n)
    return [np.random.default_rng(c) for c in children]


def _loss(task_cfg, classification: bool) -> str:
    if task_cfg.loss == "cross_entropy" and not classification:
        raise TaskError(
            f"task.loss=cross_entropy needs class targets; task={task_cfg.name} is a "
            "regression task (use task.loss=mse)"
        )
    return str(task_cfg.loss)


def _finish(xtr, ytr, xte, yte, loss, classification, info, dtype) -> Dataset:
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    with np.errstate(over="ignore"):  # values beyond the dtype become inf: callers check
        return Dataset(cast(xtr), cast(ytr), cast(xte), cast(yte), loss, classification, info)


def _one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    """(N, k) rows e_label; memory N * k (no k x k identity)."""
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), labels] = 1.0
    return out


# --- compositional: f* = h o P_k o g0^{-1}, bottleneck rank k (SCIENCE.md 5.1) -------------


def _compositional(cfg, seed: int):
    """Return (g, h, z, noise_rng): g: z -> x and h: z -> y, both standardized on train."""
    k, dl, d_in, d_out, m = cfg.rank, cfg.d_latent, cfg.d_in, cfg.d_out, cfg.hidden
    if k > dl:
        raise TaskError(f"task.rank={k} must be <= task.d_latent={dl}")
    if d_in < dl:
        raise TaskError(
            f"task.d_in={d_in} must be >= task.d_latent={dl} so that x = g(z) determines z"
        )
    rg, rh, rz, rn = _streams("compositional", seed, 4)
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
    g, h, _, _ = _compositional(task_cfg, _seed(task_cfg, seed))
    return g, h


def compositional(cfg, seed: int, dtype) -> Dataset:
    """z ~ N(0, I_{d_latent}), x = g0(z), y = h(z_1..z_rank) (+ noise on training targets)."""
    g, h, z, rn = _compositional(cfg, seed)
    x, y = g(z), h(z)
    n = cfg.n_train
    ytr = y[:n] + cfg.noise * rn.standard_normal(y[:n].shape) if cfg.noise > 0 else y[:n]
    info = {"true_rank": int(cfg.rank), "d_latent": int(cfg.d_latent), "inner": str(cfg.inner)}
    return _finish(x[:n], ytr, x[n:], y[n:], _loss(cfg, False), False, info, dtype)


# --- teacher: y = a random ReLU network of x (SCIENCE.md 5.3) ------------------------------


def teacher(cfg, seed: int, dtype) -> Dataset:
    """x ~ N(0, I_{d_in}); y = T(x), T a random ReLU MLP with ``teacher_depth`` weight
    matrices of width ``hidden`` (He init, zero biases), + noise on training targets."""
    rw, rx, rn = _streams("teacher", _seed(cfg, seed), 3)
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
    return _finish(x[:n], ytr, x[n:], y[n:], _loss(cfg, False), False, info, dtype)


# --- low_rank: Y = A X with rank(A) = rank (SCIENCE.md section 4) --------------------------


def _singular_values(cfg) -> np.ndarray:
    r = cfg.rank
    if r > min(cfg.d_in, cfg.d_out):
        limit = min(cfg.d_in, cfg.d_out)
        raise TaskError(f"task.rank={r} must be <= min(task.d_in, task.d_out)={limit}")
    if cfg.singular_values is None:
        return np.linspace(r, 1, r)
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
    s = _singular_values(task_cfg)
    ra = _streams("low_rank", _seed(task_cfg, seed), 3)[0]
    U = _orthonormal(ra, task_cfg.d_out, task_cfg.rank)
    V = _orthonormal(ra, task_cfg.d_in, task_cfg.rank)
    return (U * s) @ V.T


def low_rank(cfg, seed: int, dtype) -> Dataset:
    """y = A x. inputs=identity: X = I_{d_in} (denoising, N = d_in) and the test set is (I, A^T)."""
    A = low_rank_matrix(cfg, seed)
    _, rx, rn = _streams("low_rank", seed, 3)
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
    sv = [float(v) for v in _singular_values(cfg)]
    info = {"true_rank": int(cfg.rank), "singular_values": sv, "inputs": str(cfg.inputs)}
    return _finish(xtr, ytr, xte, yte, _loss(cfg, False), False, info, dtype)


# --- npz: the user's own arrays ----------------------------------------------------------


def _is_one_hot(y: np.ndarray) -> bool:
    return y.ndim == 2 and bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(1) == 1))


def npz(cfg, seed: int, dtype) -> Dataset:
    """Load x_train, y_train[, x_test, y_test] from ``task.path``.

    1-D integer labels become one-hot rows; classification is True for those and for 2-D
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
        if k in arrays and arrays[k].ndim != 2:
            raise TaskError(f"{k} must be 2-D (N, d_in), got shape {arrays[k].shape}")
    xtr, ytr = arrays["x_train"], check_targets("y_train", arrays["y_train"], len(arrays["x_train"]))
    if "x_test" in arrays:
        xte, yte = arrays["x_test"], check_targets("y_test", arrays["y_test"], len(arrays["x_test"]))
        if xte.shape[1] != xtr.shape[1]:
            raise TaskError(f"x_test has {xte.shape[1]} features but x_train has {xtr.shape[1]}")
        if yte.ndim != ytr.ndim or (ytr.ndim == 2 and yte.shape[1] != ytr.shape[1]):
            raise TaskError(f"y_test shape {yte.shape} does not match y_train shape {ytr.shape}")
    else:
        xte = np.zeros((0, xtr.shape[1]))
        yte = np.zeros((0,), ytr.dtype) if ytr.ndim == 1 else np.zeros((0, ytr.shape[1]))
    info: dict = {"path": str(path)}
    classification = ytr.ndim == 1 or (_is_one_hot(ytr) and (yte.size == 0 or _is_one_hot(yte)))
    if ytr.ndim == 1:
        k = int(max(ytr.max(), yte.max() if yte.size else 0)) + 1
        ytr, yte, info["n_classes"] = _one_hot(ytr, k), _one_hot(yte, k), k
    data = _finish(xtr, ytr, xte, yte, _loss(cfg, classification), classification, info, dtype)
    arrays = {k: getattr(data, k) for k in ("x_train", "y_train", "x_test", "y_test")}
    check_dtype_range(arrays, dtype, repr(str(path)))
    return data


# --- digits: scikit-learn's 8x8 handwritten digits ----------------------------------------


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
    (rng,) = _streams("digits", seed, 1)
    order = rng.permutation(len(x))
    n, m = cfg.n_train, min(cfg.n_test, len(x) - cfg.n_train)
    tr, te = order[:n], order[n : n + m]
    y = _one_hot(labels, cfg.n_classes)
    info = {"n_classes": int(cfg.n_classes), "n_available": len(x)}
    return _finish(x[tr], y[tr], x[te], y[te], _loss(cfg, True), True, info, dtype)


TASKS: dict[str, Callable] = {
    "compositional": compositional,
    "low_rank": low_rank,
    "npz": npz,
    "digits": digits,
    "teacher": teacher,
}


def make_dataset(task_cfg, seed: int, dtype=np.float32) -> Dataset:
    """Build the dataset of ``task_cfg.name`` (seed: ``task_cfg.data_seed`` or ``seed``)."""
    name = task_cfg.name
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}; choose from {sorted(TASKS)}")
    return TASKS[name](task_cfg, _seed(task_cfg, seed), np.dtype(dtype))
