"""Training engine: one compiled program trains a batch of same-shape members.

A single ``bncli train`` is a batch of one; a sweep job is a batch of many. Members
differ only in values that keep array shapes (seed, lam, lr, init scale, noise): lr and
lam are traced arrays, the rest act on the host before training. The state is one
pytree with a leading member axis; ``jax.vmap`` maps the step over it and
``lax.fori_loop`` runs many steps per call (the trip count is traced, so chunks of any
length share one compilation). A member whose loss turns non-finite is frozen and
marked diverged while its batch-mates train on.
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import rundir as rd
from .resume import load_start
from .stopflag import StopFlag


class Interrupted(Exception):
    """Training stopped on SIGINT/SIGTERM after checkpointing."""


@dataclass
class Member:
    """One run of a batch: its folder and resolved config."""

    run: rd.RunDir
    cfg: object  # DictConfig
    start: dict = field(default_factory=dict)  # checkpoint arrays when resuming


# ---------------------------------------------------------------- schedules on the host
def metric_steps(cfg) -> list[int]:
    """Step 0, ``num_log`` log-spaced steps, every ``every`` steps, and the final step."""
    steps = cfg.steps
    marks = {0, steps}
    if cfg.metrics.num_log > 0:
        marks.update(int(round(s)) for s in np.geomspace(1, steps, cfg.metrics.num_log))
    if cfg.metrics.every > 0:
        marks.update(range(0, steps + 1, cfg.metrics.every))
    return sorted(m for m in marks if 0 <= m <= steps)


def boundaries(cfg, start: int) -> list[int]:
    """Steps after ``start`` at which the host looks at the state: metrics,
    checkpoints and about 100 progress ticks."""
    steps = cfg.steps
    marks = set(metric_steps(cfg))
    marks.update(range(0, steps + 1, cfg.checkpoint.every))
    marks.update(range(0, steps + 1, max(1, steps // 100)))
    marks.add(steps)
    return sorted(m for m in marks if start < m <= steps)


# ---------------------------------------------------------------- compiled programs
class Program:
    """A jitted function shared by every batch of one shape. Its first call (trace and
    compile) holds a lock, so lanes training side by side compile it once. ``layout``:
    what ``_pack`` recorded while tracing, if the function packs its outputs."""

    def __init__(self, fn, **jit_options):
        import jax

        self.fn, self.lock, self.ready = jax.jit(fn, **jit_options), threading.Lock(), False
        self.layout = getattr(fn, "layout", None)

    def __call__(self, *args):
        if self.ready:
            return self.fn(*args)
        with self.lock:
            out = self.fn(*args)
            self.ready = True
        return out


_PROGRAMS: dict[str, tuple[Program, Program]] = {}  # oldest first
MAX_PROGRAMS = 16
_PROGRAMS_LOCK = threading.Lock()


def forget_programs() -> None:
    """Drop every cached program (the next batch traces and compiles again)."""
    with _PROGRAMS_LOCK:
        _PROGRAMS.clear()


def _pack(tree: dict, layout: dict):
    """Every output as one (members, total) array, so that the host fetches one buffer
    (each device-to-host copy costs ~0.2 ms on the CPU, and a record has ~100 outputs).
    Fills ``layout`` (key -> per-member shape and dtype) while tracing."""
    import jax.numpy as jnp

    keys = sorted(tree)
    floats = [tree[k].dtype for k in keys if jnp.issubdtype(tree[k].dtype, jnp.floating)]
    dtype = jnp.result_type(*floats) if floats else jnp.float32
    n = tree[keys[0]].shape[0]
    layout.clear()
    layout.update({k: (tuple(tree[k].shape[1:]), np.dtype(tree[k].dtype)) for k in keys})
    return jnp.concatenate([tree[k].reshape(n, -1).astype(dtype) for k in keys], axis=1)


def _unpack(flat: np.ndarray, layout: dict) -> dict[str, np.ndarray]:
    """``_pack``'s outputs back as a dict of (members, ...) arrays."""
    out, at = {}, 0
    for key, (shape, dtype) in layout.items():
        size = int(np.prod(shape, dtype=int))
        out[key] = flat[:, at:at + size].reshape((flat.shape[0], *shape)).astype(dtype)
        at += size
    return out


