"""Matrix completion benchmarks (issue: deep linear completion, arXiv 2305.16038):

* ``completion``: time per SGD step over observed entries of a depth-4 linear net on a
  100 x 100 completion problem, bncli's compiled chunk against eager PyTorch
  (``torch_ref.TorchCompletion``), side by side in one run; the losses agree after 3
  steps on the same entries.
* ``rank_cost``: the dense rank metric (A = W_1...W_L, its singular values, ``rank/A``,
  ``sval/A/k``: ``metrics/end_to_end.py``) per record, as a fraction of the training time
  between two records at the jumps2023 preset's cadence (``metrics.every``).
"""

from __future__ import annotations


import numpy as np

from results import Section, Target
from timing import interleaved, median, median_time

COMPLETION = ["model=linear", "task=completion", "task.d_in=100", "task.d_out=100",
              "width=100", "depth=4", "task.rank=5", "task.singular_values=[50,40,30,20,10]",
              "task.observed=0.3", "optim=sgd", "lr=0.01", "lam=1e-4", "metrics.ntk=false",
              "metrics.jacobian_samples=0"]


def _batch(overrides: list[str]):
    from bottleneck_cli import rundir as rd
    from bottleneck_cli.config import load
    from bottleneck_cli.train import Batch, Member

    cfg = load(overrides)
    return cfg, Batch([Member(run=rd.RunDir("unused"), cfg=cfg)])


def _chunk(batch, k: int) -> None:
    import jax

    batch.run_to(int(batch.state["step"]) + k)
    jax.block_until_ready(batch.state)


def _steps_per_call(run_k, target_s: float) -> int:
    per_two, _ = median_time(lambda: run_k(2), repeats=3, warmup=1)
    return int(min(2000, max(3, round(target_s / (per_two / 2)))))


def bench_completion(opts) -> Section:
    """SGD step on 100 x 100 completion: bncli vs eager PyTorch (module docstring)."""
    import jax

    from torch_ref import TorchCompletion

    from bottleneck_cli.objective import objective
    from bottleneck_cli.steps import entry_batch

    sec = Section(
        "completion", "Completion SGD step: bncli vs PyTorch eager",
        "Time per SGD step over observed entries (`task=completion`, 100 x 100 target of rank "
        "5, 30% observed, `model=linear` depth 4 width 100, float32, lr 0.01, lam 1e-4; each "
        "step forms A = W_1...W_4 and fits a minibatch of observed entries). bncli: "
        "`Batch([member]).run_to(...)` (one fused loop); PyTorch: the same product, loss and "
        "update in a Python loop (`bench/torch_ref.py::TorchCompletion`, 2 threads, uniform "
        "entry draws), from bncli's parameters and data.",
        header=["batch (entries)", "k (bncli/eager)", "bncli ms/step", "eager ms/step",
                "vs eager (median)", "loss agrees"],
        commands=[".venv/bin/python bench/run.py --only completion"])
    ratios = []
    for bs in (1, 100):
        cfg, batch = _batch(COMPLETION + [f"optim.batch_size={bs}"])
        host = {k: np.array(v[0], copy=True)
                for k, v in jax.device_get(batch.state["params"]).items()}
        data = {k: np.asarray(v[0]) for k, v in batch.data.items()}
        ref = TorchCompletion(host, data["x"], data["y"], data["obs"], cfg.lam, cfg.lr, bs)
        key, n_obs = batch.hyper["key"][0], len(data["obs"])
        same = [data["obs"][np.asarray(entry_batch(key, t, n_obs, bs, False))] for t in range(3)]
        ref.run(3, same)
        _chunk(batch, 3)
        params = {k: v[0] for k, v in batch.state["params"].items()}
        j_loss = float(objective(batch.model, params, batch.data["x"][0], batch.data["y"][0],
                                 cfg.lam, "mse", False, batch.data["mask"][0])[0])
        t_loss = ref.full_loss()
        agree = abs(t_loss - j_loss) <= 1e-4 * max(1.0, abs(j_loss))
        eager = TorchCompletion(host, data["x"], data["y"], data["obs"], cfg.lam, cfg.lr, bs)
        runners = {"bncli": lambda k: _chunk(batch, k), "eager": eager.run}
        call_s = 0.2 if opts.quick else 0.5
        ks = {name: _steps_per_call(run, call_s) for name, run in runners.items()}
        times = interleaved({n: (lambda run=run, k=ks[n]: run(k)) for n, run in runners.items()},
                            opts.repeats, warmup=0)
        ms = {n: 1e3 * median(ts) / ks[n] for n, ts in times.items()}
        ratios.append(ms["eager"] / ms["bncli"])
        sec.rows.append([bs, f"{ks['bncli']}/{ks['eager']}", ms["bncli"], ms["eager"],
                         f"{ratios[-1]:.2f}×",
                         "yes" if agree else f"NO ({j_loss:.6g} vs {t_loss:.6g})"])
    sec.targets = [Target("completion SGD step vs torch eager (batch 1)", ratios[0], ">=", 1.0)]
    return sec


