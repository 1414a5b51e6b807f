"""A cohort: same-shape members trained by one compiled program (programs.py caches it).

A single ``bncli train`` is a cohort of one; a sweep job is a cohort of many. Members
differ only in values that keep the program (``config.PROGRAM_FREE``): lr and lam are
traced arrays, the rest act on the host before training. The state is one pytree with
a leading member axis; ``jax.vmap`` maps the step over it and ``lax.fori_loop`` runs
many steps per call (the trip count is traced, so chunks of any length share one
compilation). A member whose loss turns non-finite is frozen and marked diverged while
its cohort-mates train on. Each training stage (``optim.stages``) has its own pair of
programs; the optimizer state starts afresh at a stage's first step.
"""

from __future__ import annotations

import json

import numpy as np

from .optim import Stage, stage_at, stages
from .programs import Program, cached


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


def _program_key(cfg, info, data: dict, n: int, stage: int) -> str:
    """Everything the compiled step and evaluation depend on: the config without the
    settings that keep the program, the data's shapes, the member count, the stage."""
    import jax

    from .config import program_key

    return json.dumps({
        "config": program_key(cfg), "members": n, "backend": jax.default_backend(),
        "data": {k: list(np.shape(v)) for k, v in data.items()}, "stage": stage,
        "loss": info.loss, "classification": info.classification, "n_test": info.n_test,
    }, sort_keys=True, default=str)


def _stack(trees):
    import jax

    return jax.tree_util.tree_map(lambda *xs: np.stack(xs), *trees)


def _flat_opt(opt_state):
    import jax

    return jax.tree_util.tree_leaves(opt_state)


