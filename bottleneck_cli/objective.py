"""The objective the papers study, literally: fit(f_theta) + lam * ||theta||^2.

SCIENCE.md section 1: fit is the mean over samples of ||f(x_i) - y_i||^2 (MSE, summed
over output dimensions) or the cross-entropy; ||theta||^2 = sum_l ||W_l||_F^2, plus the
biases when ``ridge_on_bias`` (each model says which parameters count: ``Model.ridge``).
The ridge is part of the loss, not decoupled weight decay. Both terms are returned so
they can be logged separately.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def fit_term(pred, y, loss: str, mask=None):
    """Mean over samples of ||pred_i - y_i||^2 (mse), of ||pred_i - y_i|| (l2norm, the
    issue's reading of arXiv 2407.05664's "L1"), or the mean cross-entropy for one-hot y.
    With a 0/1 ``mask`` (a task observing some entries): the mean over observed entries of
    (pred_ij - y_ij)^2, sum(mask (pred - y)^2) / sum(mask)."""
    if mask is not None:
        if loss != "mse":
            raise ValueError("a masked fit is a squared error (loss=mse)")
        return jnp.sum(mask * (pred - y) ** 2) / jnp.maximum(jnp.sum(mask), 1)
    if loss == "mse":
        return jnp.mean(jnp.sum((pred - y) ** 2, axis=-1))
    if loss == "cross_entropy":
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(pred, axis=-1), axis=-1))
    if loss == "l2norm":
        sq = jnp.sum((pred - y) ** 2, axis=-1)
        pos = sq > 0  # the norm's gradient at a zero residual: 0 (a subgradient), not NaN
        return jnp.mean(jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0))
    raise ValueError(f"Unknown loss {loss!r}; choose from ['mse', 'cross_entropy', 'l2norm']")


def entries_fit(pred, y, entries):
    """Mean over the (row, column) pairs ``entries`` (B, 2) of (pred_ij - y_ij)^2."""
    i, j = entries[:, 0], entries[:, 1]
    return jnp.mean((pred[i, j] - y[i, j]) ** 2)


def objective(model, params, x, y, lam, loss: str, include_bias: bool = False, mask=None,
              entries=None):
    """Return ``(fit + lam * ||theta||^2, (fit, lam * ||theta||^2))``; the fit over the
    observed entries when ``mask`` is given, over the pairs ``entries`` when those are."""
    pred, _ = model.apply(params, x)
    if entries is not None:
        fit = entries_fit(pred, y, entries)
    else:
        fit = fit_term(pred, y, loss, mask)
    ridge = lam * model.ridge(params, include_bias)
    return fit + ridge, (fit, ridge)


def accuracy(pred, y):
    """Fraction of rows whose arg-max matches the one-hot target's."""
    return jnp.mean(jnp.argmax(pred, axis=-1) == jnp.argmax(y, axis=-1))
