"""The ``cnn`` family: circular convolutions on the torus (arXiv 2402.08010, SCIENCE.md 5.5).

Inputs are images (N, H, W, C). Layers l = 1..L-1 are circular convolutions with kernel
``K_l`` of shape (k, k, c_in, c_out) (stored as ``W<l>``), bias ``b<l>``, then the
activation; the hidden representations ``Z<l>`` are the activated images (N, h, w, c).
Kernel index j sits at spatial offset d = j - k // 2, and the layer computes the
cross-correlation on the torus

    z_l(p) = sum_d K_l(d)^T a_{l-1}(p + d) + b_l        (p + d taken mod (h, w)),

so every layer is exactly a convolution on the torus (circular padding). A layer listed in
``downsample`` keeps the even pixels p = (2i, 2j) of its output (stride 2). A kernel wider
than a layer's spatial size is cut to that size (a full-size convolution). Head (layer L):
``pool`` = global average pooling then a linear map W_L (c, d_out) (classification);
``map`` = a last circular convolution to d_out / (h w) channels, flattened (h, w, c)
(autoencoders; the output image has the last layer's size).

``weights`` gives each kernel as the 2-D matrix (k k c_in, c_out) (rows ordered (dy, dx,
c_in)): its Frobenius norm is the kernel's, so ||θ||² and the generic spectra are defined;
the per-frequency matrices W_l(k) are ``metrics/frequencies.py``'s. Init as ``mlp``:
K ~ N(0, init_scale² gain / (k k c_in)), biases zero.
"""

from __future__ import annotations

import numpy as np

from ..rundir import layer_name
from .base import ForwardModel
from .mlp import ACTIVATIONS, fan_in_init

HEADS = ("pool", "map")