class Cohort:
    """The arrays and compiled functions of one cohort of same-shape members."""

    def __init__(self, members: list):
        import jax

        from . import models, tasks

        self.members = members
        cfg = self.cfg = members[0].cfg
        self.dtype = np.float64 if cfg.dtype == "float64" else np.float32
        data = [tasks.make_dataset(m.cfg.task, m.cfg.seed, self.dtype) for m in members]
        shapes = {(d.x_train.shape, d.y_train.shape, d.x_test.shape) for d in data}
        if len(shapes) != 1:
            raise ValueError(f"members of one cohort have different data shapes: {shapes}")
        self.data_info = data[0]
        in_shape, d_out = data[0].x_train.shape[1:], data[0].d_out
        self.model = models.build(cfg, in_shape, d_out)
        self.data = {
            "x": np.stack([d.x_train for d in data]),
            "y": np.stack([d.y_train for d in data]),
            "xt": np.stack([d.x_test for d in data]),
            "yt": np.stack([d.y_test for d in data]),
        }
        if data[0].mask is not None:  # a task observing some entries (tasks/base.py)
            if len({int(d.mask.sum()) for d in data}) != 1:
                raise ValueError("members of one cohort observe different numbers of entries")
            self.data.update(mask=np.stack([d.mask for d in data]),
                             mask_t=np.stack([d.mask_test for d in data]),
                             obs=np.stack([d.observed_entries() for d in data]))
        self.hyper = {
            "lr": np.array([m.cfg.lr for m in members], self.dtype),
            "lam": np.array([m.cfg.lam for m in members], self.dtype),
            # raw threefry keys: equal to jax.random.PRNGKey(seed) for 32-bit seeds
            "key": np.array([[0, m.cfg.seed] for m in members], np.uint32),
        }
        params = _stack([models.build(m.cfg, in_shape, d_out).init(m.cfg.seed, self.dtype)
                         for m in members])
        self.params0 = jax.device_put(params)  # θ₀, kept for metrics
        n = len(members)
        self.state = {
            "params": params,
            "alive": np.ones(n, bool),
            "div_step": np.full(n, -1, np.int32),
            "step": np.zeros((), np.int32),
        }
        self.elapsed = np.zeros(n)
        self.stages = stages(cfg)
        start = int(members[0].start["step"]) if members[0].start else 0
        self._enter(stage_at(self.stages, start), params)
        if members[0].start:
            self._restore([m.start for m in members])
        # device_put, not jnp.asarray: that compiles a small copy program per shape and
        # dtype, in every process (too small for the persistent cache): 0.2 s at start-up
        self.state, self.data, self.hyper = jax.device_put((self.state, self.data, self.hyper))
        self._programs()

    # ---- stages --------------------------------------------------------------
    def _enter(self, stage: Stage, params) -> None:
        """Start ``stage``: its optimizer with a fresh state for ``params``."""
        import jax

        from .optim import direction

        self.stage = stage
        self.tx = direction(self.cfg.optim, stage.name)
        # one jitted program rather than a dispatch (and a compile) per operation
        opt = jax.jit(jax.vmap(self.tx.init))(params)
        self.opt_treedef = jax.tree_util.tree_structure(opt)
        self.state["opt"] = opt

    def _programs(self) -> None:
        key = _program_key(self.cfg, self.data_info, self.data, len(self.members),
                           self.stage.index)
        self._chunk, self._evaluate = cached(key, lambda: (
            Program(self._make_chunk(), donate_argnums=0), Program(self._make_evaluate())))
        if getattr(self.model, "host_every", 0):
            self._host_update = Program(self._make_host_update())

    def stage_ends(self) -> list[int]:
        """Steps at which one stage ends and the next begins."""
        return [s.end for s in self.stages[:-1]]

    def advance_stage(self) -> None:
        """At a stage's last step: move to the next stage (fresh optimizer state)."""
        import jax

        step = int(self.state["step"])
        nxt = stage_at(self.stages, step)
        if nxt.index == self.stage.index:
            return
        if nxt.rebalance:  # exact rescaling along the symmetry orbit (convergence.rebalance)
            from .convergence import rebalance

            self.state["params"] = rebalance(self.state["params"])
        self._enter(nxt, self.state["params"])
        self.state["opt"] = jax.device_put(self.state["opt"])
        self._programs()

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
        from .steps import make_chunk

        return make_chunk(self.cfg, self.model, self.tx, self.stage, self.data_info)

    def _make_evaluate(self):
        from .steps import make_evaluate

        return make_evaluate(self.cfg, self.model, self.stage, self.data_info)

    def _make_host_update(self):
        """vmapped ``model.host_update`` on the training inputs, kept for frozen members."""
        import jax
        import jax.numpy as jnp

        n_rep = min(self.cfg.metrics.max_samples, self.data_info.n_train)

        def one(params, x, alive):
            new = self.model.host_update(params, x[:n_rep])
            return jax.tree_util.tree_map(lambda a, b: jnp.where(alive, a, b), new, params)

        return lambda params, data, alive: jax.vmap(one)(params, data["x"], alive)

    # ---- host-side driving ---------------------------------------------------
    def run_to(self, step: int) -> None:
        """Train to ``step``; a model with ``host_every`` > 0 has its ``host_update(params,
        x)`` applied (to living members) whenever the step reaches a multiple of it."""
        every = int(getattr(self.model, "host_every", 0) or 0)
        at = int(self.state["step"])
        marks = [m for m in range(at - at % every + every, step + 1, every)] if every else []
        for stop in [*marks, step] if not marks or marks[-1] != step else marks:
            n = np.int32(stop - int(self.state["step"]))
            self.state = self._chunk(self.state, self.hyper, self.data, n)
            if every and stop % every == 0:
                self.state["params"] = self._host_update(self.state["params"], self.data,
                                                         self.state["alive"])

    def _evaluate_args(self, initial: bool, at=None) -> tuple:
        params, step = (self.params0, np.zeros((), np.int32)) if initial else \
            at or (self.state["params"], self.state["step"])
        return params, step, self.params0, self.hyper, self.data

    def snapshot(self) -> tuple:
        """The current (params, step) as host arrays, to evaluate later (``evaluate(at=)``)."""
        import jax

        return jax.device_get((self.state["params"], self.state["step"]))

    def metrics_compiling(self) -> bool:
        """Whether the metrics program is still being compiled in the background."""
        return self._evaluate.compiling()

    def evaluate_ahead(self, pool=None) -> None:
        """Compile the metrics program in the background (the first step does not need it);
        ``pool``: the executor to compile on (``Program.ahead``)."""
        self._evaluate.ahead(*self._evaluate_args(True), pool=pool)

    def chunk_ahead(self, pool=None) -> None:
        """Compile the training chunk in the background, before this cohort trains."""
        self._chunk.ahead(self.state, self.hyper, self.data, np.int32(1), pool=pool)

    def evaluate(self, initial: bool = False, at=None) -> list[tuple[dict, dict]]:
        """Per member: (scalar metrics, raw singular-value arrays); ``initial``: of the
        initial parameters at step 0 (kept as ``params0``), ``at``: of a ``snapshot()``,
        rather than the current state."""
        return self.finish_evaluation(self.dispatch_evaluation(initial, at))

    def dispatch_evaluation(self, initial: bool = False, at=None):
        """Start the metrics program (``evaluate``'s arguments) without waiting for it: JAX
        dispatches asynchronously; ``finish_evaluation`` of the result gives the records."""
        return self._evaluate(*self._evaluate_args(initial, at))

    def finish_evaluation(self, packed) -> list[tuple[dict, dict]]:
        """``evaluate``'s records from a ``dispatch_evaluation`` result: waits for it, then
        the host part (singular values, summaries)."""
        import jax

        from . import metrics as spectra

        flat = np.asarray(jax.device_get(packed))
        raw = _unpack(flat, self._evaluate.layout)
        out = []
        for i, m in enumerate(self.members):
            one = spectra.host_metrics({k: np.asarray(v[i]) for k, v in raw.items()},
                                       m.cfg.metrics)
            arrays, scalars = spectra.split_arrays_and_scalars(one)
            record = {k: float(v) for k, v in scalars.items()}
            record.update(spectra.summarize({**arrays, **record}, self.model.depth, m.cfg.metrics))
            if len(self.stages) > 1:
                record["stage"] = float(self.stage.index)
            out.append((record, arrays))
        return out


Batch = Cohort  # the name earlier code and tests use
