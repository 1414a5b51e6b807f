"""Acceptance: `bncli train` with defaults shows the bottleneck in its own metrics.

The default task is the rank-2 compositional target of SCIENCE.md 5.1 (depth 12).
Slow (~30-60 s on a 2-core CPU): run with `make check-bottleneck` or `make test-slow`.
"""

import json

import pytest
from typer.testing import CliRunner

from bottleneck_cli.cli import app


@pytest.mark.slow
def test_default_train_finds_the_rank_2_bottleneck(in_tmp):
    result = CliRunner().invoke(app, ["train", "name=defaults"])
    assert result.exit_code == 0, result.output
    final = json.loads((in_tmp / "runs/defaults/summary.json").read_text())["final"]
    depth = 12
    middle = [l for l in range(1, depth + 1) if 0.25 <= l / depth <= 0.75]
    # Middle weight matrices: 2-3 singular values near 1, the rest small.
    near_one = [final[f"near_one/W{l:02d}"] for l in middle]
    assert all(2 <= n <= 3 for n in near_one), near_one
    assert final["bottleneck/rank_c"] == 2
    # The uncentered representations carry one more direction (the mean), SCIENCE.md 2.
    assert final["bottleneck/rank"] in (2, 3)
