"""Two-layer linear network A = W2 W1 of "Mixed Dynamics in Linear Networks" (Tu,
Aranguri & Jacot, arXiv 2405.17580; official code: aranguri/phase-diagram, main.ipynb).

W1 in R^{w x d}, W2 in R^{d x w}, entries N(0, sigma^2) with sigma^2 = d^gamma_sigma and
w = int(d^gamma_w) (as the official code: the float w is truncated before use).

**Exact reduction at any width.** GD, W1 <- W1 - eta W2^T G and W2^T <- W2^T - eta W1 G^T,
only adds combinations of the columns of W2^T and W1 to each other, so all 2d columns
stay in the span of M = [W1_0, W2_0^T] in R^{w x 2d}. With M = Q R (Q orthonormal, R
upper triangular 2d x 2d), W1 = Q P1 and W2^T = Q P2 with P1 = R[:, :d], P2 = R[:, d:] at
the start, and for every step A = P2^T P1,

    P1 <- P1 - eta P2 G,    P2 <- P2 - eta P1_new G^T,    G = P2^T P1 - (A* + E),

the official update order (W1 first, W2's update uses the new W1). R is drawn directly
(Bartlett decomposition of the Wishart matrix M^T M ~ W_{2d}(w, sigma^2 I)):
R_ii = sigma sqrt(chi^2_{w-i+1}), R_ij ~ N(0, sigma^2) for i < j, R_ij = 0 for i > j.
The parameters are then P1, P2 (2d x d) whatever w is: ``model.exact_width`` (default
on when w > 2d). Off (or w <= 2d), P1 = W1 and P2 = W2^T in full (w x d).
"""

from __future__ import annotations

import math

import numpy as np

from .base import Model

SALT = 0x2405  # init stream of this family (the target has its own, tasks.base.SALTS)


def width_of(d: int, gamma_w: float) -> int:
    """w = int(d^gamma_w), as main.ipynb (``w = int(w)``)."""
    return int(float(d) ** float(gamma_w))


def sigma2_of(d: int, gamma_sigma: float) -> float:
    """sigma^2 = d^gamma_sigma (the variance of every initial entry)."""
    return float(d) ** float(gamma_sigma)


def reduced(d: int, w: int, exact_width) -> bool:
    """Whether the run simulates the 2d-dimensional span (``exact_width``: None = auto,
    on when w > 2d)."""
    return bool(w > 2 * d if exact_width is None else exact_width)


def step_size(gamma_sigma: float, gamma_w: float, d: int, op_norm: float,
              factor: float = 50.0) -> float:
    """main.ipynb's rule: 1/(factor w sigma^2) when gamma_w + gamma_sigma > 1 (lazy side
    of the active/lazy line), else 1/(factor ||A*||_op); w = int(d^gamma_w)."""
    if gamma_w + gamma_sigma > 1:
        return 1.0 / (factor * width_of(d, gamma_w) * sigma2_of(d, gamma_sigma))
    return 1.0 / (factor * op_norm)


def bartlett(rng: np.random.Generator, n: int, dof: int, scale: float = 1.0) -> np.ndarray:
    """Upper-triangular R (n x n) with R^T R ~ Wishart_n(dof, scale^2 I): the R factor of
    the QR of a dof x n Gaussian matrix with N(0, scale^2) entries (dof >= n)."""
    if dof < n:
        raise ValueError(f"Bartlett needs dof >= n (dof={dof}, n={n})")
    r = np.triu(rng.standard_normal((n, n)), k=1)
    r[np.diag_indices(n)] = np.sqrt(rng.chisquare(dof - np.arange(n)))
    return r * scale


def reduce_full(m: np.ndarray) -> np.ndarray:
    """The R factor (positive diagonal) of M = Q R: the reduced coordinates of the
    columns of M (used to run the reduced and the full simulation from one draw)."""
    r = np.linalg.qr(m, mode="r")
    return r * np.sign(np.diag(r))[:, None]


class TwoLayerLinear(Model):
    """A = W2 W1 in reduced (P1, P2: 2d x d) or full (W1^T ... as P1 = W1, P2 = W2^T:
    w x d) coordinates; ``apply`` maps a row x to x A^T (identity inputs give A^T)."""

    depth = 2
    kind = "mixed"

    def __init__(self, d: int, gamma_sigma: float, gamma_w: float, exact_width=None):
        self.d, self.gamma_sigma, self.gamma_w = int(d), float(gamma_sigma), float(gamma_w)
        self.w = width_of(d, gamma_w)
        self.sigma2 = sigma2_of(d, gamma_sigma)
        self.reduced = reduced(self.d, self.w, exact_width)
        self.rows = 2 * self.d if self.reduced else self.w

    def init(self, seed: int, dtype=np.float32) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(np.random.SeedSequence([SALT, int(seed)]))
        sigma, d = math.sqrt(self.sigma2), self.d
        if self.reduced:
            r = bartlett(rng, 2 * d, self.w, sigma)
            p1, p2 = r[:, :d], r[:, d:]
        else:  # W1 then W2, each N(0, sigma^2), as main.ipynb draws them
            p1 = sigma * rng.standard_normal((self.w, d))
            p2 = (sigma * rng.standard_normal((d, self.w))).T
        return {"P1": np.ascontiguousarray(p1, dtype=dtype),
                "P2": np.ascontiguousarray(p2, dtype=dtype)}

    @staticmethod
    def product(params):
        """A = W2 W1 = P2^T P1."""
        return params["P2"].T @ params["P1"]

    def apply(self, params, x):
        return x @ self.product(params).T, {}

    def weights(self, params) -> dict:
        """The coordinates' own matrices (in the reduced run, the singular values of
        W1 and W2 are those of P1 and P2: Q is orthonormal)."""
        return {"W01": params["P1"], "W02": params["P2"].T}


def build_mixed(cfg, in_shape, d_out) -> TwoLayerLinear:
    m = cfg.model
    return TwoLayerLinear(cfg.task.d, m.gamma_sigma, m.gamma_w, m.exact_width)
