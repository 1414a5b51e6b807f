"""Tests for bottleneck_cli.tasks: determinism, shapes, rank structure, npz errors, digits."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from bottleneck_cli.config import TASK_FAMILIES, TaskConfig, load
from bottleneck_cli.tasks import (
    TASKS,
    Dataset,
    TaskError,
    compositional_maps,
    low_rank_matrix,
    make_dataset,
)

ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def cfg(**kw):
    """The typed settings of task ``name`` (each family has its own keys; keys another
    family's shape tests pass are left out)."""
    c = OmegaConf.structured(TASK_FAMILIES.get(kw.get("name"), TaskConfig))
    for k, v in kw.items():
        if k in c:
            c[k] = v
    if "name" in kw:
        c.name = kw["name"]
    return c


def same(a: Dataset, b: Dataset) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ARRAYS)


# --- registry, determinism, shapes ------------------------------------------------------


def test_registry_and_unknown_task():
    from bottleneck_cli.config import CONFIG_DIR

    shipped = {p.stem for p in (CONFIG_DIR / "task").glob("*.yaml")}
    assert set(TASKS) == set(TASK_FAMILIES) <= shipped  # registry, settings, group options
    assert {"compositional", "low_rank", "npz", "digits", "teacher"} <= set(TASKS)
    with pytest.raises(ValueError, match=r"Unknown task 'nope'; choose from \["):
        make_dataset(cfg(name="nope"), 0)


@pytest.mark.parametrize(
    "kw",
    [
        dict(name="compositional"),
        dict(name="compositional", inner="linear", noise=0.1),
        dict(name="low_rank"),
        dict(name="low_rank", noise=0.1),
        dict(name="digits", n_train=100, n_test=50),
    ],
)
def test_deterministic_per_seed(kw):
    c = cfg(**kw)
    a, b, other = make_dataset(c, 3), make_dataset(c, 3), make_dataset(c, 4)
    assert same(a, b)
    assert not np.array_equal(a.x_train, other.x_train)
    assert a.info == b.info


def test_data_seed_overrides_run_seed():
    c = cfg(name="low_rank", data_seed=7)
    assert same(make_dataset(c, 0), make_dataset(c, 1))
    assert same(make_dataset(c, 0), make_dataset(cfg(name="low_rank"), 7))
    np.testing.assert_array_equal(low_rank_matrix(c, 0), low_rank_matrix(cfg(name="low_rank"), 7))


def test_training_set_does_not_depend_on_n_test_or_noise():
    a = make_dataset(cfg(name="compositional", n_test=10), 0)
    b = make_dataset(cfg(name="compositional", n_test=99, noise=0.3), 0)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert 0.1 < np.std(b.y_train - a.y_train) < 0.5  # only the noise differs


@pytest.mark.parametrize("name", ["compositional", "low_rank"])
def test_shapes_from_config(name):
    c = cfg(name=name, n_train=33, n_test=7, d_in=12, d_out=5, d_latent=6, rank=3)
    d = make_dataset(c, 0, dtype=np.float64)
    assert (d.n_train, d.n_test, d.d_in, d.d_out) == (33, 7, 12, 5)
    assert d.x_train.shape == (33, 12) and d.y_test.shape == (7, 5)
    assert all(getattr(d, k).dtype == np.float64 for k in ARRAYS)
    assert d.loss == "mse" and d.classification is False
    assert d.info["true_rank"] == 3
    assert make_dataset(c, 0).x_train.dtype == np.float32


def test_composed_hydra_config_works():
    d = make_dataset(load(["task=low_rank", "task.inputs=identity"]).task, 0)
    assert d.n_train == 20


def test_cross_entropy_on_regression_task_is_refused():
    with pytest.raises(TaskError, match="cross_entropy"):
        make_dataset(cfg(name="compositional", loss="cross_entropy"), 0)


# --- compositional ----------------------------------------------------------------------


def test_compositional_normalized_and_noise_only_on_train():
    c = cfg(name="compositional", n_train=512, n_test=512)
    d = make_dataset(c, 0, dtype=np.float64)
    np.testing.assert_allclose(d.x_train.std(0), 1.0, atol=1e-10)
    np.testing.assert_allclose(np.mean(d.y_train**2), 1.0, atol=1e-10)
    assert 0.7 < np.mean(d.y_test**2) < 1.3
    c_noisy = cfg(name="compositional", n_train=512, n_test=512, noise=0.5)
    noisy = make_dataset(c_noisy, 0, dtype=np.float64)
    np.testing.assert_array_equal(noisy.y_test, d.y_test)
    assert abs(np.std(noisy.y_train - d.y_train) - 0.5) < 0.02


