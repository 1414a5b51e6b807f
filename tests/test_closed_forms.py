"""Trained deep linear nets against the closed forms of SCIENCE.md section 4.

The regularized denoising problem (``task=low_rank task.inputs=identity``): X = I_N with
N = d_in rows, Y = X A^T = A^T, and the trainer minimizes

    fit + lam ||theta||^2,   fit = (1/N) sum_i ||x_i W_1 ... W_L - y_i||^2 = (1/N) ||P - Y||_F^2

(P = W_1 W_2 ... W_L, our W being (fan_in, fan_out)). Multiplying by N gives the summed
formulation of SCIENCE.md, ||P - Y||_F^2 + (lam N) ||theta||^2, so the closed forms hold with
lam_eff = lam * N: P keeps Y's singular vectors and maps each singular value y to
``denoise_shrink(y, lam_eff, L)``; the layers are balanced with singular values s^(1/L), and
||theta||^2 = ``schatten_norm_cost(s(P), L)``.

The three runs (L = 1, 2, 3) are trained once per module; each is about 3 s on a laptop CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

from bottleneck_cli import rundir as rd
from bottleneck_cli.config import load
from bottleneck_cli.runs import prepare
from bottleneck_cli.metrics import denoise_shrink, denoise_threshold, schatten_norm_cost
from bottleneck_cli.tasks import low_rank_matrix, make_dataset
from bottleneck_cli.train import train_members

D = 5  # d_in = d_out = width
Y_SVALS = (3.0, 1.5, 0.5)  # the singular values of Y = A^T
LAM = 0.04  # lam_eff = LAM * N = 0.2
DEPTHS = (1, 2, 3)


def overrides(depth: int) -> list[str]:
    return [
        "model=linear", "task=low_rank", "task.inputs=identity",
        f"task.d_in={D}", f"task.d_out={D}", f"width={D}", f"task.rank={len(Y_SVALS)}",
        "task.singular_values=[" + ",".join(map(str, Y_SVALS)) + "]",
        f"depth={depth}", f"lam={LAM}", "lr=0.05", "steps=3000", "optim=gd",
        "dtype=float64", "model.init=lecun", "model.init_scale=0.5", "optim.momentum=0",
        "optim.schedule=constant", "optim.lam_schedule=constant", "task.noise=0",
        "metrics.num_log=0", "metrics.ntk=false", "metrics.jacobian_samples=0",
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """depth -> (cfg, params, final metrics record, dataset) of a converged run."""
    root = tmp_path_factory.mktemp("closed_forms")
    out = {}
    for depth in DEPTHS:
        ov = overrides(depth)
        cfg = load(ov)
        member = prepare(root / f"L{depth}", cfg, ov)
        assert train_members([member]) == ["finished"]
        params = rd.read_npz(member.run.file(rd.PARAMS))
        final = member.run.read_metrics()[-1]
        assert final["step"] == cfg.steps
        data = make_dataset(cfg.task, cfg.seed, np.float64)
        out[depth] = (cfg, params, final, data)
    return out


def end_to_end(params) -> np.ndarray:
    names = sorted(k for k in params if k.startswith("W"))
    assert not any(k.startswith("b") for k in params), "model=linear has no biases"
    P = params[names[0]]
    for k in names[1:]:
        P = P @ params[k]
    return P


def lam_eff(cfg, data) -> float:
    """lam in the summed formulation: the fit term is a mean over N = d_in samples."""
    n = data.n_train
    assert n == cfg.task.d_in == D
    return cfg.lam * n


def test_data_is_the_denoising_problem(runs):
    cfg, _, _, data = runs[1]
    A = low_rank_matrix(cfg.task, cfg.seed)
    np.testing.assert_array_equal(data.x_train, np.eye(D))
    np.testing.assert_allclose(data.y_train, A.T, rtol=0, atol=1e-14)
    s = np.linalg.svd(data.y_train, compute_uv=False)
    np.testing.assert_allclose(s[: len(Y_SVALS)], Y_SVALS, rtol=1e-12)
    assert np.all(s[len(Y_SVALS):] < 1e-12)


@pytest.mark.parametrize("depth", DEPTHS)
def test_denoising_singular_values_and_vectors(runs, depth):
    cfg, params, _, data = runs[depth]
    lam = lam_eff(cfg, data)
    P = end_to_end(params)
    s = np.linalg.svd(P, compute_uv=False)
    y = np.linalg.svd(data.y_train, compute_uv=False)
    expected = denoise_shrink(y, lam, depth)
    np.testing.assert_allclose(s, expected, rtol=1e-3, atol=1e-4)
    # The minimizer keeps Y's singular vectors: P = U diag(shrink(y)) V^T.
    U, y_full, Vt = np.linalg.svd(data.y_train)
    P_star = (U * denoise_shrink(y_full, lam, depth)) @ Vt
    np.testing.assert_allclose(P, P_star, rtol=0, atol=1e-3)


def test_denoising_shrinkage_regimes(runs):
    """y = 0.5 is shrunk (L=1), soft-thresholded (L=2) and hard-thresholded to 0 (L=3)."""
    small = {}
    for depth in DEPTHS:
        cfg, params, _, data = runs[depth]
        small[depth] = np.linalg.svd(end_to_end(params), compute_uv=False)[2]
    lam = LAM * D
    assert small[1] == pytest.approx(0.5 / (1 + lam), rel=1e-3)
    assert small[2] == pytest.approx(0.5 - lam, rel=1e-3)
    y_t, s_t = denoise_threshold(lam, 3)
    assert 0.5 < y_t and s_t > 0.1  # a hard threshold: 0.5 lies below it ...
    assert small[3] < 1e-6  # ... and is killed, while the L=1 net keeps 0.5/(1+lam)
    assert small[1] > 0.4
    # The two large values survive at every depth.
    for depth in DEPTHS:
        cfg, params, _, data = runs[depth]
        s = np.linalg.svd(end_to_end(params), compute_uv=False)
        assert s[1] > 1.0


@pytest.mark.parametrize("depth", DEPTHS)
def test_minimum_loss_matches_closed_form(runs, depth):
    """loss/train = (1/N) sum_i [(s_i - y_i)^2 + lam_eff L s_i^(2/L)] at the minimum."""
    cfg, _, final, data = runs[depth]
    lam = lam_eff(cfg, data)
    y = np.asarray(Y_SVALS)
    s = denoise_shrink(y, lam, depth)
    cost = np.sum((s - y) ** 2) + lam * depth * np.sum(s ** (2.0 / depth))
    assert final["loss/train"] == pytest.approx(cost / data.n_train, rel=1e-6)


@pytest.mark.parametrize("depth", (2, 3))
def test_minimum_is_balanced(runs, depth):
    cfg, params, final, _ = runs[depth]
    s = np.linalg.svd(end_to_end(params), compute_uv=False)
    k = int(np.sum(s > 1e-3))
    assert k == (3 if depth == 2 else 2)
    names = sorted(params)
    for name in names:
        w = np.linalg.svd(params[name], compute_uv=False)
        np.testing.assert_allclose(w[:k], s[:k] ** (1.0 / depth), rtol=1e-3)
        assert np.all(w[k:] < 1e-2), (name, w)
    # Equal Frobenius norms, and the total is the Schatten-2/L cost of P.
    norms = [float(np.sum(params[n] ** 2)) for n in names]
    np.testing.assert_allclose(norms, norms[0], rtol=1e-3)
    total = sum(norms)
    assert total == pytest.approx(schatten_norm_cost(s, depth), rel=1e-3)
    assert total == pytest.approx(depth * np.sum(s[:k] ** (2.0 / depth)), rel=1e-3)
    # The recorded balancedness ||W_{l+1}^T W_{l+1} - W_l W_l^T||_F vanishes.
    keys = [f"balance/{rd.layer_name('W', l)}" for l in range(1, depth)]
    for key in keys:
        assert key in final
        assert abs(final[key]) < 1e-6 * total, (key, final[key])
    assert f"balance/{rd.layer_name('W', depth)}" not in final


@pytest.mark.parametrize("depth", DEPTHS)
def test_recorded_norms_equal_params(runs, depth):
    """norm/total and norm/Wxx of the final record are the squared norms of params.npz."""
    _, params, final, _ = runs[depth]
    weights = {k: v for k, v in params.items() if k.startswith("W")}
    assert len(weights) == depth
    total = sum(float(np.sum(v.astype(np.float64) ** 2)) for v in weights.values())
    assert final["norm/total"] == pytest.approx(total, rel=1e-10)
    assert final["norm/per_depth"] == pytest.approx(total / depth, rel=1e-10)
    for k, v in weights.items():
        assert final[f"norm/{k}"] == pytest.approx(float(np.sum(v ** 2)), rel=1e-10)
    assert final["loss/ridge"] == pytest.approx(LAM * total, rel=1e-10)
