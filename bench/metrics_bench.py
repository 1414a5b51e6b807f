"""Cost of the metrics records: a default run against the same run with only the first
and last records (and densely recorded, for one record's cost inside a run), with and
without the NTK; and the parts of one record timed in isolation (``worker.py``)."""

from __future__ import annotations

from results import UNEXPLAINED, Section, Target
from timing import median


DENSE_EVERY = 50  # the densely recorded variant: a record every this many steps


def bench_metrics(opts) -> Section:
    from benchmarks import _fresh, _list, _worker
    from bottleneck_cli.config import load
    from bottleneck_cli.train import metric_steps

    base = load([])
    extra = ["steps=30"] if opts.quick else []
    # "default metrics" and the NTK setting the default does not use (ntk=false if the
    # default computes the NTK, else ntk=true), each with and without log-spaced records
    other = "metrics.ntk=false" if base.metrics.ntk else "metrics.ntk=true"
    dense = ["metrics.num_log=0", f"metrics.every={DENSE_EVERY}"]
    variants = {
        "default": extra,
        "default, num_log=0": extra + ["metrics.num_log=0"],
        "default, dense": extra + dense,
        other: extra + [other],
        f"{other}, num_log=0": extra + [other, "metrics.num_log=0"],
        f"{other}, dense": extra + [other] + dense,
    }
    cache, out = _fresh(opts, "metrics-cache"), _fresh(opts, "metrics-runs")
    env = {"BNCLI_JAX_CACHE": str(cache)}
    res, cmd = _worker("metrics", {"variants": variants, "root": str(out),
                                   "repeats": 1 if opts.quick else 3,
                                   "warmup": not opts.quick}, env)
    times = res["times"]
    med = {k: median(v) for k, v in times.items()}
    over = {k: 100 * (med[k] / med[f"{k}, num_log=0"] - 1) for k in ("default", other)}
    # where a record's time goes, per variant (one more process each)
    cost = {} if opts.quick else \
        {k: _worker("record-cost", {"overrides": variants[k],
                                    "root": str(_fresh(opts, f"metrics-cost-{i}"))}, env)[0]
         for i, k in enumerate(("default", other))}
    steps = 30 if opts.quick else base.steps
    # a record's cost inside the run (its host part overlaps the next chunk's training):
    # the extra time of the densely recorded run per extra record, in isolated steps
    n_dense = len(metric_steps(load(extra + dense))) - 2
    in_run = {k: (med[f"{k}, dense"] - med[f"{k}, num_log=0"]) / n_dense / cost[k]["step_s"]
              for k in cost}
    sec = Section(
        "metrics", "cost of metrics at the default cadence",
        f"Wall time of one default-config run (depth {base.depth}, width {base.width}, "
        f"N = {base.task.n_train}, optim {base.optim.name}, {steps} steps, metrics.num_log = "
        f"{base.metrics.num_log}, metrics.ntk = {str(base.metrics.ntk).lower()}, "
        f"jacobian_samples = {base.metrics.jacobian_samples}) through `train_members([member])` "
        "in one process, against the same run with `metrics.num_log=0` (only step 0 and the "
        "final step recorded); likewise with the NTK setting flipped. An untimed short first "
        "pass fills the persistent compilation cache; then the variants run interleaved. "
        "A second table times the parts of one record in isolation.",
        header=["variant", "overrides", "median run time", "all repeats"],
        rows=[[k, " ".join(variants[k]) or "(none)", f"{med[k]:.2f} s", _list(times[k])]
              for k in variants],
        commands=[cmd, "# record breakdown: bench/worker.py record-cost, one per variant"])
    lines = ["Where one record's time goes (one member, medians of 5; predicted overhead = "
             "(records − 2) × record time / (steps × step time)); the last column is one "
             f"record's cost inside a run: (time(dense) − time(num_log=0)) / {n_dense} extra "
             f"records, in steps (`dense`: a record every {DENSE_EVERY} steps). Inside a run "
             "the host part of a record (singular values, summaries, writing) overlaps the "
             "next chunk's training.", "",
             "| variant | records | one step | Batch.evaluate() | of which the program | "
             "write spectra + metrics | one record in steps | predicted overhead | one record "
             "in a run, in steps |", "|---|---|---|---|---|---|---|---|---|"]
    why = {"default": UNEXPLAINED, other: UNEXPLAINED}
    for k, c in cost.items():
        rec_s = c["evaluate_s"] + c["write_s"]
        predicted = 100 * (c["records"] - 2) * rec_s / (c["steps"] * c["step_s"])
        lines.append(f"| {k} | {c['records']} | {1e3 * c['step_s']:.2f} ms | "
                     f"{1e3 * c['evaluate_s']:.1f} ms | {1e3 * c['program_s']:.1f} ms | "
                     f"{1e3 * c['write_s']:.1f} ms | "
                     f"{rec_s / c['step_s']:.0f} | {predicted:.1f}% | {in_run[k]:.1f} |")
        why[k] = (f"{c['records'] - 2} extra records × {1e3 * rec_s:.0f} ms each "
                  f"(evaluate {1e3 * c['evaluate_s']:.0f} ms + writing {1e3 * c['write_s']:.0f}"
                  f" ms ≈ {rec_s / c['step_s']:.0f} training steps of "
                  f"{1e3 * c['step_s']:.2f} ms) "
                  f"over {c['steps']} steps predicts {predicted:.1f}%")
        if predicted > 4:
            why[k] += (f"; one record costs {rec_s / c['step_s']:.0f} steps where DESIGN.md "
                       "counts 2-3, so the records must get cheaper (Batch.evaluate: SVDs, "
                       "Jacobian" + (", NTK" if "ntk=true" in k or (k == "default" and
                                                                   base.metrics.ntk) else "")
                       + ") or fewer.")
        else:
            why[k] += ("; the rest of the overhead is outside the records themselves and "
                       "not measured apart here.")
    sec.extra = "\n".join(lines) if cost else ""
    ntk_false, ntk_true = ("default", other) if not base.metrics.ntk else (other, "default")
    sec.targets = [Target("metrics overhead, default metrics (ntk=false)", over[ntk_false],
                          "<=", 5, unit="%", why_miss=why[ntk_false]),
                   Target("one record with metrics.ntk=true, inside a run",  # None with --quick
                          in_run.get(ntk_true), "<=", 10, unit=" steps",
                          why_miss=_ntk_record_why(cost, in_run, ntk_true, ntk_false))]
    sec.notes.append("overhead = time(default num_log) / time(num_log=0) − 1; both include the "
                     "start-up work every run pays (data, init, tracing, loading compiled "
                     f"programs). The ntk=false figure is the `{ntk_false}` row; with NTK the "
                     f"overhead is {over[ntk_true]:.1f}%.")
    return sec


def _ntk_record_why(cost: dict, in_run: dict, ntk_true: str, ntk_false: str) -> str:
    if not cost:
        return UNEXPLAINED
    prog, step = cost[ntk_true]["program_s"], cost[ntk_true]["step_s"]
    extra = prog - cost[ntk_false]["program_s"]
    return (f"a record without the NTK costs {in_run[ntk_false]:.1f} steps in a run (about its "
            f"metrics program: the host part overlaps the training). With the NTK the program "
            f"takes {1e3 * prog:.1f} ms ({prog / step:.0f} steps), {1e3 * extra:.1f} ms more: the "
            "exact trace (one forward and d_out backward passes) and the top eigenvalue "
            "(Lanczos, stopped once converged: 6-8 jvp/vjp pairs, each about a training "
            "step). XLA:CPU runs one program at a time, so the program does not overlap the "
            "training.")
