"""Spectral metrics: singular values, ranks, norms, NTK and Jacobians (SCIENCE.md section 3).

Two layers, so that ``report`` can use the second without importing JAX:

(A) **Jittable JAX functions** (JAX is imported inside them). They work under ``jax.jit``
    and under ``jax.vmap`` over a leading member axis of ``params``:

    * ``raw_spectra(model, params, x, metrics_cfg)``: singular values (descending) of every
      weight matrix (``W01``..), of every hidden representation Z_l / sqrt(N), uncentered
      (``Z01``..) and centered (``Zc01``..), plus the scalars that singular values cannot
      give: ``norm/Wxx``, ``balance/Wxx``, ``nonlin/Zxx``; and, as ``metrics_cfg`` asks,
      the Jacobian spectra ``J`` and the ``ntk/*`` scalars; for ReLU nets the neuron counts
      ``neurons/Zxx`` and ``active/Zxx`` (``neuron_metrics``, ``neuron_counts``).
      Same-shaped matrices are stacked and go through ONE batched SVD per shape.
    * ``ntk_trace`` (exact, generic, per-sample Jacobians in chunks), ``ntk_trace_mlp``
      (exact, fast, for ``FullyConnected``), ``ntk_max_eig`` (Lanczos on J J^T with
      jvp/vjp, never materialising J), ``jacobian_svals``.

(B) **Host-side NumPy functions**: ``numerical_rank``, ``stable_rank``, ``nuclear_rank``,
    ``entropy_rank``, ``near_one_count``, ``log_pdet``; ``summarize`` (the flat keys of
    docs/metrics.md for one member); ``split_arrays_and_scalars``; ``member``; and the
    closed forms of SCIENCE.md section 4 (``schatten_norm_cost``, ``denoise_shrink``,
    ``denoise_threshold``).

Conventions: params are the flat dict of ``models.py`` (``W01`` of shape (fan_in, fan_out),
``z = a @ W + b``). The papers' W_l is our ``W_l.T``; singular values are the same, and
``balance/Wxx`` is computed in the papers' orientation (see ``raw_spectra``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from .rundir import layer_name, sorted_layers

# Key prefix of matrices left for ``host_svals`` to decompose.
HOST_SVD = "svd:"
# NTK metrics use at most this many training inputs (the first ones); see ``ntk_metrics``.
NTK_MAX_SAMPLES = 512
# Lanczos steps for the NTK top eigenvalue.
NTK_ITERS = 20
# Floats one chunk of per-sample Jacobians may hold in the generic ``ntk_trace``.
_CHUNK_FLOATS = 1 << 24


def _cfg(metrics_cfg, name: str):
    """A field of MetricsConfig (dataclass, DictConfig or dict); defaults when cfg is None."""
    if metrics_cfg is None:
        from .config import MetricsConfig

        return getattr(MetricsConfig(), name)
    if isinstance(metrics_cfg, Mapping):
        return metrics_cfg[name]
    return getattr(metrics_cfg, name)


def _weight_names(params) -> list[str]:
    """Weight-matrix keys W01..WLL in layer order (numeric: W99 before W100)."""
    return sorted_layers(k for k in params if k.startswith("W"))


# =========================================================================================
# (A) JAX: raw spectra, NTK, Jacobians
# =========================================================================================


def _after(dep, x):
    """``x``, but only once ``dep`` is computed: a data dependency via optimization_barrier.

    Used to run LAPACK calls one at a time. jaxlib's batched CPU SVD spreads its batch over
    XLA's intra-op thread pool and blocks its worker until done; two such calls running
    concurrently on a 2-core host can each hold a worker and wait on the other forever
    (observed: a permanent hang of a vmapped metrics program).
    """
    import jax

    if dep is None:
        return x
    return jax.lax.optimization_barrier((dep, x))[1]


def grouped_svals(mats: Mapping[str, Any], after=None, host: bool = False) -> dict:
    """Singular values (descending) of each 2-d matrix, one batched SVD per distinct shape.

    The SVDs run one after the other (and after ``after``, if given); see ``_after``.
    With ``host=True`` the matrices themselves are returned under ``svd:<name>`` keys and
    ``host_svals`` decomposes them with NumPy after the program ran: on the CPU backend
    this avoids LAPACK custom calls inside XLA, which can deadlock its thread pool.
    """
    import jax.numpy as jnp

    if host:
        return {f"{HOST_SVD}{n}": m for n, m in mats.items()}
    # Wide matrices are transposed (same singular values), so e.g. W01 and WLL share a group.
    tall = {n: (m if m.shape[-2] >= m.shape[-1] else m.T) for n, m in mats.items()}
    groups: dict[tuple, list[str]] = {}
    for name, m in tall.items():
        groups.setdefault(tuple(m.shape), []).append(name)
    out = {}
    for names in groups.values():
        s = jnp.linalg.svd(_after(after, jnp.stack([tall[n] for n in names])), compute_uv=False)
        after = s
        for i, n in enumerate(names):
            out[n] = s[i]
    return out


def host_svals(d: Mapping[str, Any]) -> dict:
    """Replace every ``svd:<name>`` matrix (or stack of matrices) by its singular values,
    computed with NumPy, one batched call per shape; other entries pass through."""
    out = {k: v for k, v in d.items() if not k.startswith(HOST_SVD)}
    groups: dict[tuple, list[str]] = {}
    for k, v in d.items():
        if k.startswith(HOST_SVD):
            groups.setdefault(np.shape(v), []).append(k)
    for shape, keys in groups.items():
        stack = np.stack([np.asarray(d[k]) for k in keys])
        svals = np.linalg.svd(stack, compute_uv=False)
        for i, k in enumerate(keys):
            out[k[len(HOST_SVD):]] = svals[i]
    return out


def raw_spectra(model, params, x, metrics_cfg=None, *, ntk: bool | None = None,
                jacobian_samples: int | None = None, svd_on_host: bool = False) -> dict:
    """Raw spectra and the scalars that singular values cannot give, for one member.

    ``x`` is the training input; only its first ``metrics_cfg.max_samples`` rows are used
    (a static slice, done here, so passing ``x`` already sliced is equally fine).
    ``metrics_cfg`` is read at trace time only: close over it (``jax.jit(lambda p, x:
    raw_spectra(model, p, x, cfg.metrics))``), do not pass it as a traced argument.

    Returns (N = rows used, L = depth):

    * ``W01..``: singular values of W_l;  ``norm/W01..``: ||W_l||_F^2
    * ``Z01..``, ``Zc01..``: singular values of Z_l / sqrt(N), uncentered / centered
      (Z_l the post-activation of hidden layer l, from ``model.apply``'s intermediates)
    * ``nonlin/Z01..``: ||post_l - pre_l||_F / ||pre_l||_F (0 when pre_l = 0)
    * ``balance/W01..W(L-1)``: ||W_{l+1}^T W_{l+1} - W_l W_l^T||_F in the papers'
      orientation, i.e. with our matrices ||W_{l+1} W_{l+1}^T - W_l^T W_l||_F (width x width)
    * ``neurons/Z01..``, ``active/Z01..`` (ReLU nets only): distinct active neuron
      directions and active neurons of each hidden layer (``neuron_counts``)
    * ``J`` (if ``jacobian_samples`` > 0, default ``metrics_cfg.jacobian_samples``):
      (samples, min(d_in, d_out)) singular values of Jf at the first training inputs
    * ``ntk/*`` (if ``ntk``, default ``metrics_cfg.ntk``): see ``ntk_metrics``.
    """
    import jax
    import jax.numpy as jnp

    hi = jax.lax.Precision.HIGHEST
    x = x[: int(_cfg(metrics_cfg, "max_samples"))]
    n = x.shape[0]
    _, hiddens = model.apply(params, x)
    weights = model.weights(params)
    names, Ws = list(weights), list(weights.values())

    mats = dict(weights)
    for name, a in hiddens.items():
        z = a.reshape(n, -1) / math.sqrt(n)
        mats[name] = z
        mats["Zc" + name[1:]] = z - jnp.mean(z, axis=0, keepdims=True)
    svals = grouped_svals(mats, host=svd_on_host)
    out = dict(svals)

    for name, W in zip(names, Ws):
        out[f"norm/{name}"] = jnp.sum(jnp.square(W))
    for l in range(1, len(Ws)):
        if Ws[l].shape[0] != Ws[l - 1].shape[1]:
            continue  # consecutive weights of a chain only (not a conv kernel's view)
        # paper W_{l+1}^T W_{l+1} = ours W_{l+1} W_{l+1}^T; paper W_l W_l^T = ours W_l^T W_l
        a = jnp.matmul(Ws[l], Ws[l].T, precision=hi)
        b = jnp.matmul(Ws[l - 1].T, Ws[l - 1], precision=hi)
        out[f"balance/{names[l - 1]}"] = jnp.sqrt(jnp.sum(jnp.square(a - b)))
    if hasattr(model, "preactivations"):
        for name, zt in model.preactivations(params, x).items():
            z = hiddens[name]
            num = jnp.sqrt(jnp.sum(jnp.square(z - zt)))
            den = jnp.sqrt(jnp.sum(jnp.square(zt)))
            out[f"nonlin/{name}"] = jnp.where(den > 0, num / jnp.where(den > 0, den, 1), 0.0)
    if getattr(model, "kind", None) == "mlp" and getattr(model, "activation", None) == "relu":
        out.update(neuron_metrics(params, list(hiddens.values()), metrics_cfg))

    apply_fn = lambda p, v: model.apply(p, v)[0]  # noqa: E731
    done = svals  # what follows waits for every SVD above (see _after)
    k = int(_cfg(metrics_cfg, "jacobian_samples")) if jacobian_samples is None else int(jacobian_samples)
    if k > 0:
        if svd_on_host:
            out[f"{HOST_SVD}J"] = jacobian_matrices(apply_fn, params, x[:k])
        else:
            out["J"] = done = jacobian_svals(apply_fn, params, x[:k], after=done)
    if bool(_cfg(metrics_cfg, "ntk")) if ntk is None else ntk:
        out.update(ntk_metrics(model, *_after(done, (params, x)),
                               max_samples=int(_cfg(metrics_cfg, "ntk_samples"))))
    return out


def neuron_metrics(params, post, metrics_cfg=None) -> dict:
    """``neurons/Zxx`` and ``active/Zxx`` of every hidden layer (``neuron_counts``); the
    layers' graphs are stacked per width so that one while_loop labels them all."""
    import jax.numpy as jnp

    names = _weight_names(params)
    cos = float(_cfg(metrics_cfg, "neuron_cos"))
    tol = float(_cfg(metrics_cfg, "neuron_active"))
    graphs = [neuron_graph(params[names[l - 1]], params.get(layer_name("b", l)), a,
                           params[names[l]], cos=cos, active_tol=tol)
              for l, a in enumerate(post, 1)]
    groups: dict[int, list[int]] = {}
    for i, (link, _) in enumerate(graphs):
        groups.setdefault(link.shape[-1], []).append(i)
    out = {}
    for layers in groups.values():
        active = jnp.stack([graphs[i][1] for i in layers])
        distinct = count_components(jnp.stack([graphs[i][0] for i in layers]), active)
        for k, i in enumerate(layers):
            z, dtype = layer_name("Z", i + 1), post[i].dtype
            out[f"neurons/{z}"] = distinct[k].astype(dtype)
            out[f"active/{z}"] = jnp.sum(active[k]).astype(dtype)
    return out


def neuron_graph(W_in, b_in, post, W_out, *, cos: float, active_tol: float):
    """(link, active) of one ReLU hidden layer (arXiv 2205.15809; docs/metrics.md).

    Neuron j has incoming vector w_j = (W_in[:, j], b_in[j]) (the bias only if there is one),
    post-activations a_j (N rows of ``post``) and outgoing row v_j = W_out[j, :]. Its output
    term a_j v_j^T has norm c_j = ||a_j|| ||v_j||; j is *active* when
    c_j > max(0, active_tol * max_k c_k): dead neurons (never firing on the inputs) and
    neurons with zero outgoing weights are not. relu(t (w.x + b)) = t relu(w.x + b) for t > 0,
    so two active neurons are *linked* (the same feature) when their unit vectors
    u_j = w_j / ||w_j|| have cosine u_i.u_j >= ``cos``. Cost: one width x width Gram matrix.
    """
    import jax
    import jax.numpy as jnp

    w = W_in.T if b_in is None else jnp.concatenate([W_in.T, b_in[:, None]], axis=1)
    norm = jnp.sqrt(jnp.sum(jnp.square(w), axis=1))
    u = w / jnp.where(norm > 0, norm, 1.0)[:, None]
    c = jnp.sqrt(jnp.sum(jnp.square(post), axis=0) * jnp.sum(jnp.square(W_out), axis=1))
    active = (c > active_tol * jnp.max(c)) & (c > 0) & (norm > 0)
    gram = jnp.matmul(u, u.T, precision=jax.lax.Precision.HIGHEST)
    return (gram >= cos) & active[:, None] & active[None, :], active


def count_components(link, active):
    """Connected components among the active nodes of symmetric graphs ``link`` (..., n, n):
    single linkage, so the count does not depend on node order. Min-label propagation
    (each node takes the smallest label among its neighbours) until nothing changes, in one
    while_loop for the whole stack; a component is counted at its smallest node."""
    import jax
    import jax.numpy as jnp

    n = link.shape[-1]
    idx = jnp.broadcast_to(jnp.arange(n), active.shape)

    def spread(state):
        lab, _ = state
        new = jnp.minimum(lab, jnp.min(jnp.where(link, lab[..., None, :], n), axis=-1))
        return new, jnp.any(new != lab)

    labels, _ = jax.lax.while_loop(lambda s: s[1], spread, (idx, jnp.asarray(True)))
    return jnp.sum(active & (labels == idx), axis=-1)


def neuron_counts(W_in, b_in, post, W_out, metrics_cfg=None):
    """(distinct active neuron directions, active neurons) of one ReLU hidden layer: the
    connected components of ``neuron_graph``'s links, and its active count; thresholds
    ``metrics.neuron_cos`` and ``metrics.neuron_active``."""
    import jax.numpy as jnp

    link, active = neuron_graph(W_in, b_in, post, W_out,
                                cos=float(_cfg(metrics_cfg, "neuron_cos")),
                                active_tol=float(_cfg(metrics_cfg, "neuron_active")))
    return count_components(link, active), jnp.sum(active)


def jacobian_matrices(apply_fn: Callable, params, xs):
    """(samples, d_out, d_in): the Jacobian Jf(x) at each row of xs."""
    import jax

    d_in = xs.shape[-1]
    d_out = jax.eval_shape(apply_fn, params, xs[:1]).shape[-1]
    jac = jax.jacrev if d_out <= d_in else jax.jacfwd

    def one(xi):
        return jac(lambda v: apply_fn(params, v[None])[0])(xi)

    return jax.vmap(one)(xs)


def jacobian_svals(apply_fn: Callable, params, xs, after=None):
    """(samples, min(d_in, d_out)) singular values of Jf(x) (d_out x d_in) at each row of xs.

    The SVD waits for ``after`` (see ``_after``)."""
    import jax.numpy as jnp

    return jnp.linalg.svd(_after(after, jacobian_matrices(apply_fn, params, xs)), compute_uv=False)


def ntk_trace(apply_fn: Callable, params, x, *, chunk: int | None = None):
    """Exact Tr Theta = sum_i ||df(x_i)/dtheta||_F^2 for any ``apply_fn(params, x) -> f(x)``.

    Per-sample Jacobians (``vmap(jacrev)``) in chunks of ``chunk`` samples (default: as many
    as fit in 2^24 floats). Costs about d_out backward passes per sample plus N * d_out * P
    memory traffic; prefer ``ntk_trace_mlp`` for ``FullyConnected`` models.
    """
    import jax
    import jax.numpy as jnp

    n_params = sum(int(np.prod(leaf.shape)) for leaf in jax.tree_util.tree_leaves(params))
    d_out = jax.eval_shape(apply_fn, params, x[:1]).shape[-1]
    if chunk is None:
        chunk = max(1, min(x.shape[0], _CHUNK_FLOATS // max(1, d_out * n_params)))

    def per_sample(xi):
        J = jax.jacrev(lambda p: apply_fn(p, xi[None])[0])(params)
        return sum(jnp.sum(jnp.square(j)) for j in jax.tree_util.tree_leaves(J))

    return jnp.sum(jax.lax.map(per_sample, x, batch_size=chunk))


def ntk_trace_mlp(model, params, x):
    """Exact Tr Theta for a ``FullyConnected`` model, without per-sample weight gradients.

    With z_l = a_{l-1} W_l + b_l and delta_{l,k,i} = df_k(x_i)/dz_l,
    ||df_k(x_i)/dW_l||^2 = ||a_{l-1,i}||^2 ||delta_{l,k,i}||^2 and ||df_k(x_i)/db_l||^2 =
    ||delta_{l,k,i}||^2. The deltas are per-sample bias gradients: one forward pass with a
    per-sample copy of the biases (zero biases added when the model has none), then one
    backward pass per output dimension. Cost ~ (1 + d_out) passes over the N inputs.
    """
    import jax
    import jax.numpy as jnp

    module = model.module
    has_bias = bool(module.bias)
    if not has_bias:
        module = module.clone(bias=True)
    names = _weight_names(params)
    n = x.shape[0]
    Ws = {k: params[k] for k in names}
    bnames = [layer_name("b", l) for l in range(1, len(names) + 1)]
    B = {}
    for wn, bn in zip(names, bnames):
        fan_out = params[wn].shape[1]
        b = params[bn] if has_bias else jnp.zeros((fan_out,), params[wn].dtype)
        B[bn] = jnp.broadcast_to(b[None, :], (n, fan_out))

    def single(b_i, x_i):
        out, inter = module.apply({"params": {**Ws, **b_i}}, x_i.reshape(1, -1))
        return out[0], [a[0] for a in inter["post"]]

    out, vjp_fn, post = jax.vjp(lambda bb: jax.vmap(single)(bb, x), B, has_aux=True)
    d_out = out.shape[-1]
    a_sq = jnp.stack([jnp.sum(jnp.square(a), axis=1) for a in [x] + list(post)])  # (L, N)
    if has_bias:
        a_sq = a_sq + 1.0

    def delta_sq(e_k):  # (L, N): ||delta_{l,k,i}||^2 for one output dimension k
        (g,) = vjp_fn(jnp.broadcast_to(e_k[None, :], (n, d_out)).astype(out.dtype))
        return jnp.stack([jnp.sum(jnp.square(g[bn]), axis=1) for bn in bnames])

    floats = n * sum(int(params[w].shape[1]) for w in names)
    batch = max(1, min(d_out, _CHUNK_FLOATS // max(1, floats)))
    d_sq = jnp.sum(jax.lax.map(delta_sq, jnp.eye(d_out, dtype=out.dtype), batch_size=batch), axis=0)
    return jnp.sum(a_sq * d_sq)


def ntk_max_eig(apply_fn: Callable, params, x, iters: int = NTK_ITERS):
    """Largest eigenvalue of the NTK Gram operator Theta = J J^T (size N * d_out).

    J is never materialised: Theta u = J (J^T u) with one vjp (``linear_transpose`` of the
    linearisation) and one jvp. Rather than plain power iteration, the same ``iters``
    products build a Lanczos basis (full re-orthogonalisation, fixed start vector) whose
    largest Ritz value converges much faster and never exceeds lambda_max.
    """
    import jax
    import jax.numpy as jnp

    out, f_jvp = jax.linearize(lambda p: apply_fn(p, x), params)
    f_vjp = jax.linear_transpose(f_jvp, params)
    shape, dtype = out.shape, out.dtype
    size = int(np.prod(shape))
    k = max(1, min(int(iters), size))

    def theta(q):
        (v,) = f_vjp(q.reshape(shape))
        return f_jvp(v).reshape(size)

    # Fixed start: the mean direction plus a deterministic pseudo-random part (no PRNG compile).
    q0 = 1.0 + jnp.sin(0.7 + 2.39996323 * jnp.arange(size, dtype=dtype))
    q0 = q0 / jnp.linalg.norm(q0)

    def step(j, carry):
        Q, alpha, beta, q = carry
        Q = Q.at[j].set(q)
        w = theta(q)
        a = jnp.dot(q, w)
        w_norm = jnp.linalg.norm(w)
        for _ in range(2):  # full re-orthogonalisation, twice is enough
            w = w - Q.T @ (Q @ w)
        b = jnp.linalg.norm(w)
        ok = b > 1e-5 * w_norm  # otherwise an invariant subspace was found: stop growing
        q = jnp.where(ok, w / jnp.where(ok, b, 1.0), 0.0)
        return Q, alpha.at[j].set(a), beta.at[j].set(jnp.where(ok, b, 0.0)), q

    init = (jnp.zeros((k, size), dtype), jnp.zeros((k,), dtype), jnp.zeros((k,), dtype), q0)
    _, alpha, beta, _ = jax.lax.fori_loop(0, k, step, init)
    return tridiagonal_max_eig(alpha, beta[:-1])


def tridiagonal_max_eig(diag, off, steps: int = 64):
    """Largest eigenvalue of the symmetric tridiagonal matrix (diag, off), by Sturm bisection.

    Plain jnp (no LAPACK call, see ``_after``); ``steps`` halvings of the Gershgorin interval.
    """
    import jax
    import jax.numpy as jnp

    off2 = jnp.concatenate([jnp.zeros((1,), diag.dtype), jnp.square(off)])
    radius = jnp.abs(jnp.concatenate([off, jnp.zeros((1,), diag.dtype)]))
    radius = radius + jnp.abs(jnp.concatenate([jnp.zeros((1,), diag.dtype), off]))
    lo, hi = jnp.min(diag - radius), jnp.max(diag + radius)
    tiny = jnp.finfo(diag.dtype).tiny

    def count_above(sigma):  # #eigenvalues > sigma = #positive pivots of T - sigma I
        def body(i, carry):
            d, n = carry
            d = diag[i] - sigma - off2[i] / d
            d = jnp.where(jnp.abs(d) < tiny, -tiny, d)
            return d, n + (d > 0)
        return jax.lax.fori_loop(0, diag.shape[0], body, (jnp.ones((), diag.dtype), 0))[1]

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        above = count_above(mid) > 0
        return jnp.where(above, mid, lo), jnp.where(above, hi, mid)

    lo, hi = jax.lax.fori_loop(0, steps, bisect, (lo, hi))
    return 0.5 * (lo + hi)


def ntk_metrics(model, params, x, *, iters: int = NTK_ITERS,
                max_samples: int = NTK_MAX_SAMPLES) -> dict:
    """``ntk/trace``, ``ntk/trace_per_nl``, ``ntk/max_eig`` and ``ntk/samples``.

    Estimator: the NTK of the first n = min(N, ``max_samples``) training inputs (exact on
    that subset; n is recorded as ``ntk/samples``). Tr Theta is exact (``ntk_trace_mlp`` for
    ``FullyConnected``, else ``ntk_trace``); ``trace_per_nl`` = Tr Theta / (n L); the top
    eigenvalue comes from ``ntk_max_eig`` (Lanczos, ``iters`` jvp/vjp pairs).
    """
    import jax.numpy as jnp

    from .models import FullyConnected

    x = x[:max_samples]
    n = x.shape[0]
    depth = model.depth
    apply_fn = lambda p, v: model.apply(p, v)[0]  # noqa: E731
    if isinstance(getattr(model, "module", None), FullyConnected):
        trace = ntk_trace_mlp(model, params, x)
    else:
        trace = ntk_trace(apply_fn, params, x)
    return {
        "ntk/trace": trace,
        "ntk/trace_per_nl": trace / (n * depth),
        "ntk/max_eig": ntk_max_eig(apply_fn, params, x, iters),
        "ntk/samples": jnp.asarray(n, trace.dtype),
    }


# =========================================================================================
# (B) NumPy: ranks from singular values, summaries, closed forms
# =========================================================================================


def _s(s) -> np.ndarray:
    s = np.abs(np.asarray(s, dtype=np.float64).ravel())
    return np.where(np.isfinite(s), s, 0.0) if s.size else s


def _threshold(s: np.ndarray, atol: float, rtol: float) -> float:
    return max(float(atol), float(rtol) * float(s.max())) if s.size else float(atol)


def numerical_rank(s, atol: float = 0.1, rtol: float = 0.1) -> int:
    """#{i : s_i > max(atol, rtol * s_1)}."""
    s = _s(s)
    return int(np.sum(s > _threshold(s, atol, rtol))) if s.size else 0


def stable_rank(s) -> float:
    """sum s_i^2 / s_1^2 (0 for an all-zero spectrum)."""
    s = _s(s)
    top = float(s.max()) if s.size else 0.0
    return float(np.sum((s / top) ** 2)) if top > 0 else 0.0


def nuclear_rank(s) -> float:
    """(sum s_i)^2 / sum s_i^2 (0 for an all-zero spectrum)."""
    s = _s(s)
    top = float(s.max()) if s.size else 0.0
    if top <= 0:
        return 0.0
    r = s / top  # scale-free, avoids overflow
    return float(np.sum(r) ** 2 / np.sum(r**2))


def entropy_rank(s) -> float:
    """exp(H(p)), p_i = s_i / sum s_j (Roy & Vetterli 2007); 0 for an all-zero spectrum."""
    s = _s(s)
    total = float(np.sum(s))
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def near_one_count(s, delta: float = 0.5) -> int:
    """#{i : |s_i - 1| <= delta}."""
    return int(np.sum(np.abs(_s(s) - 1.0) <= delta))


def log_pdet(s, atol: float = 0.1, rtol: float = 0.1) -> float:
    """sum of log s_i over the singular values counted by ``numerical_rank``."""
    s = _s(s)
    if not s.size:
        return 0.0
    kept = s[s > _threshold(s, atol, rtol)]
    return float(np.sum(np.log(kept))) if kept.size else 0.0


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


def _middle(indices: list[int], depth: int) -> list[int]:
    mid = [l for l in indices if 0.25 <= l / depth <= 0.75]
    return mid or list(indices)


def summarize(spectra: Mapping[str, Any], depth: int, metrics_cfg=None) -> dict[str, float]:
    """The docs/metrics.md keys derived from one member's ``raw_spectra`` (as NumPy).

    Other keys in ``spectra`` (losses, ...) are ignored; ``ntk/*``, ``neurons/Zxx`` and
    ``active/Zxx`` pass through, and ``neurons/max`` is the largest ``neurons/Zxx``.
    Bottleneck estimates are medians over middle layers l/L in [0.25, 0.75] (all hidden
    layers if none is there; the ranks of W01 for a depth-1 net).
    """
    atol = float(_cfg(metrics_cfg, "atol"))
    rtol = float(_cfg(metrics_cfg, "rtol"))
    delta = float(_cfg(metrics_cfg, "near_one_delta"))
    L = int(depth)
    out: dict[str, float] = {}

    norms = []
    for l in range(1, L + 1):
        w = layer_name("W", l)
        if f"norm/{w}" in spectra:
            norms.append(float(spectra[f"norm/{w}"]))
        elif w in spectra:
            norms.append(float(np.sum(_s(spectra[w]) ** 2)))
        else:
            continue
        out[f"norm/{w}"] = norms[-1]
    out["norm/total"] = float(sum(norms))
    out["norm/per_depth"] = out["norm/total"] / L

    w_layers, z_layers = [], []
    for l in range(1, L + 1):
        w = layer_name("W", l)
        if w not in spectra:
            continue
        w_layers.append(l)
        s = spectra[w]
        out[f"rank/{w}"] = float(numerical_rank(s, atol, rtol))
        out[f"near_one/{w}"] = float(near_one_count(s, delta))
        out[f"stable_rank/{w}"] = stable_rank(s)
        out[f"nuclear_rank/{w}"] = nuclear_rank(s)
        out[f"erank/{w}"] = entropy_rank(s)
    for l in range(1, L):
        z, zc = layer_name("Z", l), layer_name("Zc", l)
        if z in spectra:
            z_layers.append(l)
            out[f"rank/{z}"] = float(numerical_rank(spectra[z], atol, rtol))
            out[f"stable_rank/{z}"] = stable_rank(spectra[z])
            out[f"erank/{z}"] = entropy_rank(spectra[z])
        if zc in spectra:
            out[f"rank_c/{z}"] = float(numerical_rank(spectra[zc], atol, rtol))
            out[f"stable_rank_c/{z}"] = stable_rank(spectra[zc])
            out[f"erank_c/{z}"] = entropy_rank(spectra[zc])
        if f"nonlin/{z}" in spectra:
            out[f"nonlin/{z}"] = float(spectra[f"nonlin/{z}"])
    for l in range(1, L):
        key = f"balance/{layer_name('W', l)}"
        if key in spectra:
            out[key] = float(spectra[key])
    counts = [float(spectra[k]) for l in range(1, L)
              if (k := f"neurons/{layer_name('Z', l)}") in spectra]
    for l in range(1, L):
        for family in ("neurons", "active"):
            key = f"{family}/{layer_name('Z', l)}"
            if key in spectra:
                out[key] = float(spectra[key])
    if counts:
        out["neurons/max"] = max(counts)

    mid_z = _middle(z_layers, L)
    mid_w = _middle(w_layers, L)
    if z_layers:
        out["bottleneck/rank_c"] = _median([out.get(f"rank_c/{layer_name('Z', l)}", np.nan) for l in mid_z])
        out["bottleneck/rank"] = _median([out[f"rank/{layer_name('Z', l)}"] for l in mid_z])
    elif w_layers:  # depth 1: no hidden layer
        out["bottleneck/rank_c"] = out["bottleneck/rank"] = out[f"rank/{layer_name('W', w_layers[0])}"]
    if w_layers:
        out["bottleneck/near_one"] = _median([out[f"near_one/{layer_name('W', l)}"] for l in mid_w])

    J = spectra.get("J")
    if J is not None:
        J = np.asarray(J, dtype=np.float64)
        J = J.reshape(1, -1) if J.ndim == 1 else J
        if J.shape[0] > 0:
            out["jac/rank"] = float(np.mean([numerical_rank(j, atol, rtol) for j in J]))
            out["jac/logdet"] = float(np.mean([log_pdet(j, atol, rtol) for j in J]))
    for key, value in spectra.items():
        if key.startswith("ntk/"):
            out[key] = float(value)
    return out


def split_arrays_and_scalars(d: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Split one member's raw dict: singular-value arrays (``Wxx``, ``Zxx``, ``Zcxx``, ``J``:
    the npz) and scalars (slash-named: the JSON record)."""
    arrays, scalars = {}, {}
    for key, value in d.items():
        v = np.asarray(value)
        if "/" in key or v.ndim == 0:
            scalars[key] = float(v.reshape(-1)[0]) if v.size == 1 else float("nan")
        else:
            arrays[key] = v
    return arrays, scalars


def member(d: Mapping[str, Any], i: int) -> dict[str, np.ndarray]:
    """Member ``i`` of a vmapped (leading member axis) result, as NumPy."""
    return {k: np.asarray(v)[i] for k, v in d.items()}


# ---- closed forms (SCIENCE.md section 4) -------------------------------------------------


def schatten_norm_cost(s, L: int) -> float:
    """Minimal ||theta||^2 of a depth-L linear net computing A: L * sum_i s_i(A)^(2/L)."""
    s = _s(s)
    return float(L * np.sum(s[s > 0] ** (2.0 / L)))


def denoise_threshold(lam: float, L: float) -> tuple[float, float]:
    """(y_t, s_t) for L >= 2: singular values y > y_t survive ``denoise_shrink``; for L > 2
    they jump from 0 to s_t = (lam (L - 2))^(L / (2L - 2)) there (a hard threshold).

    From the stationarity s - y + lam s^(2/L - 1) = 0 and equal cost with s = 0.
    L = 2 gives the soft threshold (lam, 0).
    """
    if L < 2:
        return 0.0, 0.0
    if lam <= 0:
        return 0.0, 0.0
    s_t = (lam * (L - 2)) ** (L / (2.0 * L - 2.0))
    y_t = s_t + lam * s_t ** (2.0 / L - 1.0) if s_t > 0 else lam
    return float(y_t), float(s_t)


def denoise_shrink(y, lam: float, L: float):
    """argmin_{s >= 0} (s - y)^2 + lam * L * s^(2/L), elementwise in y.

    L = 1: y / (1 + lam); L = 2: max(y - lam, 0); L > 2: the largest stationary point
    (bisection on s + lam s^(2/L - 1) = y, to machine precision) if it beats s = 0, else 0.
    """
    if L < 1:
        raise ValueError(f"L must be >= 1, got {L}")
    y_arr = np.asarray(y, dtype=np.float64)
    yp = np.maximum(np.atleast_1d(y_arr), 0.0)
    if lam <= 0:
        s = yp.copy()
    elif L == 1:
        s = yp / (1.0 + lam)
    elif L == 2:
        s = np.maximum(yp - lam, 0.0)
    else:
        p = 2.0 / L - 1.0  # in (-1, 0) for L > 2, in (0, 1) for 1 < L < 2
        h = lambda t: t + lam * t**p  # noqa: E731  (the stationarity equation h(s) = y)
        if L > 2:
            s_m = (lam * (-p)) ** (1.0 / (1.0 - p))  # minimum of h: larger root lies in [s_m, y]
            lo = np.full_like(yp, s_m)
            hi = np.maximum(yp, s_m)
            has_root = h(s_m) <= yp
        else:
            lo, hi = np.zeros_like(yp), yp.copy()
            has_root = yp > 0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            above = h(mid) > yp
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
            if np.all(hi - lo <= 1e-15 * np.maximum(hi, 1.0)):
                break
        root = np.where(has_root, 0.5 * (lo + hi), 0.0)
        cost = (root - yp) ** 2 + lam * L * root ** (2.0 / L)
        s = np.where(has_root & (cost < yp**2), root, 0.0)
    return float(s[0]) if y_arr.ndim == 0 else s.reshape(y_arr.shape)
