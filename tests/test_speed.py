"""Speed work that must not change results: a cohort of one (no vmap) trains like a
member of a larger cohort; the step-0 record comes after the first step but is the
initial parameters' record; the first step's time is written only when asked."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import app
from bottleneck_cli.config import load
from bottleneck_cli.train import Batch, Member

TINY = ["depth=3", "width=6", "task.n_train=32", "task.n_test=8", "optim=gd"]


def _params_after(members: int, steps: int) -> dict:
    cfg = load(TINY)
    batch = Batch([Member(run=rd.RunDir("unused"), cfg=cfg) for _ in range(members)])
    batch.run_to(steps)
    return {k: np.asarray(v) for k, v in batch.state["params"].items()}


def test_cohort_of_one_trains_like_a_member_of_two():
    one, two = _params_after(1, 6), _params_after(2, 6)
    assert set(one) == set(two)
    for k in one:
        assert one[k].shape[0] == 1 and two[k].shape[0] == 2
        np.testing.assert_allclose(one[k][0], two[k][0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(two[k][0], two[k][1], rtol=1e-6, atol=1e-7)


def test_train_records_step_zero_first_and_stamps_first_step(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    stamp = tmp_path / "first_step"
    monkeypatch.setenv("BNCLI_FIRST_STEP_FILE", str(stamp))
    res = CliRunner().invoke(app, ["train", *TINY, "steps=5", "name=r", "out=runs"])
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in (tmp_path / "runs/r/metrics.jsonl").open()]
    steps = [r["step"] for r in records]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == 5
    assert records[0]["time"] == 0.0 and records[0]["init/dist"] == 0.0
    assert records[1]["init/dist"] > 0.0  # step 1 evaluated the trained parameters
    assert float(stamp.read_text()) > 0


def test_no_first_step_file_unless_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BNCLI_FIRST_STEP_FILE", raising=False)
    res = CliRunner().invoke(app, ["train", *TINY, "steps=3", "name=r", "out=runs"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_records_finished_while_the_next_chunk_trains_equal_records_taken_at_once(
        tmp_path, monkeypatch):
    """With nothing depending on them, records are dispatched and finished (singular values,
    summaries, writing) after the next chunk started: same records as written at once."""
    from bottleneck_cli import records, train

    monkeypatch.chdir(tmp_path)
    args = ["train", *TINY, "steps=12", "metrics.num_log=6", "out=runs"]

    class AtOnce(records.Records):
        def __init__(self, batch, latest, defer):
            super().__init__(batch, latest, defer=False)

    with monkeypatch.context() as m:
        m.setattr(train, "Records", AtOnce)
        assert CliRunner().invoke(app, [*args, "name=at_once"]).exit_code == 0
    queued = []  # the record's program output, when it was dispatched earlier
    real = records.write_record
    monkeypatch.setattr(records, "write_record", lambda *a, packed=None, **k: queued.append(
        packed is not None) or real(*a, packed=packed, **k))
    assert CliRunner().invoke(app, [*args, "name=queued"]).exit_code == 0

    def lines(name):
        return [{k: v for k, v in json.loads(line).items() if k != "time"}
                for line in (tmp_path / "runs" / name / "metrics.jsonl").open()]

    assert queued[-3:] == [True] * 3  # once the metrics program is compiled, all queued
    assert lines("queued") == lines("at_once")
