"""A sweep of several shapes compiles the next shape's programs while one trains
(``compile_ahead``): the programs the next job uses are the ones compiled ahead, the
results are those of a sweep without it, and finished jobs are not compiled again."""

import json

import pytest

from bottleneck_cli import compile_ahead, programs
from bottleneck_cli import sweep as sw

SMALL = ["steps=30", "width=8", "task.n_train=32", "task.n_test=16", "metrics.num_log=3",
         "metrics.jacobian_samples=0", "optim=gd", "lr=0.01", "lam=1e-3", "depth=2,3",
         "seed=0,1"]


@pytest.fixture
def ahead_calls(monkeypatch):
    """Every ``Program.ahead`` made on the next shape's compile thread."""
    calls = []
    real = programs.Program.ahead

    def spy(self, *args, pool=None):
        if pool is not None:
            calls.append(self)
        return real(self, *args, pool=pool)

    monkeypatch.setattr(programs.Program, "ahead", spy)
    programs.forget_programs()
    yield calls
    programs.forget_programs()


def _finals(plan) -> dict:
    out = {}
    for m in plan.members:
        lines = (plan.root / m.name / "metrics.jsonl").read_text().splitlines()
        out[m.name] = json.loads(lines[-1])["loss/train"]
    return out


def _sweep(name: str, extra=()) -> sw.Plan:
    plan = sw.plan(SMALL + list(extra), name=name)
    sw.write_index(plan, ["test"])
    result = sw.run_in_process(plan)
    assert set(result.values()) == {"finished"}, result
    return plan


def test_the_next_shape_is_compiled_ahead_and_used(in_tmp, ahead_calls):
    plan = _sweep("ahead")
    assert len(plan.jobs) == 2
    # the second job's training chunk and metrics program, compiled ahead, then called
    assert len(ahead_calls) == 2
    assert all(p.ready for p in ahead_calls)


def test_results_equal_a_sweep_without_it(in_tmp, ahead_calls):
    on = _finals(_sweep("on"))
    programs.forget_programs()
    off = _finals(_sweep("off", ["sweep.compile_ahead=false"]))
    assert len(ahead_calls) == 2  # the first sweep's second job only
    assert on.keys() == off.keys()
    for name in on:
        assert on[name] == pytest.approx(off[name], rel=1e-6)


def test_finished_jobs_are_not_compiled_again(in_tmp, ahead_calls):
    plan = _sweep("again")
    ahead_calls.clear()
    programs.forget_programs()
    assert compile_ahead.unfinished(plan.members, plan.root) == []
    result = sw.run_in_process(plan)
    assert set(result.values()) == {"finished"}
    assert ahead_calls == []
