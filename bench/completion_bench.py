"""Matrix completion benchmarks (issue: deep linear completion, arXiv 2305.16038):

* ``completion``: time per SGD step over observed entries of a depth-4 linear net on a
  100 x 100 completion problem, bncli's compiled chunk against eager PyTorch
  (``torch_ref.TorchCompletion``), side by side in one run; the losses agree after 3
  steps on the same entries.
* ``rank_cost``: the dense rank metric (A = W_1...W_L, its singular values, ``rank/A``,
  ``sval/A/k``: ``metrics/end_to_end.py``) per record, as a fraction of the training time
  between two records at the jumps2023 preset's cadence (``metrics.every``): fused into
  the record as the trainer runs it (the target), and stand-alone for comparison.
"""

from __future__ import annotations


import numpy as np

from results import Section, Target
from timing import interleaved, median

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


def bench_completion(opts) -> Section:
    """SGD step on 100 x 100 completion: bncli vs eager PyTorch (module docstring)."""
    import jax

    from benchmarks import _steps_per_call, losses_agree
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
        agree = losses_agree(t_loss, j_loss)
        eager = TorchCompletion(host, data["x"], data["y"], data["obs"], cfg.lam, cfg.lr, bs)
        runners = {"bncli": lambda k: _chunk(batch, k), "eager": eager.run}
        call_s = 0.2 if opts.quick else 0.5
        ks = {name: _steps_per_call(run, call_s, hi=2000) for name, run in runners.items()}
        times = interleaved({n: (lambda run=run, k=ks[n]: run(k)) for n, run in runners.items()},
                            opts.repeats, warmup=0)
        ms = {n: 1e3 * median(ts) / ks[n] for n, ts in times.items()}
        ratios.append(ms["eager"] / ms["bncli"])
        sec.rows.append([bs, f"{ks['bncli']}/{ks['eager']}", ms["bncli"], ms["eager"],
                         f"{ratios[-1]:.2f}×",
                         "yes" if agree else f"NO ({j_loss:.6g} vs {t_loss:.6g})"])
    sec.targets = [Target("completion SGD step vs torch eager (batch 1)", ratios[0], ">=", 1.0)]
    return sec


def _without_end_to_end(overrides: list[str]):
    """A cohort whose metrics program leaves out A = W_1...W_L (the rank metric off),
    traced while ``is_linear_chain`` answers no; the program cache is dropped around it."""
    from bottleneck_cli import metrics
    from bottleneck_cli.programs import forget_programs

    keep = metrics.is_linear_chain
    forget_programs()
    metrics.is_linear_chain = lambda model, params: False
    try:
        _, batch = _batch(overrides)
        batch.evaluate()  # trace and compile now
    finally:
        metrics.is_linear_chain = keep
        forget_programs()
    return batch


