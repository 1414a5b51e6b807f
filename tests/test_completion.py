"""Matrix completion (task=completion): the masked fit, SGD over observed entries, the
end-to-end rank metrics, the trajectory summary and the bad configs.

With every entry observed and identity inputs, completion is the denoising problem of
SCIENCE.md section 4 with the fit averaged over the N = d_in * d_out entries:
(1/N) ||P - Y||_F^2 + lam ||theta||^2, i.e. the summed problem with lam_eff = lam * N, whose
minimizer keeps Y's singular vectors and maps each singular value y to
``denoise_shrink(y, lam_eff, L)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.config import load
from bottleneck_cli.metrics import denoise_shrink
from bottleneck_cli.trajectory import plateaus, rank_jumps, rise_steps, run_summary
from bottleneck_cli.objective import fit_term, objective
from bottleneck_cli.optim import lr_factor
from bottleneck_cli.runs import prepare
from bottleneck_cli.steps import entry_batch
from bottleneck_cli.tasks import completion_target, make_dataset
from bottleneck_cli.train import train_members

D = 5
SVALS = (3.0, 1.5, 0.5)
LAM = 0.008  # lam_eff = LAM * D * D = 0.2
QUIET = ["metrics.ntk=false", "metrics.jacobian_samples=0"]


def base(*extra: str) -> list[str]:
    return ["model=linear", "task=completion", f"task.d_in={D}", f"task.d_out={D}",
            f"width={D}", *QUIET, *extra]


def full_overrides(depth: int) -> list[str]:
    return base("task.observed=1", f"task.rank={len(SVALS)}",
                "task.singular_values=[" + ",".join(map(str, SVALS)) + "]",
                f"depth={depth}", f"lam={LAM}", "lr=1.25", "steps=3000", "optim=gd",
                "dtype=float64", "model.init_scale=0.5", "metrics.num_log=0",
                "metrics.every=500")


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("completion")
    out = {}
    for depth in (1, 2, 3):
        ov = full_overrides(depth)
        cfg = load(ov)
        member = prepare(root / f"L{depth}", cfg, ov)
        assert train_members([member]) == ["finished"]
        params = rd.read_npz(member.run.file(rd.PARAMS))
        out[depth] = (cfg, params, member.run, make_dataset(cfg.task, cfg.seed, np.float64))
    return out


def product(params) -> np.ndarray:
    P = params["W01"]
    for k in sorted(params)[1:]:
        P = P @ params[k]
    return P


@pytest.mark.parametrize("depth", (1, 2, 3))
def test_fully_observed_completion_is_denoising(full_runs, depth):
    cfg, params, run, data = full_runs[depth]
    assert data.mask.min() == 1 and data.mask.shape == (D, D)
    np.testing.assert_allclose(data.y_train, completion_target(cfg.task, cfg.seed).T)
    y = np.linalg.svd(data.y_train, compute_uv=False)
    np.testing.assert_allclose(y[:3], SVALS, rtol=1e-12)
    P = product(params)
    lam_eff = LAM * D * D
    np.testing.assert_allclose(np.linalg.svd(P, compute_uv=False),
                               denoise_shrink(y, lam_eff, depth), rtol=1e-3, atol=1e-4)
    U, yf, Vt = np.linalg.svd(data.y_train)
    np.testing.assert_allclose(P, (U * denoise_shrink(yf, lam_eff, depth)) @ Vt, atol=1e-3)
    # the recorded end-to-end singular values and rank are those of P
    final = run.read_metrics()[-1]
    s = np.linalg.svd(P, compute_uv=False)
    for k in range(1, 4):
        assert final[f"sval/A/{k}"] == pytest.approx(s[k - 1], rel=1e-6, abs=1e-9)
    assert final["rank/A"] == np.sum(s > max(0.1, 0.1 * s[0]))
    assert final["rank/A_s1_5"] == np.sum(s > s[0] / 5)
    summary = rd.read_json(run.file(rd.SUMMARY))
    assert summary["trajectory"]["final_rank"] == final["rank/A"]
    assert summary["final"]["traj/final_rank"] == final["rank/A"]


def test_fit_ignores_unobserved_entries():
    cfg = load(base("task.observed=0.5", "task.rank=2", "dtype=float64", "depth=2"))
    data = make_dataset(cfg.task, cfg.seed, np.float64)
    assert 0 < data.mask.sum() < D * D and np.all(data.mask + data.mask_test == 1)
    from bottleneck_cli.models import build

    model = build(cfg, (D,), D)
    params = {k: jnp.asarray(v) for k, v in model.init(1, np.float64).items()}
    other = data.y_train + 7.0 * (1 - data.mask)  # change only unobserved entries
    mask, x = jnp.asarray(data.mask), jnp.asarray(data.x_train)

    def value_and_grad(y, entries=None):
        f = lambda p: objective(model, p, x, jnp.asarray(y), 0.01, "mse", False,  # noqa: E731
                                None if entries is not None else mask, entries)[0]
        return jax.value_and_grad(f)(params)

    for entries in (None, jnp.asarray(data.observed_entries()[:4])):
        (v1, g1), (v2, g2) = value_and_grad(data.y_train, entries), value_and_grad(other, entries)
        assert float(v1) == float(v2)
        for k in g1:
            np.testing.assert_array_equal(np.asarray(g1[k]), np.asarray(g2[k]))
    # the masked fit is the mean over observed entries; the test error sees the change
    pred = np.asarray(model.apply(params, x)[0])
    obs = data.mask > 0
    assert float(fit_term(pred, data.y_train, "mse", mask)) == pytest.approx(
        np.mean((pred - data.y_train)[obs] ** 2), rel=1e-12)
    mt = jnp.asarray(data.mask_test)
    assert float(fit_term(pred, other, "mse", mt)) != float(fit_term(pred, data.y_train, "mse", mt))


@pytest.mark.parametrize("n_obs,batch", [(50, 10), (53, 10)])
def test_entry_batches_cover_observed_entries_evenly(n_obs, batch):
    key = jnp.asarray([0, 3], jnp.uint32)
    per_epoch = n_obs // batch
    for epoch in range(3):
        idx = np.concatenate([np.asarray(entry_batch(key, epoch * per_epoch + j, n_obs, batch,
                                                     False)) for j in range(per_epoch)])
        assert len(set(idx.tolist())) == per_epoch * batch  # no entry twice in an epoch
        assert idx.min() >= 0 and idx.max() < n_obs
    counts = np.bincount(np.concatenate([np.asarray(entry_batch(key, s, n_obs, batch, False))
                                         for s in range(per_epoch * 40)]), minlength=n_obs)
    assert counts.max() <= 40 and (counts.min() == 40 if n_obs % batch == 0
                                   else counts.min() >= 40 * 0.6)
    wr = np.asarray(entry_batch(key, 5, n_obs, batch, True))
    assert wr.shape == (batch,) and wr.min() >= 0 and wr.max() < n_obs


def test_minibatches_hold_only_observed_entries():
    cfg = load(base("task.observed=0.3", "task.rank=2"))
    data = make_dataset(cfg.task, cfg.seed)
    obs = data.observed_entries()
    assert len(obs) == int(data.mask.sum()) == round(0.3 * D * D)
    assert np.all(data.mask[obs[:, 0], obs[:, 1]] == 1)
    idx = np.asarray(entry_batch(jnp.asarray([0, 0], jnp.uint32), 0, len(obs), 4, False))
    picked = obs[idx]
    assert np.all(data.mask[picked[:, 0], picked[:, 1]] == 1)


def test_sgd_over_entries_trains(tmp_path):
    ov = base("task.observed=0.6", "task.rank=1", "depth=2", "optim=sgd",
              "optim.batch_size=5", "lr=0.2", "lam=1e-4", "steps=300", "metrics.num_log=4")
    cfg = load(ov)
    member = prepare(tmp_path / "sgd", cfg, ov)
    assert train_members([member]) == ["finished"]
    recs = member.run.read_metrics()
    assert recs[-1]["loss/fit"] < recs[0]["loss/fit"]
    assert {"loss/test", "loss/rel_err", "rank/A", "balance/max", "init/dist"} <= set(recs[-1])


def test_cyclic_lr_and_init_gamma():
    cfg = load(base("optim.schedule=cyclic", "optim.cycle_steps=100", "optim.cycle_amp=0.5"))
    assert float(lr_factor(cfg.optim, 1000, 0)) == pytest.approx(1.5)
    assert float(lr_factor(cfg.optim, 1000, 50)) == pytest.approx(0.5)
    assert float(lr_factor(cfg.optim, 1000, 125)) == pytest.approx(1.0, abs=1e-6)
    from bottleneck_cli.models import build

    cfg = load(["model=linear", "width=400", "depth=3", "model.init_gamma=1.5", *QUIET])
    W = build(cfg, (20,), 20).init(0)["W02"]
    assert np.std(W) == pytest.approx(400 ** -0.75, rel=0.02)


@pytest.mark.parametrize("extra,words", [
    (["task.observed=0"], "task.observed"),
    (["task.observed=1.5"], "task.observed"),
    (["task.rank=6"], "task.rank=6 must be <="),
    (["task.observed=0.04", "task.sampling=uniform"], "entirely unobserved"),
    (["task.observed=0.1", "task.sampling=cover"], "fewer than"),
])
def test_bad_completion_configs(tmp_path, extra, words):
    result = CliRunner().invoke(app, ["train", f"out={tmp_path}/runs", *base(*extra)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert words in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


# ---- trajectory summaries on hand-made sequences ---------------------------------------
def test_rank_jumps_down_up_and_flicker():
    steps = list(range(0, 200, 10))
    down = [5] * 6 + [3] * 14
    assert rank_jumps(steps, down) == [(60, 5, 3)]
    up = [2] * 10 + [4] * 10
    assert rank_jumps(steps, up) == [(100, 2, 4)]
    flicker = [3] * 5 + [4, 4] + [3] * 5 + [2] + [3] * 7
    assert rank_jumps(steps, flicker, persistence=3) == []
    assert rank_jumps(steps, flicker, persistence=2) == [(50, 3, 4), (70, 4, 3)]
    both = [6] * 5 + [4] * 5 + [5] * 5 + [2] * 5
    assert [(a, b) for _, a, b in rank_jumps(steps, both)] == [(6, 4), (4, 5), (5, 2)]


def test_plateaus_of_a_staircase():
    t = np.arange(0, 3000, 10)
    # three drops at 500, 1500, 2500: plateaus in between
    loss = 1.0 + sum(4.0 ** -k * 3 / (1 + np.exp((t - c) / 20.0)) for k, c in
                     enumerate((500, 1500, 2500)))
    found = plateaus(t, loss, tol=0.05)
    assert len(found) == 4
    for (a, b), (lo, hi) in zip(found, [(0, 500), (500, 1500), (1500, 2500), (2500, 2990)]):
        assert lo <= a < lo + 200 and hi - 200 < b <= hi
    assert plateaus(t, np.exp(-t / 500.0)) == []  # a steady decay has none


def test_rise_steps_and_run_summary():
    t = np.arange(0, 1000, 10)
    S = np.stack([3 / (1 + np.exp(-(t - c) / 10.0)) for c in (100, 400, 700)], axis=1)
    rises = rise_steps(t, S)
    assert [abs(r - c) <= 10 for r, c in zip(rises, (100, 400, 700))] == [True] * 3
    records = [{"step": int(s), "loss/train": 1.0 + float(np.sum(3 - row)),
                "rank/A": float(np.sum(row > 0.3)),
                **{f"sval/A/{k + 1}": float(v) for k, v in enumerate(row)},
                "sval/A/4": 1e-3 * (1 + s % 3)}  # never learned: no rise step
               for s, row in zip(t, S)]
    summary = run_summary(records)
    assert summary["jumps_up"] == 3 and summary["jumps_down"] == 0
    assert summary["final_rank"] == 3 and [c[2] for c in summary["changes"]] == [1, 2, 3]
    assert summary["rise_steps"] == {"1": rises[0], "2": rises[1], "3": rises[2]}
    assert summary["plateau_lengths"] == [b - a for a, b in summary["plateaus"]]
    assert len(summary["plateaus"]) >= 3 and min(summary["plateau_lengths"]) > 0
    assert run_summary([{"step": 0, "loss/train": 1.0}]) == {}


# ---- resume mid-run with entry SGD -----------------------------------------------------
# 15 observed entries in batches of 4 (3 per epoch, 3 left out): the stop at step 25 falls
# mid-epoch, between the checkpoints at 20 and 30; the cyclic lr makes the step count matter.
ENTRY_SGD = {
    "epochs": ["optim.schedule=cyclic", "optim.cycle_steps=16", "optim.cycle_amp=0.5"],
    "replacement": ["optim.replacement=true"],
}


@pytest.mark.parametrize("kind", list(ENTRY_SGD))
def test_entry_sgd_resume_equals_uninterrupted(tmp_path, kind):
    from test_train import STOP_AT, Recorder, assert_same_run, interrupt

    ov = base("task.observed=0.6", "task.rank=2", "depth=3", "optim=sgd", "optim.batch_size=4",
              "lr=0.1", "lam=1e-3", "steps=40", "checkpoint.every=10", "metrics.every=5",
              "metrics.num_log=8", *ENTRY_SGD[kind])
    cfg = load(ov)
    ref = prepare(tmp_path / "ref", cfg, ov)
    assert train_members([ref]) == ["finished"]
    run = interrupt(tmp_path / "run", ov).run
    assert run.status()["status"] == "interrupted" and run.status()["step"] == STOP_AT
    again = prepare(run.path, load(ov), ov)  # re-running the same command
    rec = Recorder()
    assert train_members([again], rec) == ["finished"]
    assert rec.starts == [STOP_AT]  # from the checkpoint, not from scratch
    assert_same_run(ref.run.path, run.path)
    summary = lambda r: rd.read_json(r.file(rd.SUMMARY))["trajectory"]  # noqa: E731
    assert summary(run) == summary(ref.run) and summary(run)["final_rank"] >= 1


# ---- the report overlays GD and SGD -----------------------------------------------------
def test_report_overlays_gd_and_sgd_rank_over_time(in_tmp, monkeypatch):
    """A jumps2023_small-like sweep (GD and SGD, 2 seeds, 200 steps) through ``bncli
    report``: the planned ``rank_over_time`` figure holds every run's rank/A series, each
    coloured by its optimizer, both optimizers in one figure."""
    from bottleneck_cli.report import build

    planned = []

    def recording_plan(ctx):
        figs, skipped = plan(ctx)
        planned.extend(figs)
        return figs, skipped

    plan = build.plan
    monkeypatch.setattr(build, "plan", recording_plan)
    runner = CliRunner()
    result = runner.invoke(app, ["sweep", "+experiment=jumps2023_small", "steps=200",
                                 "metrics.every=20", "checkpoint.every=100", "--name", "j"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["report", "runs/j"])
    assert result.exit_code == 0, result.output
    fig = next(f for f in planned if f.stem == "rank_over_time")
    which, df, opt, unconverged = fig.args
    assert set(unconverged) <= set(opt)  # the runs drawn dashed are among those drawn
    assert which == "rank_over_time"
    assert sorted(opt.values()) == ["optim.name=gd"] * 2 + ["optim.name=sgd"] * 2
    assert set(df["run"]) == set(opt)  # all four runs in the one figure
    for run in opt:
        ranks = df[(df["run"] == run) & (df["metric"] == "rank/A")]
        assert len(ranks) == 200 // 20 + 1 and ranks["value"].min() >= 1
    assert {"sval/A/1", "sval/A/2"} <= set(df["metric"])
    assert (in_tmp / "runs/j/report/figures/rank_over_time.png").exists()
    assert "Rank of A over training" in (in_tmp / "runs/j/report/report.html").read_text()
