"""The frequency grid of a circular convolution's DFT, on the host (NumPy only): signed
frequencies, degrees, and per-frequency counts of kept directions. The metrics
(metrics/frequencies.py) and the report (report/figures/frequencies.py) both use it, so
the report needs neither JAX nor the metrics package."""

from __future__ import annotations

import numpy as np


def signed(n: int) -> np.ndarray:
    """Frequencies 0..n-1 as signed integers in (-n/2, n/2]."""
    k = np.arange(n)
    return np.where(k > n // 2, k - n, k)


def degrees(h: int, w: int) -> np.ndarray:
    """(h, w) degree max(|k_y|, |k_x|) of each grid frequency (signed)."""
    return np.maximum(np.abs(signed(h))[:, None], np.abs(signed(w))[None, :])


def kept_counts(s: np.ndarray, delta: float) -> np.ndarray:
    """(h, w) number of singular values of W(k) within ``delta`` of 1."""
    return np.sum(np.abs(np.asarray(s, float) - 1.0) <= delta, axis=-1)


def rank_counts(s: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """(h, w) per-frequency numerical ranks, one threshold max(atol, rtol s_max) per layer."""
    s = np.asarray(s, float)
    top = float(s.max()) if s.size else 0.0
    return np.sum(s > max(atol, rtol * top), axis=-1)


def by_degree(counts: np.ndarray) -> dict[int, int]:
    """Kept directions per degree, a conjugate pair {k, -k} counted once (the grid counts
    it twice: its cos and its sin)."""
    h, w = counts.shape
    ky, kx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    canon = ((-ky) % h, (-kx) % w)
    first = (ky * w + kx) <= (canon[0] * w + canon[1])  # one member of each pair
    deg = degrees(h, w)
    return {int(d): int(counts[first & (deg == d)].sum()) for d in np.unique(deg)}


def kept_list(counts: np.ndarray) -> list[tuple[int, int, int]]:
    """[(k_y, k_x, count)] of the frequencies with kept directions, signed, by degree."""
    h, w = counts.shape
    sy, sx = signed(h), signed(w)
    items = [(int(sy[i]), int(sx[j]), int(counts[i, j])) for i in range(h) for j in range(w)
             if counts[i, j] > 0]
    return sorted(items, key=lambda t: (max(abs(t[0]), abs(t[1])), t))