def test_compositional_linear_inner_has_rank_k_structure():
    k, dl = 2, 6
    c = cfg(name="compositional", inner="linear", d_latent=dl, rank=k, d_in=15, d_out=9,
            n_train=200)
    d = make_dataset(c, 1, dtype=np.float64)
    g, h = compositional_maps(c, 1)
    # x is affine in z: recover z = (x - g(0)) M exactly with M the pseudoinverse of g's matrix.
    G = g(np.eye(dl)) - g(np.zeros((1, dl)))  # (dl, d_in)
    assert np.linalg.matrix_rank(G) == dl  # injective
    z = (d.x_train - g(np.zeros((1, dl)))) @ np.linalg.pinv(G)
    np.testing.assert_allclose(g(z), d.x_train, atol=1e-10)
    np.testing.assert_allclose(h(z), d.y_train, atol=1e-10)  # the data is y = f*(x)
    # f*(x) = h(P_k z(x)) only sees k linear features of x: changing z_{k+1..} leaves y alone,
    z2 = z.copy()
    z2[:, k:] = np.random.default_rng(0).standard_normal((len(z), dl - k))
    np.testing.assert_allclose(h(z2), h(z), atol=1e-12)
    # and the finite-difference Jacobian of x -> f*(x) has rank exactly k.
    fstar = lambda x: h((x - g(np.zeros((1, dl)))) @ np.linalg.pinv(G))  # noqa: E731
    x0, eps = d.x_train[:1], 1e-6
    J = np.stack([(fstar(x0 + eps * e) - fstar(x0 - eps * e))[0] / (2 * eps) for e in np.eye(15)])
    s = np.linalg.svd(J, compute_uv=False)
    assert s[k - 1] > 1e-3 and s[k] < 1e-6 * s[0]


def test_compositional_smooth_inner_is_nonlinear_and_injective():
    dl, k = 5, 2
    c = cfg(name="compositional", d_latent=dl, rank=k, d_in=12)
    g, h = compositional_maps(c, 0)
    z0, eps = np.random.default_rng(1).standard_normal((1, dl)), 1e-6
    Jg = np.stack([(g(z0 + eps * e) - g(z0 - eps * e))[0] / (2 * eps) for e in np.eye(dl)])
    Jh = np.stack([(h(z0 + eps * e) - h(z0 - eps * e))[0] / (2 * eps) for e in np.eye(dl)])
    assert np.linalg.matrix_rank(Jg, tol=1e-4) == dl
    assert np.linalg.matrix_rank(Jh, tol=1e-4) == k and np.allclose(Jh[k:], 0, atol=1e-8)
    # g is not affine: the midpoint rule fails.
    z1 = np.random.default_rng(2).standard_normal((1, dl))
    assert not np.allclose(g((z0 + z1) / 2), (g(z0) + g(z1)) / 2, atol=1e-3)


def test_compositional_errors():
    with pytest.raises(TaskError, match="d_latent"):
        make_dataset(cfg(name="compositional", rank=9, d_latent=8), 0)
    with pytest.raises(TaskError, match="d_in"):
        make_dataset(cfg(name="compositional", d_in=4, d_latent=8), 0)


# --- low_rank ---------------------------------------------------------------------------


def test_low_rank_singular_values_and_targets():
    c = cfg(name="low_rank", rank=3, d_in=10, d_out=7, singular_values=[5.0, 2.0, 0.5])
    A = low_rank_matrix(c, 2)
    assert A.shape == (7, 10)
    s = np.linalg.svd(A, compute_uv=False)
    np.testing.assert_allclose(s[:3], [5.0, 2.0, 0.5], rtol=1e-12)
    np.testing.assert_allclose(s[3:], 0, atol=1e-12)
    d = make_dataset(c, 2, dtype=np.float64)
    np.testing.assert_allclose(d.y_train, d.x_train @ A.T, atol=1e-12)
    np.testing.assert_allclose(d.y_test, d.x_test @ A.T, atol=1e-12)
    assert d.info == {"true_rank": 3, "singular_values": [5.0, 2.0, 0.5], "inputs": "gaussian"}


def test_low_rank_default_singular_values():
    A = low_rank_matrix(cfg(name="low_rank", rank=3), 0)
    np.testing.assert_allclose(np.linalg.svd(A, compute_uv=False)[:4], [3, 2, 1, 0], atol=1e-12)
    assert make_dataset(cfg(name="low_rank", rank=3), 0).info["singular_values"] == [3.0, 2.0, 1.0]


