"""Preemption under submitit: StopFlag chains submitit's SIGUSR2 handler, the loop
checkpoints at the signal, and the requeued job resumes where it stopped."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bottleneck_cli import rundir as rd
from bottleneck_cli import sweep as sw
from bottleneck_cli.stopflag import StopFlag, preempt_signal
from bottleneck_cli.train import Interrupted

USR2 = signal.SIGUSR2


@pytest.fixture
def fake_submitit(monkeypatch):
    """A Python handler on SIGUSR2, as submitit installs; records its calls."""
    monkeypatch.delenv("SUBMITIT_PREEMPT_SIGNAL", raising=False)
    calls = []
    old = signal.signal(USR2, lambda signum, frame: calls.append(signum))
    yield calls
    signal.signal(USR2, old)


# ------------------------------------------------------------------ the chaining logic
def test_stopflag_chains_the_preemption_handler_and_redelivers_on_exit(fake_submitit):
    before = signal.getsignal(USR2)
    with StopFlag() as stop:
        assert signal.getsignal(USR2) == stop._handle
        signal.raise_signal(USR2)
        assert stop and stop.signal == USR2
        assert fake_submitit == []  # submitit's handler waits until the loop has stopped
    assert signal.getsignal(USR2) is before
    assert fake_submitit == [USR2]  # re-delivered once


def test_sigterm_stop_does_not_redeliver_the_preemption_signal(fake_submitit):
    old_term = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with StopFlag() as stop:
            signal.raise_signal(signal.SIGTERM)
        assert stop.signal == signal.SIGTERM
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert fake_submitit == []
    finally:
        signal.signal(signal.SIGTERM, old_term)


def test_without_a_python_handler_the_preemption_signal_is_left_alone(monkeypatch):
    monkeypatch.delenv("SUBMITIT_PREEMPT_SIGNAL", raising=False)
    old = signal.signal(USR2, signal.SIG_DFL)
    try:
        with StopFlag():
            assert signal.getsignal(USR2) == signal.SIG_DFL
    finally:
        signal.signal(USR2, old)


def test_preempt_signal_follows_submitits_environment_variable(monkeypatch):
    monkeypatch.setenv("SUBMITIT_PREEMPT_SIGNAL", "USR1")
    assert preempt_signal() == signal.SIGUSR1
    monkeypatch.setenv("SUBMITIT_PREEMPT_SIGNAL", "NOSUCH")
    assert preempt_signal() is None
    monkeypatch.delenv("SUBMITIT_PREEMPT_SIGNAL")
    assert preempt_signal() == USR2


# ------------------------------------------------------------------ in process: requeue
SMALL = ["steps=40", "width=8", "task.n_train=32", "task.n_test=16", "metrics.num_log=0",
         "metrics.every=1", "metrics.jacobian_samples=0", "optim=gd", "lr=0.01", "lam=1e-3",
         "checkpoint.every=1000"]  # no periodic checkpoint: only the signal writes one


class _Preempt:
    """Progress hook that sends SIGUSR2 at one step."""

    def __init__(self, at):
        self.at = at

    def set_totals(self, n):
        pass

    def set_names(self, names):
        pass

    def start_batch(self, names, start, steps):
        pass

    def update(self, step, statuses, records=None):
        if step == self.at:
            os.kill(os.getpid(), USR2)

    def end_batch(self, statuses):
        pass


def _steps(run: rd.RunDir) -> list[int]:
    return [r["step"] for r in run.read_metrics()]


def _requeue(signum, frame):  # like submitit's checkpoint_and_try_requeue: requeue, exit
    sys.exit(144)


def _decline(signum, frame):  # submitit when the job timed out too often
    raise RuntimeError("Job not requeued because: timed-out too many times.")


@pytest.mark.parametrize("handler, raised", [(_requeue, SystemExit), (_decline, Interrupted)])
def test_preempted_job_checkpoints_at_the_signal_and_the_requeued_job_resumes(
        in_tmp, handler, raised, capfd):
    calls = []
    # one vmapped batch, so both members stop at the signal's step (CPU lanes stop at
    # their own next step)
    plan = sw.plan(SMALL + ["seed=0,1", "sweep.cpu_threads=1"], name="pre")
    sw.write_index(plan, ["test"])
    old = signal.signal(USR2, lambda signum, frame: (calls.append(signum), handler(signum, frame)))
    try:
        with pytest.raises(raised) as info:
            sw.run_members(plan.members, plan.root, _Preempt(at=17))
    finally:
        signal.signal(USR2, old)
    assert calls == [USR2]
    if raised is SystemExit:
        assert info.value.code == 144 and isinstance(info.value.__context__, Interrupted)
    else:
        assert "not requeued: Job not requeued" in capfd.readouterr().err
    for m in plan.members:
        run = rd.RunDir(plan.root / m.name)
        assert run.status()["status"] == "interrupted"  # not failed
        assert int(rd.read_npz(run.file(rd.CHECKPOINT))["step"]) == 17
    # the requeued job (or a re-run): interrupted members are resumed, neither skipped
    # nor failed, and their metrics go on from the checkpoint
    assert sw.run_job(str(plan.root / sw.INDEX), 0) == {m.name: "finished" for m in plan.members}
    for m in plan.members:
        assert _steps(rd.RunDir(plan.root / m.name)) == list(range(41))


# ------------------------------------------------------------------ end to end: submitit_local
def _task_pid(folder: Path) -> int | None:
    """The submitit task process (``python -m submitit.core._submit <folder>``)."""
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = b" ".join(cmd).decode(errors="replace")
        if "submitit.core._submit" in text and str(folder) in text:
            return int(proc.name)
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the task process via /proc")
def test_submitit_local_requeues_on_sigusr2_and_resumes_from_the_signal(in_tmp):
    steps = 3000  # longer than the metrics compile under load (records wait for it)
    args = ["sweep", f"steps={steps}", "width=8", "task.n_train=32", "task.n_test=16",
            "metrics.num_log=0", "metrics.every=1", "metrics.jacobian_samples=0", "optim=gd",
            "lr=0.01", "lam=1e-3", "depth=2", "seed=0,1", "checkpoint.every=100000",
            "hydra/launcher=submitit_local", "--name", "pre"]
    root = in_tmp / "runs" / "pre"
    metrics = [root / f"seed={s}" / rd.METRICS for s in (0, 1)]
    proc = subprocess.Popen([sys.executable, "-m", "bottleneck_cli.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if all(m.exists() and m.read_text().count("\n") > 20 for m in metrics):
                break  # both members have progressed (and hold no checkpoint yet)
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[0]
        pid = _task_pid(root / ".launcher" / ".submitit")
        assert pid is not None
        os.kill(pid, USR2)
        out = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "2 finished of 2" in out
    index = json.loads((root / sw.INDEX).read_text())
    assert {m["status"] for m in index["members"]} == {"finished"}
    log = "".join(p.read_text() for p in (root / ".launcher" / ".submitit").glob("*/*_log.*"))
    assert "Caught signal SIGUSR2" in log and "Requeued job" in log, log
    resumed = re.findall(r"resuming at step (\d+)", log)
    # one resume per batch (one vmapped batch, or one per CPU lane), from the signal's step
    assert 1 <= len(resumed) <= 2 and all(20 < int(r) < steps for r in resumed), log
    for name in ("seed=0", "seed=1"):
        run = rd.RunDir(root / name)
        assert run.status()["status"] == "finished"
        assert _steps(run) == list(range(steps + 1))  # no step missing or repeated
        assert run.spectra_steps() == list(range(steps + 1))
        assert not run.file(rd.CHECKPOINT).exists()
