"""Start-up and whole-run benchmarks: time to the first training step of a default
``bncli train`` (warm and cold compilation cache, against ``python -c "import jax"``), and
a default run's wall time against a minimal plain-JAX script (``plain_run.py``)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from results import Section, Target
from timing import ROOT, bench_env, bncli, median, python, run_timed


def _first_step(args: list[str], env: dict[str, str], stamp: Path, limit_s: float = 300.0):
    """Seconds from launching ``args`` to the first completed training step (the time the
    trainer writes to ``BNCLI_FIRST_STEP_FILE``); the process is then stopped (SIGTERM:
    it checkpoints and exits)."""
    stamp.unlink(missing_ok=True)
    env = bench_env(**env, BNCLI_FIRST_STEP_FILE=str(stamp))
    t0 = time.time()
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        while not stamp.exists() or not stamp.read_text().strip():
            if proc.poll() is not None:
                raise RuntimeError(f"bncli exited {proc.returncode} before its first step: "
                                   + (proc.stderr.read().strip().splitlines() or [""])[-1])
            if time.time() - t0 > limit_s:
                raise RuntimeError(f"no first step within {limit_s:.0f} s")
            time.sleep(0.005)
        return float(stamp.read_text()) - t0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)


def against(times: dict[str, list[float]], base: str) -> tuple[dict[str, float], list[list]]:
    """Medians of interleaved wall times, and their table rows (variant, median, ratio to
    the ``base`` variant's median, every repeat)."""
    from benchmarks import _list

    med = {k: median(v) for k, v in times.items()}
    rows = [[k, f"{med[k]:.2f} s", f"{med[k] / med[base]:.2f}×", _list(v)]
            for k, v in times.items()]
    return med, rows


def ratio_why(first_s: float, jax_s: float, target_s: float) -> str:
    """Why a first-step ratio misses: bncli's own start-up against the ratio's allowance."""
    return (f"bncli's own work before the first step (Hydra config, its imports, data, "
            f"initialisation, loading the compiled chunk) takes {first_s - jax_s:.2f} s on "
            f"top of `import jax`; the ratio allows {target_s - 1:.0f} s only where `import "
            f"jax` takes 1 s, and here it takes {jax_s:.2f} s.")


def bench_first_step(opts) -> Section:
    from benchmarks import _fresh, _shell

    repeats = 2 if opts.quick else 5
    extra = ["+experiment=tiny"] if opts.quick else []
    warm = _fresh(opts, "first-step-warm-cache")
    stamp = _fresh(opts, "first-step") / "stamp"
    jax_args = python("-c", "import jax")

    def train(cache: Path, tag: str) -> list[str]:
        return bncli("train", *extra, f"out={_fresh(opts, 'first-step-runs-' + tag)}", "name=r")

    _first_step(train(warm, "fill"), {"BNCLI_JAX_CACHE": str(warm)}, stamp)  # fills the cache
    run_timed(jax_args)  # the file cache
    t: dict[str, list[float]] = {"import jax": [], "warm": [], "cold": []}
    for r in range(repeats):  # interleaved
        t["import jax"].append(run_timed(jax_args)[0])
        t["warm"].append(_first_step(train(warm, f"w{r}"), {"BNCLI_JAX_CACHE": str(warm)}, stamp))
        cold = _fresh(opts, f"first-step-cold-cache-{r}")
        t["cold"].append(_first_step(train(cold, f"c{r}"), {"BNCLI_JAX_CACHE": str(cold)}, stamp))
    med, rows = against(t, "import jax")
    jax_s = med["import jax"]
    sec = Section(
        "first_step", "time to the first training step of a default `bncli train`",
        "Wall time from launching a default `bncli train` (depth 12, width 64, N = 256, 5,000 "
        "steps, default metrics) to the end of its first training step (the trainer writes "
        "that moment to `$BNCLI_FIRST_STEP_FILE`; the run is then stopped), with a warm "
        "compilation cache (filled by one untimed run) and a cold one (an empty "
        f"`BNCLI_JAX_CACHE` per repeat); against `python -c \"import jax\"`. {repeats} "
        "interleaved repeats, medians. The step-0 metrics record (and the metrics program's "
        "compile, started in a background thread) comes after the first step.",
        header=["variant", "median", "× import jax", "all repeats"],
        rows=rows,
        commands=[_shell(train(warm, "w0"), {"BNCLI_JAX_CACHE": "$TMP/first-step-warm-cache",
                                             "BNCLI_FIRST_STEP_FILE": "$TMP/first-step/stamp"}),
                  _shell(jax_args)])
    why = (f"`import jax` alone takes {jax_s:.2f} s in this run (about 1 s on a quiet machine): "
           "the machine is loaded; compare the ratio to it.")
    sec.targets = [
        Target("first step, warm cache", med["warm"], "<=", 2.0, unit=" s", why_miss=why),
        Target("first step, cold cache", med["cold"], "<=", 4.0, unit=" s", why_miss=why),
        Target("first step, warm cache / import jax (2 s at 1 s)", med["warm"] / jax_s, "<=",
               2.0, why_miss=ratio_why(med["warm"], jax_s, 2.0)),
        Target("first step, cold cache / import jax (4 s at 1 s)", med["cold"] / jax_s, "<=",
               4.0, why_miss=ratio_why(med["cold"], jax_s, 4.0)),
    ]
    return sec


def bench_whole_run(opts) -> Section:
    """A default ``bncli train`` against ``plain_run.py``, start-up included."""
    from benchmarks import _fresh, _shell

    repeats = 2 if opts.quick else 3
    steps = 200 if opts.quick else 5000
    plain = lambda r: python(str(ROOT / "bench" / "plain_run.py"),  # noqa: E731
                             str(_fresh(opts, f"whole-plain-{r}")), "--steps", str(steps))
    train = lambda r: bncli("train", f"steps={steps}",  # noqa: E731
                            f"out={_fresh(opts, f'whole-bncli-{r}')}", "name=r")
    warm = _fresh(opts, "whole-warm-cache")
    run_timed(train("fill"), bench_env(BNCLI_JAX_CACHE=str(warm)))  # fills the warm cache
    t: dict[str, list[float]] = {"plain JAX (plain_run.py)": [], "bncli, empty cache": [],
                                 "bncli, warm cache": []}
    for r in range(repeats):  # interleaved
        t["plain JAX (plain_run.py)"].append(run_timed(plain(r))[0])
        cold = _fresh(opts, f"whole-cold-cache-{r}")
        t["bncli, empty cache"].append(
            run_timed(train(f"c{r}"), bench_env(BNCLI_JAX_CACHE=str(cold)))[0])
        t["bncli, warm cache"].append(
            run_timed(train(f"w{r}"), bench_env(BNCLI_JAX_CACHE=str(warm)))[0])
    med, rows = against(t, "plain JAX (plain_run.py)")
    base = med["plain JAX (plain_run.py)"]
    sec = Section(
        "whole_run", "a default `bncli train` against a hand-written JAX script",
        f"Wall time of a whole default run ({steps:,} steps, depth 12, width 64, N = 256, "
        "full-batch Adam, 21 metrics records), start-up included, against "
        "`bench/plain_run.py`: the same network, data (bncli's task code), objective, "
        "optimizer, steps and record steps, recording train/test loss and NumPy singular "
        "values of every weight, hidden representation (plain and centred) and the "
        "Jacobian at 8 inputs, saving parameters every 1,000 steps; plain JAX has no "
        "persistent compilation cache. bncli's records also hold the gradient norms, "
        "balance, neuron counts, nonlinearity and distance from initialisation, and it "
        "writes checkpoints, status and summary. bncli runs with an empty compilation "
        f"cache and with a warm one. {repeats} interleaved repeats, medians.",
        header=["variant", "median", "× plain JAX", "all repeats"],
        rows=rows,
        commands=[_shell(plain(0)), _shell(train("c0"), {"BNCLI_JAX_CACHE": "$TMP/empty"})])
    why = (f"plain JAX takes {base:.1f} s; the rest is bncli's metrics program (compiled in "
           "the background while training goes on, but on a loaded 2-core machine it "
           "competes with the training for the cores) and its start-up (Hydra config).")
    sec.targets = [
        Target("whole run, empty cache / plain JAX", med["bncli, empty cache"] / base, "<=",
               1.15, why_miss=why),
        Target("whole run, warm cache / plain JAX", med["bncli, warm cache"] / base, "<=",
               1.15, why_miss=why),
    ]
    return sec


def bench_sweep_shapes(opts) -> Section:
    """A depth sweep (5 depths x 4 seeds) with the next shape compiled ahead, without it,
    and with every program already in the persistent cache (training alone, nearly)."""
    from benchmarks import _fresh, _shell

    repeats = 1 if opts.quick else 2
    steps = 100 if opts.quick else 2000
    grid = ["depth=2,4,6,8,10", "seed=0,1,2,3", f"steps={steps}"]
    warm = _fresh(opts, "shapes-warm-cache")

    def sweep(tag: str, *extra: str) -> list[str]:
        return bncli("sweep", *grid, *extra, f"out={_fresh(opts, 'shapes-' + tag)}",
                     "--name", "s")

    run_timed(sweep("fill"), bench_env(BNCLI_JAX_CACHE=str(warm)))  # fills the warm cache
    names = {"compile ahead (default)": (), "sweep.compile_ahead=false":
             ("sweep.compile_ahead=false",), "warm cache": ()}
    t: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeats):  # interleaved
        for k, extra in names.items():
            cache = warm if k == "warm cache" else _fresh(opts, f"shapes-cold-{r}-{k[:4]}")
            t[k].append(run_timed(sweep(f"{r}-{k[:4]}", *extra),
                                  bench_env(BNCLI_JAX_CACHE=str(cache)))[0])
    med, rows = against(t, "warm cache")
    base = med["warm cache"]
    sec = Section(
        "sweep_shapes", "a sweep of several shapes: the next shape compiled ahead",
        f"Wall time of `bncli sweep {' '.join(grid)}` (5 jobs of 4 members, default network "
        "otherwise, CPU lanes) with an empty compilation cache, with and without "
        "`sweep.compile_ahead` (the next job's programs compile in a background thread while "
        "one trains), against the same sweep with every program already in the persistent "
        "cache (loading instead of compiling: the nearest to the members' training alone). "
        f"{repeats} interleaved repeats, medians.",
        header=["variant", "median", "× warm cache", "all repeats"],
        rows=rows,
        commands=[_shell(sweep("0"), {"BNCLI_JAX_CACHE": "$TMP/empty"})])
    gain = med["sweep.compile_ahead=false"] / med["compile ahead (default)"]
    why = (f"the sweep with compile-ahead takes {1 / gain:.2f}× the time of compiling each "
           f"job at its turn and {med['compile ahead (default)'] - base:.1f} s more than with "
           "every program cached: on 2 cores both lanes train while the next job compiles, "
           "so the compiles still take cores from the training")
    sec.targets = [Target("5 depths x 4 seeds, empty cache / warm cache",
                          med["compile ahead (default)"] / base, "<=", 1.2, why_miss=why)]
    return sec
