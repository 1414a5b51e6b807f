"""Hostile input that once broke bncli: depth >= 100 (layer keys sorted as text), absurd
counts, float values outside the run dtype's range, damaged or huge .npz data, and a
stop signal during set-up. Each case gets a one-line error (exit 2, no run folder) or
a correct run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from bottleneck_cli import rundir as rd
from bottleneck_cli.cli import EXIT_BAD_INPUT, app
from bottleneck_cli.report_closed import end_to_end_svals
from bottleneck_cli.spectra import numerical_rank

QUIET = ["metrics.ntk=false", "metrics.jacobian_samples=0"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def assert_one_line_error(result, root, *words: str) -> str:
    """Exit 2, one line ``bncli: error: ...`` naming ``words``, no traceback, no runs/."""
    assert result.exit_code == EXIT_BAD_INPUT == 2, (result.exit_code, result.output)
    err = result.stderr
    assert err.startswith("bncli: error: "), err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in result.output
    assert not (root / "runs").exists(), "bad input must not create a runs/ folder"
    for w in words:
        assert w in err, (w, err)
    return err


# ---- depth >= 100: layer keys in numeric order ------------------------------------------


def test_layer_keys_sort_numerically():
    keys = ["W100", "W10", "W09", "W11", "W99", "W01"]
    assert rd.sorted_layers(keys) == ["W01", "W09", "W10", "W11", "W99", "W100"]
    assert rd.layer_index("W100") == 100 and rd.layer_index("rank_c/Z03") == 3
    assert rd.split_layer_key("Zc101") == ("Zc", 101)
    assert rd.split_layer_key("loss/train") is None
    with pytest.raises(ValueError):
        rd.layer_index("step")


def test_depth_100_trains_and_pairs_metrics_with_their_layers(in_tmp):
    result = invoke("train", "depth=100", "width=4", "steps=2", "name=deep", *QUIET)
    assert result.exit_code == 0, result.output
    run = rd.RunDir(in_tmp / "runs" / "deep")
    final = run.read_metrics()[-1]
    params = rd.read_npz(run.file(rd.PARAMS))
    W = {l: params[rd.layer_name("W", l)].astype(np.float64) for l in (99, 100)}
    assert W[100].shape == (4, 20)  # the output layer, not W10
    assert final["norm/W100"] == pytest.approx(np.sum(W[100] ** 2), rel=1e-4)
    assert final["rank/W100"] == numerical_rank(np.linalg.svd(W[100], compute_uv=False))
    gap = W[100] @ W[100].T - W[99].T @ W[99]
    assert final["balance/W99"] == pytest.approx(np.sqrt(np.sum(gap ** 2)), rel=1e-4)
    spectra = run.read_spectra()
    assert spectra["W100"].shape == (4,) and spectra["W10"].shape == (4,)


def test_end_to_end_product_in_layer_order():
    """The closed form multiplies W01..W100 in layer order (text order fails on shapes)."""
    rng = np.random.default_rng(0)
    dims = [3] + [2] * 99 + [5]
    params = {rd.layer_name("W", l): rng.standard_normal((dims[l - 1], dims[l]))
              for l in range(1, 101)}
    s, L = end_to_end_svals(params)
    M = params["W01"]
    for l in range(2, 101):
        M = M @ params[rd.layer_name("W", l)]
    assert L == 100
    np.testing.assert_allclose(s, np.linalg.svd(M, compute_uv=False)[: len(s)], rtol=1e-9)
