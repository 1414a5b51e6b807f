"""Leaky ResNets (arXiv 2405.17573): the recursion, the ridge, the Hamiltonian metrics,
adaptive steps, the bottleneck teacher and their configuration errors."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import enable_x64
from typer.testing import CliRunner

from bottleneck_cli.cli import app
from bottleneck_cli.config import load
from bottleneck_cli.metrics.leaky import hamiltonian_terms, stabilised_norms
from bottleneck_cli.models.leaky_resnet import LeakyResNet, adapted_steps, fixed_steps
from bottleneck_cli.tasks import make_dataset


def _numpy_forward(params, x, leak):
    """alpha_{p_l} = (1 - rho_l Lt) alpha + rho_l W_l^T (relu(alpha), 1), literally."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    alpha = p["Win"].T @ x.T  # w x N, the paper's orientation
    path = [alpha]
    for l, rho in enumerate(p["rho"], 1):
        W = p[f"W{l:02d}"].T  # w x (w+1)
        sig = np.vstack([np.maximum(alpha, 0), np.ones((1, alpha.shape[1]))])
        alpha = (1 - rho * leak) * alpha + rho * W @ sig
        path.append(alpha)
    return (p["Wout"].T @ alpha).T, path


@pytest.mark.parametrize("steps", ["equidistant", "irregular", "adaptive"])
def test_forward_equals_numpy_recursion(steps):
    model = LeakyResNet(depth=5, width=7, d_in=4, d_out=3, leak=2.5, steps=steps, irregular_a=0.6)
    params = model.init(3, np.float32)
    params["rho"] = np.asarray([0.1, 0.3, 0.2, 0.25, 0.15], np.float32)  # any steps
    x = np.random.default_rng(0).standard_normal((9, 4)).astype(np.float32)
    y, hiddens = model.apply(params, x)
    y_np, path_np = _numpy_forward(params, x, 2.5)
    np.testing.assert_allclose(np.asarray(y), y_np, rtol=1e-4, atol=1e-5)
    assert list(hiddens) == ["Z01", "Z02", "Z03", "Z04", "Z05"]
    for l, a in enumerate(hiddens.values(), 1):
        np.testing.assert_allclose(np.asarray(a), path_np[l].T, rtol=1e-4, atol=1e-5)


def test_rho_leak_one_is_a_fully_connected_net():
    """rho_l Lt = 1 (L = Lt, equidistant): alpha_l = W_l sigma(alpha_{l-1}), no skip."""
    model = LeakyResNet(depth=4, width=6, d_in=3, d_out=2, leak=4.0)
    params = model.init(1, np.float32)
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)
    a = x @ params["Win"]
    for l in range(1, 5):
        s = np.hstack([np.maximum(a, 0), np.ones((5, 1))])
        a = s @ params[f"W{l:02d}"] * 0.25  # rho_l W_l sigma(alpha_{l-1})
    np.testing.assert_allclose(np.asarray(model.apply(params, x)[0]), a @ params["Wout"],
                               rtol=1e-4, atol=1e-5)


def test_ridge_is_the_papers():
    model = LeakyResNet(depth=3, width=4, d_in=2, d_out=2, leak=2.0, steps="irregular",
                        irregular_a=0.5, ridge_ends=False)
    params = model.init(0, np.float64)
    rho = fixed_steps(3, "irregular", 0.5)
    assert rho.sum() == pytest.approx(1.0) and params["rho"] == pytest.approx(rho)
    want = sum(rho[l - 1] * np.sum(params[f"W{l:02d}"] ** 2) for l in (1, 2, 3)) / (2 * 2.0)
    assert float(model.ridge(params)) == pytest.approx(want, rel=1e-5)
    ends = LeakyResNet(depth=3, width=4, d_in=2, d_out=2, leak=2.0, steps="irregular",
                       irregular_a=0.5, ridge_ends=True)
    extra = (np.sum(params["Win"] ** 2) + np.sum(params["Wout"] ** 2)) / 4.0
    assert float(ends.ridge(params)) == pytest.approx(want + extra, rel=1e-5)
    grads = jax.grad(lambda p: model.ridge(p))(params)  # rho is never trained
    assert float(jnp.abs(grads["rho"]).max()) == 0.0


def test_irregular_steps_crowd_near_the_ends():
    rho = fixed_steps(10, "irregular", 0.8)
    assert rho[0] < rho[4] and rho[-1] < rho[5]
    assert np.allclose(fixed_steps(10, "irregular", 0.0), 0.1)


