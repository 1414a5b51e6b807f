"""Distinct active neuron directions of ReLU layers (arXiv 2205.15809; docs/metrics.md)."""

from __future__ import annotations

import numpy as np

from ..rundir import layer_name, sorted_layers
from .config import setting


def _weight_names(params) -> list[str]:
    """Weight-matrix keys W01..WLL in layer order (numeric: W99 before W100)."""
    return sorted_layers(k for k in params if k.startswith("W"))


def neuron_metrics(params, post, metrics_cfg=None) -> dict:
    """``neurons/Zxx`` and ``active/Zxx`` of every hidden layer (``neuron_counts``); the
    layers' graphs are stacked per width so that one while_loop labels them all."""
    import jax.numpy as jnp

    names = _weight_names(params)
    cos = float(setting(metrics_cfg, "neuron_cos"))
    tol = float(setting(metrics_cfg, "neuron_active"))
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


# Key prefix of the per-layer inputs left for ``host_neurons`` (``<prefix>Zxx:u`` / ``:c``).
HOST_NEURONS = "neu:"


def neuron_inputs(params, post) -> dict:
    """What ``host_neurons`` needs of every hidden layer, computed in the program: the
    incoming vectors w_j (rows, bias appended when there is one) and the output-term norms
    c_j (``neuron_graph``). The graph and its components are then counted with NumPy on
    the host, after the program (the CPU backend; they cost more to compile than to run)."""
    import jax.numpy as jnp

    names = _weight_names(params)
    out = {}
    for l, a in enumerate(post, 1):
        z = layer_name("Z", l)
        out[f"{HOST_NEURONS}{z}:u"], out[f"{HOST_NEURONS}{z}:c"] = neuron_vectors(
            params[names[l - 1]], params.get(layer_name("b", l)), a, params[names[l]], jnp)
    return out


def host_neurons(d: dict, metrics_cfg=None) -> dict:
    """Replace ``neuron_inputs``' entries by ``neurons/Zxx`` and ``active/Zxx``: the same
    graph as ``neuron_graph`` (in float64) and the same single-linkage components as
    ``count_components``; other entries pass through."""
    cos = float(setting(metrics_cfg, "neuron_cos"))
    tol = float(setting(metrics_cfg, "neuron_active"))
    out = {k: v for k, v in d.items() if not k.startswith(HOST_NEURONS)}
    for key in d:
        if not (key.startswith(HOST_NEURONS) and key.endswith(":u")):
            continue
        z = key[len(HOST_NEURONS):-2]
        w = np.asarray(d[key], np.float64)
        c = np.asarray(d[f"{HOST_NEURONS}{z}:c"], np.float64)
        with np.errstate(invalid="ignore"):  # a diverged member: NaN, nothing active
            link, active = linked(w, c, cos=cos, active_tol=tol, xp=np)
        labels = idx = np.arange(len(c))
        while True:  # as count_components
            new = spread_labels(link, labels, np)
            if np.array_equal(new, labels):
                break
            labels = new
        out[f"neurons/{z}"] = float(np.sum(active & (labels == idx)))
        out[f"active/{z}"] = float(np.sum(active))
    return out


def neuron_vectors(W_in, b_in, post, W_out, xp):
    """(w, c) of one ReLU hidden layer in array module ``xp`` (numpy or jax.numpy): the
    incoming vectors w_j = (W_in[:, j], b_in[j]) as rows (the bias only if there is one)
    and the output-term norms c_j = ||a_j|| ||v_j|| (``neuron_graph``)."""
    w = W_in.T if b_in is None else xp.concatenate([W_in.T, b_in[:, None]], axis=1)
    return w, xp.sqrt(xp.sum(xp.square(post), axis=0) * xp.sum(xp.square(W_out), axis=1))


def linked(w, c, *, cos: float, active_tol: float, xp):
    """(link, active) from ``neuron_vectors``' (w, c) (``neuron_graph``); in float32 JAX
    the Gram matrix is taken at the highest matmul precision."""
    norm = xp.sqrt(xp.sum(xp.square(w), axis=1))
    u = w / xp.where(norm > 0, norm, 1.0)[:, None]
    active = (c > active_tol * xp.max(c)) & (c > 0) & (norm > 0)
    if xp is np:
        gram = u @ u.T
    else:
        import jax

        gram = xp.matmul(u, u.T, precision=jax.lax.Precision.HIGHEST)
    return (gram >= cos) & active[:, None] & active[None, :], active


def spread_labels(link, labels, xp):
    """One step of min-label propagation: each node takes the smallest label among itself
    and its neighbours in ``link`` (..., n, n) (``count_components``)."""
    n = link.shape[-1]
    return xp.minimum(labels, xp.min(xp.where(link, labels[..., None, :], n), axis=-1))


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
    import jax.numpy as jnp

    w, c = neuron_vectors(W_in, b_in, post, W_out, jnp)
    return linked(w, c, cos=cos, active_tol=active_tol, xp=jnp)


def count_components(link, active):
    """Connected components among the active nodes of symmetric graphs ``link`` (..., n, n):
    single linkage, so the count does not depend on node order. Min-label propagation
    (each node takes the smallest label among its neighbours) until nothing changes, in one
    while_loop for the whole stack; a component is counted at its smallest node."""
    import jax
    import jax.numpy as jnp

    idx = jnp.broadcast_to(jnp.arange(link.shape[-1]), active.shape)

    def spread(state):
        lab, _ = state
        new = spread_labels(link, lab, jnp)
        return new, jnp.any(new != lab)

    labels, _ = jax.lax.while_loop(lambda s: s[1], spread, (idx, jnp.asarray(True)))
    return jnp.sum(active & (labels == idx), axis=-1)


def neuron_counts(W_in, b_in, post, W_out, metrics_cfg=None):
    """(distinct active neuron directions, active neurons) of one ReLU hidden layer: the
    connected components of ``neuron_graph``'s links, and its active count; thresholds
    ``metrics.neuron_cos`` and ``metrics.neuron_active``."""
    import jax.numpy as jnp

    link, active = neuron_graph(W_in, b_in, post, W_out,
                                cos=float(setting(metrics_cfg, "neuron_cos")),
                                active_tol=float(setting(metrics_cfg, "neuron_active")))
    return count_components(link, active), jnp.sum(active)
