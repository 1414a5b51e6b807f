"""Closed forms of SCIENCE.md section 4: the Schatten-2/L cost of a deep linear net and the
denoising shrinkage."""

from __future__ import annotations

import numpy as np

from .ranks import _s


def schatten_norm_cost(s, L: int) -> float:
    """Minimal ||theta||^2 of a depth-L linear net computing A: L * sum_i s_i(A)^(2/L)."""
    s = _s(s)
    return float(L * np.sum(s[s > 0] ** (2.0 / L)))


def denoise_threshold(lam: float, L: float) -> tuple[float, float]:
    """(y_t, s_t) for L >= 2: singular values y > y_t survive ``denoise_shrink``; for L > 2
    they jump from 0 to s_t = (lam (L - 2))^(L / (2L - 2)) there (a hard threshold).

    From the stationarity s - y + lam s^(2/L - 1) = 0 and equal cost with s = 0.
    L = 2 gives the soft threshold (lam, 0).
    """
    if L < 2:
        return 0.0, 0.0
    if lam <= 0:
        return 0.0, 0.0
    s_t = (lam * (L - 2)) ** (L / (2.0 * L - 2.0))
    y_t = s_t + lam * s_t ** (2.0 / L - 1.0) if s_t > 0 else lam
    return float(y_t), float(s_t)


def denoise_shrink(y, lam: float, L: float):
    """argmin_{s >= 0} (s - y)^2 + lam * L * s^(2/L), elementwise in y.

    L = 1: y / (1 + lam); L = 2: max(y - lam, 0); L > 2: the largest stationary point
    (bisection on s + lam s^(2/L - 1) = y, to machine precision) if it beats s = 0, else 0.
    """
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    y_arr = np.asarray(y, dtype=np.float64)
    yp = np.maximum(np.atleast_1d(y_arr), 0.0)
    if lam <= 0:
        s = yp.copy()
    elif L == 1:
        s = yp / (1.0 + lam)
    elif L == 2:
        s = np.maximum(yp - lam, 0.0)
    else:
        p = 2.0 / L - 1.0  # in (-1, 0) for L > 2, in (0, 1) for 1 < L < 2
        h = lambda t: t + lam * t**p  # noqa: E731  (the stationarity equation h(s) = y)
        if L > 2:
            s_m = (lam * (-p)) ** (1.0 / (1.0 - p))  # minimum of h: larger root lies in [s_m, y]
            lo = np.full_like(yp, s_m)
            hi = np.maximum(yp, s_m)
            has_root = h(s_m) <= yp
        else:
            lo, hi = np.zeros_like(yp), yp.copy()
            has_root = yp > 0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            above = h(mid) > yp
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
            if np.all(hi - lo <= 1e-15 * np.maximum(hi, 1.0)):
                break
        root = np.where(has_root, 0.5 * (lo + hi), 0.0)
        cost = (root - yp) ** 2 + lam * L * root ** (2.0 / L)
        s = np.where(has_root & (cost < yp**2), root, 0.0)
    return float(s[0]) if y_arr.ndim == 0 else s.reshape(y_arr.shape)