def _nonneg_rank_k(rng, n, k, w):
    """A = U V, non-negative, rank k, its row space missing the constant vector."""
    while True:
        a = rng.uniform(0, 1, (w, k)) @ rng.uniform(0, 1, (k, n))  # w x N
        a[:, 0] = 0.0  # a column of zeros: 1 is not in the row space (1 has no zero)
        if np.linalg.matrix_rank(np.vstack([a, np.ones(n)])) == k + 1:
            return a


def test_coi_of_nonnegative_rank_k_is_k():
    rng = np.random.default_rng(0)
    with enable_x64():
        for k in (1, 2, 4):
            a = _nonneg_rank_k(rng, 30, k, 8).T  # rows are samples
            coi = [float(stabilised_norms(jnp.asarray(a), [jnp.asarray(a)], g)[0])
                   for g in (1e-4, 1e-7, 1e-10)]
            assert coi[0] <= coi[1] <= coi[2] + 1e-9  # rises to k from below
            assert coi[2] == pytest.approx(k, abs=1e-5)


def test_coi_at_least_the_rank():
    rng = np.random.default_rng(1)
    with enable_x64():
        for trial in range(20):
            w, n = 6, int(rng.integers(3, 6))  # w + 1 > N: sigma(A) spans R^N
            a = rng.standard_normal((n, w)) * rng.uniform(0.1, 3)
            coi = float(stabilised_norms(jnp.asarray(a), [jnp.asarray(a)], 1e-9)[0])
            assert coi >= np.linalg.matrix_rank(a) - 1e-6


def test_hamiltonian_terms_definitions():
    rng = np.random.default_rng(2)
    with enable_x64():
        path = [jnp.asarray(rng.standard_normal((12, 5))) for _ in range(4)]
        rho = jnp.asarray([0.2, 0.5, 0.3])
        out = hamiltonian_terms(path, rho, 3.0, 1e-3)
        for l in (1, 2, 3):
            z = f"Z{l:02d}"
            c, d = stabilised_norms(path[l], [path[l], path[l] - path[l - 1]], 1e-3)
            assert float(out[f"kinetic/{z}"]) == pytest.approx(float(d) / float(rho[l - 1]) ** 2 / 6)
            assert float(out[f"hamiltonian/{z}"]) == pytest.approx(
                float(out[f"kinetic/{z}"]) - 1.5 * float(c))
        ham = [float(out[f"hamiltonian/Z{l:02d}"]) for l in (1, 2, 3)]
        assert float(out["bottleneck/hamiltonian_rank"]) == pytest.approx(np.median(ham) * -2 / 3)
        assert float(out["bottleneck/min_coi"]) == min(float(out[f"coi/Z{l:02d}"]) for l in (1, 2, 3))
        assert float(out["p/Z03"]) == pytest.approx(1.0)


def test_adaptive_update_sums_to_one_and_equalises():
    model = LeakyResNet(depth=6, width=8, d_in=5, d_out=2, leak=2.0, steps="adaptive")
    params = model.init(0, np.float32)
    x = np.random.default_rng(3).standard_normal((40, 5)).astype(np.float32)
    path = model.path(params, x)
    new = np.asarray(model.host_update(params, x)["rho"], np.float64)
    assert new.sum() == pytest.approx(1.0, abs=1e-6) and (new > 0).all()
    rho = np.asarray(params["rho"], np.float64)
    c = np.array([np.linalg.norm(path[l] - path[l - 1]) / (rho[l - 1] * np.linalg.norm(path[l]))
                  for l in range(1, 7)])
    ratio = new * c  # the predicted ||A_l - A_{l-1}|| / ||A_l|| at the new steps
    assert ratio.max() / ratio.min() == pytest.approx(1.0, abs=1e-4)
    assert np.asarray(adapted_steps(jnp.asarray(new), path)).sum() == pytest.approx(1.0, abs=1e-6)


def test_bottleneck_teacher_is_deterministic():
    cfg = load(["task=bottleneck_teacher", "task.n_train=50", "task.n_test=20"]).task
    a, b = make_dataset(cfg, 4), make_dataset(cfg, 4)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_train, make_dataset(cfg, 5).y_train)
    assert a.x_train.shape == (50, 30) and a.y_test.shape == (20, 30)
    assert abs(a.y_train.mean()) < 1e-6 and a.y_train.std() == pytest.approx(1.0, rel=1e-5)
    assert np.linalg.matrix_rank(a.y_train, tol=1e-6 * np.abs(a.y_train).max()) > 3  # nonlinear
    res = load(["task=bottleneck_teacher", "task.teacher_kind=resnet", "task.inner_dims=[6,3]",
                "task.n_train=50", "task.n_test=0"]).task
    d = make_dataset(res, 0)
    assert d.info["true_rank"] == 3 and d.x_train.shape == (50, 30)


