"""Malformed input through the command line: every case exits 2 with one line
`bncli: error: ...` naming the problem, no traceback, and leaves the folder tree exactly
as it was (no run folder created, an existing one untouched).

Also: `config.load` raises only ConfigError on random override strings (hypothesis), and
`bncli report` on damaged run folders exits 0 and lists the damage as problems.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.config import ConfigError, load

QUIET = ["metrics.ntk=false", "metrics.jacobian_samples=0"]


def invoke(*args: str, **kw):
    return CliRunner().invoke(app, list(args), **kw)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind, size, mtime and content hash."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_dir():
            out[rel] = ("dir",)
        else:
            st_ = p.stat()
            out[rel] = ("file", st_.st_size, st_.st_mtime_ns,
                        hashlib.sha1(p.read_bytes()).hexdigest())
    return out


# =========================================================================================
# the malformed inputs
# =========================================================================================

def npz(name: str) -> list[str]:
    return ["train", "task=npz", f"task.path={name}"]


def write_inputs(root: Path) -> None:
    """Data files and folders the cases point at, plus a run folder that must survive."""
    ones = np.ones
    np.savez(root / "nan.npz", x_train=np.array([[1.0, np.nan], [0.0, 1.0]]), y_train=ones((2, 1)))
    (root / "garbage.npz").write_bytes(b"\x00not a zip file\xff" * 16)
    np.savez(root / "rows.npz", x_train=ones((4, 2)), y_train=ones((3, 1)))
    np.savez(root / "no_y.npz", x_train=ones((4, 2)))
    np.savez(root / "x_1d.npz", x_train=ones(4), y_train=ones((4, 1)))
    np.savez(root / "test_dims.npz", x_train=ones((4, 2)), y_train=ones((4, 1)),
             x_test=ones((3, 5)), y_test=ones((3, 1)))
    np.savez(root / "y_test_dims.npz", x_train=ones((4, 2)), y_train=ones((4, 1)),
             x_test=ones((3, 2)), y_test=ones((3, 2)))
    np.savez(root / "x_test_only.npz", x_train=ones((4, 2)), y_train=ones((4, 1)),
             x_test=ones((3, 2)))
    np.savez(root / "strings.npz", x_train=np.array([["a", "b"]]), y_train=ones((1, 1)))
    np.savez(root / "empty.npz", x_train=ones((0, 2)), y_train=ones((0, 1)))
    with open(root / "single.npz", "wb") as fh:  # a .npy under an .npz name
        np.save(fh, ones(3))
    (root / "afile").write_text("a regular file\n")
    (root / "emptydir").mkdir()
    keep = root / "runs" / "keep"  # an existing run folder: bad input must not touch it
    keep.mkdir(parents=True)
    (keep / rd.CONFIG).write_text("depth: 3\n")
    rd.write_json(keep / rd.STATUS, {"status": "finished", "step": 5, "steps": 5})


# name -> (argv, keyword the one-line error must contain, case-insensitive)
CASES = {
    # unknown keys and wrong types
    "unknown key": (["train", "foo=1"], "foo"),
    "unknown nested key": (["train", "model.nope=1"], "nope"),
    "unknown key in sweep": (["sweep", "foo=1,2"], "foo"),
    "int from text": (["train", "depth=abc"], "depth"),
    "float from text": (["train", "lam=abc"], "lam"),
    "int from float": (["train", "width=2.5"], "width"),
    "bool from text": (["train", "metrics.ntk=maybe"], "metrics.ntk"),
    "bad choice": (["train", "dtype=float16"], "dtype"),
    # out of range
    "depth 0": (["train", "depth=0"], "depth"),
    "width -1": (["train", "width=-1"], "width"),
    "lam < 0": (["train", "lam=-1e-3"], "lam"),
    "lam nan": (["train", "lam=nan"], "lam"),
    "lr 0": (["train", "lr=0"], "lr"),
    "steps 0": (["train", "steps=0"], "steps"),
    "seed -1": (["train", "seed=-1"], "seed"),
    "seed 2**32": (["train", "seed=4294967296"], "seed"),
    "n_train 0": (["train", "task.n_train=0"], "task.n_train"),
    "momentum 1.5": (["train", "optim.momentum=1.5"], "optim.momentum"),
    "near_one_delta 0": (["train", "metrics.near_one_delta=0"], "metrics.near_one_delta"),
    "checkpoint every 0": (["train", "checkpoint.every=0"], "checkpoint.every"),
    "batch size 0": (["train", "optim.batch_size=0"], "optim.batch_size"),
    "init scale 0": (["train", "model.init_scale=0"], "model.init_scale"),
    "rank > d_latent": (["train", "task.rank=9"], "task.rank"),
    "n_classes 11": (["train", "task=digits", "task.n_classes=11"], "task.n_classes"),
    "singular value < 0": (["train", "task=low_rank", "task.singular_values=[1,-1]"],
                           "singular_values"),
    "bad value, existing name": (["train", "name=keep", "lam=-1"], "lam"),
    # malformed override syntax
    "open bracket": (["train", "depth=[1"], "[1"),
    "no key": (["train", "=3"], "override"),
    "double equals": (["train", "depth==3"], "depth==3"),
    "option-like override": (["train", "--bogus"], "--bogus"),
    # unknown group options
    "model=nope": (["train", "model=nope"], "unknown model option 'nope'"),
    "task=nope": (["train", "task=nope"], "unknown task option 'nope'"),
    "optim=nope": (["train", "optim=nope"], "unknown optim option 'nope'"),
    "+experiment=nope": (["train", "+experiment=nope"], "unknown preset 'nope'"),
    # .npz data
    "npz without path": (["train", "task=npz"], "task.path"),
    "npz missing": (npz("missing.npz"), "missing.npz"),
    "npz garbage bytes": (npz("garbage.npz"), "not a valid .npz"),
    "npz single npy": (npz("single.npz"), "single .npy"),
    "npz NaN": (npz("nan.npz"), "nan"),
    "npz y rows != x rows": (npz("rows.npz"), "rows"),
    "npz no y_train": (npz("no_y.npz"), "y_train"),
    "npz x 1-D": (npz("x_1d.npz"), "2-d"),
    "npz test dims": (npz("test_dims.npz"), "x_test"),
    "npz y_test dims": (npz("y_test_dims.npz"), "y_test"),
    "npz x_test only": (npz("x_test_only.npz"), "y_test"),
    "npz strings": (npz("strings.npz"), "dtype"),
    "npz empty": (npz("empty.npz"), "empty"),
    "npz path is a folder": (npz("emptydir"), "emptydir"),
    # where things go
    "out under a file": (["train", "out=afile/sub"], "cannot write run folder"),
    "config dir missing": (["train", "--config-dir", "nodir", "depth=2"], "nodir"),
    "config dir missing, sweep": (["sweep", "--config-dir", "nodir", "depth=2,3"], "nodir"),
    # report
    "report missing path": (["report", "nonexistent"], "does not exist"),
    "report empty folder": (["report", "emptydir"], "no run folders"),
    "report on a file": (["report", "afile"], "is a file"),
    "report grid of one key": (["report", "emptydir", "--grid", "lam"], "--grid"),
    "report grid of three keys": (["report", "emptydir", "--grid", "lam,lr,seed"], "--grid"),
    # sweep grids
    "sweep empty list item": (["sweep", "depth=1,,2"], "malformed"),
    "sweep interval": (["sweep", "depth=interval(1,2)"], "interval"),
    "sweep bad range": (["sweep", "depth=range(a)"], "malformed"),
    "sweep duplicate values": (["sweep", "depth=2,2"], "share a folder"),
    "sweep bad member": (["sweep", "depth=0,2"], "depth"),
}

# Inputs that once escaped as internal errors or left a run folder behind.
REGRESSIONS = {
    "deleted key": (["train", "~depth"], "depth"),
    "bad interpolation": (["train", "depth=${foo}"], "foo"),
    "bad interpolation in name": (["train", "name=${oc.env:BNCLI_SURELY_UNSET}"],
                                  "BNCLI_SURELY_UNSET"),
    "lr inf": (["train", "lr=inf", "depth=2", "width=4", "steps=2", *QUIET], "lr"),
    "init scale inf": (["train", "model.init_scale=inf", "depth=2", "width=4", "steps=2",
                        *QUIET], "init_scale"),
    "sweep grid with no members": (["sweep", "model=glob(zzz*)"], "member"),
}
CASES.update(REGRESSIONS)


def check_bad_input(root: Path, argv: list[str], keyword: str) -> None:
    before = snapshot(root)
    result = invoke(*argv)
    err = result.stderr
    assert result.exit_code == EXIT_BAD_INPUT, (result.exit_code, result.output)
    assert err.startswith("bncli: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert keyword.lower() in err.lower(), (keyword, err)
    assert "Traceback" not in result.output and "Traceback" not in err
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert snapshot(root) == before, "bad input must leave the folder tree as it was"


@pytest.fixture
def inputs(in_tmp):
    write_inputs(in_tmp)
    return in_tmp


@pytest.mark.parametrize("argv,keyword", list(CASES.values()), ids=list(CASES))
def test_bad_input(inputs, argv, keyword):
    check_bad_input(inputs, argv, keyword)


def test_enough_cases():
    assert len(CASES) >= 30


# =========================================================================================
# config.load on random override strings: a config or ConfigError, nothing else
# =========================================================================================

KEYS = ["depth", "width", "lam", "lr", "seed", "steps", "dtype", "name", "out", "model", "task",
        "optim", "+experiment", "model.name", "model.init_scale", "model.bias", "task.n_train",
        "task.path", "task.singular_values", "optim.momentum", "optim.batch_size",
        "metrics.near_one_delta", "metrics.ntk", "checkpoint.every", "sweep.grid",
        "sweep.max_members", "foo", "model.nope", "", "task.noise", "description"]
VALUES = ["0", "1", "-1", "1.5", "1e-3", "nan", "inf", "-inf", "true", "null", "abc", "mlp",
          "linear", "npz", "nope", "tiny", "[1,2]", "[1", "{a:1}", "{}", "''", "'x'", '"y"',
          "range(3)", "1,2", "choice(1,2)", "interval(0,1)", "glob(*)", "x y", "1e400", "0x10",
          "float64", "digits", "${depth}", "${foo}", "${oc.env:HOME}"]
PUNCT = ["=", "==", ",", "[", "]", "{", "}", "(", ")", "+", "++", "~", "'", '"', ":", ".",
         "$", "\\", " ", "@", "#", "%", "/"]


OVERRIDE = st.one_of(
    st.builds("{}={}".format, st.sampled_from(KEYS), st.sampled_from(VALUES)),
    st.lists(st.one_of(st.sampled_from(KEYS), st.sampled_from(VALUES), st.sampled_from(PUNCT)),
             min_size=1, max_size=5).map("".join),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OVERRIDE, max_size=3))
def test_load_returns_config_or_raises_config_error(overrides):
    try:
        cfg = load(overrides)
    except ConfigError as exc:
        assert str(exc).strip(), "a ConfigError must say what is wrong"
    else:
        assert cfg.depth >= 1 and cfg.lr > 0


@pytest.mark.parametrize("overrides", [["~depth"], ["~metrics"], ["depth=${foo}"],
                                       ["task.hidden=${oc.env:HOME}"]])
def test_load_rejects_deletions_and_bad_interpolations(overrides):
    with pytest.raises(ConfigError):
        load(overrides)


# =========================================================================================
# bncli report on damaged run folders: exit 0, the damage listed as problems
# =========================================================================================


def garble_middle_line(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[len(lines) // 2] = "{not json\n"
    path.write_text("".join(lines))


DAMAGE = {
    "ok": (None, None),
    "metrics_garbled": (lambda d: garble_middle_line(d / rd.METRICS), "metrics.jsonl is damaged"),
    "metrics_truncated": (lambda d: (d / rd.METRICS).write_bytes(
        (d / rd.METRICS).read_bytes()[:-40]), None),  # a torn last line is tolerated
    "summary_truncated": (lambda d: (d / rd.SUMMARY).write_bytes(
        (d / rd.SUMMARY).read_bytes()[:20]), "summary.json is damaged"),
    "status_garbled": (lambda d: (d / rd.STATUS).write_text("{\"status\": fin"),
                       "status.json is damaged"),
    # a run of an earlier bncli (config.yaml only), its config.yaml damaged
    "config_garbled": (lambda d: ((d / "config.json").unlink(),
                                  (d / rd.CONFIG).write_text("depth: [3\n  : :\n")),
                       "config.yaml is damaged"),
    "config_json_garbled": (lambda d: (d / "config.json").write_text("{\"depth\": [3"),
                            "config.json is damaged, config.yaml read instead"),
    "spectra_garbage": (lambda d: max((d / rd.SPECTRA).glob("*.npz")).write_bytes(
        b"PK\x03\x04 garbage" * 8), "spectra unreadable"),
}


def test_report_on_damaged_run_folders(in_tmp):
    result = invoke("train", "depth=3", "width=4", "steps=5", "task.n_train=8",
                    "task.n_test=8", "metrics.num_log=3", *QUIET, "name=ok", "out=tree")
    assert result.exit_code == 0, result.output
    tree = in_tmp / "tree"
    for name, (damage, _) in DAMAGE.items():
        if damage is not None:
            shutil.copytree(tree / "ok", tree / name)
            damage(tree / name)

    report = invoke("report", "tree", "--out", "rep", env={"COLUMNS": "400"})
    assert report.exit_code == 0, (report.output, report.exception)
    assert "Traceback" not in report.output
    flat = " ".join(report.stdout.split())
    html = (in_tmp / "rep" / "report.html").read_text()
    summary = (in_tmp / "rep" / "summary.csv").read_text()
    for name, (_, problem) in DAMAGE.items():
        assert name in summary, name  # every run is a row, damaged or not
        if problem is None:
            continue
        # "name: problem" for a run, "figure run_..._name failed (...: problem" for a figure
        pattern = rf"{re.escape(name)}(: | failed \(\w+: ){re.escape(problem)}"
        assert re.search(pattern, flat), (name, problem, report.stdout)
        assert problem in html, (name, problem)
    assert "ok:" not in flat  # the intact run has no problem
