"""Sweeps: Hydra's grid grammar, grouping into batched jobs, batched == alone, resume, launchers."""

import itertools
import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli import sweep as sw
from bottleneck_cli.cli import app
from bottleneck_cli.config import ConfigError, load
from bottleneck_cli.runs import prepare
from bottleneck_cli.train import Interrupted, Member, train_members

# Small, cheap members: one compile each for the few shapes used here.
SMALL = ["steps=40", "width=8", "task.n_train=32", "task.n_test=16", "metrics.num_log=4",
         "metrics.jacobian_samples=0", "optim=gd", "lr=0.01", "lam=1e-3"]


def test_grid_expansion_matches_hydras_basic_sweeper():
    overrides = ["depth=2,4", "lam=1e-3,1e-2", "seed=range(2)", "width=8"]
    members = sw.expand(overrides)
    expected = [list(p) for p in itertools.product(
        ["depth=2", "depth=4"], ["lam=0.001", "lam=0.01"], ["seed=0", "seed=1"], ["width=8"])]
    assert [sorted(m) for m in members] == [sorted(e) for e in expected]
    from bottleneck_cli.config import CONFIG_DIR

    shipped = sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml"))  # not schema/
    assert sw.expand(["model=glob(*)"]) == [[f"model={m}"] for m in shipped]
    assert {"linear", "mlp"} <= set(shipped)
    assert len(sw.expand(["lam=choice(1e-3,1e-2,1e-1)"])) == 3


def test_malformed_and_unsupported_grids_are_config_errors():
    with pytest.raises(ConfigError, match="malformed override"):
        sw.expand(["depth=[1"])
    with pytest.raises(ConfigError, match="comma lists"):
        sw.expand(["lr=interval(0.1,1.0)"])


def test_grouping_batches_shape_preserving_members_only(in_tmp):
    plan = sw.plan(["depth=2,3", "width=8,16", "lam=1e-3,1e-2", "lr=0.01,0.02", "seed=0,1",
                    "steps=10"], name="g")
    assert len(plan.members) == 32
    assert len(plan.jobs) == 4  # (depth, width) pairs; lam, lr and seed batch together
    for job in plan.jobs:
        shapes = {(plan.members[i].cfg.depth, plan.members[i].cfg.width) for i in job}
        assert len(shapes) == 1 and len(job) == 8
    capped = sw.plan(["depth=2", "seed=range(5)", "sweep.max_members=2", "steps=10"], name="c")
    assert [len(j) for j in capped.jobs] == [2, 2, 1]
    assert not (in_tmp / "runs").exists()  # planning writes nothing


@pytest.mark.parametrize("threads", [1, 2])
def test_batched_member_equals_the_same_member_trained_alone(tmp_path, threads):
    """threads=1: one vmapped program; 2: CPU lanes sharing one compiled program."""
    cfgs = [load(SMALL + ["depth=3", f"lr={lr}", f"seed={s}", f"sweep.cpu_threads={threads}"])
            for lr, s in [(0.01, 0), (0.02, 1)]]
    together = [prepare(tmp_path / f"b{i}", c, []) for i, c in enumerate(cfgs)]
    assert train_members(together) == ["finished", "finished"]
    alone = prepare(tmp_path / "alone", cfgs[1], [])
    assert train_members([alone]) == ["finished"]
    a = rd.read_npz(together[1].run.file(rd.PARAMS))
    b = rd.read_npz(alone.run.file(rd.PARAMS))
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)


class _StopAfterFirstBatch:
    """Progress hook that sends SIGINT once the first batch of a sweep has finished."""

    members_done = {}

    def set_totals(self, n):
        pass

    def set_names(self, names):
        pass

    def start_batch(self, names, start, steps):
        self.names = names

    def update(self, step, statuses, records=None):
        pass

    def end_batch(self, statuses):
        signal.raise_signal(signal.SIGINT) if not hasattr(self, "sent") else None
        self.sent = True

    def close(self):
        pass


def test_interrupted_sweep_resumes_without_retraining_finished_members(in_tmp):
    # one lane: the first job's two members end together (with a lane per core, the
    # signal after one lane's end would race the other lane's last steps)
    grid = SMALL + ["depth=2,3", "lam=1e-3,1e-2", "sweep.cpu_threads=1"]
    plan = sw.plan(grid, name="resume")
    sw.write_index(plan, ["test"])
    progress = _StopAfterFirstBatch()
    with pytest.raises((Interrupted, KeyboardInterrupt)):
        sw.run_in_process(plan, progress)
    status = sw.statuses(plan)
    done = [n for n, s in status.items() if s == "finished"]
    assert len(done) == 2 and set(status.values()) - {"finished"}  # first job only
    mtimes = {n: (plan.root / n / rd.PARAMS).stat().st_mtime_ns for n in done}
    result = CliRunner().invoke(app, ["sweep", *grid, "--name", "resume"])
    assert result.exit_code == 0, result.output
    assert set(sw.statuses(plan).values()) == {"finished"}
    for n in done:  # finished members were not retrained
        assert (plan.root / n / rd.PARAMS).stat().st_mtime_ns == mtimes[n]


def test_sweep_from_a_fresh_folder_writes_complete_run_folders(in_tmp):
    result = CliRunner().invoke(app, ["sweep", "depth=2,4,8", "lam=1e-3,1e-2", "seed=0,1",
                                      "steps=20", "width=8", "task.n_train=32",
                                      "metrics.num_log=3", "--name", "issue"])
    assert result.exit_code == 0, result.output
    root = in_tmp / "runs" / "issue"
    members = [p for p in root.iterdir() if rd.is_run_dir(p)]
    assert len(members) == 12
    for p in members:
        run = rd.RunDir(p)
        assert run.status()["status"] == "finished"
        for f in (rd.CONFIG, rd.OVERRIDES, rd.METRICS, rd.PARAMS, rd.SUMMARY, rd.STATUS):
            assert run.file(f).is_file(), (p, f)
    index = json.loads((root / "sweep.json").read_text())
    assert {m["status"] for m in index["members"]} == {"finished"}
    assert "bncli report" in result.output


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_hydra_launchers_complete_a_small_sweep(in_tmp, launcher):
    args = ["sweep", *SMALL, "depth=2,3", "lam=1e-3,1e-2", f"hydra/launcher={launcher}",
            "--name", launcher]
    if launcher == "joblib":
        args.append("hydra.launcher.n_jobs=2")
    # A real process: launchers configure logging and worker processes of their own.
    result = subprocess.run([sys.executable, "-m", "bottleneck_cli.cli", *args],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    root = in_tmp / "runs" / launcher
    index = json.loads((root / "sweep.json").read_text())
    assert len(index["members"]) == 4
    assert {m["status"] for m in index["members"]} == {"finished"}
    # same results as training in this process
    local = train_members([Member(rd.RunDir(in_tmp / "local"), load(SMALL + ["depth=2", "lam=1e-3"]))])
    assert local == ["finished"]
    a = rd.read_npz(root / "lam=0.001,depth=2" / rd.PARAMS)  # SMALL sets lam first
    b = rd.read_npz(in_tmp / "local" / rd.PARAMS)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