def test_low_rank_identity_inputs_denoising():
    c = cfg(name="low_rank", inputs="identity", d_in=6, d_out=4, rank=2, noise=0.1)
    d = make_dataset(c, 0, dtype=np.float64)
    A = low_rank_matrix(c, 0)
    np.testing.assert_array_equal(d.x_train, np.eye(6))
    np.testing.assert_array_equal(d.x_test, np.eye(6))
    np.testing.assert_allclose(d.y_test, A.T, atol=1e-15)  # clean target: test loss = ||A_hat - A||
    assert 0.03 < np.std(d.y_train - A.T) < 0.2  # noisy observation Y = A + E


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(rank=2, singular_values=[1.0, 2.0, 3.0]), "3 entries but task.rank=2"),
        (dict(rank=5, d_in=4, d_out=10), r"min\(task.d_in, task.d_out\)=4"),
    ],
)
def test_low_rank_errors(kw, msg):
    with pytest.raises(TaskError, match=msg):
        make_dataset(cfg(name="low_rank", **kw), 0)


# --- npz --------------------------------------------------------------------------------


def npz_cfg(path, **kw):
    return cfg(name="npz", path=str(path), **kw)


def test_npz_round_trip_regression(tmp_path):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.normal(size=(10, 3)), y_train=rng.normal(size=(10, 2)),
                  x_test=rng.normal(size=(4, 3)), y_test=rng.normal(size=(4, 2)))
    np.savez(tmp_path / "d.npz", **arrays)
    d = make_dataset(npz_cfg(tmp_path / "d.npz"), 0, dtype=np.float64)
    for k in ARRAYS:
        np.testing.assert_array_equal(getattr(d, k), arrays[k])
    assert d.loss == "mse" and not d.classification
    # no test arrays: empty test set with matching widths
    np.savez(tmp_path / "e.npz", x_train=arrays["x_train"], y_train=arrays["y_train"])
    e = make_dataset(npz_cfg(tmp_path / "e.npz"), 0)
    assert e.x_test.shape == (0, 3) and e.y_test.shape == (0, 2) and e.x_train.dtype == np.float32


def test_npz_integer_labels_become_one_hot(tmp_path):
    x = np.arange(12.0).reshape(6, 2)
    np.savez(tmp_path / "c.npz", x_train=x, y_train=np.array([0, 1, 2, 1, 0, 2]),
             x_test=x[:2], y_test=np.array([3, 0]))
    d = make_dataset(npz_cfg(tmp_path / "c.npz", loss="cross_entropy"), 0)
    assert d.classification and d.loss == "cross_entropy" and d.info["n_classes"] == 4
    np.testing.assert_array_equal(d.y_train.argmax(1), [0, 1, 2, 1, 0, 2])
    np.testing.assert_array_equal(d.y_train.sum(1), 1)
    np.testing.assert_array_equal(d.y_test, [[0, 0, 0, 1], [1, 0, 0, 0]])


def _write(tmp_path, **arrays):
    p = tmp_path / "bad.npz"
    np.savez(p, **arrays)
    return p


X, Y = np.ones((5, 3)), np.ones((5, 2))


@pytest.mark.parametrize(
    "arrays, msg",
    [
        (dict(y_train=Y), "no array 'x_train'"),
        (dict(x_train=X), "no array 'y_train'"),
        (dict(x_train=X, y_train=Y, x_test=X), "both x_test and y_test"),
        (dict(x_train=np.ones(5), y_train=Y), r"x_train must be 2-D"),
        (dict(x_train=np.ones((5, 3, 1)), y_train=Y), r"x_train must be 2-D"),
        (dict(x_train=X, y_train=np.ones((5, 2, 1))), r"y_train must be 2-D"),
        (dict(x_train=X, y_train=np.ones(5)), "integer class labels"),
        (dict(x_train=X, y_train=np.ones((4, 2))), "y_train has 4 rows but x has 5"),
        (dict(x_train=X, y_train=Y, x_test=np.ones((2, 4)), y_test=np.ones((2, 2))),
         "x_test has 4 features but x_train has 3"),
        (dict(x_train=X, y_train=Y, x_test=np.ones((2, 3)), y_test=np.ones((2, 5))),
         "does not match y_train"),
        (dict(x_train=np.where(X > 0, np.nan, 0), y_train=Y), "x_train contains NaN or inf"),
        (dict(x_train=X, y_train=np.full((5, 2), np.inf)), "y_train contains NaN or inf"),
        (dict(x_train=X, y_train=Y, x_test=np.ones((1, 3)), y_test=np.array([[np.nan, 0]])),
         "y_test contains NaN or inf"),
        (dict(x_train=np.ones((0, 3)), y_train=np.ones((0, 2))), "x_train is empty"),
        (dict(x_train=np.array([["a"] * 3] * 5), y_train=Y), "x_train has dtype <U1"),
        (dict(x_train=X, y_train=np.ones((5, 2), dtype=bool)), "y_train has dtype bool"),
        (dict(x_train=X, y_train=np.array([0, 1, -1, 0, 1])), "negative class labels"),
    ],
)
def test_npz_errors(tmp_path, arrays, msg):
    with pytest.raises(TaskError, match=msg) as info:
        make_dataset(npz_cfg(_write(tmp_path, **arrays)), 0)
    assert "\n" not in str(info.value)


