"""The cnn family: block-diagonalisation in frequency, Parseval, the delta-kernel MLP, the
CBN rank of hand-built filter banks, and the per-frequency metrics on a trained-size net."""

import numpy as np
import pytest

from bottleneck_cli.metrics import frequencies as fq
from bottleneck_cli.metrics import host_svals, raw_spectra, summarize
from bottleneck_cli.models import CNN, MLP
from bottleneck_cli.models.cnn import circular_conv
from bottleneck_cli.models.mlp import FullyConnected


@pytest.fixture(autouse=True)
def x64():
    """Float64 JAX for exact identities; restored afterwards."""
    import jax

    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def _dft(a):  # unnormalised DFT over space of (N, h, w, c)
    return np.fft.fft2(np.asarray(a, np.float64), axes=(1, 2))


@pytest.mark.parametrize("k,size", [(3, (8, 8)), (5, (6, 10)), (8, (8, 8)), (1, (4, 6))])
def test_circular_conv_is_block_diagonal_in_frequency(k, size):
    """ẑ(k) = W(k) â(k) at every frequency, for random inputs and kernels."""
    rng = np.random.default_rng(0)
    h, w = size
    a = rng.standard_normal((3, h, w, 4))
    K = rng.standard_normal((min(k, h), min(k, w), 4, 5))
    z = np.asarray(circular_conv(a, K))
    Wk = np.asarray(fq.kernel_dft(K, size))  # (h, w, c_out, c_in)
    pred = np.einsum("hwoi,nhwi->nhwo", Wk, _dft(a))
    np.testing.assert_allclose(_dft(z), pred, atol=1e-8 * np.abs(pred).max())


def test_circular_conv_is_periodic_and_stride_subsamples():
    """A shift of the input shifts the output (torus), and stride 2 keeps even pixels."""
    rng = np.random.default_rng(1)
    a, K = rng.standard_normal((2, 8, 8, 3)), rng.standard_normal((3, 3, 3, 2))
    z = np.asarray(circular_conv(a, K))
    shifted = np.asarray(circular_conv(np.roll(a, (2, -3), axis=(1, 2)), K))
    np.testing.assert_allclose(shifted, np.roll(z, (2, -3), axis=(1, 2)), atol=1e-10)
    np.testing.assert_allclose(np.asarray(circular_conv(a, K, 2)), z[:, ::2, ::2], atol=1e-10)


@pytest.mark.parametrize("k,size", [(3, (8, 8)), (7, (8, 6)), (8, (8, 8))])
def test_parseval_kernel(k, size):
    """sum_k ||W(k)||_F^2 = h w ||K||^2 (our normalisation, docs/metrics.md)."""
    K = np.random.default_rng(2).standard_normal((min(k, size[0]), min(k, size[1]), 3, 4))
    Wk = np.asarray(fq.kernel_dft(K, size))
    assert np.sum(np.abs(Wk) ** 2) == pytest.approx(size[0] * size[1] * np.sum(K ** 2), rel=1e-10)


def test_parseval_activations():
    """sum_k ||Ẑ(k)||_F^2 = ||Z||_F^2 / N, centered and not."""
    Z = np.random.default_rng(3).standard_normal((5, 4, 6, 3))
    for centered in (False, True):
        F = np.asarray(fq.activation_dft(Z, centered))
        Zc = Z - Z.mean(0) if centered else Z
        assert np.sum(np.abs(F) ** 2) == pytest.approx(np.sum(Zc ** 2) / 5, rel=1e-10)


def _cnn(depth=3, width=4, in_shape=(6, 6, 2), d_out=3, **kw):
    return CNN(depth, width, in_shape, d_out, **kw)


def _host(model, params, x, **kw):
    raw = raw_spectra(model, params, x, svd_on_host=True, jacobian_samples=0, **kw)
    return host_svals({k: np.asarray(v) for k, v in raw.items()})