def bench_rank_cost(opts) -> Section:
    """The dense rank metric's share of training time at jumps2023's cadence: as the
    trainer pays it (fused into the record) and stand-alone (its own program)."""
    import jax

    from bottleneck_cli import rundir as rd, trajectory
    from bottleneck_cli.convergence import Tracker, balance_identity
    from bottleneck_cli.cohort import _unpack
    from bottleneck_cli.metrics import HOST_SVD, end_to_end, host_svals, summarize_end_to_end
    from bottleneck_cli.records import write_record

    sec = Section(
        "rank_cost", "Dense rank metric: cost per record vs training time",
        "The rank metric of a record (A = W_1...W_L at full precision, its singular values, "
        "`rank/A`, `rank/A_s1_5`, `sval/A/k`, and its share of the run's trajectory "
        "summary) against the training steps between two records, at the `jumps2023` "
        "preset (20 x 20, depth 4, SGD over single entries, `metrics.every` 100) and the "
        "same cadence on 100 x 100. *Fused* is what the trainer pays: A is formed inside "
        "the record's compiled program and decomposed in the record's one batched host "
        "SVD, so its cost is (program with A - program without A) + (batched SVD with A - "
        "without A) + the host summary + the trajectory summary per record, each timed "
        "side by side (round-robin) in this run, minimum over the rounds. *Stand-alone* forms A in a program of its "
        "own, copies it to the host and decomposes it alone (the unfused path). *Whole "
        "record*: the trainer's record (`records.write_record`: program, host spectra and "
        "summaries, convergence tracker, the metrics line and spectra file), for scale.",
        header=["problem", "every", "train ms / interval", "fused rank metric ms",
                "fused share", "stand-alone ms", "stand-alone share", "whole record ms",
                "record share"],
        commands=[".venv/bin/python bench/run.py --only rank_cost"])
    share = None
    for name, ov in (("jumps2023 (20 x 20)", ["+experiment=jumps2023", "optim.name=sgd"]),
                     ("100 x 100, batch 1", COMPLETION + ["optim.batch_size=1",
                                                          "metrics.every=100"])):
        cfg, batch = _batch(ov)
        run = rd.RunDir(opts.tmp / f"rank_cost_{len(sec.rows)}")
        run.path.mkdir(parents=True)
        batch.members[0].run = run
        batch.trackers = [Tracker(cfg.convergence, balance_identity(batch.model, cfg))]
        bare = _without_end_to_end(ov)
        every = int(cfg.metrics.every)
        tol = (cfg.metrics.atol, cfg.metrics.rtol)
        product = jax.jit(lambda p: end_to_end(p))
        params = lambda: {k: v[0] for k, v in batch.state["params"].items()}  # noqa: E731

        def stand_alone():
            A = np.asarray(product(batch.model.weights(params())))
            return summarize_end_to_end(np.linalg.svd(A, compute_uv=False), *tol)

        def program(b):
            return lambda: np.asarray(jax.device_get(b._evaluate(*b._evaluate_args(False))))

        record, arrays = batch.evaluate()[0]
        raw = _unpack(program(batch)(), batch._evaluate.layout)
        host = {k: np.asarray(v[0]) for k, v in raw.items() if k.startswith(HOST_SVD)}
        host_bare = {k: v for k, v in host.items() if k != f"{HOST_SVD}A"}
        n_rec = cfg.steps // every + 1
        recs = [{"step": i * every, **record} for i in range(n_rec)]
        step = [cfg.steps]

        def whole():
            step[0] += every
            write_record(batch, step[0], ["running"])  # its fsyncs run in the background

        fns = {"train": lambda: _chunk(batch, every),
               "prog": program(batch), "prog_bare": program(bare),
               "svd": lambda: host_svals(host), "svd_bare": lambda: host_svals(host_bare),
               "summary": lambda: summarize_end_to_end(arrays["A"], *tol),
               "trajectory": lambda: trajectory.run_summary(recs),
               "stand_alone": stand_alone, "record": whole}
        reps = opts.repeats * (4 if opts.quick else 10)
        # minima: the differences of two noisy medians on a shared machine are noise
        t = {k: 1e3 * min(v) for k, v in interleaved(fns, reps, warmup=2).items()}
        rd.background_io.flush()
        fused = (max(0.0, t["prog"] - t["prog_bare"]) + max(0.0, t["svd"] - t["svd_bare"])
                 + t["summary"] + t["trajectory"] / n_rec)
        pct = lambda ms: f"{100 * ms / t['train']:.2f}%"  # noqa: E731
        sec.rows.append([name, every, t["train"], fused, pct(fused), t["stand_alone"],
                         pct(t["stand_alone"]), t["record"], pct(t["record"])])
        share = 100 * fused / t["train"] if share is None else share
        sec.notes.append(f"{name}, minima in ms: " + ", ".join(
            f"{k} {v:.4g}" for k, v in t.items()) + f" (trajectory: {n_rec} records)")
    sec.targets = [Target(
        "rank metric share of training at jumps2023's cadence (fused, as trained)", share,
        "<=", 5.0, unit="%",
        why_miss="at 20 x 20 an SGD step costs tens of microseconds, so 100 of them are a few "
                 "ms, and a host SVD call and a summary cost tens of microseconds each")]
    return sec
