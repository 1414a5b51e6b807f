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
from bottleneck_cli.report.closed import end_to_end_svals
from bottleneck_cli.metrics import numerical_rank

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


# ---- counts and floats bounded in validation --------------------------------------------


@pytest.mark.parametrize("overrides, words", [
    (["metrics.num_log=1000000000"], ["metrics.num_log=1000000000", "must be <= 100000"]),
    (["width=100000"], ["width=100000"]),
    (["depth=100000"], ["depth=100000"]),
    (["steps=3000000000"], ["steps=3000000000"]),
    (["task.n_train=100000000"], ["task.n_train=100000000"]),
    (["optim.batch_size=100000000"], ["optim.batch_size"]),
    (["sweep.max_members=1000000"], ["sweep.max_members"]),
    (["depth=5000", "width=60000"], ["parameters", "depth, width"]),
    (["task.n_train=5000000", "task.d_in=5000"], ["data entries", "task.n_train"]),
    (["metrics.every=1", "steps=100000000"], ["metrics.every=1", "records"]),
    (["checkpoint.every=1", "steps=100000000"], ["checkpoint.every=1", "records"]),
    (["task=teacher", "task.hidden=60000", "task.teacher_depth=1000"], ["teacher parameters"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) and "=" in v[0] else None)
def test_absurd_counts_are_refused(in_tmp, overrides, words):
    assert_one_line_error(invoke("train", *overrides), in_tmp, *words)


@pytest.mark.parametrize("overrides, words", [
    (["lam=1e39"], ["lam=1e+39", "overflows float32"]),
    (["lr=1e-50"], ["lr=1e-50", "underflows float32"]),
    (["optim.eps=1e-45"], ["optim.eps", "underflows float32"]),
    (["lr=1e-320", "dtype=float64"], ["lr=", "underflows float64"]),
    (["task=low_rank", "task.singular_values=[1e39,1.0]"],
     ["task.singular_values[0]", "overflows float32"]),
], ids=lambda v: " ".join(v) if isinstance(v, list) and "=" in v[0] else None)
def test_floats_outside_the_dtype_are_refused(in_tmp, overrides, words):
    result = invoke("train", *overrides)
    err = assert_one_line_error(result, in_tmp, *words)
    assert "Warning" not in result.output + err


def test_small_float_fits_float64(in_tmp):
    """lr=1e-50 is fine where the run dtype holds it."""
    from bottleneck_cli.config import load

    assert load(["lr=1e-50", "dtype=float64"]).lr == 1e-50


# ---- stop signals during set-up and at exit ---------------------------------------------


def test_stop_during_set_up_is_honoured_before_training(in_tmp, monkeypatch):
    import signal

    from bottleneck_cli import train
    from bottleneck_cli.config import load
    from bottleneck_cli.runs import prepare

    cfg = load(["depth=2", "width=4", "steps=20", *QUIET])
    member = prepare(in_tmp / "runs" / "r", cfg, [])
    real = train.Batch

    def slow_set_up(members):  # SIGTERM arrives while the data and model are built
        signal.raise_signal(signal.SIGTERM)
        return real(members)

    monkeypatch.setattr(train, "Batch", slow_set_up)
    with pytest.raises(train.Interrupted, match="during set-up"):
        train.train_members([member])
    assert member.run.status()["status"] == "interrupted"
    assert member.run.read_metrics() == []  # no step was taken
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_second_ctrl_c_during_exit_is_quiet(tmp_path):
    """An exit hook registered before the stop (as JAX's are) gets a Ctrl-C: no traceback."""
    import subprocess
    import sys

    script = (
        "import atexit, os, signal, time\n"
        "from bottleneck_cli.stopflag import StopFlag\n"
        "def late_hook():\n"
        "    os.kill(os.getpid(), signal.SIGINT); time.sleep(0.2)\n"
        "atexit.register(late_hook)\n"
        "with StopFlag() as stop:\n"
        "    signal.raise_signal(signal.SIGINT)\n"
        "assert stop.signal == signal.SIGINT\n"
        "print('saved')\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "saved"
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr


# ---- damaged or hostile .npz data: one line, exit 2, no run folder ----------------------


def _npz_train(root, path, *extra):
    return invoke("train", "task=npz", f"task.path={path}", "depth=2", "width=4", "steps=2",
                  *QUIET, *extra)


def _good_npz(path, compressed=False):
    rng = np.random.default_rng(0)
    save = np.savez_compressed if compressed else np.savez
    save(path, x_train=rng.standard_normal((20, 3)), y_train=rng.standard_normal((20, 2)))
    return path


def test_npz_members_that_are_not_npy_arrays(in_tmp):
    import zipfile

    with zipfile.ZipFile(in_tmp / "raw.npz", "w") as z:
        z.writestr("x_train", "hello")
        z.writestr("y_train", "hi")
    assert_one_line_error(_npz_train(in_tmp, "raw.npz"), in_tmp, "x_train", "raw.npz",
                          "not a .npy array")


def test_npz_with_flipped_bytes(in_tmp):
    """Every single-bit flip of a compressed file either loads or gives the one-line error."""
    from bottleneck_cli.config import NpzTask
    from bottleneck_cli.tasks import TaskError, make_dataset
    from omegaconf import OmegaConf

    raw = bytearray(_good_npz(in_tmp / "good.npz", compressed=True).read_bytes())
    cfg = OmegaConf.structured(NpzTask(path=str(in_tmp / "bad.npz")))
    refused = []
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        (in_tmp / "bad.npz").write_bytes(bytes(flipped))
        try:
            make_dataset(cfg, 0)
        except TaskError as exc:
            assert "bad.npz" in str(exc) or "x_" in str(exc) or "y_" in str(exc), exc
            refused.append(i)
    assert len(refused) > len(raw) // 2
    # through the CLI: the first flip that damages the file
    flipped = bytearray(raw)
    flipped[refused[0]] ^= 0x01
    (in_tmp / "bad.npz").write_bytes(bytes(flipped))
    assert_one_line_error(_npz_train(in_tmp, "bad.npz"), in_tmp, "bad.npz")


def test_npz_values_beyond_float32(in_tmp):
    np.savez(in_tmp / "big.npz", x_train=np.full((6, 3), 1e39), y_train=np.ones((6, 2)))
    result = _npz_train(in_tmp, "big.npz")
    assert_one_line_error(result, in_tmp, "x_train", "big.npz", "float32")
    assert "Warning" not in result.output
    ok = _npz_train(in_tmp, "big.npz", "dtype=float64")  # finite in float64: trains
    assert ok.exit_code in (0, 3), ok.output


def test_npz_array_too_large_is_refused_before_reading(in_tmp):
    """A header claiming 1e10 entries (a zip bomb) is refused without allocating them."""
    import io
    import zipfile

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (100_000, 100_000)})
    with zipfile.ZipFile(in_tmp / "bomb.npz", "w") as z:
        z.writestr("x_train.npy", buf.getvalue())
        z.writestr("y_train.npy", buf.getvalue())
    assert_one_line_error(_npz_train(in_tmp, "bomb.npz"), in_tmp, "x_train", "entries")


@pytest.mark.parametrize("label, words", [
    (10**9, ["class label 1000000000", "65536 classes"]),
    (70_000, ["class label 70000"]),
])
def test_npz_labels_out_of_range(in_tmp, label, words):
    x = np.random.default_rng(0).standard_normal((6, 3))
    np.savez(in_tmp / "lab.npz", x_train=x, y_train=np.array([0, 1, 2, label, 4, 5]))
    assert_one_line_error(_npz_train(in_tmp, "lab.npz"), in_tmp, "y_train", *words)


def test_one_hot_of_a_large_label_costs_n_times_k(in_tmp):
    """Label 30000 of 6 samples: a (6, 30001) target, built without a 30001^2 identity."""
    import tracemalloc

    from bottleneck_cli.config import NpzTask
    from bottleneck_cli.tasks import make_dataset
    from omegaconf import OmegaConf

    x = np.random.default_rng(0).standard_normal((6, 3))
    np.savez(in_tmp / "lab.npz", x_train=x, y_train=np.array([0, 1, 2, 30000, 4, 5]))
    cfg = OmegaConf.structured(NpzTask(path=str(in_tmp / "lab.npz")))
    tracemalloc.start()
    d = make_dataset(cfg, 0)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert d.y_train.shape == (6, 30001) and d.info["n_classes"] == 30001
    np.testing.assert_array_equal(d.y_train.argmax(1), [0, 1, 2, 30000, 4, 5])
    assert peak < 50 * 2**20, peak  # an identity matrix would take 7.2 GB
