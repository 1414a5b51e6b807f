"""The mixed lazy/active family (arXiv 2405.17580): the reduced simulation against the
full one and the NumPy port of the official loop, the Wishart draw, the official
stopping and step-size rules, the recorded metrics, and bad configs."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from typer.testing import CliRunner

from bottleneck_cli.cli import app
from bottleneck_cli.models import mixed_sim as sim
from bottleneck_cli.models.mixed import bartlett, reduce_full, step_size, width_of
from bottleneck_cli.models.mixed_ref import official_run, official_stop
from bottleneck_cli.tasks import mixed_target_matrices


def _rules(steps=750, **kw):
    rules = {"plateau_delta": 2e-4, "plateau_drop": 1e-2, "steps": steps,
             "stop_increasing": 3, "stop_train": 1e-3}
    rules.update(kw)
    return rules


def _simulate(params, y, a_star, eta, steps, sc=False, c=0.0):
    """Our recursion, one iteration at a time: (A before each iteration, losses, gens,
    final state)."""
    import jax

    state = sim.init_state(params, y, a_star, sc)
    const = {"Y": y, "A_star": a_star, "eta": eta, "c": c}
    step = jax.jit(lambda s: sim.iterate(s, const, _rules(steps)))
    a_seq, losses, gens = [], [], []
    while not bool(state["done"]):
        a_seq.append(np.asarray(state["P2"]).T @ np.asarray(state["P1"]))
        state, (loss, gen, _, _) = step(state)
        losses.append(float(loss))
        gens.append(float(gen))
    return a_seq, losses, gens, state


@pytest.mark.parametrize("d,w", [(3, 7), (5, 16), (4, 40)])
def test_reduced_equals_full_and_official_port(d, w):
    """One Gaussian draw M = [W1, W2^T] (w x 2d): the reduced run from R (M = QR) and the
    full run from M give the same A at every iteration, the same losses as the NumPy
    port of main.ipynb's loop, and the same stopping iteration (float64, 1e-9)."""
    from jax import enable_x64

    cfg = SimpleNamespace(d=d, rank=2, noise=1.0)
    a_star, e = mixed_target_matrices(cfg, seed=3)
    sigma2 = 0.3
    m = np.sqrt(sigma2) * np.random.default_rng(d * w).standard_normal((w, 2 * d))
    r = reduce_full(m)
    eta = 1.0 / (5 * np.linalg.norm(a_star, 2))
    steps = 60
    with enable_x64(True):
        full = _simulate({"P1": m[:, :d], "P2": m[:, d:]}, a_star + e, a_star, eta, steps)
        red = _simulate({"P1": r[:, :d], "P2": r[:, d:]}, a_star + e, a_star, eta, steps)
    ref = official_run(m[:, :d], m[:, d:].T, a_star, e, eta, k=2, steps=steps)
    assert len(full[0]) == len(red[0]) == len(ref[0]) >= 5
    for a_full, a_red in zip(full[0], red[0]):
        np.testing.assert_allclose(a_red, a_full, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(red[1], ref[0], rtol=1e-9)
    np.testing.assert_allclose(red[2], ref[1], rtol=1e-9)
    assert int(red[3]["stop_it"]) == ref[7]


def test_bartlett_matches_gaussian_gram_moments():
    """R^T R from the Bartlett draw has the moments of M^T M for a w x 2d Gaussian M:
    the blocks W1^T W1, W2 W2^T (mean w sigma^2 I, entry variance w sigma^4 (1 + delta_ij))
    and W2 W1 (mean 0, variance w sigma^4). Monte Carlo, 4000 draws: means within 5
    standard errors, variances within 15% (their relative standard error is ~3%)."""
    d, w, sigma2, n = 3, 10, 0.5, 4000
    rng = np.random.default_rng(0)
    grams = np.stack([(lambda r: r.T @ r)(bartlett(rng, 2 * d, w, np.sqrt(sigma2)))
                      for _ in range(n)])
    direct = np.stack([(lambda m: m.T @ m)(np.sqrt(sigma2) * rng.standard_normal((w, 2 * d)))
                       for _ in range(n)])
    var = w * sigma2 ** 2 * (1 + np.eye(2 * d))
    mean = w * sigma2 * np.eye(2 * d)
    for sample in (grams, direct):
        se = np.sqrt(var / n)
        assert np.all(np.abs(sample.mean(0) - mean) < 5 * se)
        np.testing.assert_allclose(sample.var(0), var, rtol=0.15)
    blocks = {"W1^T W1": (slice(0, d), slice(0, d)), "W2 W2^T": (slice(d, None), slice(d, None)),
              "W2 W1": (slice(d, None), slice(0, d))}
    for name, (i, j) in blocks.items():
        ours, theirs = grams[:, i, j], direct[:, i, j]
        se = np.sqrt(ours.var(0) / n + theirs.var(0) / n)
        assert np.all(np.abs(ours.mean(0) - theirs.mean(0)) < 5 * se), name
    assert np.all(np.triu(grams[0]) is not None)
    r = bartlett(rng, 4, 4)
    assert np.allclose(np.tril(r, -1), 0) and np.all(np.diag(r) > 0)


def _our_stop(losses, gens, steps=750):
    import jax.numpy as jnp

    carry = {"loss0": jnp.float32(0), "loss_prev": jnp.float32(0),
             "gen_prev": jnp.float32(0), "inc": jnp.int32(0)}
    for i, (loss, gen) in enumerate(zip(losses, gens)):
        carry, stop, reason = sim.stop_update(carry, i, jnp.float32(loss), jnp.float32(gen),
                                              _rules(steps))
        if bool(stop):
            return i, int(reason)
    return len(losses) - 1, -1


def _trajectories():
    rng = np.random.default_rng(7)
    down = np.linspace(2.0, 0.5, 40)
    yield "train below 1e-3", np.r_[down[:7], 5e-4, down[8:]], down + 1.0
    yield "test rises (after i>3)", down, np.r_[np.linspace(5, 1, 9), 1.5, 2.0, np.ones(29)]
    yield "test rises from the start", down, np.arange(40.0)
    yield "plateau", np.r_[np.linspace(2, 1, 12), np.full(28, 1.0) + 1e-5 * np.arange(28)], \
        np.linspace(3, 1, 40)
    yield "flat from the start (no drop)", np.full(40, 1.0), np.linspace(3, 1, 40)
    for k in range(30):
        walk = np.cumsum(rng.normal(-0.01, 0.02, 120)) + 2
        gwalk = np.cumsum(rng.normal(-0.02, 0.05, 120)) + 3
        yield f"random {k}", np.abs(walk), gwalk


@pytest.mark.parametrize("steps", [750, 25])
def test_stopping_rules_reproduce_official_counts(steps):
    """On fixed trajectories (loss_i, gen_i), our stopping machine breaks at the same
    iteration as main.ipynb's loop, with the reason of the first rule that fires."""
    seen = set()
    for name, losses, gens in _trajectories():
        ours, reason = _our_stop(losses, gens, steps)
        assert ours == official_stop(losses, gens, steps=steps), name
        seen.add(reason)
    if steps == 750:
        assert {1, 2, 3} <= seen
    else:
        assert 0 in seen


def test_step_size_switches_at_the_active_lazy_line():
    d, op = 200, 3.0
    lazy = step_size(-1.2, 2.3, d, op)  # gamma_sigma + gamma_w = 1.1 > 1
    assert lazy == pytest.approx(1 / (50 * width_of(d, 2.3) * d ** -1.2))
    assert step_size(-1.4, 2.3, d, op) == pytest.approx(1 / (50 * op))  # 0.9
    assert step_size(-1.0, 2.0, d, op) == pytest.approx(1 / (50 * op))  # = 1: official '>'
    assert step_size(-1.0, 2.0, d, op, factor=5) == pytest.approx(1 / (5 * op))
    assert width_of(200, 2.8) == int(200 ** 2.8)


def test_self_consistent_step_is_the_papers_formula():
    """One step of B <- B - eta [(BB^T + c^2 I)^(1/2) G + G (B^T B + c^2 I)^(1/2)] against
    square roots from eigendecompositions (float64)."""
    from jax import enable_x64

    rng = np.random.default_rng(1)
    b, y = rng.standard_normal((2, 5, 5))
    eta, c = 0.01, 0.7

    def root(s):
        lam, v = np.linalg.eigh(s)
        return (v * np.sqrt(lam)) @ v.T

    g = b - y
    want = b - eta * (root(b @ b.T + c * c * np.eye(5)) @ g + g @ root(b.T @ b + c * c * np.eye(5)))
    with enable_x64(True):
        got = np.asarray(sim._sc_step(b, y, eta, c))
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_train_records_the_phase_metrics(in_tmp):
    """One grid point through ``bncli train``: per-iteration records, and the final
    phase metrics agree with them and with the spectra at the minimum."""
    args = ["train", "model=mixed", "task=mixed_target", "task.d=8", "task.rank=2",
            "model.gamma_w=1.9", "model.gamma_sigma=-1.6", "model.sv_every=5", "name=pt"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "pt"
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    final = json.loads((run / "summary.json").read_text())["final"]
    tests = np.array([r["loss/test"] for r in recs])
    assert [r["step"] for r in recs] == list(range(len(recs)))
    assert final["phase/iters"] == recs[-1]["step"]
    assert final["phase/min_test"] == pytest.approx(tests.min(), rel=1e-6)
    assert final["phase/argmin"] == int(np.argmin(tests))
    assert final["phase/w"] == int(8 ** 1.9) and final["phase/reduced"] == 1
    assert "dist/sc" in recs[0] and recs[0]["dist/sc"] == 0.0
    s = np.load(run / "spectra" / f"{final['phase/argmin']:08d}.npz")["A"]
    assert final["phase/stable_rank"] == pytest.approx(np.sum(s ** 2) / s[0] ** 2, rel=1e-5)
    assert final["phase/num_rank"] == int(np.sum(s > s[0] / 5))
    assert final["phase/sv_ratio"] == pytest.approx(s[1] / s[2], rel=1e-5)
    assert sorted(int(p.stem) for p in (run / "spectra").glob("*.npz"))[:2] == [0, 5]


@pytest.mark.parametrize("args,needle", [
    (["task.d=4", "task.rank=5"], "task.rank=5 must be <= task.d=4"),
    (["model.gamma_w=nan"], "must be a finite number"),
    (["model.gamma_w=-1"], "model.gamma_w=-1"),
    (["model.gamma_w=0.5", "model.exact_width=true"], "needs width >= 2d"),
    (["task=low_rank"], "go together"),
])
def test_bad_configs_are_one_line_errors(in_tmp, args, needle):
    base = ["train", "model=mixed", "task=mixed_target"]
    result = CliRunner().invoke(app, base + args)
    assert result.exit_code == 2, result.output
    assert needle in result.output and len(result.output.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()


def test_empty_grid_is_a_one_line_error(in_tmp):
    result = CliRunner().invoke(app, ["sweep", "+experiment=mixed2024_small",
                                      "model.gamma_w=range(3,1)"])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (in_tmp / "runs").exists()
