"""The GPU benchmark: one command, at most 4 minutes on one GPU -> bench/gpu_results.json.

    python bench/gpu.py                                  # on a machine with JAX on CUDA
    python bench/gpu.py --cpu-smoke --out /tmp/g.json    # every part at tiny sizes on the CPU

1. batching: member-steps per second of 8, 64, 512 and 4096 same-shape members of
   (depth, width, N) = (12, 50, 256) in one vmapped program, against one member after
   another, and the member count where the throughput stops growing;
2. step: ms per full-batch GD step of bncli against PyTorch CUDA eager (the same math,
   ``torch_ref.TorchMLP``) at the benchmark sizes (``benchmarks.STEP_SIZES``);
3. first step: wall time of a 1-step ``bncli train`` with an empty and with a warm
   compilation cache, against ``import jax`` in the same run;
plus the device and the jax/jaxlib/torch/CUDA versions. Each part stops at its share of
the time budget (``--budget-s``) and the rest is skipped with a note. The JSON is
rewritten after every part; ``bench/run.py`` renders it into BENCHMARKS.md (gpu_render.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX and torch share the GPU
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

OUT = HERE / "gpu_results.json"
MEMBERS = [8, 64, 512, 4096]
BATCH_SHAPE = (12, 50, 256)
SATURATED = 1.1  # throughput "stops growing" once the next count gains less than 10%


class Budget:
    """Seconds since the start; each part may run until its share of the budget."""

    def __init__(self, seconds: float):
        self.seconds, self.t0 = seconds, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def allows(self, share: float, need: float, what: str, res: dict) -> bool:
        """Whether ``what`` (about ``need`` s) fits before ``share`` of the budget; if not,
        a note in ``res["skipped"]``."""
        left = share * self.seconds - self.elapsed()
        if left >= need:
            return True
        res["skipped"].append(f"{what}: skipped at {self.elapsed():.0f} s (time budget; "
                              f"needs about {need:.0f} s)")
        return False


# ---------------------------------------------------------------- 1. batching
def _members(n: int, depth: int, width: int, n_train: int) -> list:
    """``n`` identical members (one config: same data, same start; the work per step is
    what counts here, and building 4096 distinct configs would take minutes)."""
    from bottleneck_cli import rundir as rd
    from bottleneck_cli.config import load
    from bottleneck_cli.train import Member

    cfg = load([f"depth={depth}", f"width={width}", f"task.n_train={n_train}", "steps=1000000"])
    return [Member(rd.RunDir("unused"), cfg) for _ in range(n)]


def _steps_per_second(batch, target_s: float) -> float:
    """Training steps per second of ``batch`` (compiled and warmed up first), over one
    fused call lasting about ``target_s``."""
    import jax

    def run(k: int) -> float:
        t = time.perf_counter()
        batch.run_to(int(batch.state["step"]) + k)
        jax.block_until_ready(batch.state)
        return time.perf_counter() - t

    run(10)  # compile
    per_step = run(10) / 10
    k = int(min(20000, max(10, target_s / max(per_step, 1e-7))))
    return k / run(k)


def batching(counts: list[int], shape: tuple, target_s: float, budget: Budget, res: dict):
    from bottleneck_cli.programs import forget_programs
    from bottleneck_cli.train import Batch

    depth, width, n_train = shape
    out = res["batching"] = {"depth": depth, "width": width, "N": n_train, "rows": []}
    one = _steps_per_second(Batch(_members(1, *shape)), target_s)
    out["one after another member-steps/s"] = one
    per_member_setup = 0.01  # seconds; measured from the first count on
    for n in counts:
        if not budget.allows(0.45, per_member_setup * n + 3 * target_s + 5,
                             f"batching: {n} members", res):
            break
        t = time.perf_counter()
        batch = Batch(_members(n, *shape))
        setup = time.perf_counter() - t
        per_member_setup = setup / n
        rate = n * _steps_per_second(batch, target_s)
        out["rows"].append({"members": n, "member-steps/s": rate, "vs one after another":
                            rate / one, "set-up s": setup})
        del batch
        forget_programs()
        gc.collect()
    rates = [(r["members"], r["member-steps/s"]) for r in out["rows"]]
    stops = [n for (n, r), (_, nxt) in zip(rates, rates[1:]) if nxt < SATURATED * r]
    out["saturates at"] = stops[0] if stops else None
    if rates and not stops:
        res["notes"].append(f"batching: throughput still grows at {rates[-1][0]} members")


# ---------------------------------------------------------------- 2. step vs torch
def step(sizes: list, call_s: float, repeats: int, device: str | None, budget: Budget,
         res: dict) -> None:
    from benchmarks import _batch, _chunk_fn, _host_copy, _steps_per_call, three_step_check
    from timing import interleaved, median

    if device is None:
        res["notes"].append("step: PyTorch with a GPU is not installed; bncli alone")
    else:
        from torch_ref import TorchMLP
    rows = res["step"] = []
    for depth, width, n in sizes:
        if not budget.allows(0.8, 15, f"step at ({depth}, {width}, {n})", res):
            continue
        batch = _batch(depth, width, n)
        host = _host_copy(batch)
        row = {"depth": depth, "width": width, "N": n}
        runners = {"bncli": lambda k: _chunk_fn(batch, k)()}
        if device is not None:
            agree, t_loss, j_loss = three_step_check(batch, TorchMLP(**host, device=device),
                                                     rtol=1e-3)  # TF32 on a GPU
            row["loss agrees"] = "yes" if agree else f"NO ({j_loss:.6g} vs {t_loss:.6g})"
            runners["torch eager"] = TorchMLP(**host, device=device).run
        ks = {k: _steps_per_call(run, call_s, lo=20 if k == "bncli" else 3)
              for k, run in runners.items()}
        times = interleaved({k: (lambda run=run, k=ks[k]: run(k)) for k, run in runners.items()},
                            repeats, warmup=0)
        ms = {k: 1e3 * median(ts) / ks[k] for k, ts in times.items()}
        row["bncli ms/step"] = ms["bncli"]
        if "torch eager" in ms:
            row["torch eager ms/step"] = ms["torch eager"]
            row["vs eager"] = ms["torch eager"] / ms["bncli"]
        rows.append(row)
        del batch
        gc.collect()


# ---------------------------------------------------------------- 3. first step
def first_step(overrides: list[str], repeats: int, budget: Budget, res: dict) -> None:
    from timing import bench_env, median, python, run_timed

    if not budget.allows(1.0, 25, "first step", res):
        return
    bncli = shutil.which("bncli", path=str(Path(sys.executable).parent)) or shutil.which("bncli")
    with tempfile.TemporaryDirectory(prefix="bncli-gpu-") as tmp:
        env = bench_env(BNCLI_JAX_CACHE=str(Path(tmp) / "cache"))
        imp = [run_timed(python("-c", "import jax, jax.numpy as jnp; "
                                "jnp.zeros(1).block_until_ready()"), env)[0]
               for _ in range(repeats)]

        def train(name: str) -> float:
            return run_timed([bncli, "train", "steps=1", f"out={tmp}/runs", f"name={name}",
                              *overrides], env)[0]

        out = res["first_step"] = {"import jax s": median(imp), "cold s": train("cold")}
        warm = [train(f"warm{i}") for i in range(repeats)
                if budget.allows(1.0, out["cold s"] * 0.7, f"first step, warm run {i}", res)]
        if warm:
            out["warm s"] = median(warm)
            out["warm / import jax"] = out["warm s"] / out["import jax s"]
        out["cold / import jax"] = out["cold s"] / out["import jax s"]
        out["command"] = f"bncli train steps=1 {' '.join(overrides)}".strip()


# ---------------------------------------------------------------- device and versions
def describe(res: dict, torch_device: str | None) -> None:
    import jax

    from results import versions

    dev = jax.devices()[0]
    res["device"] = getattr(dev, "device_kind", str(dev))
    res["devices"] = len(jax.devices())
    res["backend"] = jax.default_backend()
    vers = versions()
    from importlib import metadata

    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith(("jax-cuda", "jax_cuda", "nvidia-cuda-runtime")):
            vers[name] = dist.version
    if torch_device == "cuda":
        import torch

        vers["torch CUDA"] = str(torch.version.cuda)
    try:
        vers["NVIDIA driver"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        pass
    res["versions"] = vers


def torch_device(smoke: bool) -> str | None:
    """"cuda" (or "cpu" in the smoke run) when PyTorch can run the reference there."""
    try:
        import torch
    except (ImportError, OSError):  # not installed, or a broken install
        return None
    if smoke:
        return "cpu"
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = True  # as JAX's default float32 matmuls on a GPU
    return "cuda"


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help=f"JSON to write (default {OUT.relative_to(HERE.parent)}; "
                   "with --cpu-smoke a temporary file).")
    p.add_argument("--cpu-smoke", action="store_true",
                   help="Tiny sizes on the CPU: checks that every part runs (about a minute).")
    p.add_argument("--budget-s", type=float, default=225.0,
                   help="Time budget in seconds; parts past their share are skipped (default 225).")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    budget = Budget(args.budget_s)
    import jax

    if jax.default_backend() != "gpu" and not args.cpu_smoke:
        print(f"gpu.py: error: no GPU (JAX's backend is {jax.default_backend()}); run it where "
              "JAX sees a CUDA GPU, or use --cpu-smoke", file=sys.stderr)
        return 2
    out = args.out or (Path(tempfile.gettempdir()) / "gpu_results.smoke.json" if args.cpu_smoke
                       else OUT)
    device = torch_device(args.cpu_smoke)
    res = {"date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
           "command": "python bench/gpu.py" + (" --cpu-smoke" if args.cpu_smoke else ""),
           "smoke": args.cpu_smoke, "notes": [], "skipped": []}
    describe(res, device)
    if device == "cuda":
        res["notes"].append("PyTorch with TF32 matmuls, as JAX's default float32 on a GPU")
    from benchmarks import STEP_SIZES

    if args.cpu_smoke:
        parts = [(batching, ([2, 4], (2, 8, 32), 0.05)), (step, ([(2, 8, 32)], 0.02, 2, device)),
                 (first_step, (["depth=2", "width=4", "task.n_train=16", "task.n_test=8"], 1))]
    else:
        sizes = STEP_SIZES
        parts = [(batching, (MEMBERS, BATCH_SHAPE, 1.0)), (step, (sizes, 0.25, 3, device)),
                 (first_step, ([], 2))]
    for fn, fn_args in parts:
        print(f"[gpu] {fn.__name__} at {budget.elapsed():.0f} s", flush=True)
        fn(*fn_args, budget=budget, res=res)
        res["seconds"] = round(budget.elapsed(), 1)
        out.write_text(json.dumps(res, indent=1, default=str))
    print(f"[gpu] wrote {out} in {budget.elapsed():.0f} s"
          + (f"; skipped: {'; '.join(res['skipped'])}" if res["skipped"] else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
