"""Has a run reached a critical point of fit + lam ||θ||²? Diagnostics and the verdict.

At every metrics record (host-side, from the record and the member's earlier records):

* ``conv/grad`` = ||∇(fit + lam ||θ||²)|| / ||θ|| (``grad/rel``, computed in the program);
* ``conv/dloss``, ``conv/dnorm``: relative change of the objective and of ||θ||² over the
  trailing ``convergence.window`` steps, |v(t) - v(t - window)| / |v(t)| (the record
  nearest to t - window stands for it; 1.0 until the run is a window long);
* ``conv/balance`` = max_l ||W_l||² / min_l ||W_l||² - 1, where the model has the identity:
  a positively homogeneous net (ReLU or linear) whose biases are not in the ridge has
  equal ||W_l||_F² across layers at any critical point, since rescaling W_l (and b_l) by c
  and W_{l+1} by 1/c leaves the fit unchanged and the ridge stationary only at equal norms;
* ``converged`` = 1 when every diagnostic is below its tolerance for ``convergence.patience``
  consecutive records, else 0.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from types import SimpleNamespace


def balance_identity(model, cfg) -> bool:
    """Whether equal layer norms hold at critical points (docs/metrics.md)."""
    return (getattr(model, "kind", None) == "mlp"
            and getattr(model, "activation", None) in ("relu", "identity")
            and not cfg.model.get("ridge_on_bias", False))


def norm_balance(record: dict) -> float | None:
    """max_l ||W_l||² / min_l ||W_l||² - 1 from the record's ``norm/Wxx`` (None: < 2 layers)."""
    norms = [v for k, v in record.items() if k.startswith("norm/W")]
    if len(norms) < 2 or min(norms) <= 0:
        return None
    return max(norms) / min(norms) - 1.0


def rebalance(params: dict) -> dict:
    """Rescale a positively homogeneous net to equal layer norms without changing its function.

    W_l -> c_l W_l and b_l -> (c_1...c_l) b_l with c_l = g / ||W_l||, g the geometric mean
    of the ||W_l||, so c_1...c_L = 1 and relu(c z) = c relu(z) (c > 0) leaves the output
    unchanged. By AM-GM sum_l ||W_l||^2 >= L g^2, with equality here: the ridge is at its
    minimum over the rescaling orbit, where every critical point of fit + lam ||θ||² lies.
    ``params`` hold a leading member axis (cohorts); a member with a zero layer is unchanged.
    """
    import jax.numpy as jnp

    names = sorted(k for k in params if k.startswith("W"))
    norms = jnp.stack([jnp.sqrt(jnp.sum(params[k] ** 2, axis=tuple(range(1, params[k].ndim))))
                       for k in names])  # (L, members)
    ok = jnp.all(norms > 0, axis=0)
    safe = jnp.where(norms > 0, norms, 1.0)
    scale = jnp.where(ok[None, :], jnp.exp(jnp.mean(jnp.log(safe), axis=0))[None, :] / safe, 1.0)
    out, cumulative = dict(params), jnp.ones_like(scale[0])
    for l, name in enumerate(names):
        cumulative = cumulative * scale[l]
        out[name] = params[name] * _expand(scale[l], params[name])
        bias = "b" + name[1:]
        if bias in params:
            out[bias] = params[bias] * _expand(cumulative, params[bias])
    return out


def _expand(v, like):
    """``v`` (members,) broadcast against ``like`` (members, ...)."""
    return v.reshape(v.shape + (1,) * (like.ndim - 1)).astype(like.dtype)


@dataclass
class Tracker:
    """One member's diagnostics over its records (rebuilt from metrics.jsonl on resume)."""

    cfg: object  # the run's ``convergence`` settings
    balance: bool  # whether the norm-balance identity applies
    history: list = field(default_factory=list)  # (step, objective, ||θ||²)
    streak: int = 0
    counts_from: int = 0  # first step training the final objective (optim.final_objective_from)

    def __post_init__(self):
        # plain numbers: a DictConfig read costs ~40 us, and records come every few ms
        self.cfg = SimpleNamespace(**{k: getattr(self.cfg, k) for k in
                                      ("grad_tol", "change_tol", "window", "balance_tol",
                                       "patience")})

    def _change(self, step: int, index: int) -> float:
        # the last record at least ``window`` steps back (history is in step order)
        i = bisect.bisect_right(self.history, step - self.cfg.window, key=lambda h: h[0])
        if i == 0:
            return 1.0
        old, new = self.history[i - 1][index], self.history[-1][index]
        return abs(new - old) / max(abs(new), 1e-30)

    def update(self, step: int, record: dict) -> dict:
        """The ``conv/*`` keys and the ``converged`` flag for the record at ``step``."""
        self.history.append((step, record["loss/train"], record.get("norm/total", 0.0)))
        out = {"conv/grad": record.get("grad/rel", float("nan")),
               "conv/dloss": self._change(step, 1), "conv/dnorm": self._change(step, 2)}
        balance = norm_balance(record) if self.balance else None
        if balance is not None:  # a net of one weight matrix is balanced by itself
            out["conv/balance"] = balance
        self.streak = self.streak + 1 if self._counts(step, out) else 0
        out["converged"] = float(self.streak >= self.cfg.patience)
        return out

    def _counts(self, step: int, d: dict) -> bool:
        return step >= self.counts_from and self._below(d)

    def _below(self, d: dict) -> bool:
        """Every diagnostic of ``d`` within its tolerance (a missing one fails)."""
        c = self.cfg
        limits = {"conv/grad": c.grad_tol, "conv/dloss": c.change_tol,
                  "conv/dnorm": c.change_tol, "conv/balance": c.balance_tol}
        return all(d.get(k) is not None and d[k] <= tol for k, tol in limits.items()
                   if k in d or k != "conv/balance")

    def replay(self, records: list[dict]) -> None:
        """Rebuild the history and the streak from a resumed run's records, so that the
        resumed run reaches its verdict at the same step as an uninterrupted one."""
        for r in records:
            if "loss/train" in r:
                self.history.append((r["step"], r["loss/train"], r.get("norm/total", 0.0)))
                self.streak = self.streak + 1 if self._counts(r["step"], r) else 0


def verdict(cfg, record: dict) -> dict:
    """The summary's ``convergence`` entry: the verdict, its tolerances and the values."""
    keys = ("conv/grad", "conv/dloss", "conv/dnorm", "conv/balance")
    return {"converged": bool(record.get("converged", 0.0)),
            "tolerances": {"grad": cfg.grad_tol, "change": cfg.change_tol,
                           "balance": cfg.balance_tol, "window": cfg.window,
                           "patience": cfg.patience},
            "values": {k.split("/")[1]: record.get(k) for k in keys if k in record}}
