"""Synthetic run folders for report tests and the report benchmark (a test fixture:
``from report_fixtures import make_run``, with tests/ on sys.path).

A deep-linear sweep in the closed form of SCIENCE.md §4: a balanced depth-L linear net
computing A with singular values s has W_l singular values s^(1/L) and
||θ||² = L·Σ s^(2/L), so the depth fit has slope rank(A) and intercept -> 2·Σ log s.
Written with the ``rundir`` writers; no training.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from bottleneck_cli import rundir as rd

S = (2.0, 1.0)  # singular values of the rank-2 target


def base_config(**top) -> dict:
    """A resolved config as a run writes it: every field of ``config.Config`` (minus the
    placement keys name/out), a rank-2 low-rank task, pinned depth/width/lam/lr/steps
    (not the evolving defaults), and ``top`` overriding top-level keys."""
    from bottleneck_cli.config import Config, LowRankTask, ModelConfig

    cfg = {**dataclasses.asdict(Config()),  # model and task are group options: their families
           "model": dataclasses.asdict(ModelConfig()), "task": dataclasses.asdict(LowRankTask())}
    for key in ("name", "out"):
        cfg.pop(key)
    cfg["model"].update(name="linear", bias=False, activation="identity")
    cfg["task"].update(name="low_rank", rank=2, singular_values=list(S), d_in=8, d_out=8)
    cfg.update(depth=4, width=8, lam=1e-3, lr=0.05, steps=100, description="synthetic")
    cfg.update(top)
    return cfg


def linear_spectra(depth: int, width: int, s=S) -> dict[str, np.ndarray]:
    """Balanced deep-linear minimum: W_l has singular values s^(1/L) (plus, as a trained net
    would, small O(L^-1/2) ones instead of exact zeros); Z_l = A^(l/L)-like."""
    s = np.asarray(s, float)
    pad = 0.3 / math.sqrt(depth) * np.linspace(1, 0.1, width - len(s))
    arrays = {rd.layer_name("W", l): np.concatenate([s ** (1 / depth), pad])
              for l in range(1, depth + 1)}
    for l in range(1, depth):
        z = np.concatenate([s ** (l / depth), 1e-3 * np.ones(width - len(s))])
        arrays[rd.layer_name("Z", l)] = z
        arrays[rd.layer_name("Zc", l)] = z * 0.9
    return arrays


def records(depth: int, steps: int, s=S, seed: int = 0, n: int = 5, full: bool = False,
            extras: bool = False, nan: bool = False) -> list[dict]:
    """Metric records converging to the closed form at the last step."""
    s = np.asarray(s, float)
    norm = depth * float(np.sum(s ** (2 / depth))) * (1 + 0.002 * seed)
    out = []
    for step in np.unique(np.geomspace(1, steps, n).astype(int).tolist() + [0]):
        frac = step / steps
        r = {"step": int(step), "time": 0.01 * step,
             "loss/train": 1.0 / (1 + step) + 0.01, "loss/fit": 1.0 / (1 + step),
             "loss/ridge": 0.01, "loss/test": 1.2 / (1 + step) + 0.02 + 0.001 * seed,
             "lr": 0.05, "lam": 1e-3,
             "norm/total": norm * (0.5 + 0.5 * frac),
             "norm/per_depth": norm * (0.5 + 0.5 * frac) / depth,
             "bottleneck/rank_c": 2 + round(4 * (1 - frac)),
             "bottleneck/rank": 3 + round(4 * (1 - frac)),
             "bottleneck/near_one": 2}
        for l in range(1, depth + 1):
            W = rd.layer_name("W", l)
            r[f"norm/{W}"] = float(np.sum(s ** (2 / depth)))
            r[f"rank/{W}"] = 2
            r[f"near_one/{W}"] = 2
            if full:
                r[f"stable_rank/{W}"] = 1.3
                r[f"nuclear_rank/{W}"] = 1.8
                r[f"erank/{W}"] = 1.9
                if l < depth:
                    r[f"balance/{W}"] = 1e-3
        for l in range(1, depth):
            Z = rd.layer_name("Z", l)
            hump = 2 + round(6 * (1 - math.sin(math.pi * l / depth)) * (0.5 + 0.5 * (1 - frac)))
            r[f"rank_c/{Z}"] = hump
            r[f"rank/{Z}"] = hump + 1
            if full or extras:
                r[f"nonlin/{Z}"] = 0.3 * (1 - math.sin(math.pi * l / depth))
            if full:
                for key in ("stable_rank", "stable_rank_c", "erank", "erank_c"):
                    r[f"{key}/{Z}"] = 1.5
        if extras:
            r.update({"ntk/trace": 10.0 * depth, "ntk/trace_per_nl": 1.0 + 0.01 * depth,
                      "ntk/max_eig": 5.0, "jac/rank": 2.0, "jac/logdet": 2 * math.log(2)})
        out.append(r)
    if nan:
        out[-1] = {k: (float("nan") if k.startswith("loss") else v) for k, v in out[-1].items()}
    return out


def make_run(path: Path, status: str = "finished", s=S, n_records: int = 5, full: bool = False,
             extras: bool = False, spectra_steps: int = 2, json_config: bool = True,
             **top) -> rd.RunDir:
    """A synthetic run folder with status ``status`` (finished, diverged, running, ...);
    without ``json_config`` as an earlier bncli wrote it (config.yaml only)."""
    cfg = base_config(**top)
    path.mkdir(parents=True, exist_ok=True)
    run = rd.RunDir(path)
    if json_config:
        rd.write_json(run.file(rd.CONFIG_JSON), cfg)
    rd.write_text(run.file(rd.CONFIG), yaml.safe_dump(cfg, sort_keys=False))
    rd.write_json(run.file(rd.OVERRIDES), {"overrides": [f"{k}={v}" for k, v in top.items()]})
    recs = records(cfg["depth"], cfg["steps"], s=s, seed=cfg["seed"], n=n_records, full=full,
                   extras=extras, nan=status == "diverged")
    if status not in ("finished", "diverged"):
        recs = recs[: max(1, len(recs) // 2)]
    run.append_metrics(recs)
    spec = linear_spectra(cfg["depth"], cfg["width"], s)
    for step in sorted({recs[0]["step"], recs[-1]["step"]})[-spectra_steps:]:
        run.write_spectra(step, spec)
    last = recs[-1]["step"]
    diverged_step = last if status == "diverged" else None
    if status in ("finished", "diverged"):
        rd.write_json(run.file(rd.SUMMARY), {
            "status": status, "steps": cfg["steps"], "steps_done": last,
            "diverged_step": diverged_step, "wall_time": 1.0, "final": recs[-1]})
    run.set_status(status, step=last, steps=cfg["steps"], diverged_step=diverged_step)
    return run


def depth_sweep(root: Path, depths=(4, 8, 16, 32), seeds=(0, 1), lams=(1e-3,), **kw) -> list[Path]:
    """``make_run`` over depth x seed x lam, one folder ``depth=..,lam=..,seed=..`` each."""
    out = []
    for lam in lams:
        for depth in depths:
            for seed in seeds:
                p = root / f"depth={depth},lam={lam},seed={seed}"
                make_run(p, depth=depth, seed=seed, lam=lam, **kw)
                out.append(p)
    return out


def make_tree(root: Path, n: int, json_config: bool = True) -> None:
    """``n`` small finished runs: a depth x lam x seed sweep with full metric records."""
    depths = (2, 3, 4, 5, 6, 8, 10, 12, 14, 16)
    lams = (1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 2e-2, 5e-2, 1e-1)
    k = 0
    for seed in range(max(1, math.ceil(n / 100))):
        for lam in lams:
            for depth in depths:
                if k == n:
                    return
                make_run(root / f"lam={lam}" / f"depth={depth},seed={seed}", depth=depth,
                         lam=lam, seed=seed, width=16, n_records=25, full=True,
                         json_config=json_config)
                k += 1


def bench_report(n: int = 1000, root: Path | None = None) -> float:
    """Build ``n`` synthetic run folders (untimed), then time ``build_report`` on them."""
    from bottleneck_cli.report import build_report

    tmp = None
    if root is None:
        tmp = tempfile.TemporaryDirectory()
        root = Path(tmp.name)
    try:
        t = time.perf_counter()
        make_tree(root / "runs", n)
        print(f"wrote {n} run folders in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        res = build_report([root / "runs"])
        dt = time.perf_counter() - t
        print(f"bncli report on {n} runs: {dt:.2f} s ({len(res.figures)} figure files, "
              f"{len(res.problems)} problems) -> {res.html}")
        return dt
    finally:
        if tmp is not None:
            tmp.cleanup()
