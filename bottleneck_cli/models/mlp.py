"""The fully connected families: ``mlp`` (ReLU/tanh, biases) and ``linear`` (deep linear).

Parameters are a flat dict ``{"W01": (fan_in, fan_out), "b01": (fan_out,), ...}``, 1-based
layer index l = 1..L (SCIENCE.md section 1 calls W_l the map a_{l-1} -> z_l; we store its
transpose so that ``z = a @ W``; singular values are the same). The hidden
representations are the post-activations a_1..a_{L-1} (``Z01``..), the papers' Z_l.
Initialisation is host-side NumPy: W ~ N(0, init_scale^2 * gain / fan_in), gain 2 (He) or
1 (LeCun), or N(0, init_scale^2 * width^-gamma) with ``model.init_gamma`` (arXiv 2106.15933:
small gamma lazy, large gamma saddle-to-saddle); biases start at zero. Inputs of any shape are flattened to vectors.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..rundir import layer_name
from .base import Model

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "identity": lambda z: z,
}
INIT_GAIN = {"he": 2.0, "lecun": 1.0}


def fan_in_init(shapes: dict, rng, scheme: str, scale: float, dtype, std: float | None = None):
    """Every ``W`` ~ N(0, std²), std = scale·sqrt(gain / fan_in) (gain 2 for He, 1 for
    LeCun; fan_in: the product of every axis but the last) unless ``std`` is given; every
    bias zero. Draws in the order of ``shapes``, so the result is fixed by ``rng``."""
    gain = INIT_GAIN[scheme]
    params = {}
    for name, shape in shapes.items():
        if name.startswith("W"):
            s = std if std is not None else scale * np.sqrt(gain / int(np.prod(shape[:-1])))
            params[name] = (s * rng.standard_normal(shape)).astype(dtype)
        else:
            params[name] = np.zeros(shape, dtype)
    return params


@dataclasses.dataclass(frozen=True)
class FullyConnected:
    """z_l = a_{l-1} W_l + b_l, a_l = act(z_l); output z_L (no activation).

    A plain JAX forward pass with the call convention of a Flax module
    (``apply({"params": params}, x)``, ``clone(**changes)``): importing Flax costs start-up
    time that a fully connected net does not need."""

    depth: int
    width: int
    d_out: int
    activation: str = "relu"
    bias: bool = True

    def clone(self, **changes) -> "FullyConnected":
        return dataclasses.replace(self, **changes)

    def apply(self, variables: dict, x):
        """``(z_L, {"pre": [z_1..z_{L-1}], "post": [a_1..a_{L-1}]})``, rows are samples."""
        z, pre, post = dense_chain(variables["params"], x, self.depth,
                                   ACTIVATIONS[self.activation], self.bias)
        return z, {"pre": pre, "post": post}


def dense_chain(params: dict, x, depth: int, act: Callable, bias: bool):
    """z_l = a_{l-1} W_l (+ b_l), a_l = act(z_l) for l = 1..depth, from a_0 = x (rows are
    samples): ``(z_L, [z_1..z_{L-1}], [a_1..a_{L-1}])``.

    Computed feature-major (z^T = W^T a^T + b, one column per sample) and transposed back:
    the same math (float sums in another order), but XLA:CPU's matmuls with the samples as
    the long output axis are 20-35% faster at the benchmark sizes (BENCHMARKS.md, `step`)."""
    pre, post = [], []
    a = x.T
    for l in range(1, depth + 1):
        z = params[layer_name("W", l)].T @ a
        if bias:
            z = z + params[layer_name("b", l)][:, None]
        if l < depth:
            pre.append(z.T)
            a = act(z)
            post.append(a.T)
    return z.T, pre, post


class MLP(Model):
    """A built fully connected net: its Flax module and how to initialise it."""

    kind = "mlp"

    def __init__(self, module: FullyConnected, d_in: int, init: str = "he",
                 init_scale: float = 1.0, init_gamma: float | None = None):
        self.module, self.d_in, self.init_scheme, self.init_scale = module, d_in, init, init_scale
        self.init_gamma = init_gamma
        self.depth = module.depth
        self.activation = module.activation

    def shapes(self) -> dict[str, tuple[int, ...]]:
        m = self.module
        dims = [self.d_in] + [m.width] * (m.depth - 1) + [m.d_out]
        shapes = {}
        for l in range(1, m.depth + 1):
            shapes[layer_name("W", l)] = (dims[l - 1], dims[l])
            if m.bias:
                shapes[layer_name("b", l)] = (dims[l],)
        return shapes

    def init(self, seed: int, dtype=np.float32) -> dict[str, np.ndarray]:
        """Host-side initialisation, deterministic in ``seed``; fan-in is a W's first axis;
        with ``init_gamma`` every W has variance init_scale² · width^-gamma (arXiv 2106.15933)."""
        std = None
        if self.init_gamma is not None:
            std = self.init_scale * float(self.module.width) ** (-self.init_gamma / 2)
        return fan_in_init(self.shapes(), np.random.default_rng([seed, 0x6E6E]),
                           self.init_scheme, self.init_scale, dtype, std)

    def _forward(self, params, x):
        return self.module.apply({"params": params}, x.reshape(x.shape[0], -1))

    def apply(self, params, x):
        """``(f(x), {"Z01": a_1, ..., "Z(L-1)": a_{L-1}})`` for a batch ``x``."""
        y, inter = self._forward(params, x)
        return y, {layer_name("Z", l): a for l, a in enumerate(inter["post"], 1)}

    def preactivations(self, params, x) -> dict:
        """``{"Z01": z_1, ...}``: the hidden layers before the activation."""
        _, inter = self._forward(params, x)
        return {layer_name("Z", l): z for l, z in enumerate(inter["pre"], 1)}


def _flat_dim(in_shape) -> int:
    return int(np.prod(in_shape))


def build_mlp(cfg, in_shape: tuple[int, ...], d_out: int) -> MLP:
    m = cfg.model
    module = FullyConnected(cfg.depth, cfg.width, d_out, m.activation, m.bias)
    return MLP(module, _flat_dim(in_shape), m.init, m.init_scale, m.get("init_gamma"))


def build_linear(cfg, in_shape: tuple[int, ...], d_out: int) -> MLP:
    m = cfg.model
    module = FullyConnected(cfg.depth, cfg.width, d_out, "identity", m.bias)
    return MLP(module, _flat_dim(in_shape), m.init, m.init_scale, m.get("init_gamma"))


def build_shallow(cfg, in_shape: tuple[int, ...], d_out: int) -> MLP:
    """One hidden layer of ``model.hidden`` units (the top-level depth and width do not apply)."""
    m = cfg.model
    module = FullyConnected(2, m.hidden, d_out, m.activation, m.bias)
    return MLP(module, _flat_dim(in_shape), m.init, m.init_scale, m.get("init_gamma"))
