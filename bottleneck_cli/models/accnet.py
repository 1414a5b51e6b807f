"""The accordion network (AccNet) of arXiv 2407.05664: ``blocks`` blocks, each
d_mid -> d_full -> d_mid, with ReLU after every layer but the last.

Layer widths d_in -> d_full -> d_mid -> d_full -> ... -> d_mid -> d_full -> d_out: depth
L = 2 * blocks weight matrices ``W01``..; hidden representations ``Z01``.. alternate between
the wide (d_full, odd l) and the narrow (d_mid, even l) layers, so a compositional target
y = h(g(x)) can show its inner dimension in the narrow ones. Parameters and initialisation
follow ``mlp`` (z = a @ W + b, He/LeCun normal weights, zero biases).
"""

from __future__ import annotations

import numpy as np

from ..rundir import layer_name
from .base import ForwardModel
from .mlp import ACTIVATIONS, dense_chain, fan_in_init


class AccNet(ForwardModel):
    kind = "accnet"

    def __init__(self, d_in: int, d_out: int, blocks: int = 5, d_full: int = 900,
                 d_mid: int = 100, activation: str = "relu", bias: bool = True,
                 init: str = "he", init_scale: float = 1.0):
        self.dims = [d_in] + [d_full, d_mid] * (blocks - 1) + [d_full, d_out]
        self.depth = 2 * blocks
        self.activation, self.bias = activation, bias
        self.init_scheme, self.init_scale = init, init_scale

    def shapes(self) -> dict[str, tuple[int, ...]]:
        out = {}
        for l in range(1, self.depth + 1):
            out[layer_name("W", l)] = (self.dims[l - 1], self.dims[l])
            if self.bias:
                out[layer_name("b", l)] = (self.dims[l],)
        return out

    def init(self, seed: int, dtype=np.float32) -> dict[str, np.ndarray]:
        return fan_in_init(self.shapes(), np.random.default_rng([seed, 0xACC]),
                           self.init_scheme, self.init_scale, dtype)

    def _forward(self, params, x):
        z, pre, post = dense_chain(params, x.reshape(x.shape[0], -1), self.depth,
                                   ACTIVATIONS[self.activation], self.bias)
        names = [layer_name("Z", l) for l in range(1, self.depth)]
        return z, dict(zip(names, pre)), dict(zip(names, post))


def build_accnet(cfg, in_shape: tuple[int, ...], d_out: int) -> AccNet:
    m = cfg.model
    return AccNet(int(np.prod(in_shape)), d_out, m.blocks, m.d_full, m.d_mid, m.activation,
                  m.bias, m.init, m.init_scale)


__all__ = ["AccNet", "build_accnet"]