def _program_key(cfg, info, data: dict, n: int) -> str:
    """Everything the compiled step and evaluation depend on: the config keys they
    read (not lr, lam or seed, which are traced), the data's shapes, the batch size."""
    import jax
    from omegaconf import OmegaConf

    model = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()
             if k != "init_scale"}  # acts on the host only
    parts = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("optim", "metrics")}
    return json.dumps({
        "depth": cfg.depth, "width": cfg.width, "steps": cfg.steps, "dtype": cfg.dtype,
        "model": model, **parts, "members": n, "backend": jax.default_backend(),
        "data": {k: list(np.shape(v)) for k, v in data.items()},
        "loss": info.loss, "classification": info.classification, "n_test": info.n_test,
    }, sort_keys=True, default=str)


# ---------------------------------------------------------------- the batch trainer
def _stack(trees):
    import jax

    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)


def _flat_opt(opt_state):
    import jax

    return jax.tree_util.tree_leaves(opt_state)


class Batch:
    """The arrays and compiled functions of one batch of same-shape members."""

    def __init__(self, members: list[Member]):
        import jax
        import jax.numpy as jnp

        from . import models, tasks
        from .optim import direction

        self.members = members
        cfg = self.cfg = members[0].cfg
        self.dtype = np.float64 if cfg.dtype == "float64" else np.float32
        data = [tasks.make_dataset(m.cfg.task, m.cfg.seed, self.dtype) for m in members]
        shapes = {(d.x_train.shape, d.y_train.shape, d.x_test.shape) for d in data}
        if len(shapes) != 1:
            raise ValueError(f"members of one batch have different data shapes: {shapes}")
        self.data_info = data[0]
        self.model = models.build(cfg, data[0].d_in, data[0].d_out)
        self.tx = direction(cfg.optim)
        self.data = {
            "x": np.stack([d.x_train for d in data]),
            "y": np.stack([d.y_train for d in data]),
            "xt": np.stack([d.x_test for d in data]),
            "yt": np.stack([d.y_test for d in data]),
        }
        self.hyper = {
            "lr": np.array([m.cfg.lr for m in members], self.dtype),
            "lam": np.array([m.cfg.lam for m in members], self.dtype),
            # raw threefry keys: equal to jax.random.PRNGKey(seed) for 32-bit seeds
            "key": np.array([[0, m.cfg.seed] for m in members], np.uint32),
        }
        params = _stack([models.build(m.cfg, data[0].d_in, data[0].d_out)
                         .init_params(m.cfg.seed, self.dtype) for m in members])
        opt = jax.vmap(self.tx.init)(params)
        self.opt_treedef = jax.tree_util.tree_structure(opt)
        n = len(members)
        self.state = {
            "params": params,
            "opt": opt,
            "alive": np.ones(n, bool),
            "div_step": np.full(n, -1, np.int32),
            "step": np.zeros((), np.int32),
        }
        self.elapsed = np.zeros(n)
        if members[0].start:
            self._restore([m.start for m in members])
        self.state = jax.tree_util.tree_map(jnp.asarray, self.state)
        self.data = {k: jnp.asarray(v) for k, v in self.data.items()}
        self.hyper = {k: jnp.asarray(v) for k, v in self.hyper.items()}
        key = _program_key(cfg, self.data_info, self.data, n)
        with _PROGRAMS_LOCK:  # lanes starting together share one program
            if key not in _PROGRAMS:
                while len(_PROGRAMS) >= MAX_PROGRAMS:  # a long sweep of many shapes
                    _PROGRAMS.pop(next(iter(_PROGRAMS)))
                _PROGRAMS[key] = (Program(self._make_chunk(), donate_argnums=0),
                                  Program(self._make_evaluate()))
            self._chunk, self._evaluate = _PROGRAMS[key]

    # ---- checkpoint arrays (one member) ------------------------------------
    def _restore(self, starts: list[dict]) -> None:
        import jax

        names = sorted(self.state["params"])
        self.state["params"] = {k: np.stack([s[f"params/{k}"] for s in starts]) for k in names}
        n_leaves = self.opt_treedef.num_leaves
        leaves = [np.stack([s[f"opt/{i:03d}"] for s in starts]) for i in range(n_leaves)]
        self.state["opt"] = jax.tree_util.tree_unflatten(self.opt_treedef, leaves)
        self.state["alive"] = np.array([bool(s["alive"]) for s in starts])
        self.state["div_step"] = np.array([int(s["div_step"]) for s in starts], np.int32)
        self.state["step"] = np.asarray(int(starts[0]["step"]), np.int32)
        self.elapsed = np.array([float(s["elapsed"]) for s in starts])

    def member_arrays(self, host_state, i: int) -> dict[str, np.ndarray]:
        out = {f"params/{k}": v[i] for k, v in host_state["params"].items()}
        for j, leaf in enumerate(_flat_opt(host_state["opt"])):
            out[f"opt/{j:03d}"] = np.asarray(leaf)[i]
        out.update(alive=host_state["alive"][i], div_step=host_state["div_step"][i],
                   step=host_state["step"], elapsed=self.elapsed[i])
        return out

    # ---- compiled functions --------------------------------------------------
    def _make_chunk(self):
        import jax
        import jax.numpy as jnp

        from .objective import objective
        from .optim import lam_factor, lr_factor

        cfg, model, tx = self.cfg, self.model, self.tx
        apply_fn = lambda p, x: model.apply(p, x)[0]  # noqa: E731
        loss_kind = self.data_info.loss
        include_bias = cfg.model.ridge_on_bias
        batch_size = cfg.optim.batch_size
        n_train = self.data_info.n_train
        minibatch = batch_size is not None and batch_size < n_train

        def member_step(params, opt, alive, div_step, hyper, x, y, step):
            if minibatch:
                key = jax.random.fold_in(hyper["key"], step)
                idx = jax.random.permutation(key, n_train)[:batch_size]
                x, y = x[idx], y[idx]
            lam = hyper["lam"] * lam_factor(cfg.optim, step)
            grad_fn = jax.value_and_grad(objective, argnums=1, has_aux=True)
            (total, _), grads = grad_fn(apply_fn, params, x, y, lam, loss_kind, include_bias)
            direction, new_opt = tx.update(grads, opt, params)
            lr = (hyper["lr"] * lr_factor(cfg.optim, cfg.steps, step)).astype(x.dtype)
            new_params = jax.tree_util.tree_map(lambda p, d: p + lr * d, params, direction)
            ok = alive & jnp.isfinite(total)
            keep = lambda new, old: jax.tree_util.tree_map(  # noqa: E731
                lambda a, b: jnp.where(ok, a, b), new, old)
            div_step = jnp.where(alive & ~ok, step, div_step)
            return keep(new_params, params), keep(new_opt, opt), ok, div_step

        stepped = jax.vmap(member_step, in_axes=(0, 0, 0, 0, 0, 0, 0, None))

        def chunk(state, hyper, data, n):
            def body(_, st):
                p, o, a, d = stepped(st["params"], st["opt"], st["alive"], st["div_step"],
                                     hyper, data["x"], data["y"], st["step"])
                return {"params": p, "opt": o, "alive": a, "div_step": d, "step": st["step"] + 1}

            return jax.lax.fori_loop(0, n, body, state)

        return chunk

    def _make_evaluate(self):
        import jax

        from . import spectra
        from .objective import accuracy, fit_term, objective
        from .optim import lam_factor, lr_factor

        cfg, model = self.cfg, self.model
        apply_fn = lambda p, x: model.apply(p, x)[0]  # noqa: E731
        info = self.data_info
        n_rep = min(cfg.metrics.max_samples, info.n_train)
        # On the CPU backend SVDs run in NumPy after the program (see spectra.grouped_svals).
        svd_on_host = jax.default_backend() == "cpu"

        def member_eval(params, hyper, x, y, xt, yt, step):
            lam = hyper["lam"] * lam_factor(cfg.optim, step)
            total, (fit, ridge) = objective(apply_fn, params, x, y, lam, info.loss,
                                            cfg.model.ridge_on_bias)
            out = {"loss/train": total, "loss/fit": fit, "loss/ridge": ridge, "lam": lam,
                   "lr": hyper["lr"] * lr_factor(cfg.optim, cfg.steps, step)}
            if info.n_test > 0:
                out["loss/test"] = fit_term(apply_fn(params, xt), yt, info.loss)
            if info.classification:
                out["acc/train"] = accuracy(apply_fn(params, x), y)
                if info.n_test > 0:
                    out["acc/test"] = accuracy(apply_fn(params, xt), yt)
            out.update(spectra.raw_spectra(model, params, x[:n_rep], cfg.metrics,
                                           svd_on_host=svd_on_host))
            return out

        layout: dict = {}

        def evaluate(state, hyper, data):
            out = jax.vmap(member_eval, in_axes=(0, 0, 0, 0, 0, 0, None))(
                state["params"], hyper, data["x"], data["y"], data["xt"], data["yt"],
                state["step"])
            return _pack(out, layout)

        evaluate.layout = layout
        return evaluate

    # ---- host-side driving ---------------------------------------------------
    def run_to(self, step: int) -> None:
        import jax.numpy as jnp

        n = step - int(self.state["step"])
        self.state = self._chunk(self.state, self.hyper, self.data, jnp.asarray(n, jnp.int32))

    def evaluate(self) -> list[tuple[dict, dict]]:
        """Per member: (scalar metrics, raw singular-value arrays)."""
        import jax

        from . import spectra

        flat = np.asarray(jax.device_get(self._evaluate(self.state, self.hyper, self.data)))
        raw = _unpack(flat, self._evaluate.layout)
        out = []
        for i, m in enumerate(self.members):
            one = spectra.host_svals({k: np.asarray(v[i]) for k, v in raw.items()})
            arrays, scalars = spectra.split_arrays_and_scalars(one)
            record = {k: float(v) for k, v in scalars.items()}
            record.update(spectra.summarize({**arrays, **record}, m.cfg.depth, m.cfg.metrics))
            out.append((record, arrays))
        return out


