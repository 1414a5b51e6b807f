"""The compiled functions of a cohort: the training chunk and the metrics evaluation.

``member_step`` is one optimizer step of one member (pure; ``jax.vmap`` maps it over a
cohort of several); ``make_chunk`` runs many steps per call with ``lax.fori_loop``; ``make_evaluate``
computes one metrics record per member and packs every output into one buffer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .objective import accuracy, fit_term, objective
from .optim import stage_lam, stage_lr


def entry_batch(key, step, n_obs: int, batch_size: int, replacement: bool):
    """Indices into the observed entries for ``step``: without replacement, epochs of
    n_obs // batch_size steps each walk one permutation (every entry at most once per
    epoch, all but n_obs mod batch_size of them exactly once); with replacement, uniform."""
    if replacement:
        return jax.random.randint(jax.random.fold_in(key, step), (batch_size,), 0, n_obs)
    per_epoch = n_obs // batch_size
    perm = jax.random.permutation(jax.random.fold_in(key, step // per_epoch), n_obs)
    return jax.lax.dynamic_slice(perm, ((step % per_epoch) * batch_size,), (batch_size,))


def make_member_step(cfg, model, tx, stage, info):
    """One step of one member: (params, opt, alive, div_step, hyper, data, step) -> new
    (params, opt, alive, div_step); ``data``: this member's arrays (``x``, ``y``, and
    ``mask``/``obs`` for a task observing some entries). A non-finite objective freezes
    the member. Minibatches sample rows, or observed entries when the task has a mask."""
    loss_kind = info.loss
    include_bias = cfg.model.get("ridge_on_bias", False)
    batch_size = cfg.optim.batch_size
    n_train = info.n_train
    masked = info.mask is not None
    n_obs = int(info.mask.sum()) if masked else 0
    minibatch = batch_size is not None and batch_size < n_train and not masked
    # over entries a full-batch stage (gd) uses every observed entry whatever batch_size
    entry_sgd = (masked and stage.name in ("sgd", "adam") and batch_size is not None
                 and batch_size < n_obs)
    replacement = bool(cfg.optim.get("replacement", False))
    lbfgs = stage.name == "lbfgs"

    def member_step(params, opt, alive, div_step, hyper, data, step):
        x, y = data["x"], data["y"]
        mask = entries = None
        if minibatch:
            key = jax.random.fold_in(hyper["key"], step)
            idx = jax.random.permutation(key, n_train)[:batch_size]
            x, y = x[idx], y[idx]
        elif entry_sgd:
            entries = data["obs"][entry_batch(hyper["key"], step, n_obs, batch_size,
                                              replacement)]
        elif masked:
            mask = data["mask"]
        lam = stage_lam(cfg.optim, stage, hyper["lam"], step)
        loss = lambda p: objective(model, p, x, y, lam, loss_kind, include_bias,  # noqa: E731
                                   mask, entries)
        (total, _), grads = jax.value_and_grad(loss, has_aux=True)(params)
        if lbfgs:
            value_fn = lambda p: loss(p)[0]  # noqa: E731
            direction, new_opt = tx.update(grads, opt, params, value=total, grad=grads,
                                           value_fn=value_fn)
        else:
            direction, new_opt = tx.update(grads, opt, params)
        lr = stage_lr(cfg.optim, stage, hyper["lr"], step).astype(x.dtype)
        new_params = jax.tree_util.tree_map(lambda p, d: p + lr * d, params, direction)
        ok = alive & jnp.isfinite(total)
        div_step = jnp.where(alive & ~ok, step, div_step)
        return keep_where(ok, new_params, params), keep_where(ok, new_opt, opt), ok, div_step

    return member_step


def keep_where(ok, new, old):
    """``new`` where the scalar ``ok`` holds, else ``old``, leaf by leaf: ``jnp.where``'s
    values with one primitive per leaf (``select_n``), cheap to trace for many leaves."""
    from jax import lax

    def select(a, b):
        return lax.select_n(lax.broadcast_in_dim(ok, jnp.shape(a), ()), b, a)

    return jax.tree_util.tree_map(select, new, old)


def make_chunk(cfg, model, tx, stage, info):
    """``chunk(state, hyper, data, n)``: n steps of every member (one compiled program).
    A cohort of one runs its member's step without ``vmap``: XLA:CPU runs the plain
    matmuls of one member faster than batched matmuls with a batch of one."""
    member_step = make_member_step(cfg, model, tx, stage, info)
    stepped = jax.vmap(member_step, in_axes=(0, 0, 0, 0, 0, 0, None))
    carried = ("params", "opt", "alive", "div_step")

    def chunk(state, hyper, data, n):
        train = {k: v for k, v in data.items() if k in ("x", "y", "mask", "obs")}
        single = state["alive"].shape[0] == 1
        step_fn = member_step if single else stepped
        if single:
            state, hyper, train = _squeeze(state, carried), _squeeze(hyper), _squeeze(train)

        def body(_, st):
            p, o, a, d = step_fn(*(st[k] for k in carried), hyper, train, st["step"])
            return {"params": p, "opt": o, "alive": a, "div_step": d, "step": st["step"] + 1}

        out = jax.lax.fori_loop(0, n, body, state)
        return _expand(out, carried) if single else out

    return chunk


def _squeeze(tree: dict, keys=None) -> dict:
    """The member axis of a cohort of one dropped (from ``keys``, or every entry)."""
    return {k: jax.tree_util.tree_map(lambda a: a[0], v) if keys is None or k in keys else v
            for k, v in tree.items()}


def _expand(tree: dict, keys) -> dict:
    return {k: jax.tree_util.tree_map(lambda a: a[None], v) if k in keys else v
            for k, v in tree.items()}


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(jnp.square(v)) for v in jax.tree_util.tree_leaves(tree)))


def gradient_norms(model, params, grads) -> dict:
    """``grad/norm`` = ||∇ objective|| (full batch), ``grad/rel`` = that / ||θ||, and per
    weight ``grad/Wxx`` = ||∇_{W_l}|| / ||W_l|| (convergence.py)."""
    g, p = _norm(grads), _norm(params)
    out = {"grad/norm": g, "grad/rel": g / jnp.where(p > 0, p, 1.0)}
    weights = model.weights(params)
    for name, gw in model.weights(grads).items():
        w = _norm(weights[name])
        out[f"grad/{name}"] = _norm(gw) / jnp.where(w > 0, w, 1.0)
    return out


def make_evaluate(cfg, model, stage, info):
    """``evaluate(params, step, params0, hyper, data)``: losses and raw spectra of every
    member (``params0``: the initial parameters, for the distance from initialisation), packed
    into one (members, total) array whose layout is ``evaluate.layout``."""
    from .metrics import raw_spectra
    from .cohort import _pack

    apply_fn = lambda p, x: model.apply(p, x)[0]  # noqa: E731
    n_rep = min(cfg.metrics.max_samples, info.n_train)
    include_bias = cfg.model.get("ridge_on_bias", False)
    # On the CPU backend SVDs run in NumPy after the program (see spectra.grouped_svals).
    svd_on_host = jax.default_backend() == "cpu"

    def member_eval(params, params0, hyper, d, step):
        x, y, xt, yt = d["x"], d["y"], d["xt"], d["yt"]
        lam = stage_lam(cfg.optim, stage, hyper["lam"], step)
        loss = lambda p: objective(model, p, x, y, lam, info.loss, include_bias,  # noqa: E731
                                   d.get("mask"))
        (total, (fit, ridge)), grads = jax.value_and_grad(loss, has_aux=True)(params)
        out = {"loss/train": total, "loss/fit": fit, "loss/ridge": ridge, "lam": lam,
               "lr": stage_lr(cfg.optim, stage, hyper["lr"], step),
               **gradient_norms(model, params, grads)}
        if info.n_test > 0:
            pred_t = apply_fn(params, xt)
            out["loss/test"] = fit_term(pred_t, yt, info.loss, d.get("mask_t"))
            if "mask_t" in d:  # ||A - M*||_F / ||M*||_F over every entry
                out["loss/rel_err"] = jnp.sqrt(jnp.sum((pred_t - yt) ** 2)
                                               / jnp.maximum(jnp.sum(yt ** 2), 1e-30))
        if info.classification:
            out["acc/train"] = accuracy(apply_fn(params, x), y)
            if info.n_test > 0:
                out["acc/test"] = accuracy(apply_fn(params, xt), yt)
        out.update(raw_spectra(model, params, x[:n_rep], cfg.metrics,
                               svd_on_host=svd_on_host, params0=params0))
        return out

    layout: dict = {}

    def evaluate(params, step, params0, hyper, data):
        out = jax.vmap(member_eval, in_axes=(0, 0, 0, 0, None))(params, params0, hyper, data,
                                                                 step)
        return _pack(out, layout)

    evaluate.layout = layout
    return evaluate
