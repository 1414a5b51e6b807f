"""Spectral metrics against constructed matrices and the closed forms of SCIENCE.md section 4."""

from __future__ import annotations

import math
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from bottleneck_cli import metrics as sp
from bottleneck_cli.config import MetricsConfig
from bottleneck_cli.models import MLP as Model, FullyConnected

DOCS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def orthogonal(n: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return q * np.sign(np.diag(r))


def with_svals(s, m: int, n: int, seed: int = 0) -> np.ndarray:
    """An m x n matrix U diag(s) V^T with the given singular values."""
    U, V = orthogonal(m, seed)[:, : len(s)], orthogonal(n, seed + 1)[:, : len(s)]
    return (U * np.asarray(s, float)) @ V.T


def mlp(depth, width, d_out=3, d_in=4, act="relu", bias=True) -> Model:
    return Model(FullyConnected(depth, width, d_out, act, bias), d_in, "he", 1.0)


def jparams(params, bias_shift=0.0):
    return {k: jnp.asarray(v + (bias_shift if k.startswith("b") else 0.0)) for k, v in params.items()}


def balanced_linear(s, depth: int, seed: int = 0) -> dict:
    """Ours W_l = U_{l-1} diag(s^(1/L)) U_l^T (paper W_l = its transpose); product = V diag(s) U^T."""
    d = len(s)
    Us = [orthogonal(d, seed + l) for l in range(depth + 1)]
    root = np.asarray(s, float) ** (1.0 / depth)
    return {f"W{l:02d}": ((Us[l - 1] * root) @ Us[l].T).astype(np.float32) for l in range(1, depth + 1)}


# ---- ranks from singular values ------------------------------------------------------------


def test_numerical_rank_of_constructed_matrices():
    # Constructed values sit well away from every threshold: float32 SVD returns them only
    # to ~1e-6, so a value equal to a threshold would count either way.
    s = [5.0, 2.0, 0.3, 0.04, 0.0, 0.0]
    A = with_svals(s, 9, 7)
    got = np.asarray(sp.grouped_svals({"A": jnp.asarray(A, jnp.float32)})["A"])
    np.testing.assert_allclose(got[:4], s[:4], rtol=1e-5, atol=1e-5)
    assert sp.numerical_rank(got, atol=0.1, rtol=0.1) == 2  # threshold max(0.1, 0.5)
    assert sp.numerical_rank(got, atol=0.01, rtol=0.01) == 3  # threshold 0.05 > 0.04
    assert sp.numerical_rank(got, atol=0.01, rtol=0.0) == 4
    assert np.linalg.matrix_rank(A) == 4
    assert sp.numerical_rank(np.zeros(5)) == 0 and sp.numerical_rank([]) == 0
    # Strictness on exact values (powers of two: no rounding anywhere): equal is not above.
    exact = np.array([2.0, 0.5, 0.25])
    assert sp.numerical_rank(exact, atol=0.5, rtol=0.0) == 1  # 0.5 is not > 0.5
    assert sp.numerical_rank(exact, atol=0.0, rtol=0.25) == 1  # threshold 0.25 * 2 = 0.5
    assert sp.numerical_rank(exact, atol=0.25, rtol=0.0) == 2


def test_stable_nuclear_entropy_ranks_by_hand():
    s = np.array([3.0, 2.0, 1.0])
    assert sp.stable_rank(s) == pytest.approx(14 / 9)
    assert sp.nuclear_rank(s) == pytest.approx(36 / 14)
    p = np.array([1 / 2, 1 / 3, 1 / 6])
    assert sp.entropy_rank(s) == pytest.approx(math.exp(-np.sum(p * np.log(p))))
    padded = np.r_[s, 0.0, 0.0]  # zeros change none of them
    for f in (sp.stable_rank, sp.nuclear_rank, sp.entropy_rank):
        assert f(padded) == pytest.approx(f(s))
        assert f(np.zeros(4)) == 0.0 and f(np.ones(4)) == pytest.approx(4.0)
    assert sp.log_pdet([3.0, 2.0, 0.5, 0.01], 0.1, 0.1) == pytest.approx(math.log(3.0))
    assert sp.log_pdet(np.zeros(3), 0.1, 0.1) == 0.0


def test_near_one_count():
    assert sp.near_one_count([1.6, 1.5, 1.0, 0.5, 0.49], 0.5) == 3
    assert sp.near_one_count([1.6, 1.5, 1.0, 0.5, 0.49], 0.1) == 1
    assert sp.near_one_count(np.zeros(3), 0.5) == 0


# ---- raw spectra ---------------------------------------------------------------------------


def test_centered_rank_is_one_less_with_a_mean():
    d, k, n = 6, 2, 200
    rng = np.random.default_rng(0)
    G = rng.standard_normal((n, k))
    G = (G - G.mean(0)) / G.std(0)  # centered, unit-variance latent cloud
    cloud = G @ with_svals([1.5, 1.0], k, d, seed=3)  # rank-k centered cloud in R^d
    mean = 2.0 * orthogonal(d, 5)[:, 0]
    x = (cloud + mean).astype(np.float32)
    model = mlp(2, d, d_out=3, d_in=d, act="identity", bias=False)
    params = {"W01": np.eye(d, dtype=np.float32), "W02": model.init_params(0)["W02"]}
    fn = jax.jit(lambda p, x: sp.raw_spectra(model, p, x, MetricsConfig(), ntk=False, jacobian_samples=0))
    raw = jax.device_get(fn(params, jnp.asarray(x)))
    np.testing.assert_allclose(raw["Z01"], np.linalg.svd(x / math.sqrt(n), compute_uv=False), rtol=1e-4, atol=1e-5)
    out = sp.summarize(raw, 2, MetricsConfig())
    assert out["rank/Z01"] == k + 1 and out["rank_c/Z01"] == k
    assert out["bottleneck/rank"] == k + 1 and out["bottleneck/rank_c"] == k
    assert out["nonlin/Z01"] == 0.0


def test_balancedness_of_a_deep_linear_factorization():
    s, depth = [3.0, 2.0, 1.0, 0.5], 4
    params = balanced_linear(s, depth)
    model = mlp(depth, 4, d_out=4, d_in=4, act="identity", bias=False)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((16, 4)), jnp.float32)
    fn = jax.jit(lambda p: sp.raw_spectra(model, p, x, MetricsConfig(), ntk=False, jacobian_samples=0))
    raw = jax.device_get(fn(params))
    for l in range(1, depth + 1):
        np.testing.assert_allclose(raw[f"W{l:02d}"], np.asarray(s) ** (1 / depth), rtol=1e-5)
        assert raw[f"norm/W{l:02d}"] == pytest.approx(np.sum(np.asarray(s) ** (2 / depth)), rel=1e-5)
    for l in range(1, depth):
        assert raw[f"balance/W{l:02d}"] < 1e-5
    out = sp.summarize(raw, depth, MetricsConfig())
    assert out["norm/total"] == pytest.approx(sp.schatten_norm_cost(s, depth), rel=1e-5)
    assert "balance/W04" not in out

    unbalanced = dict(params, W01=2 * params["W01"], W02=params["W02"] / 2)  # same function
    raw2 = jax.device_get(fn(unbalanced))
    assert raw2["balance/W01"] > 1.0 and raw2["balance/W02"] > 0.1 and raw2["balance/W03"] < 1e-5


