"""The matern task (arXiv 2407.05664): the Matérn kernel, both GP samplers, nested pools,
the data cache and bad settings.

Monte-Carlo tolerances: an empirical covariance over S draws has standard error
sqrt((1 + k^2) / S) <= sqrt(2 / S) per entry; with S = 20000 that is <= 0.01 and the
tolerance 0.05 is 5 standard errors (the largest of ~300 entries is ~3.5).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy.special import gamma, kv
from typer.testing import CliRunner

from bottleneck_cli.cli import app
from bottleneck_cli.config import MaternTask
from bottleneck_cli.tasks import make_dataset
from bottleneck_cli.tasks.matern_gp import (FeatureGP, exact_sample, feature_sample, matern,
                                            matern_bessel, scaled_distance)

mt = sys.modules["bottleneck_cli.tasks.matern"]  # the module (tasks.matern is its function)

MC_TOL = 0.05


def reference_kernel(r, nu):
    """Matérn kernels written out independently of the module (Rasmussen & Williams 4.14)."""
    if nu == 0.5:
        return np.exp(-r)
    if nu == 1.5:
        return (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r)
    if nu == 2.5:
        return (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r)
    t = np.sqrt(2 * nu) * np.where(r > 0, r, 1.0)
    return np.where(r > 0, 2 ** (1 - nu) / gamma(nu) * t**nu * kv(nu, t), 1.0)


def task_cfg(**kw):
    return OmegaConf.structured(MaternTask(**kw))


def points(n=24, d=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


def test_closed_forms_equal_the_bessel_form():
    r = np.linspace(0.0, 6.0, 301)
    for nu in (0.5, 1.5, 2.5):
        np.testing.assert_allclose(matern(r, nu), matern_bessel(r, nu), atol=1e-12)
        np.testing.assert_allclose(matern(r, nu), reference_kernel(r, nu), atol=1e-12)
    for nu in (0.7, 1.0, 3.7):
        np.testing.assert_allclose(matern(r, nu), reference_kernel(r, nu), atol=1e-12)


def test_distance_divides_by_the_dimension():
    a, b = np.zeros((1, 15)), np.ones((1, 15))
    assert scaled_distance(a, b)[0, 0] == pytest.approx(1.0)  # sqrt(15 / 15)


@pytest.mark.parametrize("nu", [0.5, 1.5, 2.5, 1.0])
def test_exact_sampler_covariance_matches_the_kernel(nu):
    x = points()
    draws = exact_sample(x, nu, 20000, 1e-6, np.random.default_rng(1))  # (n, S)
    emp = draws @ draws.T / draws.shape[1]
    want = reference_kernel(scaled_distance(x, x), nu)
    assert np.abs(emp - want).max() < MC_TOL


@pytest.mark.parametrize("nu", [0.5, 2.5])
def test_feature_kernel_converges_to_the_matern_kernel(nu):
    """Given its frequencies the feature GP has kernel k_M = mean_m cos(w_m . (x - x')),
    error O(M^-1/2): at M = 16384 within 0.04 of k_nu at every pair (std <= 0.006), and at
    least 4x closer than at M = 64. Draws sharing M = 512 frequencies have empirical
    covariance k_M (MC_TOL)."""
    x, rng = points(), np.random.default_rng(2)
    want = reference_kernel(scaled_distance(x, x), nu)
    errs = {}
    for m in (64, 16384):
        errs[m] = np.abs(FeatureGP(3, nu, 1, m, rng).kernel(x, x) - want).max()
    assert errs[16384] < 0.04
    gp = FeatureGP(3, nu, 20000, 512, rng)  # 20000 draws sharing 512 frequencies
    draws = gp(x)
    assert np.abs(draws @ draws.T / draws.shape[1] - gp.kernel(x, x)).max() < MC_TOL
    assert errs[16384] < errs[64] / 4


def test_feature_kernel_is_unbiased_at_any_feature_count():
    """E over frequencies of k_M is k_nu: 400 draws of M = 32 features average to k_nu
    (std of the average <= sqrt(1 / (400 * 32)) < 0.009; tolerance 0.05)."""
    x, rng = points(12), np.random.default_rng(3)
    mean = np.mean([FeatureGP(3, 1.5, 1, 32, rng).kernel(x, x) for _ in range(400)], axis=0)
    assert np.abs(mean - reference_kernel(scaled_distance(x, x), 1.5)).max() < MC_TOL


def mean_sq_increments(sampler, nu, lags, h=0.05, n=64):
    """E (f(t + lag h) - f(t))^2 along a line in R^1, over all draws and all t."""
    t = (np.arange(n) * h)[:, None]
    f = sampler(t, nu)  # (n, draws)
    return np.array([np.mean((f[lag:] - f[:-lag]) ** 2) for lag in lags])


@pytest.mark.parametrize("sampler, tol", [("exact", 0.1), ("features", 0.2)])
def test_paths_are_rougher_for_smaller_nu(sampler, tol):
    """Mean squared increments equal 2 (1 - k(lag h)) + 2 jitter, so they scale as
    lag^(2 nu) for nu < 1 and lag^2 for nu > 1: smaller nu, rougher path. Tolerance: exact
    10% (~3% Monte-Carlo error over 2000 draws); features 20% (at M = 8192 the features'
    own kernel error reaches ~10% of 1 - k at the smallest lag for nu = 1/2)."""
    jitter, lags = 1e-6, (1, 2, 4)
    draw = {"exact": lambda t, nu: exact_sample(t, nu, 2000, jitter, np.random.default_rng(4)),
            "features": lambda t, nu: feature_sample(t, nu, 2000, jitter, 8192,
                                                     np.random.default_rng(4))}[sampler]
    got = {}
    for nu in (0.5, 1.5, 2.5):
        got[nu] = mean_sq_increments(draw, nu, lags)
        want = 2 * (1 - matern(np.array(lags) * 0.05, nu)) + 2 * jitter
        np.testing.assert_allclose(got[nu], want, rtol=tol)
    assert got[0.5][0] > got[1.5][0] > got[2.5][0]
    slope = {nu: np.log2(got[nu][1] / got[nu][0]) for nu in got}  # log2 MSI(2h) / MSI(h)
    assert slope[0.5] == pytest.approx(1.0, abs=1.5 * tol)  # 2 nu
    assert slope[2.5] == pytest.approx(2.0, abs=1.5 * tol)  # 2


@pytest.mark.parametrize("sampler", ["exact", "features"])
def test_training_sets_are_nested_and_the_test_set_fixed(sampler):
    kw = dict(n_pool=5000, n_test=300, sampler=sampler, features=256)
    if sampler == "exact":
        kw.update(n_pool=900, n_test=100)
    small = make_dataset(task_cfg(n_train=kw["n_pool"] // 5, **kw), 0)
    big = make_dataset(task_cfg(n_train=kw["n_pool"], **kw), 0)
    n = small.n_train
    np.testing.assert_array_equal(small.x_train, big.x_train[:n])
    np.testing.assert_array_equal(small.y_train, big.y_train[:n])
    np.testing.assert_array_equal(small.x_test, big.x_test)
    np.testing.assert_array_equal(small.y_test, big.y_test)
    assert (small.d_in, small.d_out, small.n_test) == (15, 20, kw["n_test"])
    other = make_dataset(task_cfg(n_train=n, **kw), 1)
    assert not np.array_equal(other.y_train, small.y_train)


def test_pools_are_cached_on_disk_per_seed_and_settings(tmp_path, monkeypatch):
    cfg = task_cfg(n_train=50, n_pool=200, n_test=50, cache=str(tmp_path / "cache"))
    mt._MEMO.clear()
    first = make_dataset(cfg, 0)
    files = list((tmp_path / "cache").glob("matern-*.npz"))
    assert len(files) == 1
    mt._MEMO.clear()

    def refuse(*args):
        raise AssertionError("drawn again although cached")

    monkeypatch.setattr(mt, "draw_pool", refuse)
    again = make_dataset(task_cfg(n_train=150, n_pool=200, n_test=50,
                                  cache=str(tmp_path / "cache")), 0)
    np.testing.assert_array_equal(first.y_train, again.y_train[:50])
    monkeypatch.undo()
    mt._MEMO.clear()
    make_dataset(task_cfg(n_train=50, n_pool=200, n_test=50, nu_h=0.5,
                          cache=str(tmp_path / "cache")), 0)
    assert len(list((tmp_path / "cache").glob("matern-*.npz"))) == 2
    assert mt.pool_key(cfg, 0) != mt.pool_key(cfg, 1)


def test_a_cli_run_caches_under_its_output_folder(in_tmp):
    args = ["train", "task=matern", "task.n_train=40", "task.n_pool=100", "task.n_test=20",
            "depth=2", "width=8", "steps=3", "metrics.num_log=1", "out=there", "name=r"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(list((in_tmp / "there" / ".bncli-cache").glob("matern-*.npz"))) == 1
    assert sorted(p.name for p in in_tmp.iterdir()) == ["there"]


@pytest.mark.parametrize("override, words", [
    ("task.nu_g=0", "task.nu_g"),
    ("task.nu_h=-1.5", "task.nu_h"),
    ("task.d_mid=16", "task.d_mid=16 must be <= task.d_in=15"),
    ("task.n_train=6000", "larger than the training pool"),
    ("task.exact_max=1000", "task.sampler=exact needs a dense"),
    ("task.sampler=magic", "task.sampler"),
])
def test_bad_settings_are_one_line_errors_without_a_run_folder(in_tmp, override, words):
    result = CliRunner().invoke(app, ["train", "task=matern", override])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], result.output
    assert not (in_tmp / "runs").exists()
