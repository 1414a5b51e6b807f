"""Leaky ResNet benchmark (arXiv 2405.17573): one full-batch GD step of ``leaky_resnet``
(L = 20, w = 100, N = 1000) through bncli, through a minimal plain-JAX loop of the same
math, and in eager PyTorch (``torch_ref.TorchLeaky``), side by side in one run. The plain
JAX column tells bncli's own overhead apart from JAX-against-PyTorch on this CPU."""

from __future__ import annotations

from results import Section, Target
from timing import interleaved, median


def _plain_jax_leaky_chunk(host: dict, leak: float):
    """A minimal jitted GD chunk of the leaky recursion, loss and update
    (``TorchLeaky``'s docstring has the formulas)."""
    import jax
    import jax.numpy as jnp
    from benchmarks import gd_runner

    names = sorted(k for k in host["params"] if k[0] == "W" and k[1:].isdigit())
    params = {k: jnp.asarray(host["params"][k]) for k in names + ["Win", "Wout"]}
    rho = [float(r) for r in host["params"]["rho"]]
    x, y, lam, lr = jnp.asarray(host["x"]), jnp.asarray(host["y"]), host["lam"], host["lr"]

    def loss(p):
        a = x @ p["Win"]
        for r, w in zip(rho, names):
            s = jnp.concatenate([jax.nn.relu(a), jnp.ones_like(a[:, :1])], axis=1)
            a = (1 - r * leak) * a + r * (s @ p[w])
        fit = jnp.mean(jnp.sum((a @ p["Wout"] - y) ** 2, -1))
        ridge = sum(r * jnp.sum(p[w] ** 2) for r, w in zip(rho, names))
        ridge = ridge + jnp.sum(p["Win"] ** 2) + jnp.sum(p["Wout"] ** 2)
        return fit + lam / (2 * leak) * ridge

    return gd_runner(loss, params, lr)


def bench_leaky(opts) -> Section:
    """A Leaky ResNet step (L = 20, w = 100, N = 1000) against plain JAX and eager PyTorch."""
    from benchmarks import _bncli_loss, _chunk_fn, _host_copy, _steps_per_call, losses_agree
    from torch_ref import TorchLeaky

    from bottleneck_cli import rundir as rd
    from bottleneck_cli.config import load
    from bottleneck_cli.train import Batch, Member

    depth, width, n, leak = 20, 100, 1000, 5.0
    cfg = load(["+experiment=leaky2024", f"model.leak={leak}", "optim=gd", "optim.stages=[]",
                "lr=1e-4", "task.n_test=0"])
    batch = Batch([Member(run=rd.RunDir("unused"), cfg=cfg)])
    host = _host_copy(batch)
    check = TorchLeaky(**host, leak=leak)
    check.run(3)
    batch.run_to(3)
    j_loss, t_loss = _bncli_loss(batch), float(check.loss_fn().detach())
    agree = losses_agree(t_loss, j_loss)
    runners = {"bncli": lambda k: _chunk_fn(batch, k)(),
               "plain": _plain_jax_leaky_chunk(host, leak),
               "eager": TorchLeaky(**host, leak=leak).run}
    call_s = 0.2 if opts.quick else 0.5
    ks = {name: _steps_per_call(run, call_s) for name, run in runners.items()}
    times = interleaved({name: (lambda run=run, k=ks[name]: run(k)) for name, run in runners.items()},
                        opts.repeats, warmup=0)
    ms = {name: 1e3 * median(ts) / ks[name] for name, ts in times.items()}
    ratio = ms["eager"] / ms["bncli"]
    sec = Section(
        "leaky", "Leaky ResNet step: bncli vs plain JAX and PyTorch eager",
        f"Time per full-batch gradient-descent step of `leaky_resnet` (L = {depth}, w = {width}, "
        f"N = {n}, Lt = {leak:g}, the 30 -> 3 -> 30 teacher, float32; loss: MSE + (λ/(2Lt)) "
        "(Σ ρ_l ‖W_l‖² + end maps), `optim=gd`, lr = 1e-4). bncli: `Batch([member]).run_to(...)`; "
        "plain JAX: the same recursion, loss and update as one jitted `fori_loop` "
        "(`bench/leaky_bench.py`), sample-major (`sigma(a) @ W`; bncli multiplies "
        "feature-major, `W^T sigma(a^T)`); PyTorch: the same in a Python loop "
        "(`bench/torch_ref.py::TorchLeaky`), `torch.set_num_threads(2)`; all three from "
        "bncli's parameters and data.",
        header=["L", "w", "N", "k (bncli/plain/eager)", "bncli ms/step", "plain JAX ms/step",
                "eager ms/step", "vs eager (median)", "plain JAX vs eager", "loss agrees"],
        commands=["(in-process; see bench/leaky_bench.py::bench_leaky)"])
    sec.rows.append([depth, width, n, f"{ks['bncli']}/{ks['plain']}/{ks['eager']}", ms["bncli"],
                     ms["plain"], ms["eager"], f"{ratio:.2f}×", f"{ms['eager'] / ms['plain']:.2f}×",
                     "yes" if agree else f"NO ({j_loss:.6g} vs {t_loss:.6g})"])
    over = ms["bncli"] / ms["plain"]
    if over <= 1.0:
        why = (f"bncli ({ms['bncli']:.1f} ms) already beats plain JAX of the same math "
               f"({ms['plain']:.1f} ms) by multiplying feature-major; the rest of the gap to "
               f"eager ({ms['eager']:.1f} ms) is XLA:CPU's matmuls against PyTorch's MKL")
    else:
        why = (f"bncli takes {over:.2f}× the time of plain JAX of the same math "
               f"({ms['bncli']:.1f} against {ms['plain']:.1f} ms; eager {ms['eager']:.1f} ms): "
               "bncli's overhead")
    sec.targets = [Target("leaky_resnet vs torch eager at (20, 100, 1000)", ratio, ">=", 1.0,
                          why_miss=why)]
    return sec
