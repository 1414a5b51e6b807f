"""The official GD recursion of the mixed lazy/active experiment, batched (vmap over
grid points of one shape) and jitted: the pure part of ``mixed_train``.

One iteration i, as main.ipynb's loop body (official names in brackets):

    A = P2^T P1 (= W2 W1);  G = A - (A* + E)
    loss_i = ||G||_F^2 / d^2 [losses],  gen_i = ||A - A*||_F^2 / d^2 [gen_losses]
    P1 <- P1 - eta P2 G;  P2 <- P2 - eta P1 G^T   (W1 first; W2 uses the new W1)
    stop (after the update, as the official ``break``s):
      1  loss_i < stop_train                      (official 1e-3)
      2  i > 3 and gen rose over the last ``stop_increasing`` values
         (official 3: gen_{i-2} < gen_{i-1} < gen_i)
      3  i > 3 and |loss_i - loss_{i-1}| < plateau_delta and loss_0 - loss_i > plateau_drop
         (official 2e-4 and 1e-2)
      0  i = steps - 1 (the iteration cap, official 750);  4  loss_i not finite.

The self-consistent dynamics of the paper (dynamics.ipynb) run beside it from B_0 = A_0:
B <- B - eta [(B B^T + c^2 I)^(1/2) G_B + G_B (B^T B + c^2 I)^(1/2)], c = sigma^2 w,
G_B = B - (A* + E), both square roots from one SVD of B (B = U S V^T gives
U sqrt(S^2 + c^2) U^T and V sqrt(S^2 + c^2) V^T); ``dist`` is ||A_i - B_i||_F^2 / d^2.
"""

from __future__ import annotations

from functools import lru_cache

REASONS = {0: "cap", 1: "train_error", 2: "test_rose", 3: "plateau", 4: "diverged"}


def stop_update(carry: dict, i, loss, gen, rules: dict):
    """One step of the official stopping rules: the new carry (``loss0``, ``loss_prev``,
    ``gen_prev``, ``inc``: consecutive rises of the test error) and (stop, reason).
    Pure jnp on scalars; used by the simulation and, in tests, on fixed trajectories."""
    import jax.numpy as jnp

    first = i == 0
    loss0 = jnp.where(first, loss, carry["loss0"])
    inc = jnp.where(first, 0, jnp.where(gen > carry["gen_prev"], carry["inc"] + 1, 0))
    late = i > 3
    s_train = loss < rules["stop_train"]
    s_rise = late & (inc >= rules["stop_increasing"] - 1)
    s_plateau = late & (jnp.abs(loss - carry["loss_prev"]) < rules["plateau_delta"]) \
        & (loss0 - loss > rules["plateau_drop"])
    s_cap = i >= rules["steps"] - 1
    bad = ~jnp.isfinite(loss)
    reason = jnp.select([bad, s_train, s_rise, s_plateau, s_cap], [4, 1, 2, 3, 0], -1)
    new = {"loss0": loss0, "loss_prev": loss, "gen_prev": gen, "inc": inc}
    return new, reason >= 0, reason


def init_state(params: dict, y, a_star, self_consistent: bool) -> dict:
    """The simulation state of one member (arrays of one dtype; iteration counters int32)."""
    import jax.numpy as jnp

    p1, p2 = jnp.asarray(params["P1"]), jnp.asarray(params["P2"])
    a0 = p2.T @ p1
    f = a0.dtype
    state = {"P1": p1, "P2": p2, "i": jnp.int32(0), "done": jnp.bool_(False),
             "reason": jnp.int32(-1), "stop_it": jnp.int32(-1),
             "loss0": f.type(0), "loss_prev": f.type(0), "gen_prev": f.type(0),
             "inc": jnp.int32(0), "best": jnp.asarray(jnp.inf, f), "best_it": jnp.int32(-1),
             "A_best": jnp.zeros_like(a0), "dist_max": f.type(0)}
    if self_consistent:
        state["B"] = a0
    return state


def _sc_step(b, y, eta, c):
    """One step of the self-consistent dynamics (dynamics.ipynb)."""
    import jax.numpy as jnp

    u, s, vt = jnp.linalg.svd(b)
    root = jnp.sqrt(s * s + c * c)
    g = b - y
    left = (u * root[None, :]) @ u.T
    right = (vt.T * root[None, :]) @ vt
    return b - eta * (left @ g + g @ right)


def iterate(state: dict, const: dict, rules: dict):
    """One official iteration of one member; a finished member keeps its state.
    Returns (state, (loss, gen, dist, live))."""
    import jax.numpy as jnp

    p1, p2, i = state["P1"], state["P2"], state["i"]
    y, a_star, eta = const["Y"], const["A_star"], const["eta"]
    d2 = y.shape[0] * y.shape[1]
    a = p2.T @ p1
    g = a - y
    loss = jnp.sum(g * g) / d2
    gen = jnp.sum((a - a_star) ** 2) / d2
    live = ~state["done"]
    n1 = p1 - eta * (p2 @ g)
    n2 = p2 - eta * (n1 @ g.T)
    carry = {k: state[k] for k in ("loss0", "loss_prev", "gen_prev", "inc")}
    carry, stop, reason = stop_update(carry, i, loss, gen, rules)
    better = live & (gen < state["best"])
    new = dict(state)
    keep = lambda fresh, old: jnp.where(live, fresh, old)  # noqa: E731
    new.update({"P1": keep(n1, p1), "P2": keep(n2, p2), "i": keep(i + 1, i),
                "done": state["done"] | stop, "reason": keep(reason, state["reason"]),
                "stop_it": jnp.where(live & stop, i, state["stop_it"]),
                "best": jnp.where(better, gen, state["best"]),
                "best_it": jnp.where(better, i, state["best_it"]),
                "A_best": jnp.where(better, a, state["A_best"])})
    new.update({k: keep(v, state[k]) for k, v in carry.items()})
    dist = jnp.zeros((), a.dtype)
    if "B" in state:
        b = state["B"]
        dist = jnp.sum((a - b) ** 2) / d2
        new["B"] = keep(_sc_step(b, y, eta, const["c"]), b)
        new["dist_max"] = jnp.where(live, jnp.maximum(state["dist_max"], dist),
                                    state["dist_max"])
    return new, (loss, gen, dist, live)


@lru_cache(maxsize=16)
def chunk_program(n: int, rules_key: tuple):
    """A jitted, member-vmapped function running ``n`` iterations: (state, const) ->
    (state, per-iteration (loss, gen, dist, live) of shape (n, members), singular
    values of A (and B) at the chunk's start). One compilation per shape."""
    import jax
    import jax.numpy as jnp

    rules = dict(rules_key)

    def one(state, const):
        a = state["P2"].T @ state["P1"]
        svals = {"A": jnp.linalg.svd(a, compute_uv=False)}
        if "B" in state:
            svals["B"] = jnp.linalg.svd(state["B"], compute_uv=False)

        def body(s, _):
            return iterate(s, const, rules)

        state, outs = jax.lax.scan(body, state, None, length=n)
        return state, outs, svals

    def batched(state, const):
        state, outs, svals = jax.vmap(one)(state, const)
        return state, tuple(jnp.swapaxes(o, 0, 1) for o in outs), svals

    return jax.jit(batched)


@lru_cache(maxsize=4)
def spectra_program():
    """Singular values of a batch of matrices (the best A of every member)."""
    import jax
    import jax.numpy as jnp

    return jax.jit(jax.vmap(lambda a: jnp.linalg.svd(a, compute_uv=False)))
