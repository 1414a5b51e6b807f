"""The input-output Jacobian at a few training inputs, and its singular values."""

from __future__ import annotations

from typing import Callable

from .svd import _after


def jacobian_matrices(apply_fn: Callable, params, xs):
    """(samples, d_out, d_in): the Jacobian Jf(x) at each sample of xs (an input of any
    shape counts as its flattened d_in entries)."""
    import math

    import jax

    d_in = math.prod(xs.shape[1:])
    d_out = jax.eval_shape(apply_fn, params, xs[:1]).shape[-1]
    jac = jax.jacrev if d_out <= d_in else jax.jacfwd

    def one(xi):
        j = jac(lambda v: apply_fn(params, v[None])[0])(xi)
        return j.reshape(j.shape[0], -1)

    return jax.vmap(one)(xs)


def jacobian_svals(apply_fn: Callable, params, xs, after=None):
    """(samples, min(d_in, d_out)) singular values of Jf(x) (d_out x d_in) at each row of xs.

    The SVD waits for ``after`` (see ``_after``)."""
    import jax.numpy as jnp

    return jnp.linalg.svd(_after(after, jacobian_matrices(apply_fn, params, xs)), compute_uv=False)