@pytest.mark.parametrize("host", [True, False])
def test_delta_kernels_reduce_to_a_per_pixel_mlp(host):
    """1x1 kernels: the CNN is an MLP on every pixel; W_l(k) = W_l at every k, so the
    per-frequency singular values are the MLP's weight singular values at every k."""
    rng = np.random.default_rng(4)
    model = _cnn(depth=3, width=5, in_shape=(4, 6, 3), d_out=48, kernel=1, head="map",
                 init="he")  # map head: 2 output channels per pixel
    params = model.init(0, np.float64)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in params.items()}
    x = rng.standard_normal((7, 4, 6, 3))
    y, hid = model.apply(params, x)
    mlp = MLP(FullyConnected(3, 5, 2, "relu", True), 3)
    flat = {k: (v[0, 0] if v.ndim == 4 else v) for k, v in params.items()}
    ym, _ = mlp.apply(flat, x.reshape(-1, 3))
    np.testing.assert_allclose(np.asarray(y).reshape(-1, 2), np.asarray(ym), atol=1e-12)
    raw = raw_spectra(model, params, x, svd_on_host=host, jacobian_samples=0)
    out = host_svals({k: np.asarray(v) for k, v in raw.items()})
    for l in (1, 2, 3):
        s_mlp = np.linalg.svd(flat[f"W{l:02d}"], compute_uv=False)
        s = out[f"FW{l:02d}"]
        assert s.shape == (4, 6, len(s_mlp))
        np.testing.assert_allclose(s, np.broadcast_to(s_mlp, s.shape), atol=1e-10)


