"""Hamiltonian quantities of a Leaky ResNet (arXiv 2405.17573, sections 1.3-2.1).

Per layer p_l, on the training inputs, with A_l = alpha_{p_l}(X) (the paper's w x N;
ours is its transpose, rows are samples), K_l = sigma(A_l)^T sigma(A_l) and the
stabilised norm ||M||^2_K = Tr[M (K + gamma I)^{-1} M^T], gamma_l = coi_gamma ||K_l||_op:

* ``coi/Zl``        the cost of identity ||A_l||^2_{K_l};
* ``kinetic/Zl``    (1 / (2 Lt)) ||(A_l - A_{l-1}) / rho_l||^2_{K_l};
* ``hamiltonian/Zl`` kinetic - (Lt / 2) coi (Theorem 4's stable Hamiltonian);
* ``rho/Zl``, ``p/Zl`` the layer step and position; ``path/length`` sum_l ||A_l - A_{l-1}||_{K_l};
* ``bottleneck/hamiltonian_rank`` median_l (-2 H_l / Lt), ``bottleneck/min_coi`` min_l coi;
* ``steps/max_rho_leak`` max_l rho_l Lt (> 1: a negative skip weight; adaptive steps only).

The norm uses the (w+1) x (w+1) Gram S^T S instead of the N x N kernel (push-through):
(S S^T + gamma)^{-1} = (I - S (S^T S + gamma)^{-1} S^T) / gamma.
"""

from __future__ import annotations

from ..rundir import layer_name
from .config import setting


def _sigma(a):
    import jax
    import jax.numpy as jnp

    return jnp.concatenate([jax.nn.relu(a), jnp.ones_like(a[:, :1])], axis=1)


def stabilised_norms(a, ms, gamma_rel: float):
    """``[||M||^2_{(K + gamma I)^{-1}} for M in ms]`` with K = sigma(a) sigma(a)^T (rows of
    ``a`` and of each M are samples) and gamma = gamma_rel ||K||_op; also returns sqrt."""
    import jax
    import jax.numpy as jnp

    hi = jax.lax.Precision.HIGHEST
    s = _sigma(a)
    e, u = jnp.linalg.eigh(jnp.matmul(s.T, s, precision=hi))
    gamma = gamma_rel * jnp.max(e)
    out = []
    for m in ms:
        b = jnp.matmul(u.T, jnp.matmul(s.T, m, precision=hi), precision=hi)
        inner = jnp.sum(jnp.sum(b * b, axis=1) / (jnp.maximum(e, 0.0) + gamma))
        out.append(jnp.maximum(jnp.sum(m * m) - inner, 0.0) / gamma)
    return out


def hamiltonian_terms(path, rho, leak: float, gamma_rel: float) -> dict:
    """The module docstring's keys from ``path`` = [A_0, ..., A_L] and the steps ``rho``."""
    import jax.numpy as jnp

    out, coi, ham, length = {}, [], [], 0.0
    p = jnp.cumsum(rho)
    for l in range(1, len(path)):
        z = layer_name("Z", l)
        step = path[l] - path[l - 1]
        c, d = stabilised_norms(path[l], [path[l], step], gamma_rel)
        kin = d / (rho[l - 1] ** 2) / (2.0 * leak)
        h = kin - 0.5 * leak * c
        out.update({f"coi/{z}": c, f"kinetic/{z}": kin, f"hamiltonian/{z}": h,
                    f"rho/{z}": rho[l - 1], f"p/{z}": p[l - 1]})
        coi.append(c)
        ham.append(h)
        length = length + jnp.sqrt(d)
    out["path/length"] = length
    out["bottleneck/hamiltonian_rank"] = jnp.median(-2.0 * jnp.stack(ham) / leak)
    out["bottleneck/min_coi"] = jnp.min(jnp.stack(coi))
    out["steps/max_rho_leak"] = jnp.max(rho) * leak
    return out


def leaky_metrics(ctx) -> dict:
    """The registered metric: ``hamiltonian_terms`` of ``ctx.model`` at ``ctx.x``."""
    model = ctx.model
    return hamiltonian_terms(model.path(ctx.params, ctx.x), model.rho(ctx.params), model.leak,
                             float(setting(ctx.cfg, "coi_gamma")))