# ---- distinct active neuron directions (arXiv 2205.15809) ----------------------------------


def neurons_of(model, params, x, svd_on_host: bool = True) -> dict:
    """The neuron counts of ``raw_spectra``: counted on the host (the CPU trainer's path)
    or in the program (``svd_on_host=False``, the GPU's)."""
    fn = jax.jit(lambda p, x: sp.raw_spectra(model, p, x, MetricsConfig(), ntk=False,
                                             jacobian_samples=0, svd_on_host=svd_on_host))
    raw = jax.device_get(fn(jparams(params), jnp.asarray(x, jnp.float32)))
    if svd_on_host:
        raw = sp.host_metrics(raw, MetricsConfig())
    return {k: float(v) for k, v in raw.items() if k.startswith(("neurons/", "active/"))}


def test_neuron_counts_merge_positive_multiples_and_drop_dead_neurons():
    """Layer 1 (width 8): neurons 0-2 distinct, 3 = 2 x neuron 0, 4 = 0.5 x neuron 1 (same
    direction: merged), 5 = -neuron 0 (a different feature), 6 dead (never fires), 7 with
    zero outgoing weights: 6 active, 4 distinct. Layer 2: 3 copies of one neuron + 1 other."""
    rng = np.random.default_rng(0)
    d_in, width = 4, 8
    base, bias = rng.standard_normal((d_in, 3)), 0.1 * rng.standard_normal(3)
    W1 = np.concatenate([base, 2 * base[:, :1], 0.5 * base[:, 1:2], -base[:, :1],
                         np.zeros((d_in, 1)), rng.standard_normal((d_in, 1))], axis=1)
    b1 = np.r_[bias, 2 * bias[0], 0.5 * bias[1], -bias[0], -1.0, 0.0]
    W2 = rng.standard_normal((width, width))
    W2[7] = 0.0  # neuron 7 of layer 1 feeds nothing
    W2[:, 1], W2[:, 2] = 3 * W2[:, 0], 0.2 * W2[:, 0]  # layer 2: neurons 0, 1, 2 one direction
    W2[:, 4:] = 0.0  # layer 2: neurons 4-7 dead (zero input, zero bias)
    b2 = np.zeros(width)
    W3 = rng.standard_normal((width, 2))
    params = {"W01": W1, "b01": b1, "W02": W2, "b02": b2, "W03": W3, "b03": np.zeros(2)}
    params = {k: v.astype(np.float32) for k, v in params.items()}
    x = rng.standard_normal((64, d_in))
    model = mlp(3, width, d_out=2, d_in=d_in)
    got = neurons_of(model, params, x)
    assert got == {"active/Z01": 6, "neurons/Z01": 4, "active/Z02": 4, "neurons/Z02": 2}
    assert neurons_of(model, params, x, svd_on_host=False) == got  # counted in the program
    out = sp.summarize(got, 3, MetricsConfig())
    assert out["neurons/max"] == 4 and out["neurons/Z02"] == 2 and out["active/Z01"] == 6
    # thresholds come from the metrics config when it has them: cosine >= -1 links all
    cfg = {**vars(MetricsConfig()), "neuron_cos": -1.0}
    p, xs = jparams(params), jnp.asarray(x, jnp.float32)
    post = list(model.apply(p, xs)[1].values())
    got = jax.device_get(jax.jit(lambda p, post: sp.neuron_metrics(p, post, cfg))(p, post))
    assert float(got["neurons/Z01"]) == 1 and float(got["active/Z01"]) == 6
    one = sp.neuron_counts(p["W01"], p["b01"], post[0], p["W02"])  # the single-layer form
    assert [int(v) for v in one] == [4, 6]


