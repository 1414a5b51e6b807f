"""TensorBoard event files: live (`metrics.tensorboard=true`) and after the fact
(`bncli export tensorboard`), read back with TensorBoard's own event reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from filelock import FileLock
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli import runfiles
from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.config import load
from bottleneck_cli.runs import prepare

EventAccumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator").EventAccumulator

TINY = ["model=mlp", "task=compositional", "optim=gd", "lr=0.05", "lam=1e-3", "depth=3",
        "width=4", "task.n_train=8", "task.n_test=8", "steps=12", "metrics.every=2",
        "checkpoint.every=1000", "metrics.ntk=false", "metrics.jacobian_samples=0"]
LIVE = [*TINY, "metrics.tensorboard=true", "name=r"]
# The scalars the issue asks for: objective, fit, test fit, ||theta||^2, ranks, grad norm.
SCALARS = ["loss/train", "loss/fit", "loss/test", "norm/total", "bottleneck/rank_c",
           "rank/W02", "rank_c/Z01", "grad/norm"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def ok(*args: str):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result, needle: str) -> None:
    assert result.exit_code == EXIT_BAD_INPUT, (result.exit_code, result.output)
    err = result.stderr
    assert err.startswith("bncli: error: ") and len(err.strip().splitlines()) == 1, err
    assert needle in err, err


def events(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator) -> dict:
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def recorded_steps(run: Path) -> list[int]:
    return [r["step"] for r in rd.read_metrics(run / rd.METRICS)]


def test_live_events_hold_every_record_and_spectrum(in_tmp):
    ok("train", *LIVE)
    run = in_tmp / "runs" / "r"
    files = list((run / rd.TB).iterdir())
    assert len(files) == 1 and files[0].name.endswith(".bncli")
    acc = events(run / rd.TB)
    steps = recorded_steps(run)
    assert steps[0] == 0 and steps[-1] == 12 and len(steps) >= 7
    tags = acc.Tags()
    assert set(SCALARS) <= set(tags["scalars"])
    for tag in SCALARS:
        assert [e.step for e in acc.Scalars(tag)] == steps, tag
    last = rd.read_metrics(run / rd.METRICS)[-1]
    assert acc.Scalars("loss/train")[-1].value == pytest.approx(last["loss/train"], rel=1e-6)
    assert {"spectra/W01", "spectra/W03", "spectra/Zc02"} <= set(tags["histograms"])
    assert [e.step for e in acc.Histograms("spectra/W02")] == steps
    assert runfiles.foreign_entries(run) == []  # tb/ is the run's own: --force may clear it
    ok("train", *LIVE, "--force")
    assert len(list((run / rd.TB).iterdir())) == 1


def test_a_resumed_run_repeats_no_step(in_tmp):
    """A run killed after its last checkpoint (step 6) had recorded and written events up to
    step 12; the resumed run cuts metrics.jsonl back to 6 and its event file to the same."""
    import jax

    from bottleneck_cli.train import Batch

    ok("train", *LIVE)
    run = in_tmp / "runs" / "r"
    ov = [*TINY, "metrics.tensorboard=true", "name=twin"]
    member = prepare(in_tmp / "runs" / "twin", load(ov), ov)
    batch = Batch([member])
    batch.run_to(6)
    rd.write_npz(run / rd.CHECKPOINT, batch.member_arrays(jax.device_get(batch.state), 0))
    rd.RunDir(run).set_status("interrupted", step=6, steps=12)
    before = scalars(events(run / rd.TB))

    assert "resuming at step 6" in ok("train", *LIVE).stdout
    acc = events(run / rd.TB)
    steps = recorded_steps(run)
    for tag in SCALARS:
        assert [e.step for e in acc.Scalars(tag)] == steps, tag  # each step once
    assert [e.step for e in acc.Histograms("spectra/W01")] == steps
    after = scalars(acc)
    kept = [(s, v) for s, v in before["loss/train"] if s <= 6]
    assert after["loss/train"][:len(kept)] == kept  # the replayed records are the same
    assert len(list((run / rd.TB).iterdir())) == 1  # the older file was replaced


def test_export_writes_the_live_events_and_is_idempotent(in_tmp):
    ok("train", *LIVE)
    run = in_tmp / "runs" / "r"
    live = scalars(events(run / rd.TB))
    out = ok("export", "tensorboard", "runs", "--out", "tb-out").stdout
    assert "1 of 1 runs" in out and "tensorboard --logdir tb-out" in out
    exported = scalars(events(in_tmp / "tb-out" / "r"))
    assert exported == live
    for _ in range(2):  # into the run's own tb/: the live file is replaced, once
        ok("export", "tensorboard", "runs")
        assert len(list((run / rd.TB).iterdir())) == 1
        assert scalars(events(run / rd.TB)) == live
    assert sorted(p.name for p in run.iterdir()) == sorted(
        [rd.LOCK, rd.CONFIG, rd.CONFIG_JSON, rd.OVERRIDES, rd.METRICS, rd.SPECTRA, rd.TB,
         rd.PARAMS, rd.SUMMARY, rd.STATUS])


def test_export_without_live_events_and_what_it_skips(in_tmp):
    ok("train", *TINY, "name=plain")
    plain = in_tmp / "runs" / "plain"
    assert not (plain / rd.TB).exists()  # off by default
    empty = in_tmp / "runs" / "empty"
    prepare(empty, load([*TINY, "name=empty"]), [])  # config written, nothing recorded
    (in_tmp / "runs" / "plain" / rd.TB).mkdir()
    (plain / rd.TB / "notes.txt").write_text("mine")
    busy = FileLock(str(plain / rd.LOCK))
    busy.acquire()
    try:
        out = ok("export", "tensorboard", "runs").stdout
        assert "plain: skipped (a process is training it)" in out
        assert not list((plain / rd.TB).glob("events*"))
    finally:
        busy.release()
    out = ok("export", "tensorboard", "runs").stdout
    assert "empty: skipped (no metrics recorded)" in out and "1 of 2 runs" in out
    acc = events(plain / rd.TB)
    assert [e.step for e in acc.Scalars("loss/test")] == recorded_steps(plain)
    assert (plain / rd.TB / "notes.txt").read_text() == "mine"  # never touched
    assert not (empty / rd.TB).exists()


def test_export_and_config_bad_input(in_tmp):
    one_line_error(invoke("export", "csv", str(in_tmp)), "unknown export format 'csv'")
    one_line_error(invoke("export", "tensorboard", "missing"), "does not exist")
    (in_tmp / "file").write_text("x")
    ok("train", *TINY, "name=plain")
    one_line_error(invoke("export", "tensorboard", "runs", "--out", "file"),
                   "is not a folder")
    one_line_error(invoke("train", *TINY, "metrics.tensorboard=maybe", "name=bad"),
                   "metrics.tensorboard")
    assert not (in_tmp / "runs" / "bad").exists()
