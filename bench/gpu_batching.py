"""GPU batching benchmark: same-shape members in one vmapped program vs one after another.

Run on a machine with a GPU (JAX with CUDA):  python bench/gpu_batching.py --out results.json
Times exclude compilation (each program is warmed up first); steps are fused per call
exactly as `bncli train` runs them. Writes a JSON that bench/run.py renders.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import jax

from bottleneck_cli import rundir as rd
from bottleneck_cli.config import load
from bottleneck_cli.train import Batch, Member


def members(n: int, depth: int, width: int, n_train: int) -> list[Member]:
    base = [f"depth={depth}", f"width={width}", f"task.n_train={n_train}", "steps=100000"]
    return [Member(rd.RunDir(tempfile.mkdtemp()), load(base + [f"lr={0.01 + 0.001 * i}"]))
            for i in range(n)]


def steps_per_second(batch: Batch, steps: int) -> float:
    batch.run_to(int(batch.state["step"]) + 10)  # compile + warm up
    jax.block_until_ready(batch.state)
    start = int(batch.state["step"])
    t0 = time.perf_counter()
    batch.run_to(start + steps)
    jax.block_until_ready(batch.state)
    return steps / (time.perf_counter() - t0)


def compare(n: int, depth: int, width: int, n_train: int, steps: int) -> dict:
    ms = members(n, depth, width, n_train)
    batched = steps_per_second(Batch(ms), steps)  # member-steps/s = n * batched
    single = steps_per_second(Batch(ms[:1]), steps)
    # One after another: n members at `single` steps/s each.
    return {"members": n, "depth": depth, "width": width, "n_train": n_train, "steps": steps,
            "batched_member_steps_per_s": n * batched, "sequential_member_steps_per_s": single,
            "speedup": n * batched / single}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="gpu_results.json")
    args = ap.parse_args()
    cases = [(8, 12, 50, 256, 2000), (64, 12, 50, 256, 1000), (8, 12, 200, 1024, 1000),
             (32, 25, 200, 1024, 500)]
    results = {"device": str(jax.devices()[0]), "backend": jax.default_backend(),
               "jax": jax.__version__, "python": platform.python_version(),
               "cases": [compare(*c) for c in cases]}
    for c in results["cases"]:
        print(f"{c['members']:>3} x depth {c['depth']:>2} width {c['width']:>3} N {c['n_train']:>4}: "
              f"batched {c['batched_member_steps_per_s']:9.0f} member-steps/s, one after another "
              f"{c['sequential_member_steps_per_s']:8.0f}, speedup {c['speedup']:.1f}x")
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
