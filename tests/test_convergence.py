"""Convergence diagnostics and the verdict (convergence.py): a deep linear net polished to
its minimum is converged and the same net stopped early is not; the layer-norm balance
sees a (c, 1/c) rescaling that leaves the fit unchanged; train.until=converged stops a
member while its cohort-mate trains on, and a resumed run keeps its verdict; a ridge
continuation ends exactly at the target lam."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.config import ConvergenceConfig, load
from bottleneck_cli.convergence import Tracker, norm_balance
from bottleneck_cli.optim import final_objective_from, stages
from bottleneck_cli.models import build

LINEAR = ["model=linear", "task=low_rank", "task.d_in=6", "task.d_out=6", "task.n_train=32",
          "task.n_test=8", "depth=2", "width=6", "lam=0.05", "optim=gd", "metrics.every=100",
          "metrics.ntk=false", "metrics.jacobian_samples=0"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def summary(path) -> dict:
    return rd.read_json(rd.RunDir(path).file(rd.SUMMARY))


def test_polished_linear_net_is_converged_and_an_early_stop_is_not(in_tmp):
    polish = "optim.stages=[{steps:200},{name:lbfgs}]"
    assert invoke("train", *LINEAR, "lr=0.1", "steps=1200", polish, "name=min").exit_code == 0
    assert invoke("train", *LINEAR, "lr=0.1", "steps=60", "name=early").exit_code == 0
    done, early = summary(in_tmp / "runs/min"), summary(in_tmp / "runs/early")
    assert done["convergence"]["converged"] is True
    values = done["convergence"]["values"]
    assert values["grad"] < 1e-3 and values["balance"] < 0.05
    assert early["convergence"]["converged"] is False
    assert early["final"]["converged"] == 0.0
    record = rd.RunDir(in_tmp / "runs/min").read_metrics()[-1]
    assert {"grad/norm", "grad/rel", "grad/W01", "grad/W02", "conv/grad", "conv/dloss",
            "conv/dnorm", "conv/balance", "converged"} <= set(record)


def test_rescaling_relu_layers_keeps_the_fit_and_shows_in_the_balance():
    import jax.numpy as jnp

    cfg = load(["model=mlp", "model.bias=false", "depth=3", "width=5"])
    model = build(cfg, 4, 2)
    params = {k: jnp.asarray(v) for k, v in model.init(0).items()}
    x = jnp.asarray(np.random.default_rng(1).standard_normal((16, 4)), jnp.float32)
    c = 3.0
    scaled = dict(params, W01=params["W01"] * c, W02=params["W02"] / c)
    np.testing.assert_allclose(model.apply(scaled, x)[0], model.apply(params, x)[0],
                               rtol=1e-5, atol=1e-5)
    norms = lambda p: {f"norm/{k}": float(jnp.sum(v * v)) for k, v in p.items()}  # noqa: E731
    equal = {f"norm/W0{l}": 2.0 for l in (1, 2, 3)}
    assert norm_balance(equal) == 0.0
    before, after = norm_balance(norms(params)), norm_balance(norms(scaled))
    assert after > before + 1.0  # a factor c^2 = 9 apart in two layers' norms


def test_verdict_needs_every_tolerance_for_patience_records():
    t = Tracker(ConvergenceConfig(window=10, patience=2), balance=True)
    flat = {"loss/train": 1.0, "norm/total": 2.0, "grad/rel": 1e-6,
            "norm/W01": 1.0, "norm/W02": 1.0}
    assert t.update(0, flat)["converged"] == 0.0  # no window of history yet
    assert t.update(10, flat)["converged"] == 0.0  # one record below tolerance
    assert t.update(20, flat)["converged"] == 1.0
    out = t.update(30, {**flat, "norm/W02": 1.5})  # unbalanced: the streak restarts
    assert out["conv/balance"] == pytest.approx(0.5) and out["converged"] == 0.0


def test_convergence_counts_only_once_the_final_objective_is_trained():
    cfg = lambda stages, steps=300: load([f"steps={steps}", f"optim.stages={stages}"])  # noqa: E731
    assert final_objective_from(stages(cfg("[]"))) == 0
    # a ridge-free stage, then the target ridge: only the second stage counts
    assert final_objective_from(stages(cfg("[{steps:100,lam_scale:0},{}]"))) == 100
    # continuation then polishing at the target: counts from the continuation's end
    assert final_objective_from(stages(cfg("[{steps:100,lam_start_scale:10},{name:lbfgs}]"))) == 100
    # equal ridges chain back: two stages at the target count from the start
    assert final_objective_from(stages(cfg("[{steps:100},{name:lbfgs}]"))) == 0
    flat = {"loss/train": 1.0, "norm/total": 2.0, "grad/rel": 1e-6}
    t = Tracker(ConvergenceConfig(window=10, patience=1), balance=False, counts_from=100)
    assert [t.update(s, flat)["converged"] for s in (0, 50, 90, 100)] == [0.0, 0.0, 0.0, 1.0]


def test_until_converged_stops_one_member_while_its_cohort_mate_trains_on(in_tmp):
    args = ["sweep", *LINEAR, "lr=0.1,0.002", "steps=3000", "train.until=converged",
            "sweep.cpu_threads=1", "--name", "s"]
    assert invoke(*args).exit_code == 0
    fast, slow = summary(in_tmp / "runs/s/lr=0.1"), summary(in_tmp / "runs/s/lr=0.002")
    assert fast["convergence"]["converged"] and fast["steps_done"] < 3000
    assert not slow["convergence"]["converged"] and slow["steps_done"] == 3000
    assert rd.RunDir(in_tmp / "runs/s/lr=0.1").read_metrics()[-1]["step"] == fast["steps_done"]
    again = invoke(*args)  # a re-run finds both done and keeps the verdicts
    assert again.exit_code == 0
    assert summary(in_tmp / "runs/s/lr=0.1") == fast


def test_continuation_stage_ends_exactly_at_the_target_lam(in_tmp):
    stages = "optim.stages=[{steps:100,lam_start_scale:100},{}]"
    assert invoke("train", *LINEAR, "lr=0.05", "steps=150", "metrics.every=1",
                  stages, "name=cont").exit_code == 0
    lam = {r["step"]: r["lam"] for r in rd.RunDir(in_tmp / "runs/cont").read_metrics()}
    assert lam[0] == pytest.approx(5.0, rel=1e-6)  # 100 x 0.05
    assert lam[99] == pytest.approx(0.05, rel=1e-6)  # the stage's last step: the target
    assert lam[50] == pytest.approx(5.0 * (0.01 ** (50 / 99)), rel=1e-4)  # geometric
    assert lam[120] == pytest.approx(0.05, rel=1e-6)


def test_bad_convergence_settings_are_one_line_errors(in_tmp):
    for bad in ("train.until=forever", "convergence.grad_tol=0", "convergence.window=0",
                "optim.stages=[{steps:10,lam_start_scale:0},{}]"):
        result = invoke("train", *LINEAR, "steps=20", bad)
        assert result.exit_code == EXIT_BAD_INPUT, bad
        assert len(result.output.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()


class StopAt:
    """A progress hook that sends SIGINT once training passes ``step``."""

    def __init__(self, step: int):
        self.step, self.sent = step, False

    def start_batch(self, *args):
        pass

    def update(self, step, statuses, records=None):
        if step >= self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)

    def end_batch(self, statuses):
        pass


def test_resumed_run_reaches_its_verdict_at_the_same_step(in_tmp):
    from bottleneck_cli.runs import prepare
    from bottleneck_cli.train import Interrupted, train_members

    args = [*LINEAR, "lr=0.1", "steps=3000", "train.until=converged", "checkpoint.every=300"]
    assert invoke("train", *args, "name=whole").exit_code == 0
    whole = summary(in_tmp / "runs/whole")
    assert 600 < whole["steps_done"] < 3000
    overrides = [*args, "name=cut"]
    cfg = load(overrides)
    with pytest.raises(Interrupted):
        train_members([prepare(in_tmp / "runs/cut", cfg, overrides)], StopAt(600))
    run = rd.RunDir(in_tmp / "runs/cut")
    assert run.status()["status"] == "interrupted"
    assert int(rd.read_npz(run.file(rd.CHECKPOINT))["step"]) <= whole["steps_done"]
    assert invoke("train", *overrides).exit_code == 0
    assert summary(run.path)["convergence"] == whole["convergence"]
    assert summary(run.path)["steps_done"] == whole["steps_done"]


def test_depth_fit_leaves_out_unconverged_runs_unless_asked(in_tmp):
    import pandas as pd
    from report_fixtures import depth_sweep

    paths = depth_sweep(in_tmp / "sw", depths=(4, 8, 16, 32), seeds=(0,))
    for i, p in enumerate(paths):  # the deepest run has not converged
        run = rd.RunDir(p)
        summary_ = rd.read_json(run.file(rd.SUMMARY))
        summary_["final"]["converged"] = 0.0 if i == len(paths) - 1 else 1.0
        rd.write_json(run.file(rd.SUMMARY), summary_)
    assert invoke("report", str(in_tmp / "sw"), "--out", "a").exit_code == 0
    assert invoke("report", str(in_tmp / "sw"), "--out", "b",
                  "--include-unconverged").exit_code == 0
    fit_a = pd.read_csv(in_tmp / "a" / "depth_fit.csv").iloc[0]
    fit_b = pd.read_csv(in_tmp / "b" / "depth_fit.csv").iloc[0]
    assert (fit_a["n_runs"], fit_a["unconverged_left_out"]) == (3, 1)
    assert (fit_b["n_runs"], fit_b["unconverged_left_out"]) == (4, 0)
    table = pd.read_csv(in_tmp / "a" / "summary.csv")
    assert sorted(table["converged"].tolist()) == [0.0, 1.0, 1.0, 1.0]