def test_npz_file_errors(tmp_path):
    with pytest.raises(TaskError, match="does not exist"):
        make_dataset(npz_cfg(tmp_path / "missing.npz"), 0)
    (tmp_path / "junk.npz").write_text("not a zip file at all")
    with pytest.raises(TaskError, match="not a valid .npz file"):
        make_dataset(npz_cfg(tmp_path / "junk.npz"), 0)
    np.save(tmp_path / "one.npy", X)
    with pytest.raises(TaskError, match="not a valid .npz file"):
        make_dataset(npz_cfg(tmp_path / "one.npy"), 0)
    np.savez(tmp_path / "obj.npz", x_train=np.array([1, "a"], dtype=object), y_train=Y)
    with pytest.raises(TaskError, match="cannot read x_train"):
        make_dataset(npz_cfg(tmp_path / "obj.npz"), 0)
    with pytest.raises(TaskError, match="task.path is required"):
        make_dataset(cfg(name="npz"), 0)


def test_npz_cross_entropy_needs_class_targets(tmp_path):
    with pytest.raises(TaskError, match="cross_entropy"):
        make_dataset(npz_cfg(_write(tmp_path, x_train=X, y_train=Y + 0.5), loss="cross_entropy"), 0)
    onehot = np.eye(2)[[0, 1, 1, 0, 1]]
    d = make_dataset(npz_cfg(_write(tmp_path, x_train=X, y_train=onehot), loss="cross_entropy"), 0)
    assert d.classification and d.d_out == 2


# --- digits -----------------------------------------------------------------------------


def test_digits_shapes_one_hot_and_classes():
    c = cfg(name="digits", n_train=200, n_test=100, n_classes=3)
    d = make_dataset(c, 0)
    assert (d.n_train, d.n_test, d.d_in, d.d_out) == (200, 100, 64, 3)
    assert d.classification and d.loss == "mse"
    for y in (d.y_train, d.y_test):
        assert set(np.unique(y)) == {0.0, 1.0}
        np.testing.assert_array_equal(y.sum(1), 1)
    assert set(d.y_train.argmax(1)) == {0, 1, 2}
    assert d.x_train.min() >= 0 and d.x_train.max() <= 1 and d.x_train.max() == 1
    # train and test are disjoint images
    train_rows = {r.tobytes() for r in d.x_train}
    assert sum(r.tobytes() in train_rows for r in d.x_test) < 5  # (a few duplicate images exist)


def test_digits_n_test_clipped_and_n_train_checked():
    small = make_dataset(cfg(name="digits", n_train=10, n_test=0, n_classes=2), 0)
    n_avail = small.info["n_available"]
    assert 300 < n_avail < 400
    d = make_dataset(cfg(name="digits", n_train=n_avail - 5, n_test=100, n_classes=2), 0)
    assert d.n_test == 5
    with pytest.raises(TaskError, match="exceeds"):
        make_dataset(cfg(name="digits", n_train=n_avail + 1, n_classes=2), 0)
    ce = make_dataset(cfg(name="digits", n_train=10, n_test=0, loss="cross_entropy"), 0)
    assert ce.loss == "cross_entropy" and ce.y_test.shape == (0, 10)


def test_teacher_is_a_deterministic_relu_network_of_x():
    c = cfg(name="teacher", n_train=50, n_test=20, d_in=6, d_out=2, hidden=5, teacher_depth=3)
    a, b = make_dataset(c, 3), make_dataset(c, 3)
    assert a.x_train.shape == (50, 6) and a.y_train.shape == (50, 2) and a.x_test.shape == (20, 6)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_train, make_dataset(c, 4).y_train)
    assert a.y_train.std() == pytest.approx(1.0, rel=1e-5)
    # targets come from x alone: the test split is drawn from the same teacher
    assert a.y_test.shape == (20, 2) and np.isfinite(a.y_test).all()
