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
                 lam: float, lr: float, compile: bool = False, device: str = "cpu"):
        torch = _torch()
        names = sorted(k for k in params if k.startswith("W"))

        def tensor(a, grad=False):
            return torch.tensor(np.asarray(a), device=device, requires_grad=grad)

        self.W = [tensor(params[k], True) for k in names]
        self.b = [tensor(params["b" + k[1:]], True) for k in names]
        self.params = self.W + self.b
        self.x = tensor(x)
        self.y = tensor(y)
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


class TorchLeaky:
    """The Leaky ResNet of arXiv 2405.17573 (bncli's ``leaky_resnet``) in eager PyTorch:
    a = x Win; a <- (1 - rho_l Lt) a + rho_l [relu(a), 1] W_l; f = a Wout;
    loss = mean_i ||f(x_i) - y_i||^2 + lam / (2 Lt) (sum_l rho_l ||W_l||^2 + ||Win||^2
    + ||Wout||^2); plain gradient descent."""

    def __init__(self, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                 lam: float, lr: float, leak: float):
        torch = _torch()
        names = sorted(k for k in params if k[0] == "W" and k[1:].isdigit())
        self.W = [torch.tensor(np.asarray(params[k]), requires_grad=True) for k in names]
        self.ends = [torch.tensor(np.asarray(params[k]), requires_grad=True) for k in ("Win", "Wout")]
        self.rho = [float(r) for r in np.asarray(params["rho"])]
        self.params = self.W + self.ends
        self.x, self.y = torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y))
        self.lam, self.lr, self.leak = float(lam), float(lr), float(leak)
        self._torch = torch

    def loss_fn(self):
        torch = self._torch
        a = self.x @ self.ends[0]
        one = torch.ones(a.shape[0], 1, dtype=a.dtype)
        for rho, W in zip(self.rho, self.W):
            a = (1 - rho * self.leak) * a + rho * (torch.cat([torch.relu(a), one], 1) @ W)
        fit = ((a @ self.ends[1] - self.y) ** 2).sum(dim=-1).mean()
        ridge = sum(r * (W * W).sum() for r, W in zip(self.rho, self.W))
        ridge = ridge + sum((e * e).sum() for e in self.ends)
        return fit + self.lam / (2 * self.leak) * ridge

    def run(self, n: int) -> float:
        torch, loss = self._torch, None
        for _ in range(n):
            for p in self.params:
                p.grad = None
            loss = self.loss_fn()
            loss.backward()
            with torch.no_grad():
                torch._foreach_add_(self.params, [p.grad for p in self.params], alpha=-self.lr)
        return float(loss.detach())


class TorchCompletion:
    """Deep linear matrix completion (bncli's ``completion`` task, ``optim=sgd`` over
    observed entries) in eager PyTorch: A = x W_1 ... W_L (x the identity), loss = mean over
    a minibatch of observed entries of (A_ij - M_ij)^2 + lam sum_l ||W_l||^2, plain SGD.
    ``entries``: a list of (B, 2) index arrays to replay (the check), else uniform draws."""

    def __init__(self, params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray,
                 obs: np.ndarray, lam: float, lr: float, batch_size: int):
        torch = _torch()
        names = sorted(k for k in params if k.startswith("W"))
        self.W = [torch.tensor(np.asarray(params[k]), requires_grad=True) for k in names]
        self.x, self.y = torch.tensor(np.asarray(x)), torch.tensor(np.asarray(y))
        self.obs = torch.tensor(np.asarray(obs), dtype=torch.long)
        self.lam, self.lr, self.batch_size = float(lam), float(lr), int(batch_size)
        self._torch = torch

    def step(self, entries=None):
        torch = self._torch
        if entries is None:
            entries = self.obs[torch.randint(len(self.obs), (self.batch_size,))]
        else:
            entries = torch.tensor(np.asarray(entries), dtype=torch.long)
        for p in self.W:
            p.grad = None
        a = self.x
        for W in self.W:
            a = a @ W
        i, j = entries[:, 0], entries[:, 1]
        ridge = sum((W * W).sum() for W in self.W)
        loss = ((a[i, j] - self.y[i, j]) ** 2).mean() + self.lam * ridge
        loss.backward()
        with torch.no_grad():
            torch._foreach_add_(self.W, [p.grad for p in self.W], alpha=-self.lr)
        return loss

    def run(self, n: int, entries=None) -> float:
        loss = None
        for t in range(n):
            loss = self.step(None if entries is None else entries[t])
        return float(loss.detach())

    def full_loss(self) -> float:
        """The objective over every observed entry (bncli's evaluation of loss/train)."""
        a = self.x
        for W in self.W:
            a = a @ W
        i, j = self.obs[:, 0], self.obs[:, 1]
        ridge = sum((W * W).sum() for W in self.W)
        loss = ((a[i, j] - self.y[i, j]) ** 2).mean() + self.lam * ridge
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
