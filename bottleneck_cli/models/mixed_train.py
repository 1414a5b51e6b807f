"""The training rule of the ``mixed`` family: each grid point is a run folder, trained
by the official GD recursion (``mixed_sim``) instead of the generic optimizer loop.

Why its own entry point: the official experiment is not "an objective and an
optimizer". Its update order (W1 first, W2 with the new W1), its step-size rule, its
per-iteration stopping rules (which look at the test error) and its per-iteration
singular values have no place in the generic trainer's stages, records at log-spaced
steps and checkpoints. ``train.train_members`` hands a family listed in
``models.TRAINERS`` to its own function, with the same members (run folders, locks,
statuses and summaries as every run): ``bncli train`` and ``bncli sweep`` run it
unchanged, and ``bncli report`` reads the folders as any others.

Members of one shape (d, the simulated rows 2d or w, dtype, settings) run as one
vmapped program: with the reduction on, w enters only the initial draw, so every grid
point of one d shares one compiled program. Resume: a grid point is short (at most
``steps`` iterations), so an unfinished one is run again from iteration 0; finished
ones are skipped by the run-folder machinery.
"""

from __future__ import annotations

import time

import numpy as np

from .. import rundir as rd
from ..stopflag import StopFlag
from . import mixed_sim as sim
from .mixed import TwoLayerLinear, step_size


def _rules(cfg) -> tuple:
    m = cfg.model
    return (("plateau_delta", float(m.plateau_delta)), ("plateau_drop", float(m.plateau_drop)),
            ("steps", int(cfg.steps)), ("stop_increasing", int(m.stop_increasing)),
            ("stop_train", float(m.stop_train)))


def _shape_key(cfg) -> tuple:
    model = TwoLayerLinear(cfg.task.d, cfg.model.gamma_sigma, cfg.model.gamma_w,
                           cfg.model.exact_width)
    return (int(cfg.task.d), model.rows, bool(cfg.model.self_consistent), cfg.dtype,
            int(cfg.model.sv_every), _rules(cfg))


def _setup(member):
    """(state, const, facts) of one member: its initial draw, target and step size."""
    from ..tasks import make_dataset

    cfg = member.cfg
    dtype = np.dtype(cfg.dtype)
    data = make_dataset(cfg.task, cfg.seed, np.float64)
    y, a_star = data.y_train.T, data.y_test.T
    model = TwoLayerLinear(cfg.task.d, cfg.model.gamma_sigma, cfg.model.gamma_w,
                           cfg.model.exact_width)
    eta = step_size(model.gamma_sigma, model.gamma_w, model.d, data.info["op_norm"],
                    cfg.model.eta_factor)
    params = model.init(cfg.seed, dtype)
    const = {"Y": y.astype(dtype), "A_star": a_star.astype(dtype),
             "eta": dtype.type(eta), "c": dtype.type(model.sigma2 * model.w)}
    facts = {"phase/w": model.w, "phase/sigma2": model.sigma2, "phase/eta": eta,
             "phase/reduced": int(model.reduced)}
    return params, const, facts, model


def _stack(trees: list[dict]) -> dict:
    return {k: np.stack([np.asarray(t[k]) for t in trees]) for k in trees[0]}


def _phase_summary(s: np.ndarray, k: int) -> dict:
    """Stable rank (||A||_F / ||A||_op)^2, numerical rank #{s_i > s_1/5} and the official
    ratio s_K / s_{K+1}, from the singular values s of A at the minimal test error."""
    s = np.asarray(s, dtype=np.float64)
    top = s[0] if s.size and s[0] > 0 else np.nan
    ratio = s[k - 1] / s[k] if s.size > k and s[k] > 0 else np.nan
    return {"phase/stable_rank": float(np.sum(s * s) / top ** 2),
            "phase/num_rank": int(np.sum(s > top / 5)), "phase/sv_ratio": float(ratio)}


