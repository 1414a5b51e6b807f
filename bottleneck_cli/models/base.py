"""The model protocol, with the defaults every family inherits.

A model is built from the run config and the data's shapes and offers (big_vision's
"models return their intermediates" idiom):

* ``depth``: L, the number of weight layers; ||θ||²/L and the depth fit use it.
* ``init(seed, dtype) -> params``: a flat dict of NumPy arrays, deterministic in ``seed``
  (host-side: no per-shape compilation of ``jax.random``).
* ``apply(params, x) -> (y, hiddens)``: the output and an ordered dict of the named hidden
  representations (``Z01``, ``Z02``, ...), each with the samples on its first axis.
* ``weights(params) -> dict``: the matrices whose spectra are recorded, in layer order
  (``W01``, ...): any 2-D view of a parameter (a reshaped conv kernel, a w x (w+1)
  residual weight).
* ``ridge(params, include_bias) -> scalar``: ||θ||² as the objective counts it.

Optional capabilities, looked up by the metrics that need them: ``preactivations(params,
x)`` (the hidden layers before the nonlinearity, same names as ``hiddens``), and
``kind``/``activation`` (which family-specific metrics apply), and ``host_every`` with
``host_update(params, x) -> params`` (the trainer applies it whenever the step reaches a
multiple of ``host_every``: non-trained state such as adaptive layer steps).
"""

from __future__ import annotations

import numpy as np

from ..rundir import sorted_layers

class Model:
    """Defaults of the protocol. A family sets ``depth`` and implements ``init`` and
    ``apply``; parameters named ``W<l>`` are its weights and ``b<l>`` its biases unless
    it overrides ``weights``/``ridge``."""

    depth: int
    kind: str = "custom"
    activation: str | None = None

    def init(self, seed: int, dtype=np.float32) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def apply(self, params, x):
        raise NotImplementedError

    def init_params(self, seed: int, dtype=np.float32) -> dict[str, np.ndarray]:
        """``init`` under its earlier name."""
        return self.init(seed, dtype)

    def weights(self, params) -> dict:
        return {k: params[k] for k in sorted_layers(k for k in params if k.startswith("W"))}

    def ridge(self, params, include_bias: bool = False):
        """sum_l ||W_l||_F^2 (+ sum_l ||b_l||^2 when ``include_bias``)."""
        import jax.numpy as jnp

        total = 0.0
        for value in self.weights(params).values():
            total = total + jnp.sum(value * value)
        if include_bias:
            for name, value in params.items():
                if name.startswith("b"):
                    total = total + jnp.sum(value * value)
        return total


class ForwardModel(Model):
    """A model whose ``_forward(params, x) -> (y, pre, post)`` returns the output and the
    hidden layers before and after the activation (both keyed ``Z01``, ...): ``apply`` and
    ``preactivations`` follow from it."""

    def _forward(self, params, x):
        raise NotImplementedError

    def apply(self, params, x):
        """``(f(x), {"Z01": a_1, ...})``: the output and the post-activation hiddens."""
        y, _, post = self._forward(params, x)
        return y, post

    def preactivations(self, params, x) -> dict:
        """``{"Z01": z_1, ...}``: the hidden layers before the activation."""
        return self._forward(params, x)[1]
