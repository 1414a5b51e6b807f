"""A sweep on several devices (faked on the CPU with XLA_FLAGS, set before JAX loads,
hence subprocesses of ``bncli sweep``): every device trains, and the run folders equal
those of the same sweep on one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import app
from bottleneck_cli.devices import spread

BNCLI = Path(sys.executable).parent / "bncli"
# Tiny members; one lane per job (sweep.cpu_threads=1) so each job is one vmapped batch.
TINY = ["width=4", "steps=10", "task.n_train=16", "task.n_test=8", "metrics.num_log=3",
        "metrics.jacobian_samples=0", "optim=gd", "lr=0.01", "sweep.cpu_threads=1"]


def _sweep(cwd: Path, *args: str, devices: int = 2, check: bool = True,
           **popen) -> subprocess.CompletedProcess | subprocess.Popen:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "BNCLI_JAX_CACHE": str(cwd / "jax-cache")}
    cmd = [str(BNCLI), "sweep", *TINY, *args]
    if popen:
        return subprocess.Popen(cmd, cwd=cwd, env=env, text=True, **popen)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def _members(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(root.iterdir()) if rd.is_run_dir(p)}


def _devices(root: Path) -> dict[str, str]:
    return {n: rd.read_json(p / rd.SUMMARY)["device"] for n, p in _members(root).items()}


def _assert_same_runs(a: Path, b: Path) -> None:
    """Equal metrics (all but the wall-clock ``time``), spectra and final parameters."""
    ma, mb = _members(a), _members(b)
    assert list(ma) == list(mb) and ma
    for name in ma:
        ra, rb = rd.RunDir(ma[name]), rd.RunDir(mb[name])
        recs_a, recs_b = ra.read_metrics(), rb.read_metrics()
        assert len(recs_a) == len(recs_b) > 1
        for x, y in zip(recs_a, recs_b):
            x.pop("time"), y.pop("time")
            assert x == y, name
        steps = ra.spectra_steps()
        assert steps == rb.spectra_steps() and steps
        for step in steps:
            sa, sb = ra.read_spectra(step), rb.read_spectra(step)
            assert sa.keys() == sb.keys()
            for k in sa:
                np.testing.assert_array_equal(sa[k], sb[k], err_msg=f"{name} {step} {k}")
        pa, pb = rd.read_npz(ra.file(rd.PARAMS)), rd.read_npz(rb.file(rd.PARAMS))
        for k in pa:
            np.testing.assert_array_equal(pa[k], pb[k], err_msg=f"{name} {k}")


def test_spread_splits_the_largest_job_until_every_device_has_one():
    assert spread([[0, 1, 2, 3]], 2) == [[0, 1], [2, 3]]
    assert spread([[0, 1, 2, 3, 4, 5]], 4) == [[0, 1], [2], [3, 4], [5]]
    assert spread([[0, 1], [2, 3], [4, 5]], 2) == [[0, 1], [2, 3], [4, 5]]  # enough jobs
    assert spread([[0], [1]], 8) == [[0], [1]]  # nothing left to split
    assert spread([], 4) == []


@pytest.mark.slow  # subprocesses of bncli: 15-40 s
def test_a_depth_sweep_trains_on_both_devices_as_on_one(tmp_path):
    """Two shapes, two devices: each job on its own device, identical to one device."""
    two = _sweep(tmp_path, "depth=2,3", "seed=0,1", "--name", "two")
    assert "2 jobs on 2 devices (cpu:0, cpu:1)" in two.stderr
    _sweep(tmp_path, "depth=2,3", "seed=0,1", "sweep.devices=1", "--name", "one")
    devices = _devices(tmp_path / "runs" / "two")
    assert set(devices.values()) == {"cpu:0", "cpu:1"}
    assert devices["depth=2,seed=0"] == devices["depth=2,seed=1"]  # a job stays together
    assert set(_devices(tmp_path / "runs" / "one").values()) == {"cpu:0"}
    _assert_same_runs(tmp_path / "runs" / "two", tmp_path / "runs" / "one")


@pytest.mark.slow  # subprocesses of bncli: 15-40 s
def test_one_shape_of_many_seeds_is_split_over_the_devices(tmp_path):
    """One job of 4 seeds on 2 devices: 2 per device, the same numbers as one device
    training batches of 2 (a batch of 4 rounds its batched matmuls differently)."""
    _sweep(tmp_path, "depth=3", "seed=range(4)", "sweep.devices=all", "--name", "two")
    _sweep(tmp_path, "depth=3", "seed=range(4)", "sweep.devices=1", "sweep.max_members=2",
           "--name", "one")
    devices = _devices(tmp_path / "runs" / "two")
    assert devices == {"seed=0": "cpu:0", "seed=1": "cpu:0", "seed=2": "cpu:1",
                       "seed=3": "cpu:1"}
    _assert_same_runs(tmp_path / "runs" / "two", tmp_path / "runs" / "one")


def test_more_devices_asked_than_present_uses_those_present(tmp_path):
    proc = _sweep(tmp_path, "depth=2", "seed=0,1", "sweep.devices=3", "--name", "s",
                  devices=1)
    assert "sweep.devices=3 but 1 cpu device(s) are present: using 1" in proc.stderr
    assert set(_devices(tmp_path / "runs" / "s").values()) == {"cpu:0"}


INTERRUPT = """
import os, signal, sys, time
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
from bottleneck_cli import sweep as sw
from bottleneck_cli.train import Interrupted

class StopMidway:  # SIGINT to the process, from a device thread, once a job passed step 60
    sent = False
    def set_totals(self, n): pass
    def set_names(self, names): pass
    def start_batch(self, names, start, steps): pass
    def end_batch(self, statuses): pass
    def close(self): pass
    def update(self, step, statuses, records=None):
        if step >= 60 and not self.sent:
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the main thread catches it meanwhile

plan = sw.plan(sys.argv[1:], name="r")
sw.write_index(plan, ["test"])
try:
    sw.run_in_process(plan, StopMidway())
except Interrupted as exc:
    print("INTERRUPTED", exc)
"""


@pytest.mark.slow  # subprocesses of bncli: 15-40 s
def test_an_interrupted_two_device_sweep_resumes_as_if_never_stopped(tmp_path):
    """A stop signal while both devices train checkpoints their members; the same command
    then finishes them, with the numbers of an uninterrupted one-device sweep."""
    args = [*TINY, "depth=2,3", "seed=0,1", "steps=200", "checkpoint.every=50"]
    env = {**os.environ, "BNCLI_JAX_CACHE": str(tmp_path / "jax-cache")}
    proc = subprocess.run([sys.executable, "-c", INTERRUPT, *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "INTERRUPTED" in proc.stdout, proc.stderr[-2000:]
    root = tmp_path / "runs" / "r"
    statuses = {n: rd.RunDir(p).status()["status"] for n, p in _members(root).items()}
    assert "interrupted" in statuses.values() and len(statuses) == 4, statuses
    again = _sweep(tmp_path, "depth=2,3", "seed=0,1", "steps=200", "checkpoint.every=50",
                   "--name", "r")
    assert "Traceback" not in again.stderr
    _sweep(tmp_path, "depth=2,3", "seed=0,1", "steps=200", "checkpoint.every=50",
           "sweep.devices=1", "--name", "one")
    _assert_same_runs(root, tmp_path / "runs" / "one")


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_device_count_is_one_line_error(in_tmp, value):
    result = CliRunner().invoke(app, ["sweep", "depth=2", "seed=0,1", f"sweep.devices={value}",
                                      "--dry-run"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("bncli: error: sweep.devices=")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()