def test_neuron_counts_random_neurons_are_all_distinct():
    model = mlp(3, 16, d_out=2, d_in=8)
    params = model.init_params(3)
    x = np.random.default_rng(1).standard_normal((128, 8))
    got = neurons_of(model, params, x)
    assert got == {"active/Z01": 16, "neurons/Z01": 16, "active/Z02": 16, "neurons/Z02": 16}
    assert neurons_of(model, params, x, svd_on_host=False) == got
    nan = {"neu:Z01:u": np.full((4, 3), np.nan), "neu:Z01:c": np.full(4, np.nan), "W01": 1}
    assert sp.host_neurons(nan) == {"W01": 1, "neurons/Z01": 0.0, "active/Z01": 0.0}  # diverged
    lin = mlp(3, 16, d_out=2, d_in=8, act="identity")
    assert neurons_of(lin, lin.init_params(3), x) == {}  # ReLU nets only


# ---- NTK and Jacobians --------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_ntk_trace_and_max_eig_match_the_explicit_jacobian(bias):
    model = mlp(3, 6, d_out=2, d_in=4, bias=bias)
    params = jparams(model.init_params(1), bias_shift=0.1)
    x = jnp.asarray(np.random.default_rng(2).standard_normal((10, 4)), jnp.float32)
    f = lambda p, v: model.apply(p, v)[0]  # noqa: E731
    flat, unravel = ravel_pytree(params)
    full = jax.jit(jax.jacobian(lambda th: f(unravel(th), x)))(flat)
    J = np.asarray(full, np.float64).reshape(-1, flat.size)
    trace = np.sum(J**2)
    if not bias:  # the fast path adds zero biases to a bias-free model
        assert float(jax.jit(lambda p: sp.ntk_trace_mlp(model, p, x))(params)) == pytest.approx(trace, rel=1e-5)
        return
    fast, generic, top_eig = jax.jit(lambda p: (
        sp.ntk_trace_mlp(model, p, x),
        sp.ntk_trace(f, p, x, chunk=3),  # 10 = 3 * 3 + a remainder chunk
        sp.ntk_max_eig(f, p, x, iters=20),
    ))(params)
    assert float(fast) == pytest.approx(trace, rel=1e-5)
    assert float(generic) == pytest.approx(trace, rel=1e-5)
    assert float(top_eig) == pytest.approx(np.linalg.eigvalsh(J @ J.T)[-1], rel=1e-3)
    # stopped once converged: as all 20 Lanczos products (rtol=0 never stops early)
    every = jax.jit(lambda p: sp.ntk_max_eig(f, p, x, iters=20, rtol=0.0))(params)
    assert float(top_eig) == pytest.approx(float(every), rel=1e-5)


