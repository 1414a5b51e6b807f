"""The Schatten-2/L closed form of SCIENCE.md §4 beside the measured ||θ||², for linear nets.

A depth-L linear net whose end-to-end matrix is M has ||θ||² = Σ_l ||W_l||_F² ≥
L·Σ_i s_i(M)^(2/L), with equality exactly at balanced factorisations (every W_l with
singular values s_i(M)^(1/L)). Biases do not enter: the linear part of the net is the
product of its weights, and ``norm/total`` counts weights only. For each linear run the
report computes this cost for

* ``closed_form``: the trained M = W01·W02⋯WLL (our W_l is (fan_in, fan_out), z = a W),
  read from ``params.npz`` (finished runs);
* ``closed_form_target``: the target A of the ``low_rank`` task, whose singular values are
  in the config (``task.singular_values``, default rank..1 evenly spaced, as ``tasks.py``).

Reads run folders only (no JAX, no training code); ``schatten_cost`` restates
``spectra.schatten_norm_cost`` so that the report need not import ``spectra`` (tested equal).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import rundir as rd

COLUMNS = ("closed_form", "closed_form_target")


def schatten_cost(s, L: int) -> float:
    """Minimal ||θ||² of a depth-L linear net computing a matrix with singular values s:
    L·Σ_i s_i^(2/L) (SCIENCE.md §4)."""
    s = np.abs(np.asarray(s, dtype=np.float64).ravel())
    return float(L * np.sum(s[s > 0] ** (2.0 / L)))


def is_linear(config: dict) -> bool:
    """The run's net is linear: ``model=linear`` or an identity activation."""
    model = config.get("model") or {}
    return model.get("name") == "linear" or model.get("activation") == "identity"


def target_svals(config: dict) -> np.ndarray | None:
    """Singular values of the ``low_rank`` task's target A; None for other tasks."""
    task = config.get("task") or {}
    if task.get("name") != "low_rank":
        return None
    if task.get("singular_values"):
        return np.asarray(task["singular_values"], dtype=np.float64)
    rank = int(task.get("rank") or 0)
    return np.linspace(rank, 1, rank) if rank > 0 else None


def end_to_end_svals(params: dict) -> tuple[np.ndarray, int]:
    """(singular values of M = W01⋯WLL in float64, L). Values under NumPy's rank tolerance
    s_1·max(shape)·eps·L are rounding of the product, not of the net, and dropped: the
    exponent 2/L would make them count (by (1e-15)^(2/25)·25 ≈ 1.6 each at L = 25)."""
    names = rd.sorted_layers(k for k in params if k.startswith("W"))
    M = params[names[0]].astype(np.float64)
    for name in names[1:]:
        M = M @ params[name].astype(np.float64)
    s = np.linalg.svd(M, compute_uv=False)
    if not s.size or not np.all(np.isfinite(s)):
        return s, len(names)
    tol = s[0] * max(M.shape) * np.finfo(np.float64).eps * len(names)
    return s[s > tol], len(names)


def closed_forms(path: Path, config: dict) -> dict[str, float]:
    """``closed_form`` (when params.npz exists) and ``closed_form_target`` (low_rank task)
    of a linear run; empty for other runs. A damaged params.npz raises (the caller notes it)."""
    if not is_linear(config):
        return {}
    out = {}
    target = target_svals(config)
    if target is not None and config.get("depth"):
        out["closed_form_target"] = schatten_cost(target, int(config["depth"]))
    file = Path(path) / rd.PARAMS
    if file.exists():
        s, L = end_to_end_svals(rd.read_npz(file))
        out["closed_form"] = schatten_cost(s, L)
    return out