def _checkpoint(batch: Batch, host_state, i: int) -> None:
    rd.write_npz(batch.members[i].run.file(rd.CHECKPOINT), batch.member_arrays(host_state, i))


def _final_record(run: rd.RunDir) -> dict:
    records = run.read_metrics()
    return records[-1] if records else {}


def _finish(batch: Batch, host_state, i: int, status: str, steps_done: int) -> None:
    member = batch.members[i]
    run = member.run
    div_step = int(host_state["div_step"][i])
    params = {k: v[i] for k, v in host_state["params"].items()}
    if status == "finished":
        rd.write_npz(run.file(rd.PARAMS), params)
    summary = {
        "status": status,
        "steps": member.cfg.steps,
        "steps_done": steps_done,
        "diverged_step": div_step if div_step >= 0 else None,
        "wall_time": float(batch.elapsed[i]),
        "final": _final_record(run),
    }
    rd.write_json(run.file(rd.SUMMARY), summary)
    if run.file(rd.CHECKPOINT).exists():
        run.file(rd.CHECKPOINT).unlink()
    run.set_status(status, step=steps_done, steps=member.cfg.steps,  # the last write
                   diverged_step=summary["diverged_step"])


def train_batch(members: list[Member], progress=None, stop: StopFlag | None = None) -> list[str]:
    """Train a batch of same-shape members to their final step; return their statuses.

    Raises ``Interrupted`` (after checkpointing every member) on SIGINT/SIGTERM, watched
    by ``stop`` when given (lanes in threads share the main thread's flag).
    """
    import jax

    batch = Batch(members)
    cfg = batch.cfg
    if stop:  # arrived while the data and the model were set up: nothing new to save
        for m in members:
            m.run.set_status("interrupted", step=int(batch.state["step"]), steps=cfg.steps)
        raise Interrupted(f"stopped by signal {stop.signal} during set-up")
    start = int(batch.state["step"])
    marks = set(metric_steps(cfg))
    n = len(members)
    statuses = ["running"] * n
    for m in members:
        m.run.set_status("running", step=start, steps=cfg.steps)
    if progress is not None:
        progress.start_batch([m.run.path.name for m in members], start, cfg.steps)
    t0 = time.perf_counter() - batch.elapsed.max(initial=0.0)

    with (nullcontext(stop) if stop is not None else StopFlag()) as stop:
        if start == 0:
            _record(batch, 0, statuses)
        for b in boundaries(cfg, start):
            batch.run_to(b)
            alive = np.asarray(jax.device_get(batch.state["alive"]))
            batch.elapsed[:] = time.perf_counter() - t0
            newly_dead = [i for i in range(n) if statuses[i] == "running" and not alive[i]]
            if b in marks:
                _record(batch, b, statuses, skip=newly_dead)
            if progress is not None:
                progress.update(b, statuses)
            if newly_dead or b % cfg.checkpoint.every == 0 or stop:
                host = jax.device_get(batch.state)
                for i in newly_dead:
                    statuses[i] = "diverged"
                    _finish(batch, host, i, "diverged", int(host["div_step"][i]))
                if b % cfg.checkpoint.every == 0 or stop:
                    for i in range(n):
                        if statuses[i] == "running":
                            _checkpoint(batch, host, i)
            if stop and b < cfg.steps:
                for i in range(n):
                    if statuses[i] == "running":
                        members[i].run.set_status("interrupted", step=b, steps=cfg.steps)
                raise Interrupted(f"stopped by signal {stop.signal} at step {b}")
            if "running" not in statuses:
                break
        host = jax.device_get(batch.state)
        for i in range(n):
            if statuses[i] == "running":
                # a loss that turned non-finite in the very last step shows only here
                finite = all(np.isfinite(v[i]).all() for v in host["params"].values())
                if not finite:
                    host["div_step"][i] = cfg.steps
                statuses[i] = "finished" if finite else "diverged"
                _finish(batch, host, i, statuses[i], cfg.steps)
    if progress is not None:
        progress.end_batch(statuses)
    return statuses