def test_tridiagonal_max_eig_matches_dense():
    rng = np.random.default_rng(0)
    diag, off = rng.standard_normal(12), rng.standard_normal(11)
    off[::4] = 0.0  # decoupled blocks, as after a Lanczos breakdown
    T = np.diag(diag) + np.diag(off, 1) + np.diag(off, -1)
    got = jax.jit(sp.tridiagonal_max_eig)(jnp.asarray(diag, jnp.float32), jnp.asarray(off, jnp.float32))
    assert float(got) == pytest.approx(np.linalg.eigvalsh(T)[-1], rel=1e-5)


def test_jacobian_rank_and_logdet_of_a_deep_linear_net():
    s, depth = [3.0, 2.0, 0.5, 0.0, 0.0], 3
    params = balanced_linear(s, depth, seed=7)
    model = mlp(depth, 5, d_out=5, d_in=5, act="identity", bias=False)
    A = np.linalg.multi_dot([params[f"W{l:02d}"].astype(np.float64) for l in range(1, depth + 1)])
    assert np.linalg.matrix_rank(A, tol=1e-4) == 3
    xs = jnp.asarray(np.random.default_rng(0).standard_normal((4, 5)), jnp.float32)
    f = lambda p, v: model.apply(p, v)[0]  # noqa: E731
    J = np.asarray(jax.jit(lambda p: sp.jacobian_svals(f, p, xs))(params))
    assert J.shape == (4, 5)
    np.testing.assert_allclose(J, np.tile(np.linalg.svd(A, compute_uv=False), (4, 1)), atol=1e-5)
    out = sp.summarize({"J": J}, depth, MetricsConfig())
    assert out["jac/rank"] == 3
    assert out["jac/logdet"] == pytest.approx(math.log(3.0) + math.log(2.0) + math.log(0.5), abs=1e-5)


# ---- closed forms -------------------------------------------------------------------------


def test_schatten_cost_numbers_from_science_md():
    for L, expected in [(2, 6.0), (5, 3.871), (10, 3.394), (25, 3.149)]:
        assert sp.schatten_norm_cost([3, 2, 1], L) / L == pytest.approx(expected, abs=5e-4)


def test_denoise_shrink_l1_l2_formulas():
    y = np.array([-1.0, 0.0, 0.05, 0.3, 1.0, 4.0])
    np.testing.assert_allclose(sp.denoise_shrink(y, 0.2, 1), np.maximum(y, 0) / 1.2)
    np.testing.assert_allclose(sp.denoise_shrink(y, 0.2, 2), np.maximum(y - 0.2, 0))
    assert sp.denoise_shrink(1.0, 0.2, 2) == pytest.approx(0.8)


