"""The PyTorch reference of bncli's training step: the same network, loss and update.

f(x) = z_L with z_l = a_{l-1} W_l + b_l, a_l = relu(z_l); loss = mean_i ||f(x_i) - y_i||^2
+ lam * sum_l ||W_l||_F^2 (biases not in the ridge, as bncli's default); plain
gradient descent p <- p - lr * grad. float32, two threads, parameters and data copied
from the bncli batch so both sides start from identical numbers.
"""

from __future__ import annotations

import numpy as np


def _torch():
    import torch

    torch.set_num_threads(2)
    return torch


class TorchMLP:
    """Parameters + data as torch tensors and a ``step()`` doing one full-batch GD step."""

    def __init__(self, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                 lam: float, lr: float, compile: bool = False):
        torch = _torch()
        names = sorted(k for k in params if k.startswith("W"))
        self.W = [torch.tensor(np.asarray(params[k]), requires_grad=True) for k in names]
        self.b = [torch.tensor(np.asarray(params["b" + k[1:]]), requires_grad=True)
                  for k in names]
        self.params = self.W + self.b
        self.x = torch.tensor(np.asarray(x))
        self.y = torch.tensor(np.asarray(y))
        self.lam, self.lr = float(lam), float(lr)
        self.loss_fn = torch.compile(self._loss) if compile else self._loss
        self._torch = torch

    def _loss(self, W, b, x, y):
        a = x
        depth = len(W)
        for l in range(depth):
            z = a @ W[l] + b[l]
            a = self._torch.relu(z) if l < depth - 1 else z
        fit = ((a - y) ** 2).sum(dim=-1).mean()
        ridge = sum((w * w).sum() for w in W)
        return fit + self.lam * ridge

    def step(self):
        torch = self._torch
        for p in self.params:
            p.grad = None
        loss = self.loss_fn(self.W, self.b, self.x, self.y)
        loss.backward()
        with torch.no_grad():
            torch._foreach_add_(self.params, [p.grad for p in self.params], alpha=-self.lr)
        return loss

    def run(self, n: int) -> float:
        """``n`` steps; returns the loss before the last step (a float, forcing the work)."""
        loss = None
        for _ in range(n):
            loss = self.step()
        return float(loss.detach())


class TorchCNN(TorchMLP):
    """bncli's ``cnn`` (pool head) in PyTorch eager: ``torch.nn.functional.conv2d`` on
    circularly padded NCHW images (what ``nn.Conv2d(padding_mode="circular")`` does), ReLU,
    global average pooling, a linear head; the same loss and GD update as ``TorchMLP``."""

    def __init__(self, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                 lam: float, lr: float, compile: bool = False):
        torch = _torch()
        names = sorted(k for k in params if k.startswith("W"))
        # HWIO kernels -> OIHW
        self.W = [torch.tensor(np.ascontiguousarray(
            np.transpose(params[k], (3, 2, 0, 1)) if params[k].ndim == 4 else params[k]),
            requires_grad=True) for k in names]
        self.b = [torch.tensor(np.asarray(params["b" + k[1:]]), requires_grad=True)
                  for k in names]
        self.params = self.W + self.b
        self.x = torch.tensor(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))
        self.y = torch.tensor(np.asarray(y))
        self.lam, self.lr = float(lam), float(lr)
        self.loss_fn = torch.compile(self._loss) if compile else self._loss
        self._torch = torch

    def _loss(self, W, b, x, y):
        F = self._torch.nn.functional
        a = x
        for l in range(len(W) - 1):
            k = W[l].shape[-1]
            pad = (k // 2, k - 1 - k // 2, k // 2, k - 1 - k // 2)
            a = F.relu(F.conv2d(F.pad(a, pad, mode="circular"), W[l], b[l]))
        out = a.mean(dim=(2, 3)) @ W[-1] + b[-1]
        fit = ((out - y) ** 2).sum(dim=-1).mean()
        ridge = sum((w * w).sum() for w in W)
        return fit + self.lam * ridge
