"""The end-to-end matrix of a deep linear chain, A = W_1 W_2 ... W_L in our (fan_in, fan_out)
orientation (the papers' W_L ... W_1 transposed: the same singular values), and its rank
over training (arXiv 2305.16038, 2106.15933): ``A`` holds its singular values, the host
derives ``rank/A`` (#{s_i > max(atol, rtol s_1)}), ``rank/A_s1_5`` (#{s_i > s_1 / 5}, the
tolerance of 2305.16038's code) and ``sval/A/k`` (the k-th largest, k <= ``TOP``)."""

from __future__ import annotations

import numpy as np

from .ranks import _s

TOP = 10  # singular values of A recorded as scalars (rise steps of the staircase)


def is_linear_chain(model, params) -> bool:
    """A deep linear net without biases: identity activation and only ``W`` parameters."""
    return (getattr(model, "activation", None) == "identity"
            and not any(str(k).startswith("b") for k in params))


def end_to_end(weights: dict):
    """A = W_1 @ W_2 @ ... @ W_L (traceable; float32 matmuls at full precision)."""
    import jax
    import jax.numpy as jnp

    mats = list(weights.values())  # in layer order (Model.weights)
    A = mats[0]
    for W in mats[1:]:
        A = jnp.matmul(A, W, precision=jax.lax.Precision.HIGHEST)
    return A


def summarize_end_to_end(s, atol: float, rtol: float) -> dict[str, float]:
    """Host-side keys of the singular values ``s`` of A (one pass: a record is every few
    milliseconds of training at 20 x 20)."""
    s = np.sort(_s(s))[::-1]
    top = float(s[0]) if s.size else 0.0
    out = {"rank/A": float(np.count_nonzero(s > max(float(atol), float(rtol) * top))),
           "rank/A_s1_5": float(np.count_nonzero(s > top / 5.0)) if top > 0 else 0.0}
    for k, v in enumerate(s[:TOP].tolist()):
        out[f"sval/A/{k + 1}"] = v
    return out