def _record(batch: Batch, step: int, statuses: list[str], skip=()) -> None:
    """Evaluate and append one metrics record (and spectra) per running member."""
    for i, (record, arrays) in enumerate(batch.evaluate()):
        if statuses[i] != "running" or i in skip:
            continue
        if not np.isfinite(record["loss/train"]):
            continue  # diverging: the trainer marks it at its next look at the state
        run = batch.members[i].run
        run.write_spectra(step, arrays)
        run.append_metrics([{"step": step, "time": round(float(batch.elapsed[i]), 4), **record}])


def configure_jax(float64: bool) -> None:
    """float64 on request, and a persistent compilation cache shared by processes
    ($BNCLI_JAX_CACHE, default ~/.cache/bncli/jax; empty string disables it)."""
    import jax

    if float64:
        jax.config.update("jax_enable_x64", True)
    cache = os.environ.get("BNCLI_JAX_CACHE", str(Path.home() / ".cache" / "bncli" / "jax"))
    if cache and jax.config.jax_compilation_cache_dir is None:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def cpu_lanes(cfg, n_batches: int) -> int:
    """How many batches train side by side in threads: on the CPU one per usable core
    (``sweep.cpu_threads`` overrides), since a small net's step keeps one core busy and
    ``vmap`` over members gains little there; elsewhere 1 (the GPU gains from ``vmap``)."""
    import jax

    if n_batches < 2 or jax.default_backend() != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cfg.sweep.cpu_threads or cores or 1, n_batches))


