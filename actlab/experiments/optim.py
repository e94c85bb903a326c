"""Functional optimizers over dicts of tensors, so one implementation serves the seed-vectorized trainer (tensors
with a leading seed dimension) and the per-seed loop (plain tensors) with identical arithmetic."""

from __future__ import annotations

import math

import torch

from actlab.experiments.recipe import Recipe


class FunctionalOptimizer:
    """AdamW / Adam (coupled L2) / SGD with momentum, with a cosine or constant learning-rate schedule.

    Weight decay applies to weight matrices and kernels only (``decay[name]``), not to biases, norm scales or
    activation parameters such as a trainable swish beta, which decay would drag toward 0.
    """

    def __init__(self, recipe: Recipe, params: dict[str, torch.Tensor], decay: dict[str, bool], total_steps: int,
                 lr: float | None = None):
        self.recipe = recipe
        self.lr = recipe.lr if lr is None else lr
        self.decay = decay
        self.total = max(total_steps, 1)
        self.t = 0
        self.m = {k: torch.zeros_like(v) for k, v in params.items()}
        self.v = {k: torch.zeros_like(v) for k, v in params.items()} if recipe.optimizer != "sgd" else {}

    def current_lr(self) -> float:
        if self.recipe.schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * min(self.t, self.total) / self.total))
        return self.lr

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        r = self.recipe
        lr = self.current_lr()
        self.t += 1
        for k, p in params.items():
            g = grads[k]
            wd = r.weight_decay if self.decay[k] else 0.0
            if r.optimizer == "sgd":
                if wd:
                    g = g.add(p, alpha=wd)
                buf = self.m[k].mul_(r.momentum).add_(g)
                p.sub_(buf, alpha=lr)
                continue
            if r.optimizer == "adam" and wd:
                g = g.add(p, alpha=wd)
            m = self.m[k].mul_(0.9).add_(g, alpha=0.1)
            v = self.v[k].mul_(0.999).addcmul_(g, g, value=0.001)
            m_hat = m / (1 - 0.9**self.t)
            v_hat = v / (1 - 0.999**self.t)
            if r.optimizer == "adamw" and wd:
                p.mul_(1 - lr * wd)
            p.sub_(lr * m_hat / (v_hat.sqrt() + 1e-8))