def _run_group(members, progress, stop) -> list[str]:
    import jax

    from ..train import Interrupted

    cfg = members[0].cfg
    n_chunk = max(1, int(cfg.model.sv_every))
    setups = [_setup(m) for m in members]
    states = [sim.init_state(p, c["Y"], c["A_star"], cfg.model.self_consistent)
              for p, c, _, _ in setups]
    state = jax.tree_util.tree_map(lambda *a: np.stack(a), *[jax.device_get(s) for s in states])
    const = _stack([c for _, c, _, _ in setups])
    program = sim.chunk_program(n_chunk, _rules(cfg))
    for m in members:
        m.run.truncate_metrics(-1)  # a rerun starts at iteration 0
        m.run.set_status("running", step=0, steps=cfg.steps)
    if progress is not None:
        progress.start_batch([m.run.path.name for m in members], 0, cfg.steps)
    statuses = ["running"] * len(members)
    latest = [None] * len(members)  # each member's last record, for the progress display
    t0 = time.perf_counter()
    while True:
        start = np.asarray(state["i"])
        live0 = ~np.asarray(state["done"])
        if not live0.any():
            break
        state, outs, svals = program(state, const)
        loss, gen, dist, live = (np.asarray(o) for o in outs)
        svals = jax.device_get(svals)
        elapsed = round(time.perf_counter() - t0, 4)
        for j, m in enumerate(members):
            if not live0[j]:
                continue
            m.run.write_spectra(int(start[j]), {k: v[j] for k, v in svals.items()})
            recs = []
            for t in np.flatnonzero(live[:, j]):
                rec = {"step": int(start[j] + t), "time": elapsed,
                       "loss/train": float(loss[t, j]), "loss/test": float(gen[t, j])}
                if cfg.model.self_consistent:
                    rec["dist/sc"] = float(dist[t, j])
                recs.append(rec)
            m.run.append_metrics(recs)
            latest[j] = recs[-1] if recs else latest[j]
        done = np.asarray(state["done"])
        if progress is not None:
            progress.update(int(np.asarray(state["i"]).max()),
                            ["finished" if x else "running" for x in done], latest)
        if stop and not done.all():
            for j, m in enumerate(members):
                if not done[j]:
                    m.run.set_status("interrupted", step=int(np.asarray(state["i"])[j]),
                                     steps=cfg.steps)
            raise Interrupted(f"stopped by signal {stop.signal}")
    host = jax.device_get(state)
    best_s = np.asarray(sim.spectra_program()(host["A_best"]))
    wall = time.perf_counter() - t0
    for j, m in enumerate(members):
        _, _, facts, model = setups[j]
        reason, it = int(host["reason"][j]), int(host["stop_it"][j])
        a_end = host["P2"][j].T.astype(np.float64) @ host["P1"][j].astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            op = float(np.linalg.norm(a_end, 2)) if np.isfinite(a_end).all() else np.nan
        final = dict(m.run.read_metrics()[-1]) if reason != 4 else {"step": it}
        final.update(facts)
        final.update({"phase/min_test": float(host["best"][j]),
                      "phase/argmin": int(host["best_it"][j]), "phase/iters": it,
                      "phase/stop": reason, "phase/active": op / model.w * model.sigma2,
                      **_phase_summary(best_s[j], int(m.cfg.task.rank))})
        if m.cfg.model.self_consistent:
            final["phase/dist_sc"] = float(host["dist_max"][j])
        m.run.write_spectra(int(host["best_it"][j]), {"A": best_s[j]})
        status = "diverged" if reason == 4 else "finished"
        statuses[j] = status
        rd.write_json(m.run.file(rd.SUMMARY), {
            "status": status, "steps": m.cfg.steps, "steps_done": it + 1,
            "diverged_step": it if status == "diverged" else None,
            "wall_time": wall, "stop_reason": sim.REASONS[reason], "final": final})
        m.run.set_status(status, step=it + 1, steps=m.cfg.steps,
                         diverged_step=it if status == "diverged" else None)
    if progress is not None:
        progress.end_batch(statuses)
    return statuses


def train_mixed(members, progress=None) -> list[str]:
    """Train ``mixed`` members: one vmapped program per shape, ``sweep.max_members``
    grid points at a time; returns their statuses in order."""
    from ..train import configure_jax

    configure_jax(any(m.cfg.dtype == "float64" for m in members))
    groups: dict[tuple, list[int]] = {}
    for i, m in enumerate(members):
        groups.setdefault(_shape_key(m.cfg), []).append(i)
    statuses = [""] * len(members)
    with StopFlag() as stop:
        for idx in groups.values():
            cap = members[idx[0]].cfg.sweep.max_members
            for j in range(0, len(idx), cap):
                part = idx[j:j + cap]
                for i, s in zip(part, _run_group([members[i] for i in part], progress, stop)):
                    statuses[i] = s
    return statuses
