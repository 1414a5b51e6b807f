"""Leaky ResNets (Jacot & Kaiser, arXiv 2405.17573, section 3; SCIENCE.md 5.4).

Width w; a linear map into R^w at the start (``Win``), one to the outputs at the end
(``Wout``), learned or fixed random; L residual layers at positions
p_l = rho_1 + ... + rho_l (sum rho_l = 1):

    alpha_{p_l} = (1 - rho_l Lt) alpha_{p_{l-1}} + rho_l W_l sigma(alpha_{p_{l-1}}),
    sigma(z) = (relu(z), 1)

(the appended 1 replaces the bias). The paper's W_l is w x (w+1); we store its transpose
(w+1, w) so that a row-sample batch computes ``sigma(a) @ W`` (same singular values).
The layer steps rho are a parameter that is never trained (``stop_gradient``: zero
gradient, so every optimizer leaves it alone); they live in the train state, are
checkpointed with it and, for ``steps=adaptive``, are updated on the host every
``adapt_every`` steps (``host_update``, section 3: rho_l proportional to 1/c_l,
c_l = ||A_l - A_{l-1}|| / (rho_l ||A_l||)).
Hidden representations ``Z01``..``ZL`` are A_l = alpha_{p_l}(X) (``Z00`` = alpha_0 is in
``path``). The ridge is the paper's (lam / (2 Lt)) sum_l rho_l ||W_l||_F^2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..rundir import layer_name
from .base import Model

STEPS = ("equidistant", "irregular", "adaptive")


def fixed_steps(depth: int, steps: str, a: float = 0.0) -> np.ndarray:
    """rho_l = 1/L (equidistant, and the start of adaptive), or the paper's irregular
    mesh rho_l = (1/L)(1 + a (1/4 - |l/L - 1/2|)), renormalised to sum 1."""
    L = int(depth)
    if steps == "irregular":
        l = np.arange(1, L + 1)
        rho = (1.0 + a * (0.25 - np.abs(l / L - 0.5))) / L
        return rho / rho.sum()
    return np.full(L, 1.0 / L)


def adapted_steps(rho, path):
    """One adaptive update (traceable): rho_l <- c_l^{-1} / sum_i c_i^{-1} with
    c_l = ||A_l - A_{l-1}|| / (rho_l ||A_l||); ``path`` = [A_0, ..., A_L]."""
    diff = jnp.stack([jnp.sqrt(jnp.sum((path[l] - path[l - 1]) ** 2))
                      for l in range(1, len(path))])
    size = jnp.stack([jnp.sqrt(jnp.sum(path[l] ** 2)) for l in range(1, len(path))])
    tiny = jnp.finfo(diff.dtype).tiny
    inv_c = rho * size / jnp.maximum(diff, tiny)
    return inv_c / jnp.sum(inv_c)


class LeakyResNet(Model):
    """A built Leaky ResNet (see the module docstring)."""

    kind = "leaky_resnet"
    activation = "relu"

    def __init__(self, depth: int, width: int, d_in: int, d_out: int, leak: float = 1.0,
                 steps: str = "equidistant", irregular_a: float = 0.5, adapt_every: int = 100,
                 learn_ends: bool = True, ridge_ends: bool = True, init_scale: float = 1.0):
        self.depth, self.width, self.d_in, self.d_out = int(depth), int(width), d_in, d_out
        self.leak, self.steps, self.irregular_a = float(leak), steps, float(irregular_a)
        self.learn_ends, self.ridge_ends, self.init_scale = learn_ends, ridge_ends, init_scale
        # the trainer's host hook: host_update every this many steps (0: never)
        self.host_every = int(adapt_every) if steps == "adaptive" else 0

    def init(self, seed: int, dtype=np.float32) -> dict[str, np.ndarray]:
        """W_l = Lt [I_w | 0] + N(0, 2 s^2/(w+1)) noise: the leak is compensated on the
        non-negative part at the start (alpha_l ~ alpha_{l-1} there; a plain random W_l
        would shrink the signal by (1 - rho Lt)^L, 1e-6 at Lt = 10, L = 20, and training
        would stall at the mean predictor). Win ~ N(0, s^2/d_in), Wout ~ N(0, s^2/w);
        rho from ``fixed_steps``."""
        rng = np.random.default_rng([seed, 0x1EA4])
        w, s = self.width, self.init_scale
        params = {"Win": s * rng.standard_normal((self.d_in, w)) / np.sqrt(self.d_in)}
        eye = np.vstack([np.eye(w), np.zeros((1, w))]) * self.leak
        for l in range(1, self.depth + 1):
            noise = rng.standard_normal((w + 1, w)) * np.sqrt(2.0 / (w + 1))
            params[layer_name("W", l)] = eye + s * noise
        params["Wout"] = s * rng.standard_normal((w, self.d_out)) / np.sqrt(w)
        params["rho"] = fixed_steps(self.depth, self.steps, self.irregular_a)
        return {k: v.astype(dtype) for k, v in params.items()}

    def _ends(self, params):
        if self.learn_ends:
            return params["Win"], params["Wout"]
        return jax.lax.stop_gradient(params["Win"]), jax.lax.stop_gradient(params["Wout"])

    def rho(self, params):
        return jax.lax.stop_gradient(params["rho"])

    def path(self, params, x):
        """[A_0, ..., A_L]: alpha_{p_l}(x) for l = 0..L (rows are samples).

        Computed feature-major (alpha^T, one column per sample; W_l^T sigma(alpha^T) is the
        paper's own orientation) and transposed back: XLA:CPU's matmuls with the samples
        as the long output axis are about 40% faster here (BENCHMARKS.md, `leaky`)."""
        w_in, _ = self._ends(params)
        rho, lt = self.rho(params), self.leak
        a = w_in.T @ x.reshape(x.shape[0], -1).T
        one = jnp.ones((1, a.shape[1]), a.dtype)
        out = [a]
        for l in range(1, self.depth + 1):
            s = jnp.concatenate([jax.nn.relu(a), one], axis=0)
            a = (1.0 - rho[l - 1] * lt) * a + rho[l - 1] * (params[layer_name("W", l)].T @ s)
            out.append(a)
        return [a.T for a in out]

    def apply(self, params, x):
        """``(A_L Wout, {"Z01": A_1, ..., "ZL": A_L})``."""
        path = self.path(params, x)
        _, w_out = self._ends(params)
        return path[-1] @ w_out, {layer_name("Z", l): a for l, a in enumerate(path[1:], 1)}

    def weights(self, params) -> dict:
        """The residual weights W_1..W_L (stored (w+1) x w)."""
        return {layer_name("W", l): params[layer_name("W", l)] for l in range(1, self.depth + 1)}

    def ridge(self, params, include_bias: bool = False):
        """(1 / (2 Lt)) [sum_l rho_l ||W_l||_F^2 (+ ||Win||_F^2 + ||Wout||_F^2 when
        ``ridge_ends``)]; the objective multiplies it by lam. The bias column is part of
        W_l, so ``include_bias`` changes nothing."""
        rho = self.rho(params)
        total = sum(rho[l - 1] * jnp.sum(jnp.square(params[layer_name("W", l)]))
                    for l in range(1, self.depth + 1))
        if self.ridge_ends and self.learn_ends:
            total = total + jnp.sum(jnp.square(params["Win"])) + jnp.sum(jnp.square(params["Wout"]))
        return total / (2.0 * self.leak)

    def host_update(self, params, x):
        """The adaptive step update on the training inputs ``x`` (traceable, one member)."""
        new = adapted_steps(params["rho"], self.path(params, x))
        return {**params, "rho": new.astype(params["rho"].dtype)}


def build_leaky_resnet(cfg, in_shape, d_out: int) -> LeakyResNet:
    m = cfg.model
    return LeakyResNet(cfg.depth, cfg.width, int(np.prod(in_shape)), d_out, m.leak, m.steps,
                       m.irregular_a, m.adapt_every, m.learn_ends, m.ridge_ends, m.init_scale)
