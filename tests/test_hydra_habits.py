"""What a Hydra user types: hydra.run.dir / hydra.sweep.dir refused (never folded into a
folder name), a comma list given to train pointed at bncli sweep, README commands that
paste into bash and zsh and compose as written, and bncli's grid expansion equal to
Hydra's own multirun expansion."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.hydra_grid import expand

README = Path(__file__).resolve().parents[1] / "README.md"
GLOB_CHARS = set("*?[](){}")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_line_error(result) -> str:
    assert result.exit_code == EXIT_BAD_INPUT, (result.exit_code, result.output)
    assert result.stderr.startswith("bncli: error: ") and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize("command, override, needles", [
    ("train", "hydra.run.dir=_tmp_ux_myrun", ["hydra.run.dir", "out=DIR name=NAME"]),
    ("sweep", "hydra.sweep.dir=_tmp_ux_sweep", ["hydra.sweep.dir", "--name NAME"]),
    ("sweep", "hydra.sweep.subdir=x", ["hydra.sweep.subdir", "--name"]),
    ("train", "hydra.job.chdir=true", ["hydra.job.chdir"]),
    ("train", "hydra.searchpath=[file://x]", ["--config-dir"]),
    ("train", "hydra/launcher=joblib", ["bncli sweep"]),
])
def test_hydra_settings_are_refused_not_folded_into_a_name(in_tmp, command, override, needles):
    axes = ["depth=2,3"] if command == "sweep" else ["depth=2"]
    err = one_line_error(invoke(command, "steps=5", "width=4", *axes, override))
    for needle in needles:
        assert needle in err, err
    assert list(in_tmp.iterdir()) == []  # no runs/, no _tmp_ux_* folder


def test_a_comma_list_given_to_train_points_at_sweep(in_tmp):
    err = one_line_error(invoke("train", "depth=2,4"))
    assert "bncli sweep depth=2,4" in err and "--multirun" not in err
    assert list(in_tmp.iterdir()) == []


# ---------------------------------------------------------------- README commands
def readme_commands() -> list[str]:
    """Every bncli command README shows: lines of its bash blocks (continuations joined,
    comments dropped) and inline `bncli train|sweep ...` spans."""
    text = README.read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line.startswith("bncli "):
                commands.append(line)
    inline = re.findall(r"`(bncli (?:train|sweep|list)\b[^`]*)`", text.replace("\n", " "))
    commands += [c for c in inline if "..." not in c and "COMMAND" not in c]
    return commands


def test_readme_commands_paste_into_bash_and_zsh():
    """Characters that bash or zsh expand (globs, parentheses) are always quoted, and bash
    parses every command into the words bncli is meant to get."""
    commands = readme_commands()
    assert len(commands) > 15
    for command in commands:
        for word in re.findall(r"(?:'[^']*'|\"[^\"]*\"|[^\s'\"])+", command):
            bare = re.sub(r"'[^']*'|\"[^\"]*\"", "", word)
            assert not (set(bare) & GLOB_CHARS) or bare.startswith("$("), (command, word)
        out = subprocess.run(["bash", "-c", f"set -f; printf '%s\\n' {command[6:]}"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, (command, out.stderr)
        expected = [os.path.expanduser(w) for w in shlex.split(command)[1:]]
        assert out.stdout.splitlines() == expected, command


# Commands that need what a reader has and this test does not (a module, a folder).
NEEDS_THE_READERS_FILES = ("~/my-configs", "mymodule.MyNet")


def test_readme_train_and_sweep_commands_compose_as_written(in_tmp):
    """Each README train/sweep command with --cfg job: valid overrides, nothing written."""
    checked = 0
    for command in readme_commands():
        words = shlex.split(command)
        if words[1] not in ("train", "sweep") or any(n in command for n in NEEDS_THE_READERS_FILES):
            continue
        result = invoke(*words[1:], "--cfg", "job")
        assert result.exit_code == 0, (command, result.output)
        checked += 1
    listed = [shlex.split(c)[1:] for c in readme_commands() if c.startswith("bncli list")]
    for words in listed:
        assert invoke(*words).exit_code == 0, words
    assert checked > 10 and listed
    assert list(in_tmp.iterdir()) == []


# ---------------------------------------------------------------- grid expansion
def hydra_multirun_jobs(overrides: list[str], tmp: Path) -> list[list[str]]:
    """The overrides of each job of a real Hydra multirun (BasicSweeper, basic launcher)
    over bncli's configs, in the order Hydra runs them."""
    script = f"""
import sys, json, hydra
from hydra.core.hydra_config import HydraConfig
from bottleneck_cli.config import CONFIG_DIR, register_schema
register_schema()
jobs = []
@hydra.main(config_path=str(CONFIG_DIR), config_name="config", version_base="1.3")
def task(cfg):
    jobs.append(list(HydraConfig.get().overrides.task))
sys.argv = ["app", "-m", *{overrides!r}, "hydra.sweep.dir={tmp}", "hydra/job_logging=none",
            "hydra/hydra_logging=none"]
try:
    task()
except SystemExit:
    pass
print(json.dumps(jobs))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, cwd=tmp)
    assert out.returncode == 0, out.stderr
    import json

    jobs = json.loads(out.stdout.strip().splitlines()[-1])
    return [[o for o in job if not o.startswith("hydra")] for job in jobs]


@pytest.mark.parametrize("overrides", [
    ["depth=2,4", "lam=1e-3,1e-2,0.1"],
    ["seed=range(3)", "width=8"],
    ["lr=choice(0.1,0.2)", "depth=range(2,6,2)"],
    ["model=glob(l*)", "optim=adam,sgd"],
    ["+experiment=tiny", "lam=1e-4,1e-3", "seed=range(0,2)"],
], ids=["lists", "range", "choice-range-step", "glob", "preset"])
def test_grid_expansion_equals_hydras_multirun(tmp_path, overrides):
    assert expand(overrides) == hydra_multirun_jobs(overrides, tmp_path)