def train_members(members: list[Member], progress=None) -> list[str]:
    """Train members of one shape, resuming each from its checkpoint.

    Batches are formed of members at the same start step, at most ``sweep.max_members``
    each, and run one after another as vmapped programs. On a multi-core CPU the
    members instead train one per batch in ``cpu_lanes`` threads; every batch of one
    shape reuses one compiled program either way."""
    configure_jax(any(m.cfg.dtype == "float64" for m in members))
    for m in members:
        m.start = load_start(m.run, m.cfg)
    by_start: dict[int, list[int]] = {}
    for i, m in enumerate(members):
        by_start.setdefault(int(m.start["step"]) if m.start else 0, []).append(i)
    cap = members[0].cfg.sweep.max_members if members else 1
    parts = [idx[j:j + cap] for idx in by_start.values() for j in range(0, len(idx), cap)]
    lanes = cpu_lanes(members[0].cfg, len(members)) if members else 1
    if lanes > 1:
        parts = [[i] for i in range(len(members))]
    statuses = [""] * len(members)
    with StopFlag() as stop:
        def run(part):
            if stop:
                raise Interrupted(f"stopped by signal {stop.signal} before starting")
            for i, s in zip(part, train_batch([members[i] for i in part], progress, stop)):
                statuses[i] = s

        if lanes == 1:
            for part in parts:
                run(part)
        else:
            with ThreadPoolExecutor(lanes, thread_name_prefix="bncli-lane") as pool:
                futures = [pool.submit(run, part) for part in parts]
            errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:  # a stop wins: failed members are then resumed, not lost
                raise next((e for e in errors if isinstance(e, Interrupted)), errors[0])
        if stop:  # arrived as the last batch ended: every member is saved; stop the caller
            raise Interrupted(f"stopped by signal {stop.signal} after training")
    return statuses
