"""The optimizer step over dicts of tensors, shared by the seed-vectorized trainer (tensors with a leading seed
dimension: every update is elementwise, so each seed's slice gets exactly its own update) and the per-seed loop.

It drives PyTorch's own optimizers with ``fused=True`` (one pass over all parameters; on 2 CPU cores 0.25 ms
instead of 8.4 ms for an op-by-op AdamW over the 10-seed MNIST-1D MLP), falling back to ``foreach``.

Models stacked along the leading dimension may each have their own learning rate (``lr`` a sequence, one per
model): each run of equal rates becomes a parameter group of views into the stacked tensors, so a grid of
learning rates x seeds still takes one fused step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from actlab.experiments.workload.recipe import Recipe


class FunctionalOptimizer:
    """AdamW (decoupled decay), Adam (L2 added to the gradient) or SGD with momentum, with a cosine or constant
    learning-rate schedule over ``total_steps``.

    Weight decay applies to weight matrices and kernels only (``decay[name]``), not to biases, norm scales or
    activation parameters such as a trainable swish beta, which decay would drag toward 0.
    """

    def __init__(self, recipe: Recipe, params: dict[str, torch.Tensor], decay: dict[str, bool], total_steps: int,
                 lr: float | Sequence[float] | None = None):
        self.recipe = recipe
        self.total = max(total_steps, 1)
        self.t = 0
        self.names = list(params)
        if lr is None or isinstance(lr, (int, float)):
            rate = float(recipe.lr if lr is None else lr)
            blocks = [(rate, slice(None))]
        else:
            blocks = _runs(list(lr))
        self.slots: list[tuple[str, slice, torch.Tensor]] = []  # (name, rows, the tensor the optimizer updates)
        groups = []
        for rate, rows in blocks:
            for decayed in (True, False):
                members = [k for k in self.names if decay[k] == decayed]
                views = [params[k] if rows == slice(None) else params[k][rows] for k in members]
                self.slots += [(k, rows, v) for k, v in zip(members, views)]
                if views:
                    groups.append({"params": views, "weight_decay": recipe.weight_decay if decayed else 0.0,
                                   "base_lr": rate, "lr": rate})
        self.lr = blocks[0][0]
        self.opt = self._build(groups)

    def _build(self, groups):
        r = self.recipe
        cls, kwargs = {
            "adamw": (torch.optim.AdamW, {"betas": (0.9, 0.999), "eps": 1e-8}),
            "adam": (torch.optim.Adam, {"betas": (0.9, 0.999), "eps": 1e-8}),
            "sgd": (torch.optim.SGD, {"momentum": r.momentum}),
        }[r.optimizer]
        for impl in ({"fused": True}, {"foreach": True}, {}):
            try:
                opt = cls(groups, **kwargs, **impl)
                if impl.get("fused"):  # fused support is checked lazily; probe it on this device now
                    self._probe(cls, kwargs, impl)
                return opt
            except (RuntimeError, TypeError, ValueError):
                continue
        raise RuntimeError(f"no usable implementation of {cls.__name__}")  # pragma: no cover

    def _probe(self, cls, kwargs, impl):
        any_param = self.slots[0][2]
        p = torch.zeros(2, dtype=any_param.dtype, device=any_param.device)
        p.grad = torch.zeros_like(p)
        cls([p], lr=1.0, **kwargs, **impl).step()

    def schedule_factor(self) -> float:
        if self.recipe.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(self.t, self.total) / self.total))
        return 1.0

    def current_lr(self) -> float:
        """The first group's rate at this step (all of them when the models share one)."""
        return self.lr * self.schedule_factor()

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        factor = self.schedule_factor()
        self.t += 1
        for group in self.opt.param_groups:
            group["lr"] = group["base_lr"] * factor
        contiguous = {k: grads[k].contiguous() for k in self.names}
        for k, rows, view in self.slots:
            # contiguous(): the fused CPU kernel silently mis-applies non-contiguous gradients (a transposed
            # weight gradient from bmm), found when batched layers trained no better than chance.
            view.grad = contiguous[k] if rows == slice(None) else contiguous[k][rows]
        self.opt.step()
        for _, _, view in self.slots:
            view.grad = None


def _runs(rates: list[float]) -> list[tuple[float, slice]]:
    """Consecutive equal rates as (rate, rows): [a, a, b] -> [(a, 0:2), (b, 2:3)]."""
    out: list[tuple[float, slice]] = []
    start = 0
    for i in range(1, len(rates) + 1):
        if i == len(rates) or rates[i] != rates[start]:
            out.append((float(rates[start]), slice(start, i)))
            start = i
    return out
