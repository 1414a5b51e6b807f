"""Per-frequency spectra of circular convolutions and the CBN rank (arXiv 2402.08010).

Conventions (docs/metrics.md). A conv layer computes z(p) = sum_d K(d)^T a(p + d) on the
(h, w) torus (models/cnn.py). With the unnormalised DFT â(k) = sum_p a(p) e^{-2πi<k,p>},
<k,p> = k_y p_y / h + k_x p_x / w, the layer is block-diagonal in frequency:

    ẑ(k) = W(k) â(k),   W(k) = sum_d e^{+2πi<k,d>} K(d)^T   (c_out x c_in, k on the grid),

i.e. W(k) is the conjugate transpose of the DFT of the kernel zero-padded to (h, w) (offset
d stored at index d mod (h, w)). Parseval: sum_k ||W(k)||_F^2 = h w ||K||^2. ``FWxx`` holds
the singular values of every W(k): shape (h, w, min(c_in, c_out)).

Activations: Ẑ(k) = (N h w)^{-1/2} sum_p Z(n, p) e^{-2πi<k,p>}, an N x c matrix per k, so
that sum_k ||Ẑ(k)||_F^2 = ||Z||_F^2 / N (the generic ``Zxx`` spectrum's total). ``FZxx`` /
``FZcxx``: its singular values per k (uncentered / samples' mean removed), shape (h, w,
min(N, c)), computed as the square roots of the eigenvalues of the c x c Gram Ẑ(k)^H Ẑ(k).
"""

from __future__ import annotations

import numpy as np

from ..frequency_grid import by_degree, kept_counts, rank_counts
from ..rundir import layer_name, split_layer_key
from .config import setting
from .svd import complex_svals


def kernel_dft(K, size):
    """W(k) for every k: (h, w, c_out, c_in) complex, for a kernel (kh, kw, c_in, c_out)
    acting on an (h, w) torus."""
    import jax.numpy as jnp

    h, w = size
    kh, kw = K.shape[:2]
    padded = jnp.zeros((h, w) + K.shape[2:], K.dtype)
    rows = (np.arange(kh) - kh // 2) % h
    cols = (np.arange(kw) - kw // 2) % w
    padded = padded.at[rows[:, None], cols[None, :]].set(K)
    F = jnp.fft.fft2(padded, axes=(0, 1))  # sum_q K(q) e^{-2πi<k,q>}
    return jnp.conj(jnp.swapaxes(F, -1, -2))


def activation_dft(Z, centered: bool = False):
    """Ẑ(k) as (h, w, N, c): the DFT over space of Z (N, h, w, c), / sqrt(N h w)."""
    import jax.numpy as jnp

    n, h, w, _ = Z.shape
    if centered:
        Z = Z - jnp.mean(Z, axis=0, keepdims=True)
    F = jnp.fft.fft2(Z, axes=(1, 2)) / np.sqrt(n * h * w)
    return jnp.moveaxis(F, 0, 2)


def frequency_spectra(ctx) -> dict:
    """``FWxx`` for every conv layer, ``FZxx``/``FZcxx`` for every hidden image (traced)."""
    import jax
    import jax.numpy as jnp

    hi = jax.lax.Precision.HIGHEST
    mats, grams = {}, {}
    for name, K, size in ctx.model.convs(ctx.params):
        mats["F" + name] = kernel_dft(K, size)
    for name, Z in ctx.hiddens.items():
        if Z.ndim != 4:
            continue
        for prefix, centered in (("F", False), ("FZc", True)):
            F = activation_dft(Z, centered)
            key = prefix + name if prefix == "F" else prefix + name[1:]
            grams[key] = jnp.einsum("hwni,hwnj->hwij", jnp.conj(F), F, precision=hi)
    out = complex_svals(mats, grams, after=ctx.done, host=ctx.svd_on_host)
    if not ctx.svd_on_host:
        ctx.done = out
    return out


def _median(values) -> float:
    return float(np.median(values)) if len(values) else 0.0


def summarize_frequencies(spectra, depth: int, metrics_cfg=None) -> dict[str, float]:
    """``cbn/Wxx``, ``cbn/Zxx``, ``cbn_c/Zxx`` and the middle layers' ``bottleneck/cbn_*``
    and ``cbn/deg<d>`` keys from ``FWxx``/``FZxx``/``FZcxx`` (docs/metrics.md)."""
    atol = float(setting(metrics_cfg, "atol"))
    rtol = float(setting(metrics_cfg, "rtol"))
    delta = float(setting(metrics_cfg, "near_one_delta"))
    out: dict[str, float] = {}
    w_layers, z_layers = {}, {}
    for key, s in spectra.items():
        p = split_layer_key(key)
        if p is None or np.ndim(s) != 3:
            continue
        if p[0] == "FW":
            c = kept_counts(s, delta)
            w_layers[p[1]] = c
            out[f"cbn/{layer_name('W', p[1])}"] = float(c.sum())
        elif p[0] in ("FZ", "FZc"):
            c = rank_counts(s, atol, rtol)
            fam = "cbn" if p[0] == "FZ" else "cbn_c"
            out[f"{fam}/{layer_name('Z', p[1])}"] = float(c.sum())
            if p[0] == "FZc":
                z_layers[p[1]] = c
    L = int(depth)
    for fam, layers in (("", w_layers), ("_z", z_layers)):
        if not layers:
            continue
        ids = sorted(layers)
        mid = [l for l in ids if 0.25 <= l / L <= 0.75] or ids
        ranks = [float(layers[l].sum()) for l in mid]
        out[f"bottleneck/cbn_rank{fam}"] = _median(ranks)
        if fam == "":
            centre = min(mid, key=lambda l: (abs(l - L / 2), l))
            counts = layers[centre]
            h, w = counts.shape
            out["bottleneck/cbn_slope"] = _median([float(layers[l].sum()) / layers[l].size
                                                   for l in mid])
            out["cbn/layer"] = float(centre)
            for d, n in by_degree(counts).items():
                out[f"cbn/deg{d}"] = float(n)
    return out
