"""bench/gpu.py: refuses without a GPU, runs every part at tiny sizes on the CPU
(--cpu-smoke), and its JSON renders into BENCHMARKS.md's gpu section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parent.parent
GPU = ROOT / "bench" / "gpu.py"
sys.path.insert(0, str(ROOT / "bench"))

from gpu_render import gpu_section  # noqa: E402
from results import render  # noqa: E402


def _gpu(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(GPU), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.skipif(jax.default_backend() == "gpu", reason="a GPU is present")
def test_without_a_gpu_it_refuses_in_one_line(tmp_path):
    proc = _gpu(cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("gpu.py: error: no GPU")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # bncli subprocesses for the first-step timing: 40-60 s
def test_cpu_smoke_runs_every_part_and_renders(tmp_path):
    out = tmp_path / "g.json"
    proc = _gpu("--cpu-smoke", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["smoke"] is True and data["skipped"] == []
    assert data["versions"]["jax"] == jax.__version__
    assert [r["members"] for r in data["batching"]["rows"]] == [2, 4]
    assert all(r["member-steps/s"] > 0 for r in data["batching"]["rows"])
    assert data["step"][0]["bncli ms/step"] > 0
    first = data["first_step"]
    assert first["cold s"] > 0 and first["warm s"] > 0 and first["import jax s"] > 0
    text = render([gpu_section(out, "g.json")], ["x"], False, "", "", 0)
    assert "Batching" in text and "Time to first step" in text and "--cpu-smoke run" in text


def test_the_renderer_shows_every_part_and_an_earlier_file(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({
        "device": "NVIDIA H200", "devices": 1, "backend": "gpu", "date": "2026-01-01 00:00",
        "command": "python bench/gpu.py", "smoke": False, "seconds": 231.0,
        "versions": {"jax": "0.10.2", "torch CUDA": "12.8"},
        "step": [{"depth": 12, "width": 50, "N": 256, "bncli ms/step": 0.12,
                  "torch eager ms/step": 0.9, "vs eager": 7.5, "loss agrees": "yes"}],
        "batching": {"depth": 12, "width": 50, "N": 256,
                     "one after another member-steps/s": 7000.0, "saturates at": 512,
                     "rows": [{"members": 8, "member-steps/s": 56000.0}]},
        "first_step": {"import jax s": 2.0, "cold s": 6.0, "warm s": 3.0},
        "notes": ["a note"], "skipped": ["step at (48, 64, 512): skipped"]}))
    sec = gpu_section(path, "g.json")
    text = render([sec], ["x"], False, "", "", 0)
    for needle in ("NVIDIA H200", "vs torch eager", "after **512 members**", "| cold s | 6 |",
                   "torch CUDA", "a note", "skipped: step at (48, 64, 512)", "PASS"):
        assert needle in text, needle
    path.write_text(json.dumps({"device": "cuda:0", "cases": [{"members": 8, "speedup": 7.7}]}))
    assert gpu_section(path, "g.json").rows == [[8, "7.7"]]
    assert gpu_section(tmp_path / "none.json", "none").notes == [
        "not measured on a GPU in this run"]
