"""Ranks from singular values (NumPy, host-side): numerical, stable, nuclear, entropy,
near-one counts and the log pseudo-determinant (SCIENCE.md section 3)."""

from __future__ import annotations

import numpy as np


def _s(s) -> np.ndarray:
    s = np.abs(np.asarray(s, dtype=np.float64).ravel())
    return np.where(np.isfinite(s), s, 0.0) if s.size else s


def _threshold(s: np.ndarray, atol: float, rtol: float) -> float:
    return max(float(atol), float(rtol) * float(s.max())) if s.size else float(atol)


def numerical_rank(s, atol: float = 0.1, rtol: float = 0.1) -> int:
    """#{i : s_i > max(atol, rtol * s_1)}."""
    s = _s(s)
    return int(np.sum(s > _threshold(s, atol, rtol))) if s.size else 0


def stable_rank(s) -> float:
    """sum s_i^2 / s_1^2 (0 for an all-zero spectrum)."""
    s = _s(s)
    top = float(s.max()) if s.size else 0.0
    return float(np.sum((s / top) ** 2)) if top > 0 else 0.0


def nuclear_rank(s) -> float:
    """(sum s_i)^2 / sum s_i^2 (0 for an all-zero spectrum)."""
    s = _s(s)
    top = float(s.max()) if s.size else 0.0
    if top <= 0:
        return 0.0
    r = s / top  # scale-free, avoids overflow
    return float(np.sum(r) ** 2 / np.sum(r**2))


def entropy_rank(s) -> float:
    """exp(H(p)), p_i = s_i / sum s_j (Roy & Vetterli 2007); 0 for an all-zero spectrum."""
    s = _s(s)
    total = float(np.sum(s))
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def near_one_count(s, delta: float = 0.5) -> int:
    """#{i : |s_i - 1| <= delta}."""
    return int(np.sum(np.abs(_s(s) - 1.0) <= delta))


def log_pdet(s, atol: float = 0.1, rtol: float = 0.1) -> float:
    """sum of log s_i over the singular values counted by ``numerical_rank``."""
    s = _s(s)
    if not s.size:
        return 0.0
    kept = s[s > _threshold(s, atol, rtol)]
    return float(np.sum(np.log(kept))) if kept.size else 0.0