@pytest.mark.parametrize("L", [3, 5, 10])
def test_denoise_shrink_deep_is_a_hard_threshold(L):
    lam = 0.3
    y_t, s_t = sp.denoise_threshold(lam, L)
    assert s_t > 0.1  # the jump
    ys = np.linspace(0.0, 3 * y_t, 61)
    s = sp.denoise_shrink(ys, lam, L)
    assert np.all(s[ys < y_t * (1 - 1e-9)] == 0.0)  # small y go to exactly 0
    assert np.all(s[ys > y_t * (1 + 1e-9)] >= s_t - 1e-9)
    assert sp.denoise_shrink(y_t * (1 - 1e-6), lam, L) == 0.0
    assert sp.denoise_shrink(y_t * (1 + 1e-6), lam, L) == pytest.approx(s_t, rel=1e-2)
    cost = lambda t, y: (t - y) ** 2 + lam * L * t ** (2 / L)  # noqa: E731
    for y, got in zip(ys, s):  # brute force: dense grid, then compare costs and minimizers
        grid = np.linspace(0.0, max(y, 1e-9), 200001)
        best = grid[np.argmin(cost(grid, y))]
        assert cost(got, y) <= cost(best, y) + 1e-12
        if abs(y - y_t) > 1e-3:
            assert got == pytest.approx(best, abs=2e-5)
        if got > 0:  # a stationary point, to 1e-6 at least
            assert abs(got - y + lam * got ** (2 / L - 1)) < 1e-9


# ---- summaries, the docs contract, jit + vmap ----------------------------------------------


def documented_keys(depth: int) -> set[str]:
    """The spectra-derived keys of docs/metrics.md's metrics.jsonl table, expanded for depth."""
    text = DOCS.read_text().split("## spectra/")[0]
    first_cells = [line.split("|")[1] for line in text.splitlines() if line.startswith("|")]
    keys = set()
    for token in re.findall(r"`([a-z_]+/[A-Za-z_]+)`", " ".join(first_cells)):
        family, name = token.split("/")
        if family in ("loss", "acc") or token == "rank/A":  # rank/A: deep linear chains only
            continue
        if name == "Wxx":
            last = depth - 1 if family == "balance" else depth
            keys.update(f"{family}/W{l:02d}" for l in range(1, last + 1))
        elif name == "Zxx":
            keys.update(f"{family}/Z{l:02d}" for l in range(1, depth))
        else:
            keys.add(token)
    return keys


@pytest.fixture(scope="module")
def stacked():
    """Three members of one shape: raw spectra jitted per member and jit+vmapped over members."""
    model = mlp(3, 8, d_out=3, d_in=3)
    members = [jparams(model.init_params(seed), bias_shift=0.05 * seed) for seed in range(3)]
    params = {k: jnp.stack([m[k] for m in members]) for k in members[0]}
    x = jnp.asarray(np.random.default_rng(0).standard_normal((40, 3)), jnp.float32)
    cfg = MetricsConfig(max_samples=32, jacobian_samples=2, ntk=True)
    p0 = jparams(model.init_params(9))  # the initial parameters, for init/dist
    fn = lambda p, x: sp.raw_spectra(model, p, x, cfg, params0=p0)  # noqa: E731
    single = jax.jit(fn)
    per_member = [jax.device_get(single(p, x)) for p in members]
    batched = jax.device_get(jax.jit(jax.vmap(fn, in_axes=(0, None)))(params, x))
    return model, cfg, per_member, batched


