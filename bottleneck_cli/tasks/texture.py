"""The texture task: a synthetic image autoencoder (arXiv 2402.08010's synthetic task).

Each image is a low-frequency shape times a fixed high-frequency repeating pattern,

    x(p) = s(p) t(p),   s(p) = sum_{|k|_inf <= shape_freq} (a_k cos 2π<k,p> + b_k sin 2π<k,p>),
    t(p) = cos(2π f p_y / n) cos(2π f p_x / n),   f = pattern_freq,

with a_k, b_k ~ N(0, 1) per image (one k of each pair ±k; no b_0), all images divided by
the training set's RMS pixel. The targets are the images themselves, flattened (n n,)
(plus ``noise`` on the training targets). The shapes span (2 shape_freq + 1)^2 real
dimensions (``info["shape_dim"]``): the frequency-channel pairs a network needs to keep
if it demodulates the pattern; the images themselves use the frequencies k + (±f, ±f).
"""

from __future__ import annotations

import numpy as np

from .base import Dataset, TaskError, finish, loss_of, streams


def texture(cfg, seed: int, dtype) -> Dataset:
    n, sf, f = int(cfg.size), int(cfg.shape_freq), int(cfg.pattern_freq)
    if 2 * sf >= n or 2 * f > n:
        raise TaskError(f"task.shape_freq={sf} and task.pattern_freq={f} must be below "
                        f"task.size/2 = {n / 2:g}")
    rng_s, rng_n = streams("texture", seed, 2)
    total = cfg.n_train + cfg.n_test
    p = np.arange(n) / n
    ks = [(ky, kx) for ky in range(-sf, sf + 1) for kx in range(-sf, sf + 1)
          if (ky, kx) >= (0, 0)]  # one of each pair ±k
    shape = np.zeros((total, n, n))
    for ky, kx in ks:
        phase = 2 * np.pi * (ky * p[:, None] + kx * p[None, :])
        a = rng_s.standard_normal((total, 1, 1))
        shape += a * np.cos(phase)
        if (ky, kx) != (0, 0):
            shape += rng_s.standard_normal((total, 1, 1)) * np.sin(phase)
    pattern = np.cos(2 * np.pi * f * p)[:, None] * np.cos(2 * np.pi * f * p)[None, :]
    x = shape * pattern
    x /= np.sqrt(np.mean(x[: cfg.n_train] ** 2))
    y = x.reshape(total, -1).copy()
    y[: cfg.n_train] += cfg.noise * rng_n.standard_normal(y[: cfg.n_train].shape)
    images = x[..., None]
    info = {"shape_dim": (2 * sf + 1) ** 2}
    return finish(images[: cfg.n_train], y[: cfg.n_train], images[cfg.n_train:],
                  y[cfg.n_train:], loss_of(cfg, False), False, info, dtype)
