"""Regenerate adam_weight_decay.json: PyTorch Adam(weight_decay=wd) on a tiny ReLU net.

Run once (needs the ``bench`` extra: torch): ``python tests/golden/make_adam_weight_decay.py``.
Two losses: ``sum`` = mean over samples of the squared error summed over outputs (bncli's
mse) and ``mean`` = torch.nn.MSELoss() (the official code: mean over all entries).
"""

import json
from pathlib import Path

import numpy as np
import torch

D_IN, WIDTH, D_OUT, N, STEPS, LR, WD = 3, 4, 2, 8, 3, 0.05, 0.5


def main():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((N, D_IN)), rng.standard_normal((N, D_OUT))
    init = {"W01": rng.standard_normal((D_IN, WIDTH)) * 0.8, "b01": rng.standard_normal(WIDTH) * 0.1,
            "W02": rng.standard_normal((WIDTH, D_OUT)) * 0.5, "b02": rng.standard_normal(D_OUT) * 0.1}
    out = {"lr": LR, "weight_decay": WD, "steps": STEPS, "x": x.tolist(), "y": y.tolist(),
           "init": {k: v.tolist() for k, v in init.items()}, "torch": torch.__version__}
    for loss in ("sum", "mean"):
        p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in init.items()}
        opt = torch.optim.Adam(list(p.values()), lr=LR, weight_decay=WD)
        xt, yt = torch.tensor(x), torch.tensor(y)
        for _ in range(STEPS):
            opt.zero_grad()
            pred = torch.relu(xt @ p["W01"] + p["b01"]) @ p["W02"] + p["b02"]
            err = (pred - yt) ** 2
            (err.sum(1).mean() if loss == "sum" else err.mean()).backward()
            opt.step()
        out[f"after_{loss}"] = {k: v.detach().numpy().tolist() for k, v in p.items()}
    path = Path(__file__).with_name("adam_weight_decay.json")
    path.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