def test_summarize_keys_match_docs(stacked):
    model, cfg, per_member, _ = stacked
    arrays, scalars = sp.split_arrays_and_scalars(per_member[0])
    assert set(arrays) == {"W01", "W02", "W03", "Z01", "Z02", "Zc01", "Zc02", "J"}
    assert arrays["Z01"].shape == (8,) and arrays["J"].shape == (2, 3) and arrays["W01"].shape == (3,)
    assert all(isinstance(v, float) for v in scalars.values())
    out = sp.summarize({**arrays, **scalars, "loss/train": 1.0}, model.depth, cfg)
    # ntk/samples records how many inputs the NTK used (the subsample count)
    assert set(out) == documented_keys(model.depth)
    assert out["ntk/samples"] == 32
    assert out["ntk/trace_per_nl"] == pytest.approx(out["ntk/trace"] / (32 * 3))
    assert all(np.isfinite(v) for v in out.values())
    assert out["norm/total"] == pytest.approx(sum(out[f"norm/W{l:02d}"] for l in range(1, 4)))


def test_jit_vmap_over_members_equals_per_member(stacked):
    _, _, per_member, batched = stacked
    for i, one in enumerate(per_member):
        got = sp.member(batched, i)
        assert set(got) == set(one)
        for k in one:
            np.testing.assert_allclose(got[k], one[k], rtol=2e-4, atol=1e-5, err_msg=k)
    assert not np.allclose(per_member[0]["W01"], per_member[1]["W01"])  # members differ


def test_host_svd_path_equals_device_path(stacked):
    """On CPU the trainer leaves SVDs to NumPy (svd_on_host): same singular values."""
    model, cfg, per_member, _ = stacked
    members = [jparams(model.init_params(seed), bias_shift=0.05 * seed) for seed in range(3)]
    x = jnp.asarray(np.random.default_rng(0).standard_normal((40, 3)), jnp.float32)
    p0 = jparams(model.init_params(9))  # as in the fixture
    host = jax.jit(lambda p, x: sp.raw_spectra(model, p, x, cfg, svd_on_host=True, params0=p0))
    got = sp.host_metrics(jax.device_get(host(members[0], x)), cfg)
    assert set(got) == set(per_member[0])
    for k, v in per_member[0].items():
        np.testing.assert_allclose(got[k], v, rtol=2e-4, atol=1e-5, err_msg=k)


@pytest.mark.parametrize("shape", [(40, 7), (7, 40), (12, 12)])
def test_host_singular_values_through_the_float64_gram(shape):
    """float32 stacks: sqrt(eigvalsh(M^T M)) in float64, within sqrt(eps64) s_1 of the
    float64 SVD of the same matrices, at full rank and at rank 2 (a zero tail)."""
    rng = np.random.default_rng(3)
    full = rng.standard_normal((3, *shape))
    low = rng.standard_normal((3, shape[0], 2)) @ rng.standard_normal((3, 2, shape[1]))
    for stack in (full, low):
        m = stack.astype(np.float32)
        exact = np.linalg.svd(m.astype(np.float64), compute_uv=False)
        got = sp.stack_svals(m)
        assert got.dtype == np.float32 and got.shape == exact.shape
        bound = 4e-8 * exact[:, :1] + 1e-6 * exact  # Gram error + float32 storage
        assert np.all(np.abs(got - exact) <= bound)
    m64 = full.astype(np.float64)  # float64 stacks keep the SVD
    np.testing.assert_array_equal(sp.stack_svals(m64), np.linalg.svd(m64, compute_uv=False))


def test_summarize_tiny_depths():
    W = with_svals([2.0, 1.0, 0.05], 4, 3).astype(np.float32)
    out = sp.summarize({"W01": np.linalg.svd(W, compute_uv=False)}, 1, MetricsConfig())
    assert out["bottleneck/rank"] == out["bottleneck/rank_c"] == out["rank/W01"] == 2
    assert out["bottleneck/near_one"] == out["near_one/W01"] == 1
    assert out["norm/total"] == pytest.approx(5.0025, rel=1e-4) and out["norm/per_depth"] == out["norm/total"]
    zero = {"W01": np.zeros(3), "W02": np.zeros(3), "Z01": np.zeros(3), "Zc01": np.zeros(3)}
    out = sp.summarize(zero, 2, MetricsConfig())
    assert all(np.isfinite(v) for v in out.values()) and out["bottleneck/rank_c"] == 0
