"""The Fourier-basis circular convolution equals the direct one (wrap padding +
``lax.conv_general_dilated``, the former implementation kept here as the reference) to
float32 rounding, values and gradients, for odd, even, 1x1 and full-size kernels, stride 1
and 2."""

import numpy as np
import pytest

from bottleneck_cli.models.cnn import circular_conv


def reference_conv(a, K, stride=1):
    """z(p) = sum_d K(d)^T a(p + d), d = j - k // 2, by wrap padding and a VALID conv."""
    import jax
    import jax.numpy as jnp

    kh, kw = K.shape[:2]
    pads = ((0, 0), (kh // 2, kh - 1 - kh // 2), (kw // 2, kw - 1 - kw // 2), (0, 0))
    return jax.lax.conv_general_dilated(
        jnp.pad(a, pads, mode="wrap"), K, (stride, stride), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=jax.lax.Precision.HIGHEST)


CASES = [(k, size, s) for k, size in [(1, (4, 6)), (2, (8, 8)), (3, (8, 8)), (4, (6, 10)),
                                      (5, (8, 6)), (8, (8, 8))] for s in (1, 2)]


@pytest.mark.parametrize("k,size,stride", CASES)
def test_matches_direct_convolution_and_gradients(k, size, stride):
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(k * 10 + stride)
    h, w = size
    a = jnp.asarray(rng.standard_normal((3, h, w, 4)), jnp.float32)
    K = jnp.asarray(rng.standard_normal((min(k, h), min(k, w), 4, 5)), jnp.float32)
    z, z_ref = circular_conv(a, K, stride), reference_conv(a, K, stride)
    assert z.dtype == jnp.float32 and z.shape == z_ref.shape
    fan_in = K.shape[0] * K.shape[1] * K.shape[2]  # float32 rounding of a fan_in-term sum
    tol = 1e-6 * np.sqrt(fan_in) * float(jnp.abs(z_ref).max())
    np.testing.assert_allclose(np.asarray(z), np.asarray(z_ref), atol=tol)

    cot = jnp.asarray(rng.standard_normal(z_ref.shape), jnp.float32)
    loss = lambda f: (lambda a, K: jnp.sum(jnp.tanh(f(a, K, stride)) * cot))
    g = jax.grad(loss(circular_conv), argnums=(0, 1))(a, K)
    g_ref = jax.grad(loss(reference_conv), argnums=(0, 1))(a, K)
    for got, want in zip(g, g_ref):
        scale = float(jnp.abs(want).max())
        np.testing.assert_allclose(np.asarray(got), np.asarray(want),
                                   atol=1e-6 * np.sqrt(fan_in * a.shape[0] * h * w) * scale)


def test_jit_and_vmap_over_members():
    """Members stacked on a leading axis (the trainer's cohort) give each member's result."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(7)
    a = jnp.asarray(rng.standard_normal((2, 3, 8, 8, 4)), jnp.float32)
    K = jnp.asarray(rng.standard_normal((2, 3, 3, 4, 6)), jnp.float32)
    z = jax.jit(jax.vmap(circular_conv))(a, K)
    for m in range(2):
        want = reference_conv(a[m], K[m])
        np.testing.assert_allclose(np.asarray(z[m]), np.asarray(want),
                                   atol=1e-5 * float(jnp.abs(want).max()))
