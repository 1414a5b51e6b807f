"""Metrics: the ``METRICS`` registry and the one entry point the trainer calls.

Two layers, so that ``report`` can use the host side without importing JAX:

* **In the compiled program** (``raw_spectra``, traced, vmapped over members): every
  registered metric whose model applies computes its raw outputs from a ``Context``
  (the model, parameters, initial parameters, inputs, hidden representations, weights).
  Singular values of same-shaped matrices go through one batched SVD per shape, or to
  NumPy after the program on the CPU backend (``svd.py``).
* **On the host** (``summarize``): ranks, near-one counts and bottleneck estimates from
  the raw spectra, layers taken from the keys present.

A metric declares what it needs through its ``applies`` predicate (a model capability
such as ``preactivations``, a model kind, a config switch); adding one is a function
here or in a new module plus one ``METRICS`` line (docs/extending.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .closed_forms import denoise_shrink, denoise_threshold, schatten_norm_cost
from .config import setting
from .end_to_end import end_to_end, is_linear_chain, summarize_end_to_end
from .frequencies import frequency_spectra
from .jacobian import jacobian_matrices, jacobian_svals
from .leaky import hamiltonian_terms, leaky_metrics, stabilised_norms
from .neurons import (count_components, host_neurons, neuron_counts, neuron_graph,
                      neuron_inputs, neuron_metrics)
from .ntk import (NTK_ITERS, NTK_MAX_SAMPLES, ntk_max_eig, ntk_metrics, ntk_trace,
                  ntk_trace_mlp, tridiagonal_max_eig)
from .ranks import (entropy_rank, log_pdet, near_one_count, nuclear_rank, numerical_rank,
                    stable_rank)
from .summary import member, split_arrays_and_scalars, summarize
from .svd import HOST_SVD, _after, grouped_svals, host_svals, stack_svals


@dataclass
class Context:
    """What a metric may read, for one member inside the compiled program."""

    model: Any
    params: dict
    params0: dict | None  # the initial parameters (None when not given)
    x: Any  # the training inputs used for representations (at most max_samples rows)
    hiddens: dict  # model.apply's named hidden representations at x
    weights: dict  # model.weights(params)
    cfg: Any  # the metrics settings
    svd_on_host: bool
    done: Any = None  # the last SVD result: later LAPACK calls wait for it (svd._after)
    out: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    compute: Callable[[Context], dict]
    applies: Callable[[Context], bool] = lambda ctx: True


def _spectra(ctx: Context) -> dict:
    """``Wxx``: singular values of each weight; ``Zxx``/``Zcxx``: of each hidden
    representation / sqrt(N), uncentered and centered (flattened per sample); ``A``: of the
    end-to-end matrix of a deep linear chain (metrics/end_to_end.py)."""
    import jax.numpy as jnp

    n = ctx.x.shape[0]
    mats = dict(ctx.weights)
    if is_linear_chain(ctx.model, ctx.params) and len(ctx.weights) > 1:
        mats["A"] = end_to_end(ctx.weights)
    for name, a in ctx.hiddens.items():
        z = a.reshape(n, -1) / math.sqrt(n)
        mats[name] = z
        mats["Zc" + name[1:]] = z - jnp.mean(z, axis=0, keepdims=True)
    svals = grouped_svals(mats, host=ctx.svd_on_host)
    ctx.done = svals
    return svals


def _norms(ctx: Context) -> dict:
    """``norm/Wxx`` = ||W_l||_F^2."""
    import jax.numpy as jnp

    return {f"norm/{k}": jnp.sum(jnp.square(W)) for k, W in ctx.weights.items()}


def _balance(ctx: Context) -> dict:
    """``balance/Wxx`` = ||W_{l+1}^T W_{l+1} - W_l W_l^T||_F in the papers' orientation, i.e.
    with our (fan_in, fan_out) matrices ||W_{l+1} W_{l+1}^T - W_l^T W_l||_F; consecutive
    weights of a chain only."""
    import jax
    import jax.numpy as jnp

    hi = jax.lax.Precision.HIGHEST
    names, Ws = list(ctx.weights), list(ctx.weights.values())
    out = {}
    for l in range(1, len(Ws)):
        if Ws[l].ndim != 2 or Ws[l].shape[0] != Ws[l - 1].shape[1]:
            continue
        a = jnp.matmul(Ws[l], Ws[l].T, precision=hi)
        b = jnp.matmul(Ws[l - 1].T, Ws[l - 1], precision=hi)
        out[f"balance/{names[l - 1]}"] = jnp.sqrt(jnp.sum(jnp.square(a - b)))
    return out


def _nonlinearity(ctx: Context) -> dict:
    """``nonlin/Zxx`` = ||post_l - pre_l||_F / ||pre_l||_F (0 when pre_l = 0)."""
    import jax.numpy as jnp

    out = {}
    for name, zt in ctx.model.preactivations(ctx.params, ctx.x).items():
        z = ctx.hiddens[name]
        num = jnp.sqrt(jnp.sum(jnp.square(z - zt)))
        den = jnp.sqrt(jnp.sum(jnp.square(zt)))
        out[f"nonlin/{name}"] = jnp.where(den > 0, num / jnp.where(den > 0, den, 1), 0.0)
    return out


def _neurons(ctx: Context) -> dict:
    """``neurons/Zxx``, ``active/Zxx``; on the CPU backend counted on the host
    (``host_neurons``) from ``neuron_inputs``."""
    if ctx.svd_on_host:
        return neuron_inputs(ctx.params, list(ctx.hiddens.values()))
    return neuron_metrics(ctx.params, list(ctx.hiddens.values()), ctx.cfg)


def _jacobian(ctx: Context) -> dict:
    """``J``: singular values of the input-output Jacobian at the first training inputs."""
    k = int(setting(ctx.cfg, "jacobian_samples"))
    apply_fn = lambda p, v: ctx.model.apply(p, v)[0]  # noqa: E731
    if ctx.svd_on_host:
        return {f"{HOST_SVD}J": jacobian_matrices(apply_fn, ctx.params, ctx.x[:k])}
    ctx.done = jacobian_svals(apply_fn, ctx.params, ctx.x[:k], after=ctx.done)
    return {"J": ctx.done}


def _ntk(ctx: Context) -> dict:
    params, x = _after(ctx.done, (ctx.params, ctx.x))
    return ntk_metrics(ctx.model, params, x, max_samples=int(setting(ctx.cfg, "ntk_samples")))


def _init_distance(ctx: Context) -> dict:
    """``init/dist`` = ||θ - θ₀|| / ||θ₀|| over the weights (lazy: small; active: order 1)."""
    import jax.numpy as jnp

    w0 = ctx.model.weights(ctx.params0)
    num = sum(jnp.sum(jnp.square(ctx.weights[k] - w0[k])) for k in w0)
    den = sum(jnp.sum(jnp.square(v)) for v in w0.values())
    return {"init/dist": jnp.sqrt(num / jnp.where(den > 0, den, 1))}


METRICS: dict[str, Metric] = {  # computed in this order
    "spectra": Metric(_spectra),
    "frequencies": Metric(frequency_spectra, lambda c: hasattr(c.model, "convs")),
    "norms": Metric(_norms),
    "balance": Metric(_balance),
    "nonlinearity": Metric(_nonlinearity, lambda c: hasattr(c.model, "preactivations")),
    "neurons": Metric(_neurons, lambda c: getattr(c.model, "kind", None) == "mlp"
                      and getattr(c.model, "activation", None) == "relu"),
    "init_distance": Metric(_init_distance, lambda c: c.params0 is not None),
    "jacobian": Metric(_jacobian, lambda c: int(setting(c.cfg, "jacobian_samples")) > 0),
    "ntk": Metric(_ntk, lambda c: bool(setting(c.cfg, "ntk"))),
    "leaky": Metric(leaky_metrics, lambda c: getattr(c.model, "kind", None) == "leaky_resnet"),
}


def host_metrics(d: dict, metrics_cfg=None) -> dict:
    """One member's raw metrics with the host's part done (the CPU backend's
    ``svd_on_host``): singular values (``host_svals``) and neuron counts
    (``host_neurons``)."""
    return host_neurons(host_svals(d), metrics_cfg)


def raw_spectra(model, params, x, metrics_cfg=None, *, ntk: bool | None = None,
                jacobian_samples: int | None = None, svd_on_host: bool = False,
                params0=None) -> dict:
    """Every applicable registered metric's raw outputs for one member (traceable).

    ``x`` is the training input; only its first ``metrics_cfg.max_samples`` rows are used.
    ``metrics_cfg`` is read at trace time only: close over it, do not trace it. ``ntk`` and
    ``jacobian_samples`` override the config's switches. Keys: docs/metrics.md.
    """
    cfg = {name: setting(metrics_cfg, name) for name in
           ("max_samples", "jacobian_samples", "ntk", "ntk_samples", "neuron_cos", "neuron_active",
            "coi_gamma")}
    if ntk is not None:
        cfg["ntk"] = ntk
    if jacobian_samples is not None:
        cfg["jacobian_samples"] = jacobian_samples
    x = x[: int(cfg["max_samples"])]
    _, hiddens = model.apply(params, x)
    ctx = Context(model, params, params0, x, hiddens, model.weights(params), cfg, svd_on_host)
    for metric in METRICS.values():
        if metric.applies(ctx):
            ctx.out.update(metric.compute(ctx))
    return ctx.out


__all__ = [
    "METRICS", "Context", "Metric", "raw_spectra", "summarize", "split_arrays_and_scalars",
    "member", "grouped_svals", "host_svals", "stack_svals", "host_metrics", "host_neurons",
    "neuron_inputs", "HOST_SVD", "numerical_rank", "stable_rank", "nuclear_rank",
    "entropy_rank", "near_one_count", "log_pdet", "neuron_metrics", "neuron_graph",
    "count_components", "neuron_counts", "jacobian_matrices", "jacobian_svals",
    "ntk_trace", "ntk_trace_mlp", "ntk_max_eig", "tridiagonal_max_eig", "ntk_metrics",
    "NTK_ITERS", "NTK_MAX_SAMPLES", "hamiltonian_terms", "leaky_metrics", "stabilised_norms",
    "schatten_norm_cost", "denoise_threshold", "denoise_shrink",
]
