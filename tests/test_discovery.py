"""Finding configs without a manual: --cfg and --info (print, write nothing), bncli list
(every preset and key with its default and meaning, in 80 columns), --help with the groups
and presets, -h, --version, shell completion, and "did you mean"."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.completion import candidates
from bottleneck_cli.config import MODEL_FAMILIES, TASK_FAMILIES, Config, StageConfig
from bottleneck_cli.config_docs import key_docs
from bottleneck_cli.config_groups import options

BNCLI = [str(Path(sys.executable).parent / "bncli")]  # the installed script: prog name bncli


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_line_error(result) -> str:
    assert result.exit_code == EXIT_BAD_INPUT, (result.exit_code, result.output)
    assert result.stderr.startswith("bncli: error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    return result.stderr


def nothing_written(folder) -> bool:
    return list(folder.iterdir()) == []


@pytest.mark.parametrize("command", ["train", "sweep"])
def test_cfg_job_prints_the_composed_config_and_writes_nothing(in_tmp, command):
    axes = ["depth=2,4"] if command == "sweep" else ["depth=4"]
    result = invoke(command, "+experiment=tiny", *axes, "model=linear", "--cfg", "job")
    assert result.exit_code == 0, result.output
    cfg = yaml.safe_load(result.stdout)
    assert cfg["model"]["name"] == "linear" and cfg["steps"] == 300 and cfg["lam"] == 1e-3
    if command == "train":
        assert cfg["depth"] == 4
    else:
        assert "depth=2,4" in result.stdout.splitlines()[0]
    assert nothing_written(in_tmp)


def test_cfg_hydra_and_all_show_hydras_node(in_tmp):
    hydra_only = yaml.safe_load(invoke("train", "--cfg", "hydra").stdout)
    assert set(hydra_only) == {"hydra"} and "launcher" in hydra_only["hydra"]
    both = invoke("sweep", "depth=2,3", "hydra/launcher=joblib", "--cfg", "all")
    assert both.exit_code == 0, both.output
    assert "joblib" in both.stdout and "depth:" in both.stdout
    assert nothing_written(in_tmp)


def test_cfg_with_bad_input_is_one_line_and_writes_nothing(in_tmp):
    assert "depth" in one_line_error(invoke("train", "depth=0", "--cfg", "job"))
    assert "choose from" in one_line_error(invoke("train", "--cfg", "nope"))
    assert nothing_written(in_tmp)


def test_info_and_its_topics(in_tmp):
    full = invoke("train", "--info", "depth=3")
    assert full.exit_code == 0, full.output
    for needle in ("Config search path", "Defaults list", "model/mlp", "Config groups",
                   "depth: 3"):
        assert needle in full.stdout, needle
    only = invoke("sweep", "task=matern", "depth=2,4", "--info", "defaults")  # Hydra's spelling
    assert "task/matern" in only.stdout and "search path" not in only.stdout
    assert all(len(line) <= 80 for line in full.stdout.splitlines())
    assert nothing_written(in_tmp)


def test_list_shows_every_group_option_preset_and_key_in_80_columns(in_tmp):
    result = invoke("list")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert all(len(line) <= 80 for line in text.splitlines()), \
        [line for line in text.splitlines() if len(line) > 80]
    for group in ("model", "task", "optim", "experiment"):
        for option in options(group):
            assert f" {option} " in text or f"{option}\n" in text or f"*{option}" in text, option
    rows = {line.split()[0]: line for line in text.splitlines() if line[:1].isalpha()}
    for d in key_docs(Config):  # top-level, optim, metrics, ... and their defaults
        if d.key in ("model", "task"):
            continue
        assert d.key in rows, d.key
    assert rows["depth"].split()[1] == "12" and "weight matrices" in rows["depth"]
    assert rows["model.name"].split()[1] == "mlp"
    assert nothing_written(in_tmp)


def test_list_narrows_to_a_group_an_option_or_a_section():
    model = invoke("list", "model").stdout
    assert "*mlp" in model and "model.bias" in model and "task.n_train" not in model
    matern = invoke("list", "task=matern").stdout
    assert "task.nu_g" in matern and "Matérn smoothness" in matern and "\ndepth " not in matern
    metrics = invoke("list", "metrics").stdout
    assert "metrics.num_log" in metrics and "optim.name" not in metrics
    assert "did you mean 'metrics'" in one_line_error(invoke("list", "metrcs"))


def test_every_key_of_every_family_has_a_one_line_meaning():
    for cls in (Config, StageConfig, *MODEL_FAMILIES.values(), *TASK_FAMILIES.values()):
        undocumented = [d.key for d in key_docs(cls) if not d.meaning]
        assert undocumented == [], (cls.__name__, undocumented)


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["train", "-h"], ["sweep", "--help"]])
def test_help_names_groups_and_presets(args):
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    for needle in ("model=", "mlp (default)", "+experiment=NAME", "rank2022", "tiny",
                   "bncli list"):
        assert needle in result.stdout, needle


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("bncli 0.")


@pytest.mark.parametrize("shell, needle", [("bash", "complete -o default -F"),
                                           ("zsh", "compdef"), ("fish", "complete --command")])
def test_completion_script_generation(shell, needle):
    result = invoke("completion", shell)
    assert result.exit_code == 0, result.output
    assert needle in result.stdout and "_BNCLI_COMPLETE" in result.stdout and "bncli" in result.stdout
    assert "choose from bash" in one_line_error(invoke("completion", "tcsh"))


def test_show_completion_detects_the_calling_bash():
    """Typer's --show-completion names the shell it runs under (its parent process): run
    it from bash (``; true`` keeps bash from replacing itself by bncli)."""
    command = " ".join(shlex.quote(w) for w in BNCLI) + " --show-completion; true"
    shown = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0 and "_BNCLI_COMPLETE" in shown.stdout, shown.stderr


def _complete(shell: str, line: str, **env) -> str:
    extra = {"_BNCLI_COMPLETE": f"complete_{shell}", "_TYPER_COMPLETE_ARGS": line,
             "_TYPER_COMPLETE_FISH_ACTION": "get-args", **env}
    out = subprocess.run(BNCLI, capture_output=True, text=True, timeout=120,
                         env={**os.environ, **extra})
    return out.stdout


def test_completion_of_commands_groups_presets_and_keys_through_the_shell_protocol():
    assert "sweep" in _complete("zsh", "bncli sw")
    assert "model=mlp" in _complete("zsh", "bncli train model=m")
    assert "+experiment=tiny" in _complete("fish", "bncli sweep +experiment=ti")
    bash = _complete("bash", "", COMP_WORDS="bncli train model = ml", COMP_CWORD="4")
    assert bash.split() == ["mlp"]


def test_completion_candidates():
    assert candidates("dep") == ["depth="]
    assert "+experiment=" in candidates("+")
    assert set(candidates("model=")) >= {f"model={o}" for o in options("model")}
    assert candidates("+experiment=rank2022_s") == ["+experiment=rank2022_small"]
    assert candidates("dtype=") == ["dtype=float32", "dtype=float64"]
    assert candidates("model.bias=t") == ["model.bias=true"]
    assert "optim.momentum=" in candidates("optim.mo")
    assert "task.nu_g=" in candidates("task.nu")  # a key of task=matern
    assert candidates("=", ["model"]) == options("model")


@pytest.mark.parametrize("override, needles", [
    ("depht=4", ["unknown key 'depht'", "did you mean 'depth'"]),
    ("~depht", ["did you mean 'depth'"]),
    ("optim.momentun=0.9", ["did you mean 'optim.momentum'"]),
    ("task.inputs=identity", ["task.inputs", "task=low_rank"]),
    ("model=mpl", ["unknown model option 'mpl'", "did you mean 'mlp'", "linear"]),
    ("+experiment=rank202", ["unknown preset 'rank202'", "'rank2022'", "bncli list experiment"]),
])
def test_did_you_mean(in_tmp, override, needles):
    for command in ("train", "sweep"):
        err = one_line_error(invoke(command, override, "steps=5"))
        for needle in needles:
            assert needle in err, (command, err)
    assert nothing_written(in_tmp)
