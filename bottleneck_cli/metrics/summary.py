"""The flat keys of docs/metrics.md for one member, derived on the host from its raw
spectra; layers come from the keys present (``W07``, ``Z03``), not from the config."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..rundir import layer_name, split_layer_key
from .config import setting
from .end_to_end import summarize_end_to_end
from .ranks import (_s, entropy_rank, log_pdet, near_one_count, nuclear_rank,
                    numerical_rank, stable_rank)


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else 0.0


def _middle(indices: list[int], depth: int) -> list[int]:
    mid = [l for l in indices if 0.25 <= l / depth <= 0.75]
    return mid or list(indices)


def _layers(spectra: Mapping[str, Any], prefix: str) -> list[int]:
    """Layer numbers l of the keys ``<prefix>l`` (and ``<family>/<prefix>l``) present."""
    ids = set()
    for key in spectra:
        parts = split_layer_key(key.rpartition("/")[2])
        if parts is not None and parts[0] == prefix:
            ids.add(parts[1])
    return sorted(ids)


def summarize(spectra: Mapping[str, Any], depth: int, metrics_cfg=None) -> dict[str, float]:
    """The docs/metrics.md keys derived from one member's ``raw_spectra`` (as NumPy).

    Other keys in ``spectra`` (losses, ...) are ignored; ``ntk/*``, ``neurons/Zxx`` and
    ``active/Zxx`` pass through, and ``neurons/max`` is the largest ``neurons/Zxx``.
    Bottleneck estimates are medians over middle layers l/L in [0.25, 0.75] (all hidden
    layers if none is there; the ranks of W01 for a depth-1 net).
    """
    atol = float(setting(metrics_cfg, "atol"))
    rtol = float(setting(metrics_cfg, "rtol"))
    delta = float(setting(metrics_cfg, "near_one_delta"))
    L = int(depth)
    out: dict[str, float] = {}
    w_ids, z_ids = _layers(spectra, "W"), _layers(spectra, "Z")

    norms = []
    for l in w_ids:
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
    for l in w_ids:
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
    for l in z_ids:
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
    for l in w_ids:
        key = f"balance/{layer_name('W', l)}"
        if key in spectra:
            out[key] = float(spectra[key])
    counts = [float(spectra[k]) for l in z_ids
              if (k := f"neurons/{layer_name('Z', l)}") in spectra]
    for l in z_ids:
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

    balances = [out[k] for k in out if k.startswith("balance/W")]
    if balances:
        out["balance/max"] = max(balances)
    if "A" in spectra:
        out.update(summarize_end_to_end(spectra["A"], atol, rtol))
    elif w_layers and len(w_layers) == 1:  # depth 1: A is W01
        out.update(summarize_end_to_end(spectra[layer_name("W", w_layers[0])], atol, rtol))

    J = spectra.get("J")
    if J is not None:
        J = np.asarray(J, dtype=np.float64)
        J = J.reshape(1, -1) if J.ndim == 1 else J
        if J.shape[0] > 0:
            out["jac/rank"] = float(np.mean([numerical_rank(j, atol, rtol) for j in J]))
            out["jac/logdet"] = float(np.mean([log_pdet(j, atol, rtol) for j in J]))
    from .frequencies import summarize_frequencies

    out.update(summarize_frequencies(spectra, L, metrics_cfg))  # conv layers only
    for key, value in spectra.items():
        if key.startswith(("ntk/", "init/")):
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
