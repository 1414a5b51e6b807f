"""Training stages (optim.stages): one stage is today's behaviour, stages switch optimizer,
learning rate and ridge at their boundaries, lbfgs polishes, bad stage lists are refused.
Resume across a stage boundary is in test_train.py (OPTIMS adam_gd_22 / adam_gd_33)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import EXIT_BAD_INPUT, app

TINY = ["+experiment=tiny", "steps=30", "metrics.ntk=false", "metrics.jacobian_samples=0"]


def train(*args: str):
    return CliRunner().invoke(app, ["train", *TINY, *args])


def records(path) -> list[dict]:
    return rd.RunDir(path).read_metrics()


def test_one_stage_equals_no_stages(in_tmp):
    assert train("name=plain").exit_code == 0
    assert train("name=staged", "optim.stages=[{steps:30}]").exit_code == 0
    a = rd.read_npz(in_tmp / "runs/plain" / rd.PARAMS)
    b = rd.read_npz(in_tmp / "runs/staged" / rd.PARAMS)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert "stage" not in records(in_tmp / "runs/plain")[-1]


def test_stages_switch_lr_and_ridge_at_their_boundary(in_tmp):
    stages = "optim.stages=[{steps:12},{name:gd,lr_scale:0.5,lam_scale:0}]"
    assert train("name=two", "lr=0.02", "lam=0.01", stages).exit_code == 0
    recs = {r["step"]: r for r in records(in_tmp / "runs/two")}
    assert 12 in recs  # a stage's first step is recorded
    assert recs[11 if 11 in recs else 0]["stage"] == 0 and recs[12]["stage"] == 1
    assert recs[0]["lr"] == pytest.approx(0.02) and recs[0]["lam"] == pytest.approx(0.01)
    assert recs[12]["lr"] == pytest.approx(0.01) and recs[12]["lam"] == 0.0
    assert recs[30]["loss/ridge"] == 0.0


def test_lbfgs_stage_descends_monotonically(in_tmp):
    assert train("name=polish", "steps=40", "optim.stages=[{steps:20},{name:lbfgs}]").exit_code == 0
    polish = [r["loss/train"] for r in records(in_tmp / "runs/polish") if r["step"] >= 20]
    assert all(b < a for a, b in zip(polish, polish[1:]))  # the line search only descends
    assert polish[-1] < 0.5 * polish[0]


@pytest.mark.parametrize("stages, message", [
    ("[{steps:10},{steps:10}]", "add up to 20 but steps=30"),
    ("[{steps:40}]", "add up to 40 but steps=30"),
    ("[{name:gd},{steps:10}]", "only the last stage may omit it"),
    ("[{steps:10,name:rmsprop},{}]", "is not valid"),
    ("[{steps:0},{}]", "must be >= 1"),
    ("[{steps:10,lr_scale:0},{}]", "lr_scale must be > 0"),
    ("[{steps:10,rebalance:true},{}]", "only a stage that follows another"),
])
def test_bad_stage_lists_are_one_line_errors(in_tmp, stages, message):
    result = train(f"optim.stages={stages}")
    assert result.exit_code == EXIT_BAD_INPUT
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()


def test_lbfgs_refuses_minibatches(in_tmp):
    result = train("optim.stages=[{steps:10},{name:lbfgs}]", "optim.batch_size=4")
    assert result.exit_code == EXIT_BAD_INPUT and "full batches" in result.output


def test_rebalance_keeps_the_function_and_equalises_the_layer_norms():
    """W_l -> c_l W_l, b_l -> c_1..c_l b_l with prod c_l = 1: same outputs (ReLU is positively
    homogeneous), equal ||W_l||, and the ridge at its AM-GM minimum L (prod ||W_l||^2)^(1/L)."""
    import jax.numpy as jnp

    from bottleneck_cli.convergence import norm_balance, rebalance
    from bottleneck_cli.models.mlp import FullyConnected, MLP

    model = MLP(FullyConnected(4, 8, 3, "relu", True), d_in=5)
    params = model.init(0)
    scales = [3.0, 0.5, 2.0, 1.5]  # an unbalanced net with the same function: c_l, prod != 1 ok
    run = 1.0
    for l, c in enumerate(scales, 1):
        run *= c
        params[f"W0{l}"] = params[f"W0{l}"] * c
        params[f"b0{l}"] = params[f"b0{l}"] * run + 0.1 * l  # nonzero biases
    x = np.random.default_rng(1).normal(size=(16, 5)).astype(np.float32)
    batched = {k: jnp.asarray(v)[None] for k, v in params.items()}
    out = {k: np.asarray(v[0]) for k, v in rebalance(batched).items()}
    np.testing.assert_allclose(model.apply(out, x)[0], model.apply(params, x)[0],
                               rtol=1e-4, atol=1e-5)
    norms = [float(np.sum(out[f"W0{l}"] ** 2)) for l in range(1, 5)]
    before = [float(np.sum(params[f"W0{l}"] ** 2)) for l in range(1, 5)]
    assert norm_balance({f"norm/W0{l}": n for l, n in enumerate(before, 1)}) > 1.0
    assert max(norms) / min(norms) - 1 < 1e-5
    assert sum(norms) == pytest.approx(4 * np.prod(before) ** 0.25, rel=1e-5)
    assert sum(norms) < sum(before)


def test_rebalance_stage_starts_balanced_and_refuses_tanh(in_tmp):
    stages = "optim.stages=[{steps:12},{name:gd,rebalance:true}]"
    assert train("name=reb", "lam=0.01", stages).exit_code == 0
    recs = {r["step"]: r for r in records(in_tmp / "runs/reb")}
    assert recs[12]["conv/balance"] < 1e-4 < recs[11 if 11 in recs else 0]["conv/balance"]
    result = train("name=bad", "model.activation=tanh", stages)
    assert result.exit_code == EXIT_BAD_INPUT and "rebalance needs" in result.output
    assert not (in_tmp / "runs/bad").exists()
