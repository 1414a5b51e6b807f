"""Measurements that need a fresh process of their own (a JAX cache setting fixed at start,
no JAX state left over from other benchmarks). ``bench/run.py`` calls

    python bench/worker.py NAME '<json arguments>'

and reads the last line, ``RESULT <json>``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _member(overrides: list[str], root: Path):
    from bottleneck_cli.config import load
    from bottleneck_cli.runs import prepare

    cfg = load(overrides)
    cfg.name, cfg.out = Path(root).name, str(Path(root).parent)
    return prepare(Path(root), cfg, overrides)


def compile_time(depths: list[int], width: int, n: int, repeats: int) -> dict:
    """First ``run_to(1)`` minus a second ``run_to(2)``: the chunk's trace + compile time.
    Every repeat forgets the cached programs and builds a new ``Batch``, so it compiles again."""
    import jax

    from bottleneck_cli import rundir as rd
    from bottleneck_cli.config import load
    from bottleneck_cli.train import Batch, Member, configure_jax, forget_programs

    configure_jax(False)  # BNCLI_JAX_CACHE="" here: no persistent cache
    out = {str(d): [] for d in depths}
    for _ in range(repeats):
        for d in depths:
            forget_programs()  # or the new Batch would reuse the program compiled before
            cfg = load([f"depth={d}", f"width={width}", f"task.n_train={n}"])
            batch = Batch([Member(run=rd.RunDir("unused"), cfg=cfg)])
            t = time.perf_counter()
            batch.run_to(1)
            jax.block_until_ready(batch.state)
            first = time.perf_counter() - t
            t = time.perf_counter()
            batch.run_to(2)
            jax.block_until_ready(batch.state)
            second = time.perf_counter() - t
            out[str(d)].append(first - second)
    return {"compile_s": out, "cache_dir": jax.config.jax_compilation_cache_dir}


def inproc_sweep(common: list[str], lrs: list[str], root: str) -> dict:
    """The sweep's members trained one after another in this process: train_members x N."""
    from bottleneck_cli.train import train_members

    t = time.perf_counter()
    statuses = []
    for i, lr in enumerate(lrs):
        member = _member(common + [f"lr={lr}"], Path(root) / f"m{i}")
        statuses += train_members([member])
    return {"train_s": time.perf_counter() - t, "statuses": statuses}


def metrics_cost(variants: dict[str, list[str]], root: str, repeats: int,
                 warmup: bool = True) -> dict:
    """Wall time of train_members for each variant (a list of overrides), interleaved;
    a first, short pass is a warmup that fills the persistent compilation cache."""
    from bottleneck_cli.train import train_members

    times: dict[str, list[float]] = {k: [] for k in variants}
    k = 0
    for r in range(0 if warmup else 1, repeats + 1):
        for name, overrides in variants.items():
            if r == 0:  # warmup: the same programs, fewer steps
                overrides = [o for o in overrides if not o.startswith("steps=")] + ["steps=30"]
            member = _member(overrides, Path(root) / f"{k:03d}")
            k += 1
            t = time.perf_counter()
            status = train_members([member])[0]
            dt = time.perf_counter() - t
            if status != "finished":
                raise RuntimeError(f"{name}: run ended {status}")
            if r > 0:
                times[name].append(dt)
    return {"times": times}


def record_cost(overrides: list[str], root: str, repeats: int = 5) -> dict:
    """Where one metrics record's time goes: ``Batch.evaluate()`` (device + host summary),
    its compiled program alone, and writing its spectra + metrics line, against the time
    of one training step."""
    import jax
    import numpy as np

    from bottleneck_cli.train import Batch, metric_steps

    member = _member(overrides, Path(root))
    batch = Batch([member])
    batch.evaluate()  # compile
    batch.run_to(1)
    jax.block_until_ready(batch.state)
    step_s = []
    for _ in range(3):
        t = time.perf_counter()
        batch.run_to(int(batch.state["step"]) + 100)
        jax.block_until_ready(batch.state)
        step_s.append((time.perf_counter() - t) / 100)
    ev, wr, prog = [], [], []
    for i in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(batch.dispatch_evaluation())  # the compiled program alone
        prog.append(time.perf_counter() - t)
        t = time.perf_counter()
        record, arrays = batch.evaluate()[0]
        ev.append(time.perf_counter() - t)
        t = time.perf_counter()
        member.run.write_spectra(i, arrays)
        member.run.append_metrics([{"step": i, **record}])
        wr.append(time.perf_counter() - t)
    return {"step_s": float(np.median(step_s)), "evaluate_s": float(np.median(ev)),
            "program_s": float(np.median(prog)),
            "write_s": float(np.median(wr)), "records": len(metric_steps(member.cfg)),
            "steps": int(member.cfg.steps)}


def report_profile(paths: list[str], out: str) -> dict:
    """``build_report`` in one process (workers=1) under cProfile: total time and the part
    spent in matplotlib's ``savefig`` (drawing + encoding the figures)."""
    import cProfile
    import pstats

    from bottleneck_cli.report import build_report

    prof = cProfile.Profile()
    t = time.perf_counter()
    res = prof.runcall(build_report, paths, out=out, workers=1)
    total = time.perf_counter() - t
    stats = pstats.Stats(prof).stats
    savefig = sum(v[3] for (f, _, name), v in stats.items()
                  if name == "savefig" and f.endswith("figure.py") and "matplotlib" in f)
    # the package's own functions by cumulative time (nested ones overlap)
    ours = sorted(((v[3], f"{Path(f).stem}.{name}") for (f, _, name), v in stats.items()
                   if "bottleneck_cli" in f and name not in ("build_report", "<module>")),
                  reverse=True)[:8]
    return {"total_s": total, "savefig_s": savefig, "figures": len(res.figures),
            "top": [[name, t] for t, name in ours]}


JOBS = {"compile": compile_time, "inproc-sweep": inproc_sweep, "metrics": metrics_cost,
        "record-cost": record_cost, "report-profile": report_profile}

if __name__ == "__main__":
    result = JOBS[sys.argv[1]](**json.loads(sys.argv[2]))
    print("RESULT " + json.dumps(result), flush=True)
