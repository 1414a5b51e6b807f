"""A faithful NumPy port of the official full-width loop (aranguri/phase-diagram,
main.ipynb ``run``): the reference the reduced simulation is checked and timed against.
It materialises W1 (w x d) and W2 (d x w) and computes, every iteration, the singular
values, the ratio s_K / s_{K+1}, the numerical rank (atol s_1 / 5) and the stable rank
of A, as the notebook does.
"""

from __future__ import annotations

import numpy as np


def official_stop(losses, gen_losses, stop_train=1e-3, steps=750) -> int:
    """The iteration at which main.ipynb's loop breaks, given the per-iteration train
    and test errors it would compute (a fixed trajectory): its final ``i``."""
    for i in range(min(steps, len(losses))):
        ls, gs = list(losses[: i + 1]), list(gen_losses[: i + 1])
        if ls[-1] < stop_train:
            return i
        if i > 3:
            if gs[-3] < gs[-2] < gs[-1]:
                return i
            if np.abs(ls[-1] - ls[-2]) < 2e-4 and ls[0] - ls[-1] > 1e-2:
                return i
    return min(steps, len(losses)) - 1


def official_run(w1, w2, a_star, e, eta, k=5, steps=750, sigma_sq=1.0):
    """main.ipynb's loop from given W1 (w x d), W2 (d x w); returns its outputs
    (losses, gen_losses, svs, ratios, ranks, stable_ranks, active, i)."""
    d = a_star.shape[0]
    w = w1.shape[0]
    losses, gen_losses, svs, ratios, ranks, stable_ranks = [], [], [], [], [], []
    target = a_star + e
    for i in range(steps):
        a = w2 @ w1
        loss = np.linalg.norm(a - target) ** 2 / d ** 2
        gen_loss = np.linalg.norm(a - a_star) ** 2 / d ** 2
        losses.append(loss)
        gen_losses.append(gen_loss)
        s = np.linalg.svd(a, compute_uv=False)
        svs.append(s)
        ratios.append(s[k - 1] / s[k])
        ranks.append(int(np.sum(s > s[0] / 5)))
        stable_ranks.append((np.linalg.norm(a) / s[0]) ** 2)
        w1 = w1 - eta * w2.T @ (a - target)
        w2 = w2 - eta * (a - target) @ w1.T
        if loss < 1e-3:
            break
        if i > 3:
            if gen_losses[-3] < gen_losses[-2] < gen_losses[-1]:
                break
            if np.abs(losses[-1] - losses[-2]) < 2e-4 and losses[0] - losses[-1] > 1e-2:
                break
    active = np.linalg.norm(w2 @ w1, 2) / w * sigma_sq
    return losses, gen_losses, svs, ratios, ranks, stable_ranks, active, i