def circular_conv(a, K, stride: int = 1):
    """z(p) = sum_d K(d)^T a(p + d) on the torus, d = j - k // 2; a (N, H, W, c_in),
    K (kh, kw, c_in, c_out); stride 2 keeps the even output pixels.

    Computed in the Fourier basis, where the circular convolution is block-diagonal
    (convolution theorem): with g(q) = K(-q) placed on the (H, W) torus,
    Z(k) = A(k) G(k) per frequency k (a c_in x c_out matrix product), z = IDFT(Z). This is
    the same linear map as the direct sum up to float rounding, and on XLA:CPU far faster
    than ``lax.conv_general_dilated`` with wrap padding (whose backward convolutions are
    slow there); a 1x1 kernel is one matmul.
    """
    import jax
    import jax.numpy as jnp

    kh, kw, c_in, c_out = K.shape
    h, w = a.shape[1:3]
    hi = jax.lax.Precision.HIGHEST
    if kh == kw == 1:
        z = jnp.einsum("nhwc,co->nhwo", a, K[0, 0], precision=hi)
    else:
        dy = (kh // 2 - np.arange(kh)) % h  # g((-d) mod h) = K(d)
        dx = (kw // 2 - np.arange(kw)) % w
        g = jnp.zeros((h, w, c_in, c_out), K.dtype).at[dy[:, None], dx[None, :]].add(K)
        A = jnp.fft.rfft2(a, axes=(1, 2))
        G = jnp.fft.rfft2(g, axes=(0, 1))
        Z = jnp.einsum("nhwc,hwco->nhwo", A, G, precision=hi)
        z = jnp.fft.irfft2(Z, s=(h, w), axes=(1, 2)).astype(a.dtype)
    return z[:, ::stride, ::stride] if stride > 1 else z


class CNN(ForwardModel):
    kind = "cnn"

    def __init__(self, depth: int, width: int, in_shape, d_out: int, kernel: int = 3,
                 bias: bool = True, activation: str = "relu", init: str = "he",
                 init_scale: float = 1.0, head: str = "pool", downsample=(), **unused):
        in_shape = tuple(int(s) for s in in_shape)
        if len(in_shape) != 3:
            raise ValueError(f"model=cnn needs image inputs (N, H, W, C); this task gives "
                             f"samples of shape {in_shape}")
        if head not in HEADS:
            raise ValueError(f"model.head={head!r} is not valid; choose from {list(HEADS)}")
        self.depth, self.width, self.d_out = int(depth), int(width), int(d_out)
        self.head, self.bias, self.activation = head, bool(bias), activation
        self.init_scheme, self.init_scale = init, float(init_scale)
        self.downsample = tuple(sorted(int(l) for l in (downsample or ())))
        n_conv = self.depth - 1 if head == "pool" else self.depth
        bad = [l for l in self.downsample if not 1 <= l <= n_conv]
        if bad:
            raise ValueError(f"model.downsample={list(self.downsample)}: layers must be "
                             f"conv layers 1..{n_conv}")
        h, w, c = in_shape
        self.layers = []  # (l, (h, w) of the layer's input, (kh, kw), c_in, c_out, stride)
        for l in range(1, n_conv + 1):
            stride = 2 if l in self.downsample else 1
            if stride == 2 and (h % 2 or w % 2):
                raise ValueError(f"model.downsample: layer {l} gets a {h}x{w} image; "
                                 "stride 2 needs even sizes")
            c_out = width if l < self.depth else None
            if c_out is None:  # the map head
                hw = (h // stride) * (w // stride)
                if d_out % hw:
                    raise ValueError(f"model.head=map: the task's {d_out} outputs are not "
                                     f"a {h // stride}x{w // stride} image with channels")
                c_out = d_out // hw
            self.layers.append((l, (h, w), (min(kernel, h), min(kernel, w)), c, c_out, stride))
            h, w, c = h // stride, w // stride, c_out
        self.in_shape = in_shape

    def shapes(self) -> dict[str, tuple[int, ...]]:
        out = {}
        for l, _, (kh, kw), ci, co, _ in self.layers:
            out[layer_name("W", l)] = (kh, kw, ci, co)
            if self.bias:
                out[layer_name("b", l)] = (co,)
        if self.head == "pool":
            ci = self.layers[-1][4] if self.layers else self.in_shape[2]
            out[layer_name("W", self.depth)] = (ci, self.d_out)
            if self.bias:
                out[layer_name("b", self.depth)] = (self.d_out,)
        return out

    def init(self, seed: int, dtype=np.float32) -> dict[str, np.ndarray]:
        """He/LeCun with fan-in kh·kw·c_in for a kernel (kh, kw, c_in, c_out)."""
        return fan_in_init(self.shapes(), np.random.default_rng([seed, 0xC44]),
                           self.init_scheme, self.init_scale, dtype)

    def convs(self, params) -> list[tuple[str, object, tuple[int, int]]]:
        """(name, kernel (kh, kw, c_in, c_out), the (h, w) it acts on) of each conv layer."""
        return [(layer_name("W", l), params[layer_name("W", l)], hw)
                for l, hw, *_ in self.layers]

    def weights(self, params) -> dict:
        """Kernels as (kh kw c_in, c_out) matrices; the pool head's W_L as it is."""
        out = {}
        for name in self.shapes():
            if name.startswith("W"):
                v = params[name]
                out[name] = v.reshape(-1, v.shape[-1])
        return out

    def _forward(self, params, x):
        import jax.numpy as jnp

        act = ACTIVATIONS[self.activation]
        a, pre, post = x, {}, {}
        for l, _, _, _, _, stride in self.layers:
            z = circular_conv(a, params[layer_name("W", l)], stride)
            if self.bias:
                z = z + params[layer_name("b", l)][None, None, None, :]
            if l == self.depth:  # the map head
                return z.reshape(z.shape[0], -1), pre, post
            a = act(z)
            pre[layer_name("Z", l)], post[layer_name("Z", l)] = z, a
        y = jnp.mean(a, axis=(1, 2)) @ params[layer_name("W", self.depth)]
        if self.bias:
            y = y + params[layer_name("b", self.depth)][None, :]
        return y, pre, post


def build_cnn(cfg, in_shape: tuple[int, ...], d_out: int) -> CNN:
    m = cfg.model
    return CNN(cfg.depth, cfg.width, in_shape, d_out, kernel=m.kernel, bias=m.bias,
               activation=m.activation, init=m.init, init_scale=m.init_scale, head=m.head,
               downsample=list(m.downsample or ()))
