"""Models: a registry of Flax modules that expose their weights and intermediates.

Conventions (shared with ``spectra`` and ``report``):

* Parameters are a flat dict ``{"W01": (fan_in, fan_out), "b01": (fan_out,), ...}``,
  1-based layer index l = 1..L (SCIENCE.md section 1 calls W_l the map a_{l-1} -> z_l;
  we store its transpose so that ``z = a @ W``; singular values are the same).
* ``apply(params, x)`` returns ``(f(x), {"pre": [z_1..z_{L-1}], "post": [a_1..a_{L-1}]})``:
  the hidden pre- and post-activations, the representations Z_l of the papers.
* Initialisation is done on the host with NumPy (one program, no per-shape
  compilation of ``jax.random``): W ~ N(0, init_scale^2 * gain / fan_in),
  gain 2 (He) or 1 (LeCun); biases start at zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from .rundir import layer_name, sorted_layers

ACTIVATIONS: dict[str, Callable] = {
    "relu": nn.relu,
    "tanh": jnp.tanh,
    "identity": lambda z: z,
}
INIT_GAIN = {"he": 2.0, "lecun": 1.0}


class FullyConnected(nn.Module):
    """z_l = a_{l-1} W_l + b_l, a_l = act(z_l); output z_L (no activation)."""

    depth: int
    width: int
    d_out: int
    activation: str = "relu"
    bias: bool = True

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        pre, post = [], []
        a = x
        for l in range(1, self.depth + 1):
            fan_out = self.d_out if l == self.depth else self.width
            W = self.param(layer_name("W", l), nn.initializers.zeros, (a.shape[-1], fan_out))
            z = a @ W
            if self.bias:
                z = z + self.param(layer_name("b", l), nn.initializers.zeros, (fan_out,))[None, :]
            if l < self.depth:
                pre.append(z)
                a = act(z)
                post.append(a)
        return z, {"pre": pre, "post": post}


@dataclass(frozen=True)
class Model:
    """A built model: its Flax module and the settings needed to initialise it."""

    module: FullyConnected
    d_in: int
    init: str
    init_scale: float

    @property
    def depth(self) -> int:
        return self.module.depth

    def shapes(self) -> dict[str, tuple[int, ...]]:
        m = self.module
        dims = [self.d_in] + [m.width] * (m.depth - 1) + [m.d_out]
        shapes = {}
        for l in range(1, m.depth + 1):
            shapes[layer_name("W", l)] = (dims[l - 1], dims[l])
            if m.bias:
                shapes[layer_name("b", l)] = (dims[l],)
        return shapes

    def init_params(self, seed: int, dtype=np.float32) -> dict[str, np.ndarray]:
        """Host-side initialisation, deterministic in ``seed``."""
        rng = np.random.default_rng([seed, 0x6E6E])
        gain = INIT_GAIN[self.init]
        params = {}
        for name, shape in self.shapes().items():
            if name.startswith("W"):
                std = self.init_scale * np.sqrt(gain / shape[0])
                params[name] = (std * rng.standard_normal(shape)).astype(dtype)
            else:
                params[name] = np.zeros(shape, dtype)
        return params

    def apply(self, params, x):
        """``(f(x), {"pre": [...], "post": [...]})`` for a batch ``x`` of shape (N, d_in)."""
        return self.module.apply({"params": params}, x)


def weight_names(params) -> list[str]:
    """Weight-matrix keys W01..WLL in layer order (numeric: W99 before W100)."""
    return sorted_layers(k for k in params if k.startswith("W"))


def build_mlp(cfg, d_in: int, d_out: int) -> Model:
    m = cfg.model
    module = FullyConnected(cfg.depth, cfg.width, d_out, m.activation, m.bias)
    return Model(module, d_in, m.init, m.init_scale)


def build_linear(cfg, d_in: int, d_out: int) -> Model:
    m = cfg.model
    module = FullyConnected(cfg.depth, cfg.width, d_out, "identity", m.bias)
    return Model(module, d_in, m.init, m.init_scale)


MODELS: dict[str, Callable] = {"mlp": build_mlp, "linear": build_linear}


def build(cfg, d_in: int, d_out: int) -> Model:
    """Build ``cfg.model.name`` for the given input/output sizes."""
    try:
        builder = MODELS[cfg.model.name]
    except KeyError:
        raise ValueError(f"Unknown model {cfg.model.name!r}; choose from {sorted(MODELS)}") from None
    return builder(cfg, d_in, d_out)
