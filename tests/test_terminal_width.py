"""Everything `bncli sweep` and `bncli status` print fits an 80-column terminal: a
16-member grid with long overrides, run by the installed script on a pseudo-terminal
(the live rich bars included), and the same at 160 columns shows labels whole."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

BNCLI = Path(sys.executable).parent / "bncli"
GRID = ["lam=1e-3,1e-2", "seed=0,1", "model.init_scale=0.5,1.0", "task.noise=0,0.01",
        "depth=2", "width=4", "steps=4", "task.n_train=16", "task.n_test=16",
        "optim.schedule=cosine", "optim.lam_schedule=anneal", "optim.lam_warm_steps=2",
        "metrics.num_log=2"]
_COLOUR = re.compile(r"\x1b\[[0-9;]*m")
# Any other escape sequence (cursor moves, erases) ends a stretch of text on screen.
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|[\r\n]")


def on_pty(cwd: Path, columns: int, *args: str) -> tuple[int, list[str]]:
    """Run ``bncli args`` on a pseudo-terminal ``columns`` wide; its exit status and
    every stretch of text it wrote on one screen line."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "50", "TERM": "xterm-256color",
           "OPENBLAS_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(BNCLI), *args], cwd=cwd, stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    code = proc.wait(timeout=300)
    text = _COLOUR.sub("", out.decode(errors="replace"))
    return code, [s for s in _ESCAPE.split(text) if s.strip()]


pytestmark = pytest.mark.skipif(not BNCLI.exists(), reason="bncli console script not installed")


def test_a_16_member_sweep_and_its_status_fit_80_columns(in_tmp):
    code, lines = on_pty(in_tmp, 80, "sweep", *GRID, "--name", "wide")
    assert code == 0, "\n".join(lines)
    too_long = [ln for ln in lines if len(ln) > 80]
    assert not too_long, too_long
    text = "\n".join(lines)
    assert "16 finished of 16" in text
    assert re.search(r"member\s+status\s+step\s+objective\s+test fit", text), text
    # every member's differing values are shown whole, on its table row
    members = [p.name for p in (in_tmp / "runs" / "wide").iterdir() if p.is_dir()]
    assert len(members) == 16
    assert text.count("task.noise=0.01") == 8 and text.count("model.init_scale=0.5,") == 8
    code, status = on_pty(in_tmp, 80, "status", "runs/wide")
    assert code == 0 and status and all(len(ln) <= 80 for ln in status), status
    assert sum(" finished " in ln and " of 16" not in ln for ln in status) == 16, status


def test_progress_labels_are_not_cut_on_a_wide_terminal(in_tmp):
    name = "a_progress_label_longer_than_forty_characters_to_show_whole"
    code, lines = on_pty(in_tmp, 160, "train", "depth=2", "width=4", "steps=200",
                         "task.n_train=16", "task.n_test=16", f"name={name}")
    assert code == 0, "\n".join(lines)
    bars = [ln for ln in lines if ln.startswith(name) and "/200" in ln]
    assert bars and all(len(ln) <= 160 for ln in lines), lines
    assert any("objective" in ln for ln in bars), bars
