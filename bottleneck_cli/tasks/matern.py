"""The matern task: y = h(g(x)) with g, h Matérn GP draws (arXiv 2407.05664, SCIENCE.md 5.8).

x ~ N(0, I_{d_in}); z = g(x) in R^{d_mid}, each coordinate an independent GP of smoothness
nu_g; y = h(z) in R^{d_out}, independent GPs of smoothness nu_h evaluated at the z's (kernel,
distance convention and samplers: ``matern_gp``). One fixed pool of ``n_pool`` training
points and ``n_test`` test points is drawn per (seed, settings); the training set is its
first ``n_train`` points, the test set its last ``n_test``: an N-sweep sees nested
training sets and one test set, as in the official code.

The pool is cached: in this process (the last few pools), and on disk in ``task.cache``
(one ``.npz`` per (seed, settings) hash; ``""`` = no disk cache), so a sweep over N and
architectures draws it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .base import Dataset, TaskError, finish, loss_of, streams
from .matern_gp import exact_sample, feature_sample

POOL_KEYS = ("n_pool", "n_test", "d_in", "d_mid", "d_out", "nu_g", "nu_h", "jitter",
             "sampler", "features")
SAMPLERS = ("exact", "features")
_MEMO: OrderedDict = OrderedDict()  # key -> (x, z, y) of the whole pool
_MEMO_SIZE = 4


def check(cfg) -> tuple[tuple[int, ...], int]:
    """One-line TaskErrors for settings no pool can be drawn for; else the shapes of one
    sample's input and output (so that planning a sweep never draws a pool)."""
    for key in ("nu_g", "nu_h"):
        if not getattr(cfg, key) > 0:
            raise TaskError(f"task.{key}={getattr(cfg, key)} must be > 0 (the Matérn smoothness)")
    if cfg.d_mid > cfg.d_in:
        raise TaskError(f"task.d_mid={cfg.d_mid} must be <= task.d_in={cfg.d_in}")
    if cfg.n_train > cfg.n_pool:
        raise TaskError(f"task.n_train={cfg.n_train} is larger than the training pool "
                        f"task.n_pool={cfg.n_pool}")
    if cfg.sampler not in SAMPLERS:
        raise TaskError(f"task.sampler={cfg.sampler!r} is not valid; choose from {list(SAMPLERS)}")
    total = cfg.n_pool + cfg.n_test
    if cfg.sampler == "exact" and total > cfg.exact_max:
        raise TaskError(f"task.sampler=exact needs a dense {total} x {total} Cholesky "
                        f"(n_pool + n_test > task.exact_max={cfg.exact_max}); use "
                        "task.sampler=features or raise task.exact_max")
    return (int(cfg.d_in),), int(cfg.d_out)


def pool_settings(cfg, seed: int) -> dict:
    """What the pool depends on (not n_train: every N shares one pool)."""
    out = {k: getattr(cfg, k) for k in POOL_KEYS}
    if out["sampler"] == "exact":
        out.pop("features")
    return {**{k: (float(v) if isinstance(v, float) else v) for k, v in out.items()},
            "seed": int(seed), "version": 1}


def pool_key(cfg, seed: int) -> str:
    text = json.dumps(pool_settings(cfg, seed), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def draw_pool(cfg, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, z, y) at all n_pool + n_test points, float64: the training pool, then the test set."""
    rx, rg, rh = streams("matern", seed, 3)
    x = rx.standard_normal((cfg.n_pool + cfg.n_test, cfg.d_in))
    if cfg.sampler == "exact":
        z = exact_sample(x, cfg.nu_g, cfg.d_mid, cfg.jitter, rg)
        y = exact_sample(z, cfg.nu_h, cfg.d_out, cfg.jitter, rh)
    else:
        z = feature_sample(x, cfg.nu_g, cfg.d_mid, cfg.jitter, cfg.features, rg)
        y = feature_sample(z, cfg.nu_h, cfg.d_out, cfg.jitter, cfg.features, rh)
    return x, z, y


def _read(path: Path):
    try:
        with np.load(path) as f:
            return f["x"], f["z"], f["y"]
    except (OSError, ValueError, KeyError, EOFError):
        return None  # damaged or partial: draw again


def _write(path: Path, arrays: tuple) -> None:
    """Atomic: a concurrent reader sees the whole file or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, x=arrays[0], z=arrays[1], y=arrays[2])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pool(cfg, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pool of (seed, settings): from memory, the disk cache, or drawn (and cached)."""
    check(cfg)
    key = pool_key(cfg, seed)
    if key in _MEMO:
        _MEMO.move_to_end(key)
        return _MEMO[key]
    path = Path(str(cfg.cache)).expanduser() / f"matern-{key}.npz" if cfg.cache else None
    arrays = _read(path) if path is not None and path.is_file() else None
    if arrays is None:
        arrays = draw_pool(cfg, seed)
        if path is not None:
            try:
                _write(path, arrays)
            except OSError as exc:
                raise TaskError(f"cannot write the data cache {str(path)!r}: {exc}") from None
    _MEMO[key] = arrays
    while len(_MEMO) > _MEMO_SIZE:
        _MEMO.popitem(last=False)
    return arrays


def matern(cfg, seed: int, dtype) -> Dataset:
    """Train: the first n_train pool points; test: the n_test points after the pool."""
    x, z, y = pool(cfg, seed)
    n, p = cfg.n_train, cfg.n_pool
    info = {"true_rank": int(cfg.d_mid), "nu_g": float(cfg.nu_g), "nu_h": float(cfg.nu_h),
            "sampler": str(cfg.sampler)}
    return finish(x[:n], y[:n], x[p:], y[p:], loss_of(cfg, False), False, info, dtype)
