"""Singular values inside a compiled program: one batched SVD per shape, run one at a time,
or handed to NumPy after the program on the CPU backend (``host_svals``)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

# Key prefix of matrices left for ``host_svals`` to decompose.
HOST_SVD = "svd:"
# Complex matrix stacks left for ``host_svals``, as ``<prefix><name>:re`` / ``:im`` real parts
# (the packed program output is real): plain, or a Gram G = A^H A whose square-rooted
# singular values are A's.
HOST_SVD_COMPLEX, HOST_SVD_GRAM = "svdc:", "svdg:"


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


def complex_svals(mats: Mapping[str, Any], grams: Mapping[str, Any] = {}, after=None,
                  host: bool = False) -> dict:
    """Singular values (descending, last axis) of stacks of complex matrices ``mats`` and of
    the matrices A whose Grams A^H A are ``grams`` (sqrt of the Gram's). In the program,
    one after the other (see ``_after``); with ``host=True`` their real and imaginary parts
    are returned for ``host_svals``."""
    import jax.numpy as jnp

    if host:
        out = {}
        for prefix, group in ((HOST_SVD_COMPLEX, mats), (HOST_SVD_GRAM, grams)):
            for n, m in group.items():
                out[f"{prefix}{n}:re"], out[f"{prefix}{n}:im"] = jnp.real(m), jnp.imag(m)
        return out
    out = {}
    for group, root in ((mats, False), (grams, True)):
        for n, m in group.items():
            s = jnp.linalg.svd(_after(after, m), compute_uv=False)
            after = s
            out[n] = jnp.sqrt(jnp.maximum(s, 0)) if root else s
    return out


def _host_complex(d: Mapping[str, Any]) -> dict:
    out = {}
    for prefix, root in ((HOST_SVD_COMPLEX, False), (HOST_SVD_GRAM, True)):
        for k in d:
            if k.startswith(prefix) and k.endswith(":re"):
                n = k[len(prefix):-3]
                m = np.asarray(d[k]) + 1j * np.asarray(d[f"{prefix}{n}:im"])
                s = np.linalg.svd(m, compute_uv=False)
                out[n] = np.sqrt(np.maximum(s, 0)) if root else s
    return out


def stack_svals(stack: np.ndarray) -> np.ndarray:
    """Singular values (descending) of a stack of real matrices, with NumPy.

    float32 stacks go through their float64 Gram matrices: sqrt(eigvalsh(M^T M)), M^T M of
    the smaller side. Its absolute error, about sqrt(eps64) s_1 = 1.5e-8 s_1 at worst (the
    smallest singular values), is below a float32 SVD's eps32 s_1 = 6e-8 s_1, and it takes
    about a third of the time (one batched product and a symmetric eigensolve per shape
    instead of an SVD per matrix). float64 stacks keep the SVD's full precision.
    """
    if stack.dtype != np.float32:
        return np.linalg.svd(stack, compute_uv=False)
    m = stack.astype(np.float64)
    if m.shape[-2] < m.shape[-1]:
        m = np.swapaxes(m, -1, -2)
    eig = np.linalg.eigvalsh(np.swapaxes(m, -1, -2) @ m)[..., ::-1]
    return np.sqrt(np.maximum(eig, 0.0)).astype(np.float32)


def host_svals(d: Mapping[str, Any]) -> dict:
    """Replace every ``svd:<name>`` matrix (or stack of matrices) by its singular values,
    computed with NumPy (``stack_svals``), one batched call per shape (and ``svdc:``/
    ``svdg:`` complex stacks, see ``complex_svals``); other entries pass through."""
    out = {k: v for k, v in d.items()
           if not k.startswith((HOST_SVD, HOST_SVD_COMPLEX, HOST_SVD_GRAM))}
    out.update(_host_complex(d))
    groups: dict[tuple, list[str]] = {}
    for k, v in d.items():
        if k.startswith(HOST_SVD):
            groups.setdefault(np.shape(v), []).append(k)
    for shape, keys in groups.items():
        stack = np.stack([np.asarray(d[k]) for k in keys])
        bad = ~np.isfinite(stack).all(axis=tuple(range(1, stack.ndim)))
        if bad.any():  # a diverging member: NaN singular values (LAPACK refuses inf/NaN)
            stack = np.where(bad.reshape((-1,) + (1,) * (stack.ndim - 1)), 0.0, stack)
        svals = stack_svals(stack)
        if bad.any():
            svals[bad] = np.nan
        for i, k in enumerate(keys):
            out[k[len(HOST_SVD):]] = svals[i]
    return out
