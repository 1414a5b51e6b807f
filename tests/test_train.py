"""Tests for the training engine (bottleneck_cli.train): one exact step, resume after
interrupt, divergence, skip/force, metric steps, and the run-folder write order.

All runs use the same tiny shape (depth 3, width 4, compositional task with 8 training
points) so that the compiled programs are shared through the persistent JAX cache.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import EXIT_DIVERGED, app
from bottleneck_cli.config import ConfigError, load
from bottleneck_cli.models import build
from bottleneck_cli.runs import prepare
from bottleneck_cli.tasks import make_dataset
from bottleneck_cli.train import (Interrupted, StopFlag, cpu_lanes, metric_steps, train_batch,
                                  train_members)

QUIET = ["metrics.ntk=false", "metrics.jacobian_samples=0"]
# Everything the tests rely on is pinned, so a change of defaults does not change them.
TINY = ["model=mlp", "task=compositional", "optim=gd", "lr=0.05", "lam=1e-3", "depth=3",
        "width=4", "task.n_train=8", "task.n_test=8", "checkpoint.every=1000"] + QUIET


def make(path: Path, ov: list[str]):
    cfg = load(ov)
    member = prepare(path, cfg, ov)
    assert member is not None
    return member


def without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time"} for r in records]


def same_arrays(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


class Recorder:
    """A progress object that records calls and can send SIGINT once at a given step."""

    def __init__(self, interrupt_at: int | None = None, on_update=None):
        self.interrupt_at = interrupt_at
        self.on_update = on_update
        self.starts: list[int] = []
        self.updates: list[int] = []
        self.sent = False

    def start_batch(self, names, start, steps):
        self.starts.append(start)

    def update(self, step, statuses, records=None):
        self.updates.append(step)
        if self.on_update is not None:
            self.on_update(step, statuses)
        if step == self.interrupt_at and not self.sent:
            # Only with the trainer's handler installed: never interrupt pytest itself.
            handler = signal.getsignal(signal.SIGINT)
            assert isinstance(getattr(handler, "__self__", None), StopFlag), handler
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)

    def end_batch(self, statuses):
        pass


# =========================================================================================
# (a) one gradient-descent step against an independent jax.grad of the objective
# =========================================================================================

GOLDEN = ["model=mlp", "model.activation=relu", "model.bias=true", "model.init=he",
          "model.init_scale=1.0", "model.ridge_on_bias=false",
          "task=compositional", "task.d_in=20", "task.d_out=20", "task.d_latent=8",
          "task.rank=2", "task.hidden=64", "task.inner=smooth", "task.noise=0",
          "optim=gd", "optim.momentum=0", "optim.schedule=constant", "optim.warmup_steps=0",
          "optim.lam_schedule=constant", "depth=3", "width=4", "task.n_train=8",
          "task.n_test=8", "dtype=float64", "lr=0.125", "lam=0.01", "steps=1", "seed=3",
          "metrics.num_log=0"] + QUIET
# Pinned values of loss/train at step 0 and at step 1 of the GOLDEN run (float64).
# Update them ONLY when the initialisation, the data generation (tasks.py) or the
# objective intentionally change, and say so in the commit message; any other change to
# them means training changed behaviour.
GOLDEN_LOSS0 = 76.70358167419158
GOLDEN_LOSS1 = 24.22435176994039


def reference_objective(params, x, y, lam, depth):
    """fit = mean_i ||f(x_i) - y_i||^2, f a relu MLP with biases; + lam sum_l ||W_l||_F^2."""
    import jax.numpy as jnp

    a = x
    for l in range(1, depth + 1):
        z = a @ params[f"W{l:02d}"] + params[f"b{l:02d}"][None, :]
        a = jnp.maximum(z, 0.0) if l < depth else z
    fit = jnp.mean(jnp.sum((a - y) ** 2, axis=1))
    ridge = lam * sum(jnp.sum(params[f"W{l:02d}"] ** 2) for l in range(1, depth + 1))
    return fit + ridge, (fit, ridge)


def test_one_gd_step_matches_independent_gradient(tmp_path):
    import jax

    member = make(tmp_path / "golden", GOLDEN)
    cfg = member.cfg
    assert train_members([member]) == ["finished"]
    assert jax.config.jax_enable_x64  # dtype=float64 switched JAX to 64 bits

    data = make_dataset(cfg.task, cfg.seed, np.float64)
    p0 = build(cfg, data.d_in, data.d_out).init(cfg.seed, np.float64)
    assert set(p0) == {"W01", "W02", "W03", "b01", "b02", "b03"}
    x, y = jax.numpy.asarray(data.x_train), jax.numpy.asarray(data.y_train)
    obj = lambda p: reference_objective(p, x, y, cfg.lam, cfg.depth)  # noqa: E731
    grads = jax.grad(lambda p: obj(p)[0])(p0)
    p1 = {k: p0[k] - cfg.lr * np.asarray(grads[k]) for k in p0}

    trained = rd.read_npz(member.run.file(rd.PARAMS))
    assert set(trained) == set(p1)
    for k in p1:
        assert trained[k].dtype == np.float64
        np.testing.assert_allclose(trained[k], p1[k], rtol=1e-12, atol=1e-14, err_msg=k)
    assert any(not np.allclose(trained[k], p0[k]) for k in p0)  # the step moved something

    records = member.run.read_metrics()
    assert [r["step"] for r in records] == [0, 1]
    for r, p in zip(records, (p0, p1)):
        total, (fit, ridge) = obj(p)
        assert r["loss/train"] == pytest.approx(float(total), rel=1e-12)
        assert r["loss/fit"] == pytest.approx(float(fit), rel=1e-12)
        assert r["loss/ridge"] == pytest.approx(float(ridge), rel=1e-12)
    assert records[1]["loss/train"] < records[0]["loss/train"]

    msg = ("golden loss changed: update GOLDEN_LOSS0/1 only if init, data generation or the "
           "objective changed on purpose")
    assert records[0]["loss/train"] == pytest.approx(GOLDEN_LOSS0, rel=1e-9), msg
    assert records[1]["loss/train"] == pytest.approx(GOLDEN_LOSS1, rel=1e-9), msg


def test_float64_run_uses_the_exact_learning_rate(tmp_path):
    import jax

    ov = [o for o in GOLDEN if not o.startswith("lr=")] + ["lr=0.1"]
    member = make(tmp_path / "lr", ov)
    cfg = member.cfg
    assert train_members([member]) == ["finished"]
    assert member.run.read_metrics()[0]["lr"] == pytest.approx(0.1, rel=1e-12)  # device-side product
    data = make_dataset(cfg.task, cfg.seed, np.float64)
    p0 = build(cfg, data.d_in, data.d_out).init(cfg.seed, np.float64)
    x, y = jax.numpy.asarray(data.x_train), jax.numpy.asarray(data.y_train)
    grads = jax.grad(lambda p: reference_objective(p, x, y, cfg.lam, cfg.depth)[0])(p0)
    trained = rd.read_npz(member.run.file(rd.PARAMS))
    for k in p0:
        np.testing.assert_allclose(trained[k], p0[k] - 0.1 * np.asarray(grads[k]),
                                   rtol=1e-12, atol=1e-14, err_msg=k)


# =========================================================================================
# (b) resume after an interrupt equals an uninterrupted run; (g) torn metrics line
# =========================================================================================

# Metric steps 0,1,2,3,5,8,14,24,40 and every 5: the checkpoint at 20 is also a metric step
# (its record must not be duplicated) and the records at 24 and 25 must be trimmed.
RESUME = TINY + ["steps=40", "checkpoint.every=10", "metrics.num_log=8", "metrics.every=5"]
OPTIMS = {
    "gd": [],
    "sgd": ["optim=sgd", "optim.batch_size=4"],  # minibatches of 4 out of 8
    "adam": ["optim=adam", "lr=0.01"],
    # two stages, Adam then plain gradient descent: the stop falls after the boundary
    # (22) or before it (33), so the resumed run restarts in, or crosses into, stage two
    "adam_gd_22": ["optim=adam", "lr=0.01", "optim.stages=[{steps:22},{name:gd,lr_scale:2}]"],
    "adam_gd_33": ["optim=adam", "lr=0.01", "optim.stages=[{steps:33},{name:gd,lr_scale:2}]"],
}
STOP_AT = 25  # between the checkpoints at 20 and 30


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """optimizer -> folder of the uninterrupted run (trained on first use)."""
    root = tmp_path_factory.mktemp("reference")
    done: dict[str, Path] = {}

    def get(opt: str) -> Path:
        if opt not in done:
            member = make(root / opt, RESUME + OPTIMS[opt])
            assert train_members([member]) == ["finished"]
            done[opt] = member.run.path
        return done[opt]

    return get


def interrupt(path: Path, ov: list[str], at: int = STOP_AT):
    """Train until SIGINT arrives (sent from the progress callback at step ``at``)."""
    from bottleneck_cli.train import configure_jax

    configure_jax(False)
    member = make(path, ov)
    rec = Recorder(interrupt_at=at)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match=f"at step {at}"):
        train_batch([member], rec)
    assert rec.sent
    assert signal.getsignal(signal.SIGINT) is handler  # restored on the way out
    return member


def assert_same_run(ref: Path, run: Path) -> None:
    a, b = rd.RunDir(ref), rd.RunDir(run)
    assert b.status()["status"] == "finished"
    assert same_arrays(rd.read_npz(a.file(rd.PARAMS)), rd.read_npz(b.file(rd.PARAMS)))
    ra, rb = a.read_metrics(), b.read_metrics()
    assert [r["step"] for r in rb] == [r["step"] for r in ra]
    assert without_time(rb) == without_time(ra)
    assert b.spectra_steps() == a.spectra_steps()
    for step in a.spectra_steps():
        assert same_arrays(a.read_spectra(step), b.read_spectra(step)), step
    sa, sb = rd.read_json(a.file(rd.SUMMARY)), rd.read_json(b.file(rd.SUMMARY))
    assert without_time([sb["final"]]) == without_time([sa["final"]])
    assert (sb["status"], sb["steps_done"]) == (sa["status"], sa["steps_done"])
    assert not b.file(rd.CHECKPOINT).exists()


@pytest.mark.parametrize("opt", list(OPTIMS))
def test_resume_after_interrupt_equals_uninterrupted(tmp_path, reference, opt):
    ov = RESUME + OPTIMS[opt]
    member = interrupt(tmp_path / "run", ov)
    run = member.run
    status = run.status()
    assert status["status"] == "interrupted" and status["step"] == STOP_AT
    ckpt_step = int(rd.read_npz(run.file(rd.CHECKPOINT))["step"])
    assert ckpt_step == STOP_AT  # the signal checkpoints where it stops
    # A kill between a metrics write and the next checkpoint leaves records past the
    # checkpoint: resuming must drop them and recompute.
    run.append_metrics([{"step": STOP_AT + 1, "loss/train": 123.0}])
    assert not run.file(rd.PARAMS).exists()

    again = prepare(run.path, load(ov), ov)  # what re-running the same command does
    assert again is not None
    rec = Recorder()
    assert train_members([again], rec) == ["finished"]
    assert rec.starts == [ckpt_step]  # resumed from the checkpoint, not from scratch
    assert_same_run(reference(opt), run.path)


def test_torn_last_metrics_line_is_ignored_on_resume(tmp_path, reference):
    ov = RESUME
    member = interrupt(tmp_path / "run", ov)
    path = member.run.file(rd.METRICS)
    whole = member.run.read_metrics()
    with open(path, "a") as fh:
        fh.write('{"step": 26, "loss/train": 0.12')  # a write cut off by a kill
    assert member.run.read_metrics() == whole  # the reader skips the torn line
    again = prepare(member.run.path, load(ov), ov)
    assert train_members([again]) == ["finished"]
    lines = path.read_text().splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert_same_run(reference("gd"), member.run.path)


def test_interrupt_checkpoints_at_the_step_it_stops(tmp_path):
    member = interrupt(tmp_path / "run", RESUME)
    status = member.run.status()
    assert status["status"] == "interrupted"
    assert int(rd.read_npz(member.run.file(rd.CHECKPOINT))["step"]) == status["step"]


# =========================================================================================
# (c) divergence
# =========================================================================================

DIV = TINY + ["steps=30"]


def test_divergence_through_cli(in_tmp):
    result = CliRunner().invoke(app, ["train", *DIV, "lr=1e3", "name=div"])
    assert result.exit_code == EXIT_DIVERGED == 3, result.output
    assert "diverged" in result.stdout
    run = rd.RunDir(in_tmp / "runs" / "div")
    status = run.status()
    assert status["status"] == "diverged"
    d = status["diverged_step"]
    assert isinstance(d, int) and 0 < d < 30
    summary = rd.read_json(run.file(rd.SUMMARY))
    assert summary["status"] == "diverged" and summary["diverged_step"] == d
    records = run.read_metrics()
    steps = [r["step"] for r in records]
    assert steps[0] == 0 and all(s <= d for s in steps)
    before = [r for r in records if r["step"] < d]
    assert before and all(np.isfinite(r["loss/train"]) for r in before)
    assert not run.file(rd.PARAMS).exists()
    assert not run.file(rd.CHECKPOINT).exists()
    # A diverged run is done: running the command again does not retrain it.
    again = CliRunner().invoke(app, ["train", *DIV, "lr=1e3", "name=div"])
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    assert run.read_metrics() == records


@pytest.mark.parametrize("threads", [1, 2])
def test_diverged_member_does_not_disturb_its_batch_mate(tmp_path, threads):
    """threads=1: one vmapped batch of two; 2: two CPU lanes side by side."""
    lanes = [f"sweep.cpu_threads={threads}"]
    ok = make(tmp_path / "ok", DIV + ["lr=0.05"] + lanes)
    bad = make(tmp_path / "bad", DIV + ["lr=1e3"] + lanes)
    rec = Recorder()
    assert train_members([ok, bad], rec) == ["finished", "diverged"]
    lanes = cpu_lanes(ok.cfg, 2)  # 1 on a GPU or with threads=1
    assert rec.starts == [0] * lanes  # one batch of two, or one batch per lane
    alone = make(tmp_path / "alone", DIV + ["lr=0.05"])
    assert train_members([alone]) == ["finished"]

    p_batch = rd.read_npz(ok.run.file(rd.PARAMS))
    p_alone = rd.read_npz(alone.run.file(rd.PARAMS))
    assert p_batch.keys() == p_alone.keys()
    for k in p_alone:
        np.testing.assert_allclose(p_batch[k], p_alone[k], rtol=1e-5, atol=1e-7, err_msg=k)
    m_batch, m_alone = ok.run.read_metrics(), alone.run.read_metrics()
    assert [r["step"] for r in m_batch] == [r["step"] for r in m_alone]
    assert m_batch[-1]["step"] == 30
    np.testing.assert_allclose([r["loss/train"] for r in m_batch],
                               [r["loss/train"] for r in m_alone], rtol=1e-5)
    assert ok.run.status()["status"] == "finished"
    st = bad.run.status()
    assert st["status"] == "diverged" and st["diverged_step"] is not None
    assert not bad.run.file(rd.PARAMS).exists()


# =========================================================================================
# (d) finished runs are skipped, --force retrains, a different config is refused
# =========================================================================================


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_finished_run_is_not_retrained_and_force_retrains(in_tmp):
    runner = CliRunner()
    args = ["train", *TINY, "steps=5", "name=r"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    folder = in_tmp / "runs" / "r"
    before = mtimes(folder)
    records = rd.RunDir(folder).read_metrics()

    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "nothing to do" in second.stdout
    assert mtimes(folder) == before
    assert prepare(folder, load(args[1:]), args[1:]) is None  # the library agrees

    forced = runner.invoke(app, [*args, "--force"])
    assert forced.exit_code == 0, forced.output
    after = mtimes(folder)
    assert after["status.json"] > before["status.json"]
    assert after["params.npz"] > before["params.npz"]
    assert without_time(rd.RunDir(folder).read_metrics()) == without_time(records)  # not appended

    other = runner.invoke(app, ["train", *TINY, "steps=5", "lam=0.5", "name=r"])
    assert other.exit_code == 2
    assert other.stderr.startswith("bncli: error:")
    assert "different config" in other.stderr and "--force" in other.stderr
    assert mtimes(folder) == after  # untouched
    ov = [*TINY, "steps=5", "lam=0.5"]
    with pytest.raises(ConfigError, match="different config"):
        prepare(folder, load(ov), ov)


# =========================================================================================
# (e) metric steps
# =========================================================================================


def test_metric_steps_log_spaced_with_ends():
    steps, num_log = 10000, 9
    marks = metric_steps(load([f"steps={steps}", f"metrics.num_log={num_log}"]))
    assert marks[0] == 0 and marks[-1] == steps
    assert marks == sorted(set(marks))
    assert len(marks) == num_log + 1
    ratios = np.diff(np.log(marks[1:]))
    assert np.allclose(ratios, np.log(steps) / (num_log - 1), atol=0.15)

    assert metric_steps(load(["steps=7", "metrics.num_log=0"])) == [0, 7]
    assert metric_steps(load(["steps=1"])) == [0, 1]
    small = metric_steps(load(["steps=5", "metrics.num_log=25"]))
    assert small == [0, 1, 2, 3, 4, 5]  # rounding duplicates collapse
    every = metric_steps(load(["steps=1000", "metrics.num_log=4", "metrics.every=300"]))
    assert {0, 300, 600, 900, 1000} <= set(every)
    assert every == sorted(set(every)) and every[-1] == 1000


# =========================================================================================
# (f) checkpoints are removed when finished; status.json is written last
# =========================================================================================


def test_checkpoint_removed_and_status_written_last(tmp_path):
    member = make(tmp_path / "run", TINY + ["steps=20", "checkpoint.every=5"])
    ckpt = member.run.file(rd.CHECKPOINT)
    seen = {}
    rec = Recorder(on_update=lambda step, _: seen.__setitem__(step, ckpt.exists()))
    assert train_members([member], rec) == ["finished"]
    assert not seen[4] and seen[6] and seen[19]  # a checkpoint existed from step 5 on
    assert not ckpt.exists()
    folder = member.run.path
    names = {p.name for p in folder.iterdir()}
    assert names == {rd.CONFIG, rd.CONFIG_JSON, rd.OVERRIDES, rd.METRICS, rd.SPECTRA,
                     rd.PARAMS, rd.SUMMARY, rd.STATUS}
    assert not list(folder.rglob("*.tmp"))
    times = mtimes(folder)
    status_time = times.pop(rd.STATUS)
    assert all(status_time >= t for t in times.values()), times
    st = member.run.status()
    assert st["status"] == "finished" and st["step"] == st["steps"] == 20
