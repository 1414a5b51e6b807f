"""Training as in arXiv 2407.05664: the weight decay -> ridge conversion against PyTorch's
Adam (golden values in tests/golden, made by make_adam_weight_decay.py), the l2norm loss,
and the accordion and shallow models."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bottleneck_cli import models
from bottleneck_cli.config import load
from bottleneck_cli.objective import fit_term
from bottleneck_cli.optim import direction, stages
from bottleneck_cli.steps import make_member_step

GOLDEN = json.loads((Path(__file__).parent / "golden" / "adam_weight_decay.json").read_text())


class _Info:
    loss, n_train, mask = "mse", len(GOLDEN["x"]), None


def bncli_adam(lam: float) -> dict:
    """GOLDEN['steps'] steps of bncli's own member step (Adam, ridge lam on W and b)."""
    cfg = load(["model=mlp", "depth=2", "width=4", f"lam={lam}", f"lr={GOLDEN['lr']}",
                "model.ridge_on_bias=true", "optim=adam", "dtype=float32"])
    model = models.build(cfg, (3,), 2)
    stage = stages(cfg)[0]
    tx = direction(cfg.optim, stage.name)
    step = jax.jit(make_member_step(cfg, model, tx, stage, _Info()))
    params = {k: jnp.asarray(np.array(v), jnp.float32) for k, v in GOLDEN["init"].items()}
    opt = tx.init(params)
    hyper = {"lam": jnp.float32(lam), "lr": jnp.float32(GOLDEN["lr"]), "key": jax.random.key(0)}
    x, y = jnp.asarray(GOLDEN["x"], jnp.float32), jnp.asarray(GOLDEN["y"], jnp.float32)
    alive, div = jnp.bool_(True), jnp.int32(-1)
    for i in range(GOLDEN["steps"]):
        params, opt, alive, div = step(params, opt, alive, div, hyper, {"x": x, "y": y},
                                       jnp.int32(i))
    return {k: np.asarray(v, np.float64) for k, v in params.items()}


def max_diff(a: dict, b: dict) -> float:
    return max(float(np.abs(a[k] - np.array(b[k])).max()) for k in a)


def test_weight_decay_is_half_the_ridge():
    """PyTorch Adam(weight_decay=wd) adds wd * theta to the gradient = the gradient of
    (wd / 2) ||theta||^2 over all parameters: lam = wd / 2 with model.ridge_on_bias=true.
    lam = wd (a common slip) misses by far more than float32 rounding."""
    wd = GOLDEN["weight_decay"]
    assert max_diff(bncli_adam(wd / 2), GOLDEN["after_sum"]) < 1e-5
    assert max_diff(bncli_adam(wd), GOLDEN["after_sum"]) > 1e-3


def test_official_mean_loss_converts_with_d_out():
    """The official loss is torch's MSELoss (mean over samples *and* d_out outputs) = bncli's
    mse / d_out. Adam is invariant to scaling the whole objective (up to eps), so its
    Adam(weight_decay=wd) equals bncli mse with lam = d_out * wd / 2."""
    wd, d_out = GOLDEN["weight_decay"], len(GOLDEN["y"][0])
    assert max_diff(bncli_adam(d_out * wd / 2), GOLDEN["after_mean"]) < 1e-5
    assert max_diff(bncli_adam(wd / 2), GOLDEN["after_mean"]) > 1e-3


def test_l2norm_is_the_mean_euclidean_norm_and_mse_is_unchanged():
    rng = np.random.default_rng(0)
    pred, y = rng.standard_normal((7, 4)), rng.standard_normal((7, 4))
    norms = np.linalg.norm(pred - y, axis=1)
    assert float(fit_term(pred, y, "l2norm")) == pytest.approx(norms.mean(), rel=1e-6)
    assert float(fit_term(pred, y, "mse")) == pytest.approx((norms**2).mean(), rel=1e-6)
    y1 = np.eye(4)[rng.integers(0, 4, 7)]
    logp = pred - np.log(np.exp(pred).sum(1, keepdims=True))
    assert float(fit_term(pred, y1, "cross_entropy")) == pytest.approx(-(y1 * logp).sum(1).mean(),
                                                                       rel=1e-6)
    same = jnp.asarray(y.copy())  # a zero residual: gradient 0 there, not NaN
    grad = jax.grad(lambda p: fit_term(p, jnp.asarray(y), "l2norm"))(same.at[0].add(1.0))
    assert np.all(np.isfinite(np.asarray(grad))) and np.all(np.asarray(grad)[1:] == 0)


def test_accnet_layers_alternate_wide_and_narrow():
    cfg = load(["model=accnet", "model.blocks=3", "model.d_full=12", "model.d_mid=5"])
    net = models.build(cfg, (15,), 20)
    assert net.depth == 6
    params = net.init(0)
    shapes = {k: v.shape for k, v in params.items() if k.startswith("W")}
    assert shapes == {"W01": (15, 12), "W02": (12, 5), "W03": (5, 12), "W04": (12, 5),
                      "W05": (5, 12), "W06": (12, 20)}
    x = np.random.default_rng(1).standard_normal((9, 15)).astype(np.float32)
    y, hidden = net.apply(params, x)
    assert y.shape == (9, 20)
    assert [h.shape[1] for h in hidden.values()] == [12, 5, 12, 5, 12]
    assert all(float(h.min()) >= 0 for h in hidden.values())  # ReLU after every hidden layer
    pre = net.preactivations(params, x)
    np.testing.assert_allclose(hidden["Z02"], np.maximum(pre["Z02"], 0))
    a = np.maximum(x @ params["W01"] + params["b01"], 0)  # the first block by hand
    np.testing.assert_allclose(hidden["Z01"], a, rtol=1e-5, atol=1e-6)


def test_shallow_net_has_one_hidden_layer():
    cfg = load(["model=shallow", "model.hidden=33", "depth=9", "width=7"])
    net = models.build(cfg, (15,), 20)
    assert net.depth == 2
    assert {k: v.shape for k, v in net.init(0).items() if k.startswith("W")} == {
        "W01": (15, 33), "W02": (33, 20)}


def test_rate_fit_recovers_a_power_law():
    """err = 3 N^-0.7 * exp(noise) per seed: the fitted rate is 0.7 within the seeds' spread
    (noise std 0.02 in log: the slope's std over 5 log-spaced sizes is ~0.01; tolerance 0.05)."""
    import pandas as pd

    from bottleneck_cli.report.figures.scaling import rate_table

    rng = np.random.default_rng(0)
    rows = [{"setting": f"nu_g={nu}", "task.nu_g": nu, "n": n, "seed": s,
             "err": 3 * n ** -rate * np.exp(0.02 * rng.standard_normal())}
            for nu, rate in ((1.0, 0.7), (4.0, 0.3)) for s in (0, 1, 2)
            for n in (100, 300, 1000, 3000, 10000)]
    rates = rate_table(pd.DataFrame(rows), ["task.nu_g"]).set_index("task.nu_g")
    assert rates.loc[1.0, "rate"] == pytest.approx(0.7, abs=0.05)
    assert rates.loc[4.0, "rate"] == pytest.approx(0.3, abs=0.05)
    assert (rates["r2"] > 0.99).all() and (rates["n_seeds"] == 3).all()
    assert (rates["rate_err"] > 0).all() and (rates["rate_err"] < 0.05).all()
