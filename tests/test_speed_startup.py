"""Start-up work: the fully connected forward pass without Flax, the same as the Flax
module it replaces (to rounding: it multiplies feature-major, so float sums run in another
order), and a ``bncli train`` that never imports Flax."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from bottleneck_cli.models.mlp import MLP, FullyConnected
from bottleneck_cli.rundir import layer_name


def _flax_reference(depth, width, d_out, activation, bias):
    nn = pytest.importorskip("flax.linen")
    acts = {"relu": nn.relu, "tanh": np.tanh, "identity": lambda z: z}

    class Reference(nn.Module):  # the Flax module bncli used before
        @nn.compact
        def __call__(self, x):
            import jax.numpy as jnp

            act = {**acts, "tanh": jnp.tanh}[activation]
            pre, post, a = [], [], x
            for l in range(1, depth + 1):
                fan_out = d_out if l == depth else width
                W = self.param(layer_name("W", l), nn.initializers.zeros, (a.shape[-1], fan_out))
                z = a @ W
                if bias:
                    z = z + self.param(layer_name("b", l), nn.initializers.zeros,
                                       (fan_out,))[None, :]
                if l < depth:
                    pre.append(z)
                    a = act(z)
                    post.append(a)
            return z, {"pre": pre, "post": post}

    return Reference()


@pytest.mark.parametrize("activation,bias", [("relu", True), ("tanh", False),
                                             ("identity", True)])
def test_forward_matches_flax(activation, bias):
    import jax
    import jax.numpy as jnp

    def same(a, b):  # float32 rounding, relative to the array's scale
        b = np.asarray(b)
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-5, atol=1e-5 * np.abs(b).max())

    depth, width, d_in, d_out = 4, 7, 5, 3
    model = MLP(FullyConnected(depth, width, d_out, activation, bias), d_in)
    params = {k: jnp.asarray(v) for k, v in model.init(3).items()}
    params = {k: v + 0.1 * (k[0] == "b") for k, v in params.items()}  # nonzero biases
    x = jnp.asarray(np.random.default_rng(0).standard_normal((11, d_in)), jnp.float32)
    ref = _flax_reference(depth, width, d_out, activation, bias)
    for fwd in (lambda f: f, jax.jit):  # eager and compiled
        y, inter = fwd(lambda p, x: model.module.apply({"params": p}, x))(params, x)
        y_ref, inter_ref = fwd(lambda p, x: ref.apply({"params": p}, x))(params, x)
        same(y, y_ref)
        for key in ("pre", "post"):
            assert len(inter[key]) == depth - 1
            for a, b in zip(inter[key], inter_ref[key]):
                same(a, b)
    g = jax.grad(lambda p: jnp.sum(model.apply(p, x)[0] ** 2))(params)
    g_ref = jax.grad(lambda p: jnp.sum(ref.apply({"params": p}, x)[0] ** 2))(params)
    for k in params:
        same(g[k], g_ref[k])


def test_train_does_not_import_flax(tmp_path):
    code = ("import sys; from bottleneck_cli.cli import main; sys.argv = ['bncli', 'train', "
            f"'depth=2', 'width=4', 'steps=3', 'out={tmp_path}', 'name=r']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'flax' not in sys.modules, 'flax imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"BNCLI_JAX_CACHE": "", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "r" / "summary.json").exists()


def test_records_deferred_while_compiling_are_complete_and_in_order(tmp_path):
    """With a cold cache the metrics program compiles while training goes on; every record
    is still written, once, in step order, before the run ends."""
    import json

    proc = subprocess.run([sys.executable, "-m", "bottleneck_cli.cli", "train", "depth=3",
                           "width=8", "steps=20", "metrics.num_log=8", f"out={tmp_path}",
                           "name=r"], capture_output=True, text=True, timeout=120,
                          env={"BNCLI_JAX_CACHE": "", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    steps = [json.loads(line)["step"] for line in
             (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == 20
    spectra = sorted(int(f.stem) for f in (tmp_path / "r" / "spectra").glob("*.npz"))
    assert spectra == steps