def _filter_bank(size, kept: dict, c=3, seed=0):
    """A full-size kernel with W(k) = P_k (a rank-r orthogonal projection, r = kept[k],
    P_{-k} = P_k real) for the chosen k and W(k) = 0 elsewhere."""
    h, w = size
    rng = np.random.default_rng(seed)
    Wk = np.zeros((h, w, c, c), complex)
    for (ky, kx), r in kept.items():
        q, _ = np.linalg.qr(rng.standard_normal((c, r)))
        P = q @ q.T
        Wk[ky % h, kx % w] = P
        Wk[-ky % h, -kx % w] = P
    # W(k) = conj(F(k))^T with F the DFT of the padded kernel: F(k) = conj(W(k))^T
    F = np.conj(np.swapaxes(Wk, -1, -2))
    K = np.fft.ifft2(F, axes=(0, 1))
    assert np.abs(K.imag).max() < 1e-12
    # full-size kernel: padded index q holds offset q (mod size); the model's index j
    # holds offset j - size // 2
    return np.roll(K.real, (h // 2, w // 2), axis=(0, 1))


@pytest.mark.parametrize("kept", [{(0, 0): 2}, {(0, 0): 1, (1, 0): 1, (0, 1): 2},
                                  {(2, 3): 1, (4, 0): 2, (1, -2): 3}])
def test_filter_bank_has_exactly_its_cbn_rank(kept):
    size = (8, 8)
    K = _filter_bank(size, kept)
    Wk = np.asarray(fq.kernel_dft(K, size))
    s = np.linalg.svd(Wk, compute_uv=False)
    counts = fq.kept_counts(s, 0.5)
    grid = {}
    for (ky, kx), r in kept.items():
        grid[(ky % 8, kx % 8)] = r
        grid[(-ky % 8, -kx % 8)] = r
    expected = np.zeros(size, int)
    for (i, j), r in grid.items():
        expected[i, j] = r
    np.testing.assert_array_equal(counts, expected)
    # the CBN rank (grid count) is the rank of the real linear map on (h, w, c) images
    rank = sum(grid.values())
    assert counts.sum() == rank
    basis = np.eye(8 * 8 * 3).reshape(-1, 8, 8, 3)
    M = np.asarray(circular_conv(basis, K)).reshape(len(basis), -1)
    assert np.linalg.matrix_rank(M, tol=1e-6) == rank
    # by degree: a conjugate pair counted once
    byd = fq.by_degree(counts)
    for d, n in byd.items():
        assert n == sum(r for k, r in kept.items() if max(abs(k[0]), abs(k[1])) == d)


def test_summary_keys_of_a_filter_bank_net():
    """Through raw_spectra and summarize: cbn/Wxx, bottleneck/cbn_rank, cbn/deg<d>."""
    size, kept = (8, 8), {(0, 0): 2, (1, 0): 1}
    model = _cnn(depth=4, width=3, in_shape=(8, 8, 3), d_out=2, kernel=8)
    params = model.init(0, np.float64)
    for l in (1, 2, 3):
        params[f"W{l:02d}"] = _filter_bank(size, kept, seed=l)
    x = np.random.default_rng(5).standard_normal((16, 8, 8, 3))
    spec = _host(model, params, x)
    assert spec["FW02"].shape == (8, 8, 3) and spec["FZc02"].shape == (8, 8, 3)
    out = summarize(spec, model.depth)
    assert [out[f"cbn/W0{l}"] for l in (1, 2, 3)] == [4.0] * 3  # 2 + 1 + 1 (k and -k)
    assert out["bottleneck/cbn_rank"] == 4.0
    assert out["bottleneck/cbn_slope"] == pytest.approx(4 / 64)
    assert (out["cbn/deg0"], out["cbn/deg1"], out["cbn/deg2"]) == (2.0, 1.0, 0.0)
    assert 1 <= out["cbn_c/Z02"] <= 64 * 3 and "bottleneck/cbn_rank_z" in out
    # generic metrics keep working on the 2-D kernel views
    assert out["norm/W01"] == pytest.approx(np.sum(params["W01"] ** 2))
    assert spec["W01"].shape == (3,) and "rank_c/Z02" in out


def test_activation_spectra_match_direct_svd():
    """FZ (from the Gram) equals the SVD of Ẑ(k) computed directly."""
    model = _cnn(depth=3, width=4, in_shape=(4, 4, 1), d_out=2, kernel=3)
    params = model.init(1, np.float64)
    x = np.random.default_rng(6).standard_normal((9, 4, 4, 1))
    spec = _host(model, params, x)
    _, hid = model.apply(params, x)
    for name, centered in (("FZ01", False), ("FZc01", True)):
        F = np.asarray(fq.activation_dft(np.asarray(hid["Z01"]), centered))
        s = np.linalg.svd(F, compute_uv=False)
        np.testing.assert_allclose(spec[name], s, atol=1e-7)


def test_head_shapes_downsampling_and_errors():
    m = _cnn(depth=4, width=4, in_shape=(8, 8, 1), d_out=10, downsample=[1, 2])
    p = m.init(0)
    y, hid = m.apply(p, np.zeros((2, 8, 8, 1), np.float32))
    assert y.shape == (2, 10) and hid["Z01"].shape == (2, 4, 4, 4) and hid["Z03"].shape == (2, 2, 2, 4)
    assert [c[2] for c in m.convs(p)] == [(8, 8), (4, 4), (2, 2)]
    assert p["W03"].shape == (2, 2, 4, 4)  # kernel cut to the layer's size
    assert m.weights(p)["W01"].shape == (9, 4) and m.weights(p)["W04"].shape == (4, 10)
    ae = _cnn(depth=2, width=4, in_shape=(8, 8, 1), d_out=64, head="map")
    assert ae.apply(ae.init(0), np.zeros((2, 8, 8, 1), np.float32))[0].shape == (2, 64)
    for kw, msg in [(dict(in_shape=(64,)), "image inputs"),
                    (dict(in_shape=(8, 8, 1), d_out=10, head="map"), "head=map"),
                    (dict(in_shape=(6, 6, 1), downsample=[1, 2]), "even sizes"),
                    (dict(downsample=[3]), "conv layers")]:
        with pytest.raises(ValueError, match=msg):
            _cnn(**kw)


def test_jacobian_of_image_inputs_is_flattened():
    """The generic Jacobian metric on a cnn: (samples, d_out, H W C)."""
    from bottleneck_cli.metrics import jacobian_matrices

    model = _cnn(depth=2, width=3, in_shape=(4, 4, 2), d_out=3, kernel=3)
    params = model.init(0, np.float64)
    x = np.random.default_rng(7).standard_normal((2, 4, 4, 2))
    J = np.asarray(jacobian_matrices(lambda p, v: model.apply(p, v)[0], params, x))
    assert J.shape == (2, 3, 32)
    eps = 1e-6
    e = np.zeros_like(x[:1]); e[0, 1, 2, 1] = eps
    num = (np.asarray(model.apply(params, x[:1] + e)[0]) - np.asarray(model.apply(params, x[:1] - e)[0])) / (2 * eps)
    np.testing.assert_allclose(J[0][:, np.ravel_multi_index((1, 2, 1), (4, 4, 2))], num[0], atol=1e-6)