@pytest.mark.parametrize("argv, words", [
    (["model.leak=-1"], "model.leak"),
    (["model.leak=6", "depth=5"], "rho * leak"),
    (["model.steps=irregular", "model.irregular_a=1.0"], "model.irregular_a"),
    (["model.steps=irregular", "model.irregular_a=-0.1"], "model.irregular_a"),
    (["task.inner_dims=[]"], "task.inner_dims"),
])
def test_bad_configs_are_one_line_errors(in_tmp, argv, words):
    result = CliRunner().invoke(app, ["train", "model=leaky_resnet", "task=bottleneck_teacher",
                                      "depth=5", *argv])
    assert result.exit_code == 2, result.output
    assert words in result.output and len(result.output.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()


def test_adaptive_allows_large_steps(in_tmp):
    load(["model=leaky_resnet", "model.steps=adaptive", "model.leak=6", "depth=5"])


LEAKY = ["model=leaky_resnet", "task=bottleneck_teacher", "depth=4", "width=6",
         "task.n_train=16", "task.n_test=8", "task.hidden=8", "model.leak=2",
         "model.steps=adaptive", "model.adapt_every=10", "steps=40", "checkpoint.every=10",
         "metrics.num_log=4", "metrics.jacobian_samples=0", "optim=adam", "lr=0.01",
         "optim.stages=[{steps:22},{name:sgd,lr_scale:0.5}]"]


def test_resume_across_the_adam_sgd_boundary_equals_uninterrupted(tmp_path):
    """Adaptive steps (updated at 10, 20, 30, 40) are train state: stopping at 25 (after
    the Adam -> SGD boundary at 22) and resuming reproduces the uninterrupted run."""
    from test_train import Recorder, assert_same_run, interrupt, make

    from bottleneck_cli import rundir as rd
    from bottleneck_cli.runs import prepare
    from bottleneck_cli.train import train_members

    ref = make(tmp_path / "ref", LEAKY)
    assert train_members([ref]) == ["finished"]
    member = interrupt(tmp_path / "run", LEAKY)
    assert int(rd.read_npz(member.run.file(rd.CHECKPOINT))["step"]) == 25
    again = prepare(member.run.path, load(LEAKY), LEAKY)
    assert train_members([again], Recorder()) == ["finished"]
    assert_same_run(ref.run.path, member.run.path)
    rho = rd.read_npz(ref.run.file(rd.PARAMS))["rho"]
    assert rho.sum() == pytest.approx(1.0, abs=1e-5) and not np.allclose(rho, 0.25)


def test_weight_spectra_figure_is_the_svd_of_each_W_against_p(tmp_path):
    """The weight-spectra figure's data are the singular values of each residual W_l as the
    trainer records them, placed at p_l = rho_1 + ... + rho_l; the drawing has one grey line
    per layer position and one curve per singular-value index."""
    from bottleneck_cli.metrics import raw_spectra, split_arrays_and_scalars
    from bottleneck_cli.report.figures import FIGURES
    from bottleneck_cli.report.figures.leaky import draw_weights, weight_spectra_data
    from bottleneck_cli.rundir import RunDir

    assert "leaky_weights" in FIGURES
    model = LeakyResNet(5, 6, 3, 2, leak=2.0, steps="irregular", irregular_a=0.6)
    params = model.init(0, np.float64)
    x = np.random.default_rng(1).standard_normal((16, 3))
    arrays, _ = split_arrays_and_scalars(raw_spectra(model, params, jnp.asarray(x)))
    p = np.cumsum(params["rho"])
    df = weight_spectra_data(arrays, p, top=4)
    assert sorted(df["layer"].unique()) == [1, 2, 3, 4, 5]
    for l in range(1, 6):
        g = df[df["layer"] == l].sort_values("index")
        want = np.linalg.svd(params[f"W{l:02d}"], compute_uv=False)[:4]
        np.testing.assert_allclose(g["value"], want, rtol=1e-4)
        np.testing.assert_allclose(g["p"], p[l - 1])
    assert np.isclose(df["p"].max(), 1.0) and len(set(np.round(np.diff(p), 9))) > 1

    run = RunDir(tmp_path / "run")
    run.write_spectra(7, arrays)
    fig = draw_weights([("Lt=2, L=5", str(run.path), list(p), False)])
    ax = fig.axes[0]
    vertical = [ln for ln in ax.lines if np.ptp(ln.get_xdata()) == 0 and len(ln.get_xdata()) == 2]
    assert sorted(float(ln.get_xdata()[0]) for ln in vertical) == pytest.approx(sorted(p))
    assert len(ax.lines) - len(vertical) == min(12, 6)
    assert ax.get_yscale() == "log"