def bench_rank_cost(opts) -> Section:
    """The dense rank metric's share of training time at jumps2023's cadence."""
    import jax

    from bottleneck_cli.metrics import end_to_end, summarize_end_to_end

    sec = Section(
        "rank_cost", "Dense rank metric: cost per record vs training time",
        "The rank metric of a record (A = W_1...W_L at full precision, its singular values "
        "on the host as on the CPU backend, `rank/A`, `rank/A_s1_5`, `sval/A/k`) against the "
        "training steps between two records, at the `jumps2023` preset (20 x 20, depth 4, SGD "
        "over single entries, `metrics.every` 100) and the same cadence on 100 x 100. Also "
        "the whole metrics record (`Batch.evaluate()`: losses, gradients, every layer's "
        "spectrum) for comparison.",
        header=["problem", "every", "train ms / interval", "rank metric ms",
                "of which host SVD + summary ms", "rank share",
                "whole record ms", "record share"],
        commands=[".venv/bin/python bench/run.py --only rank_cost"])
    share = None
    for name, ov in (("jumps2023 (20 x 20)", ["+experiment=jumps2023", "optim.name=sgd"]),
                     ("100 x 100, batch 1", COMPLETION + ["optim.batch_size=1",
                                                          "metrics.every=100"])):
        cfg, batch = _batch(ov)
        every = int(cfg.metrics.every)
        tol = (cfg.metrics.atol, cfg.metrics.rtol)
        product = jax.jit(lambda p: end_to_end(p))

        def rank_metric():
            params = {k: v[0] for k, v in batch.state["params"].items()}
            A = np.asarray(product(batch.model.weights(params)))
            return summarize_end_to_end(np.linalg.svd(A, compute_uv=False), *tol)

        A0 = np.asarray(product(batch.model.weights({k: v[0] for k, v in
                                                     batch.state["params"].items()})))
        host = lambda: summarize_end_to_end(np.linalg.svd(A0, compute_uv=False), *tol)  # noqa: E731
        train, _ = median_time(lambda: _chunk(batch, every), repeats=opts.repeats, warmup=1)
        rank, _ = median_time(rank_metric, repeats=opts.repeats * 4, warmup=2)
        svd, _ = median_time(host, repeats=opts.repeats * 4, warmup=2)
        record, _ = median_time(batch.evaluate, repeats=opts.repeats, warmup=1)
        sec.rows.append([name, every, 1e3 * train, 1e3 * rank, 1e3 * svd,
                         f"{100 * rank / train:.2f}%",
                         1e3 * record, f"{100 * record / train:.1f}%"])
        share = 100 * rank / train if share is None else share
    sec.targets = [Target(
        "rank metric share of training at jumps2023's cadence", share, "<=", 5.0, unit="%",
        why_miss="at 20 x 20 an SGD step costs tens of microseconds, so 100 of them are a few "
                 "ms; the stand-alone metric pays a dispatch and a device-to-host copy of A "
                 "(fused into the record's program in training) besides the SVD")]
    return sec
