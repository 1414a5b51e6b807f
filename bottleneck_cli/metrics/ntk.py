"""The neural tangent kernel: its exact trace (generic, and fast for fully connected nets)
and its top eigenvalue (Lanczos with jvp/vjp, never materialising the Jacobian)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..rundir import layer_name
from .neurons import _weight_names

# NTK metrics use at most this many training inputs (the first ones); see ``ntk_metrics``.
NTK_MAX_SAMPLES = 512
# Lanczos steps for the NTK top eigenvalue: at most this many, fewer once it converged.
NTK_ITERS, NTK_RTOL = 20, 1e-6
# Floats one chunk of per-sample Jacobians may hold in the generic ``ntk_trace``.
_CHUNK_FLOATS = 1 << 24


def ntk_trace(apply_fn: Callable, params, x, *, chunk: int | None = None):
    """Exact Tr Theta = sum_i ||df(x_i)/dtheta||_F^2 for any ``apply_fn(params, x) -> f(x)``.

    Per-sample Jacobians (``vmap(jacrev)``) in chunks of ``chunk`` samples (default: as many
    as fit in 2^24 floats). Costs about d_out backward passes per sample plus N * d_out * P
    memory traffic; prefer ``ntk_trace_mlp`` for ``FullyConnected`` models.
    """
    import jax
    import jax.numpy as jnp

    n_params = sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params))
    d_out = jax.eval_shape(apply_fn, params, x[:1]).shape[-1]
    if chunk is None:
        chunk = max(1, min(x.shape[0], _CHUNK_FLOATS // max(1, d_out * n_params)))

    def per_sample(xi):
        J = jax.jacrev(lambda p: apply_fn(p, xi[None])[0])(params)
        return sum(jnp.sum(jnp.square(j)) for j in jax.tree_util.tree_leaves(J))

    return jnp.sum(jax.lax.map(per_sample, x, batch_size=chunk))


def ntk_trace_mlp(model, params, x):
    """Exact Tr Theta for a ``FullyConnected`` model, without per-sample weight gradients.

    With z_l = a_{l-1} W_l + b_l and delta_{l,k,i} = df_k(x_i)/dz_l,
    ||df_k(x_i)/dW_l||^2 = ||a_{l-1,i}||^2 ||delta_{l,k,i}||^2 and ||df_k(x_i)/db_l||^2 =
    ||delta_{l,k,i}||^2. The deltas are per-sample bias gradients: one forward pass with a
    per-sample copy of the biases (zero biases added when the model has none), then one
    backward pass per output dimension. Cost ~ (1 + d_out) passes over the N inputs.
    """
    import jax
    import jax.numpy as jnp

    module = model.module
    has_bias = bool(module.bias)
    if not has_bias:
        module = module.clone(bias=True)
    names = _weight_names(params)
    n = x.shape[0]
    Ws = {k: params[k] for k in names}
    bnames = [layer_name("b", l) for l in range(1, len(names) + 1)]
    B = {}
    for wn, bn in zip(names, bnames):
        fan_out = params[wn].shape[1]
        b = params[bn] if has_bias else jnp.zeros((fan_out,), params[wn].dtype)
        B[bn] = jnp.broadcast_to(b[None, :], (n, fan_out))

    def single(b_i, x_i):
        out, inter = module.apply({"params": {**Ws, **b_i}}, x_i.reshape(1, -1))
        return out[0], [a[0] for a in inter["post"]]

    out, vjp_fn, post = jax.vjp(lambda bb: jax.vmap(single)(bb, x), B, has_aux=True)
    d_out = out.shape[-1]
    a_sq = jnp.stack([jnp.sum(jnp.square(a), axis=1) for a in [x] + list(post)])  # (L, N)
    if has_bias:
        a_sq = a_sq + 1.0

    def delta_sq(e_k):  # (L, N): ||delta_{l,k,i}||^2 for one output dimension k
        (g,) = vjp_fn(jnp.broadcast_to(e_k[None, :], (n, d_out)).astype(out.dtype))
        return jnp.stack([jnp.sum(jnp.square(g[bn]), axis=1) for bn in bnames])

    floats = n * sum(int(params[w].shape[1]) for w in names)
    batch = max(1, min(d_out, _CHUNK_FLOATS // max(1, floats)))
    d_sq = jnp.sum(jax.lax.map(delta_sq, jnp.eye(d_out, dtype=out.dtype), batch_size=batch), axis=0)
    return jnp.sum(a_sq * d_sq)


def ntk_max_eig(apply_fn: Callable, params, x, iters: int = NTK_ITERS,
                rtol: float = NTK_RTOL):
    """Largest eigenvalue of the NTK Gram operator Theta = J J^T (size N * d_out).

    J is never materialised: Theta u = J (J^T u) with one vjp (``linear_transpose`` of the
    linearisation) and one jvp. Rather than plain power iteration, the products build a
    Lanczos basis (full re-orthogonalisation, fixed start vector) whose largest Ritz value
    converges much faster and never exceeds lambda_max. It stops after at most ``iters``
    products, or once the Ritz value grew by at most ``rtol`` of itself in one step (at the
    default size it is then converged to float32 precision after 6-8 products).
    """
    import jax
    import jax.numpy as jnp

    out, f_jvp = jax.linearize(lambda p: apply_fn(p, x), params)
    f_vjp = jax.linear_transpose(f_jvp, params)
    shape, dtype = out.shape, out.dtype
    size = int(np.prod(shape))
    k = max(1, min(int(iters), size))

    def theta(q):
        (v,) = f_vjp(q.reshape(shape))
        return f_jvp(v).reshape(size)

    # Fixed start: the mean direction plus a deterministic pseudo-random part (no PRNG compile).
    q0 = 1.0 + jnp.sin(0.7 + 2.39996323 * jnp.arange(size, dtype=dtype))
    q0 = q0 / jnp.linalg.norm(q0)

    def step(carry):
        j, Q, alpha, beta, q, ritz, _ = carry
        Q = Q.at[j].set(q)
        w = theta(q)
        a = jnp.dot(q, w)
        w_norm = jnp.linalg.norm(w)
        for _ in range(2):  # full re-orthogonalisation, twice is enough
            w = w - Q.T @ (Q @ w)
        b = jnp.linalg.norm(w)
        ok = b > 1e-5 * w_norm  # otherwise an invariant subspace was found: stop
        q = jnp.where(ok, w / jnp.where(ok, b, 1.0), 0.0)
        alpha, beta = alpha.at[j].set(a), beta.at[j].set(jnp.where(ok, b, 0.0))
        # the Ritz values of the j+1 products so far: beta[j] belongs to the next row
        new = tridiagonal_max_eig(alpha, jnp.where(jnp.arange(k - 1) < j, beta[:-1], 0.0))
        done = ~ok | ((j > 0) & (new - ritz <= rtol * jnp.abs(new)))
        return j + 1, Q, alpha, beta, q, new, done

    zeros = jnp.zeros((k,), dtype)
    init = (0, jnp.zeros((k, size), dtype), zeros, zeros, q0, jnp.zeros((), dtype), False)
    carry = jax.lax.while_loop(lambda c: (c[0] < k) & ~c[-1], step, init)
    return carry[5]


def tridiagonal_max_eig(diag, off, steps: int = 64):
    """Largest eigenvalue of the symmetric tridiagonal matrix (diag, off), by Sturm bisection.

    Plain jnp (no LAPACK call, see ``_after``); ``steps`` halvings of the Gershgorin interval.
    """
    import jax
    import jax.numpy as jnp

    off2 = jnp.concatenate([jnp.zeros((1,), diag.dtype), jnp.square(off)])
    radius = jnp.abs(jnp.concatenate([off, jnp.zeros((1,), diag.dtype)]))
    radius = radius + jnp.abs(jnp.concatenate([jnp.zeros((1,), diag.dtype), off]))
    lo, hi = jnp.min(diag - radius), jnp.max(diag + radius)
    tiny = jnp.finfo(diag.dtype).tiny

    def count_above(sigma):  # #eigenvalues > sigma = #positive pivots of T - sigma I
        def body(i, carry):
            d, n = carry
            d = diag[i] - sigma - off2[i] / d
            d = jnp.where(jnp.abs(d) < tiny, -tiny, d)
            return d, n + (d > 0)
        return jax.lax.fori_loop(0, diag.shape[0], body, (jnp.ones((), diag.dtype), 0))[1]

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        above = count_above(mid) > 0
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo, hi = jax.lax.fori_loop(0, steps, bisect, (lo, hi))
    return 0.5 * (lo + hi)


def ntk_metrics(model, params, x, *, iters: int = NTK_ITERS,
                max_samples: int = NTK_MAX_SAMPLES) -> dict:
    """``ntk/trace``, ``ntk/trace_per_nl``, ``ntk/max_eig`` and ``ntk/samples``.

    Estimator: the NTK of the first n = min(N, ``max_samples``) training inputs (exact on
    that subset; n is recorded as ``ntk/samples``). Tr Theta is exact (``ntk_trace_mlp`` for
    ``FullyConnected``, else ``ntk_trace``); ``trace_per_nl`` = Tr Theta / (n L); the top
    eigenvalue comes from ``ntk_max_eig`` (Lanczos, ``iters`` jvp/vjp pairs).
    """
    import jax.numpy as jnp

    from ..models import FullyConnected

    x = x[:max_samples]
    n = x.shape[0]
    depth = model.depth
    apply_fn = lambda p, v: model.apply(p, v)[0]  # noqa: E731
    if isinstance(getattr(model, "module", None), FullyConnected):
        trace = ntk_trace_mlp(model, params, x)
    else:
        trace = ntk_trace(apply_fn, params, x)
    return {
        "ntk/trace": trace,
        "ntk/trace_per_nl": trace / (n * depth),
        "ntk/max_eig": ntk_max_eig(apply_fn, params, x, iters),
        "ntk/samples": jnp.asarray(n, trace.dtype),
    }
