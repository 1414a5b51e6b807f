"""Image tasks for the cnn family: digits as images (classification and a one-class
autoencoder), the texture task, 4-D .npz inputs and their errors, and the CLI."""

import json

import numpy as np
import pytest
from omegaconf import OmegaConf
from typer.testing import CliRunner

from bottleneck_cli.cli import app
from bottleneck_cli.config import TASK_FAMILIES
from bottleneck_cli.tasks import TaskError, make_dataset


def cfg(name, **kw):
    c = OmegaConf.structured(TASK_FAMILIES[name])
    for k, v in kw.items():
        c[k] = v
    return c


def test_digits_are_images_and_the_digit_autoencoder():
    d = make_dataset(cfg("digits", n_train=50, n_test=20), 0)
    assert d.x_train.shape == (50, 8, 8, 1) and d.d_in == 64 and d.classification
    ae = make_dataset(cfg("digits", n_train=100, n_test=50, digit=0), 0)
    assert ae.x_train.shape == (100, 8, 8, 1) and ae.y_train.shape == (100, 64)
    assert not ae.classification and ae.loss == "mse" and ae.info["digit"] == 0
    np.testing.assert_array_equal(ae.y_train, ae.x_train.reshape(100, -1))
    assert 0 < ae.n_test <= 50  # the rest of the ~178 zeros
    with pytest.raises(TaskError, match="class 0"):
        make_dataset(cfg("digits", n_train=500, digit=0), 0)


def test_texture_lives_on_shape_frequencies_shifted_by_the_pattern():
    d = make_dataset(cfg("texture", n_train=40, n_test=8, size=16, shape_freq=1,
                         pattern_freq=4), 3)
    assert d.x_train.shape == (40, 16, 16, 1) and d.y_train.shape == (40, 256)
    np.testing.assert_allclose(d.y_train, d.x_train.reshape(40, -1))
    assert np.mean(d.x_train ** 2) == pytest.approx(1.0, rel=1e-5)
    power = np.sum(np.abs(np.fft.fft2(d.x_train[..., 0].astype(float))) ** 2, axis=0)
    sig = lambda k: min(k % 16, -k % 16)  # noqa: E731 - |signed frequency|
    allowed = np.array([[any(abs(sig(i) - a) <= 1 for a in (4,)) and
                         any(abs(sig(j) - a) <= 1 for a in (4,)) for j in range(16)]
                        for i in range(16)])
    assert power[~allowed].max() < 1e-8 * power.max()  # only k_s ± (±4, ±4)
    # the shapes span (2 shape_freq + 1)^2 = 9 real dimensions
    assert np.linalg.matrix_rank(d.x_train.reshape(40, -1), tol=1e-6) == 9 == d.info["shape_dim"]
    again = make_dataset(cfg("texture", n_train=40, n_test=8), 3)
    np.testing.assert_array_equal(again.x_test, make_dataset(cfg("texture", n_train=40, n_test=8), 3).x_test)
    with pytest.raises(TaskError, match="below"):
        make_dataset(cfg("texture", size=8, pattern_freq=5), 0)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_npz_images(tmp_path):
    rng = np.random.default_rng(0)
    p = _npz(tmp_path / "img.npz", x_train=rng.random((10, 6, 6, 2)), y_train=np.arange(10) % 3,
             x_test=rng.random((4, 6, 6, 2)), y_test=np.arange(4) % 3)
    d = make_dataset(cfg("npz", path=p), 0)
    assert d.x_train.shape == (10, 6, 6, 2) and d.x_test.shape == (4, 6, 6, 2) and d.d_out == 3
    no_test = make_dataset(cfg("npz", path=_npz(tmp_path / "n.npz", x_train=rng.random((5, 6, 6, 1)),
                                                  y_train=rng.random((5, 2)))), 0)
    assert no_test.x_test.shape == (0, 6, 6, 1)


@pytest.mark.parametrize("arrays,msg", [
    (dict(x_train=np.zeros((4, 6, 6)), y_train=np.zeros((4, 1))), "2-D .* or 4-D"),
    (dict(x_train=np.zeros((4, 6, 6, 1, 1)), y_train=np.zeros((4, 1))), "2-D .* or 4-D"),
    (dict(x_train=np.zeros((4, 6, 6, 1)), y_train=np.zeros((4, 1)),
          x_test=np.zeros((2, 6, 6, 3)), y_test=np.zeros((2, 1))), "channels"),
    (dict(x_train=np.zeros((4, 6, 6, 1)), y_train=np.zeros((4, 1)),
          x_test=np.zeros((2, 36)), y_test=np.zeros((2, 1))), "both 4-D"),
])
def test_npz_image_errors_are_one_line_without_a_run_folder(in_tmp, arrays, msg):
    import re

    path = _npz(in_tmp / "bad.npz", **arrays)
    with pytest.raises(TaskError, match=msg):
        make_dataset(cfg("npz", path=path), 0)
    result = CliRunner().invoke(app, ["train", "model=cnn", "task=npz", f"task.path={path}"])
    assert result.exit_code == 2
    assert re.search(msg, result.output) and len(result.output.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()


@pytest.mark.parametrize("args,msg", [
    (["model=cnn", "task=compositional"], "image inputs"),
    (["model=cnn", "task=digits", "model.head=map"], "head=map"),
    (["model=cnn", "task=digits", "model.head=mean"], "model.head"),
    (["model=cnn", "task=digits", "model.kernel=0"], "model.kernel"),
    (["model=cnn", "task=digits", "task.digit=12"], "task.digit"),
])
def test_model_and_data_mismatch_is_a_one_line_error(in_tmp, args, msg):
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 2, result.output
    assert msg in result.output and len(result.output.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()


def test_train_cnn_on_digits_images(in_tmp):
    """`bncli train model=cnn task=digits` at a tiny size: trains, records the per-frequency
    spectra and the CBN keys, and the classifier beats chance on the training set."""
    result = CliRunner().invoke(app, [
        "train", "model=cnn", "task=digits", "task.n_train=60", "task.n_test=20",
        "task.n_classes=3", "depth=3", "width=6", "steps=60", "lr=0.02", "lam=1e-4",
        "metrics.num_log=2", "name=c"])
    assert result.exit_code == 0, result.output
    final = json.loads((in_tmp / "runs/c/summary.json").read_text())["final"]
    assert final["acc/train"] > 0.5
    for key in ("cbn/W01", "cbn/W02", "cbn_c/Z01", "bottleneck/cbn_rank", "cbn/deg0",
                "norm/per_depth", "jac/rank"):
        assert key in final
    assert 0 < final["jac/rank"] <= 3
    spectra = sorted((in_tmp / "runs/c/spectra").glob("*.npz"))
    with np.load(spectra[-1]) as f:
        assert f["FW01"].shape == (8, 8, 1) and f["FW02"].shape == (8, 8, 6)
        assert f["FZ01"].shape == (8, 8, 6) and f["FZc02"].shape == (8, 8, 6)
