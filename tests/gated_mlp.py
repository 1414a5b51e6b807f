"""A researcher's own model, outside the package: the worked example of docs/extending.md.

A gated ReLU net, a_l = relu(z_l) * sigmoid(gate * z_l) with z_l = a_{l-1} W_l, written
with jax.numpy alone. It follows the model protocol (``bottleneck_cli.models.base``):
``depth``, ``init``, ``apply`` -> (output, named hidden representations); ``weights`` and
``ridge`` come from the base class (parameters named W01, W02, ...).
"""

import jax
import numpy as np

from bottleneck_cli.models import Model


class GatedMLP(Model):
    def __init__(self, depth, width, in_shape, d_out, gate=1.0, **unused):
        self.depth, self.gate = depth, gate
        self.dims = [int(np.prod(in_shape))] + [width] * (depth - 1) + [d_out]

    def init(self, seed, dtype=np.float32):
        rng = np.random.default_rng(seed)
        pairs = zip(self.dims[:-1], self.dims[1:])
        return {f"W{l:02d}": (rng.standard_normal((a, b)) * np.sqrt(2.0 / a)).astype(dtype)
                for l, (a, b) in enumerate(pairs, 1)}

    def apply(self, params, x):
        a, hiddens = x.reshape(x.shape[0], -1), {}
        for l in range(1, self.depth + 1):
            z = a @ params[f"W{l:02d}"]
            if l == self.depth:
                return z, hiddens
            a = jax.nn.relu(z) * jax.nn.sigmoid(self.gate * z)
            hiddens[f"Z{l:02d}"] = a
