"""Singular values inside a compiled program: one batched SVD per shape, run one at a time,
or handed to NumPy after the program on the CPU backend (``host_svals``)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

# Key prefix of matrices left for ``host_svals`` to decompose.
HOST_SVD = "svd:"


def _after(dep, x):
    """``x``, but only once ``dep`` is computed: a data dependency via optimization_barrier.

    Used to run LAPACK calls one at a time. jaxlib's batched CPU SVD spreads its batch over
    XLA's intra-op thread pool and blocks its worker until done; two such calls running
    concurrently on a 2-core host can each hold a worker and wait on the other forever
    (observed: a permanent hang of a vmapped metrics program).
    """
    import jax

    if dep is None:
        return x
    return jax.lax.optimization_barrier((dep, x))[1]


def grouped_svals(mats: Mapping[str, Any], after=None, host: bool = False) -> dict:
    """Singular values (descending) of each 2-d matrix, one batched SVD per distinct shape.

    The SVDs run one after the other (and after ``after``, if given); see ``_after``.
    With ``host=True`` the matrices themselves are returned under ``svd:<name>`` keys and
    ``host_svals`` decomposes them with NumPy after the program ran: on the CPU backend
    this avoids LAPACK custom calls inside XLA, which can deadlock its thread pool.
    """
    import jax.numpy as jnp

    if host:
        return {f"{HOST_SVD}{n}": m for n, m in mats.items()}
    # Wide matrices are transposed (same singular values), so e.g. W01 and WLL share a group.
    tall = {n: (m if m.shape[-2] >= m.shape[-1] else m.T) for n, m in mats.items()}
    groups: dict[tuple, list[str]] = {}
    for name, m in tall.items():
        groups.setdefault(tuple(m.shape), []).append(name)
    out = {}
    for names in groups.values():
        s = jnp.linalg.svd(_after(after, jnp.stack([tall[n] for n in names])), compute_uv=False)
        after = s
        for i, n in enumerate(names):
            out[n] = s[i]
    return out


def host_svals(d: Mapping[str, Any]) -> dict:
    """Replace every ``svd:<name>`` matrix (or stack of matrices) by its singular values,
    computed with NumPy, one batched call per shape; other entries pass through."""
    out = {k: v for k, v in d.items() if not k.startswith(HOST_SVD)}
    groups: dict[tuple, list[str]] = {}
    for k, v in d.items():
        if k.startswith(HOST_SVD):
            groups.setdefault(np.shape(v), []).append(k)
    for shape, keys in groups.items():
        stack = np.stack([np.asarray(d[k]) for k in keys])
        bad = ~np.isfinite(stack).all(axis=tuple(range(1, stack.ndim)))
        if bad.any():  # a diverging member: NaN singular values (LAPACK refuses inf/NaN)
            stack = np.where(bad.reshape((-1,) + (1,) * (stack.ndim - 1)), 0.0, stack)
        svals = np.linalg.svd(stack, compute_uv=False)
        if bad.any():
            svals[bad] = np.nan
        for i, k in enumerate(keys):
            out[k[len(HOST_SVD):]] = svals[i]
    return out
