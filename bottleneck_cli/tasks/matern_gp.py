"""Matérn Gaussian processes: the kernel and two samplers (arXiv 2407.05664, SCIENCE.md 5.8).

Distance convention of the paper's official code: r(x, x') = sqrt(mean_i (x_i - x'_i)^2)
= ||x - x'|| / sqrt(d), length scale 1. The Matérn kernel of smoothness nu (Rasmussen &
Williams 2006, eq. 4.14):

    k_nu(r) = 2^(1-nu) / Gamma(nu) * (sqrt(2 nu) r)^nu * K_nu(sqrt(2 nu) r),   k_nu(0) = 1,

with the closed forms k_1/2 = exp(-r), k_3/2 = (1 + sqrt3 r) exp(-sqrt3 r),
k_5/2 = (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r).

Samplers, both giving f + sqrt(jitter) * white noise (the Tikhonov term of the official code):

* ``exact``: Cholesky of K + jitter I on all points (O(n^3) time, O(n^2) memory).
* ``features``: random Fourier features (Rahimi & Recht 2007). By Bochner's theorem the
  spectral density of k_nu in d dimensions is a multivariate Student-t with 2 nu degrees of
  freedom: omega = z * sqrt(2 nu / u), z ~ N(0, I_d), u ~ chi^2_{2 nu}; in x units (r divides
  by sqrt(d)) omega_x = omega / sqrt(d). f(x) = M^(-1/2) sum_m a_m cos(omega_m . x) +
  b_m sin(omega_m . x), a, b ~ N(0, 1): given the frequencies its kernel is
  k_M(x, x') = mean_m cos(omega_m . (x - x')), whose mean over the frequencies is k_nu exactly
  and whose error is O(M^(-1/2)). f is a function everywhere: O(n M d) time, O(M d) memory.
"""

from __future__ import annotations

import numpy as np

CHUNK = 4096  # rows of features evaluated at a time (memory CHUNK x M)


def scaled_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) matrix of r = ||a_i - b_j|| / sqrt(d), the official code's convention."""
    d = a.shape[1]
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0) / d)


def matern_bessel(r: np.ndarray, nu: float) -> np.ndarray:
    """The general form through the modified Bessel function K_nu (scipy.special.kv)."""
    from scipy.special import gamma, kv

    r = np.asarray(r, dtype=np.float64)
    t = np.sqrt(2.0 * nu) * np.maximum(r, 1e-300)
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        k = (2.0 ** (1.0 - nu) / gamma(nu)) * t ** nu * kv(nu, t)
    k = np.where(np.isfinite(k), k, 0.0)  # kv underflows to 0 (t large); t^nu*kv -> 0
    return np.where(r <= 0, 1.0, k)


def matern(r: np.ndarray, nu: float) -> np.ndarray:
    """k_nu(r): closed forms at nu = 1/2, 3/2, 5/2, the Bessel form otherwise."""
    r = np.asarray(r, dtype=np.float64)
    if nu == 0.5:
        return np.exp(-r)
    if nu == 1.5:
        t = np.sqrt(3.0) * r
        return (1.0 + t) * np.exp(-t)
    if nu == 2.5:
        t = np.sqrt(5.0) * r
        return (1.0 + t + t * t / 3.0) * np.exp(-t)
    return matern_bessel(r, nu)


def exact_sample(points: np.ndarray, nu: float, k: int, jitter: float,
                 rng: np.random.Generator) -> np.ndarray:
    """(n, k): k independent draws of the GP at ``points`` by a dense Cholesky of K + jitter I."""
    K = matern(scaled_distance(points, points), nu)
    K[np.diag_indices_from(K)] += jitter
    chol = np.linalg.cholesky(K)
    del K
    return chol @ rng.standard_normal((len(points), k))


def frequencies(d: int, nu: float, m: int, rng: np.random.Generator) -> np.ndarray:
    """(d, m) frequencies in x units: Student-t (2 nu dof) draws divided by sqrt(d)."""
    z = rng.standard_normal((d, m))
    u = rng.chisquare(2.0 * nu, size=m)
    return z * np.sqrt(2.0 * nu / u)[None, :] / np.sqrt(d)


class FeatureGP:
    """k draws of a Matérn GP as explicit functions: random Fourier features."""

    def __init__(self, d: int, nu: float, k: int, m: int, rng: np.random.Generator):
        self.omega = frequencies(d, nu, m, rng)
        self.a = rng.standard_normal((m, k))
        self.b = rng.standard_normal((m, k))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        m = self.omega.shape[1]
        out = np.empty((len(x), self.a.shape[1]))
        for i in range(0, len(x), CHUNK):
            phase = x[i:i + CHUNK] @ self.omega
            out[i:i + CHUNK] = np.cos(phase) @ self.a + np.sin(phase) @ self.b
        return out / np.sqrt(m)

    def kernel(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """k_M(x_i, y_j) = mean_m cos(omega_m . (x_i - y_j)): the kernel given these frequencies."""
        px, py = x @ self.omega, y @ self.omega
        return (np.cos(px) @ np.cos(py).T + np.sin(px) @ np.sin(py).T) / self.omega.shape[1]


def feature_sample(points: np.ndarray, nu: float, k: int, jitter: float, m: int,
                   rng: np.random.Generator) -> np.ndarray:
    """(n, k): k draws at ``points`` from ``m`` random features, plus N(0, jitter) noise."""
    f = FeatureGP(points.shape[1], nu, k, m, rng)(points)
    if jitter > 0:
        f = f + np.sqrt(jitter) * rng.standard_normal(f.shape)
    return f
